"""docs/integrations.md with the real shipped model: the setup block as written, then every example.

The per-toolkit tests run the same examples with a toy bilingual encoder (fast, in the default run);
this one checks that what the document promises — English queries finding the Turkish news among
them — holds for the model users get. Slow: it loads the shipped model and every toolkit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from doc_examples import corpus, examples, run_example, shell_example

pytestmark = [pytest.mark.integrations, pytest.mark.slow]


@pytest.fixture(scope="module")
def setup() -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(examples()["setup"][1], "integrations.md:setup", "exec"), namespace)  # noqa: S102
    return namespace


@pytest.mark.parametrize(
    ("name", "toolkit"),
    [
        ("langchain", "langchain_core"),
        ("llamaindex", "llama_index.core"),
        ("haystack", "haystack"),
        ("txtai", "txtai"),
    ],
)
def test_example_with_the_shipped_model(
    name: str, toolkit: str, setup: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip(toolkit)
    monkeypatch.chdir(tmp_path)
    run_example(name, encoder=setup["encoder"])


def test_serve_example_with_the_shipped_model(setup: dict[str, Any], tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from tase_search.retriever import Retriever
    from tase_search.server.app import ServerThread, create_app

    names = corpus()
    docs = [{"id": i, "text": t, **m} for i, t, m in zip(names["IDS"], names["TEXTS"], names["METADATAS"])]
    app = create_app({"news": Retriever.build(docs, model=setup["encoder"], path=tmp_path / "news")})
    with ServerThread(app) as srv:
        run_example("serve", base_url=srv.url)


def test_llm_example_with_the_shipped_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("llm")
    import json

    from click.testing import CliRunner
    from llm.cli import cli

    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    monkeypatch.setenv("TASE_SEARCH_MODEL", "default")
    monkeypatch.chdir(tmp_path)
    run_example("llm-data")
    for argv, expected in shell_example("llm"):
        res = CliRunner().invoke(cli, argv[1:], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        if expected is not None:
            assert json.loads(res.output.splitlines()[0])["id"] == expected, (argv, res.output)
