"""schemathesis with every check it has (``--checks all``: status codes, content types, headers,
response schemas, negative data rejected and positive data accepted, unsupported methods, auth, ...)
against the HTTP API's own OpenAPI schema, over a real loopback server, on a bounded, derandomized
budget so a run takes seconds and repeats itself. Requests carry the write key so adds and deletes run
(requests without it: test_serve.py)."""

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
from schemathesis.checks import CHECKS, load_all_checks  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

from tase_search.retriever import Retriever  # noqa: E402
from tase_search.server.app import ServerThread, create_app  # noqa: E402

pytestmark = pytest.mark.integrations
KEY = "schema-all-checks-key-0123456789"
load_all_checks()
ALL_CHECKS = CHECKS.get_all()


def _app():  # noqa: ANN202 - a FastAPI app
    where = Path(tempfile.mkdtemp(prefix="tase-search-schema-all-"))
    atexit.register(shutil.rmtree, where, ignore_errors=True)
    docs = [{"id": i, "text": t, **m} for i, t, m in zip(IDS, TEXTS, METADATAS)]
    return create_app(
        {"news": Retriever.build(docs, model=BilingualEncoder(), path=where / "news")},
        api_key=KEY,
        allow_hosts=["testserver"],
    )


APP = _app()
#: positive_data_acceptance configured for this API, as schemathesis has it configured per API: 400 is
#: its answer to a request whose data the index refuses though the schema cannot say so (a query
#: vector of another dimension than the index's). GET search takes its query as `query` or `q`, one
#: of them, a rule OpenAPI cannot state for parameters (POST states it in its body schema): that
#: operation's positive-data check is left out (below).
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
            }
        },
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)


@pytest.fixture(scope="module")
def live() -> Iterator[str]:
    with ServerThread(APP) as srv:
        yield srv.url


def test_every_check_is_loaded() -> None:
    names = {c.__name__ for c in ALL_CHECKS}
    assert {"not_a_server_error", "response_schema_conformance", "negative_data_rejection"} <= names


@schema.parametrize()
@settings(
    max_examples=10, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)
def test_the_api_passes_every_schemathesis_check(case, live: str) -> None:
    one_of_params = (case.method, case.path) == ("GET", "/indexes/{name}/search")
    checks = [
        c
        for c in ALL_CHECKS
        if not (c.__name__ == "positive_data_acceptance" and (one_of_params or _nested_filter(case.body)))
    ]
    case.call_and_validate(base_url=live, headers={"X-API-Key": KEY}, checks=checks)


def _nested_filter(body: object) -> bool:
    """Whether a body's filter nests filters (``$and``, ``$or``, ``$not``): the schema describes the top
    level of a filter exactly and nested ones only as objects, so a schema-valid nested part may still
    be one the parser refuses (422); positive-data acceptance is not asked of those."""
    flt = body.get("filter") if isinstance(body, dict) else None
    return isinstance(flt, dict) and any(k in flt for k in ("$and", "$or", "$not"))
