"""schemathesis against the server's own OpenAPI schema, over a real loopback server: generated
requests (valid and not) never get a 5xx, and every answer matches what the schema documents
(status codes, content type, body). Bounded and seeded: a fixed number of examples per operation,
derandomized, so a run takes seconds and repeats itself."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")

from bilingual import IDS, METADATAS, TEXTS, BilingualEncoder  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tase_search.retriever import Retriever  # noqa: E402
from tase_search.server.app import ServerThread, create_app  # noqa: E402

pytestmark = pytest.mark.integrations
KEY = "schema-test-key-0123456789"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _app():  # noqa: ANN202 - a FastAPI app
    """The app under test, built at import: schemathesis reads its schema when the module is collected.
    Its index lives in a temporary directory removed at exit."""
    where = Path(tempfile.mkdtemp(prefix="tase-search-schema-"))
    atexit.register(shutil.rmtree, where, ignore_errors=True)
    docs = [{"id": i, "text": t, **m} for i, t, m in zip(IDS, TEXTS, METADATAS)]
    return create_app(
        {"news": Retriever.build(docs, model=BilingualEncoder(), path=where / "news")},
        api_key=KEY,
        allow_hosts=["testserver"],  # the Host of schemathesis's in-process client, which loads the schema
    )


APP = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def live() -> Iterator[str]:
    """The same app on a real loopback server: generated requests go over HTTP."""
    with ServerThread(APP) as srv:
        yield srv.url


@schema.parametrize()
@settings(
    max_examples=12,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_its_schema(case, live: str) -> None:
    # with the key, so generated adds and deletes really run (requests without it: test_serve.py)
    case.call_and_validate(base_url=live, headers={"X-API-Key": KEY}, checks=CHECKS)
