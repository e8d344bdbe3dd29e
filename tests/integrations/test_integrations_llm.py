"""simonw/llm: the tase-tr embedding models, found through llm's entry point, in llm's own CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llm")

from bilingual import CORPUS, BilingualEncoder  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from doc_examples import run_example, shell_example  # noqa: E402

from tase_search.encoding.encoder import Encoder  # noqa: E402
from tase_search.integrations import llm_plugin  # noqa: E402

pytestmark = pytest.mark.integrations


@pytest.fixture
def llm_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - a runner function
    """``run(*args)`` runs llm's CLI in-process with a fresh user directory, tase-tr on the toy encoder."""
    from llm.cli import cli  # importing llm.cli loads the installed plugins (entry points)

    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    monkeypatch.setenv("TASE_SEARCH_MODEL", "bilingual-fake")
    encoder = BilingualEncoder()
    monkeypatch.setitem(llm_plugin._encoders, "bilingual-fake", encoder)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str) -> str:
        res = runner.invoke(cli, list(args), catch_exceptions=False)
        assert res.exit_code == 0, res.output
        return res.output

    run.encoder = encoder  # type: ignore[attr-defined]
    return run


def _similar(output: str) -> list[str]:
    return [json.loads(line)["id"] for line in output.splitlines() if line.strip()]


def test_registered_through_the_entry_point(llm_cli) -> None:
    import llm

    assert "tase-search" in {p["name"] for p in llm.get_plugins()}
    listed = llm_cli("embed-models")
    assert "tase-tr" in listed and "tase-tr-query" in listed


def test_embed_similar_filter_delete(llm_cli, tmp_path: Path) -> None:
    data = tmp_path / "news.jsonl"
    data.write_text(
        "".join(json.dumps({"id": i, "content": t}) + "\n" for i, t, _ in CORPUS), encoding="utf-8"
    )
    llm_cli("embed-multi", "news", str(data), "--format", "nl", "-m", "tase-tr", "--store")
    assert llm_cli.encoder.calls["document"] == len(CORPUS)
    assert _similar(llm_cli("similar", "news", "-c", "yarın yağmur yağacak mı", "-n", "1")) == ["hava-1"]
    assert _similar(llm_cli("similar", "news", "-c", "heavy rain tomorrow", "-n", "1")) == ["hava-1"]
    # llm's filter is an id prefix
    assert _similar(llm_cli("similar", "news", "-c", "football match", "--prefix", "spor-", "-n", "5")) == [
        "spor-1",
        "spor-2",
    ]
    # one more document with metadata, then llm's delete (a whole collection)
    llm_cli(
        "embed",
        "news",
        "doga-2",
        "-m",
        "tase",
        "-c",
        "Deprem bölgesine yardım ulaştı.",
        "--metadata",
        '{"topic": "doga"}',
    )
    assert _similar(llm_cli("similar", "news", "-c", "earthquake", "-n", "1")) == ["doga-2"]
    llm_cli("collections", "delete", "news")
    assert "news" not in llm_cli("collections", "list")


def test_query_model_embeds_with_encode_query(llm_cli) -> None:
    import llm

    vec = json.loads(llm_cli("embed", "-m", "tase-tr-query", "-c", "futbol"))
    assert llm_cli.encoder.calls == {"query": 1, "document": 0}
    assert vec == pytest.approx(llm.get_embedding_model("tase-tr-query").embed("futbol"))


def test_the_configured_model_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path, tiny_encoder
) -> None:
    import llm

    monkeypatch.setenv("TASE_SEARCH_MODEL", str(tiny_model_dir))
    monkeypatch.setattr(llm_plugin, "_encoders", {})
    got = llm.get_embedding_model("tase-tr").embed("Yarın yağmur yağacak.")
    # the plugin loads as Encoder.load does by default (precision auto: bf16 weights on a bf16 CPU)
    want = Encoder.load(str(tiny_model_dir)).encode_document(["Yarın yağmur yağacak."])[0]
    assert got == pytest.approx(want.tolist(), abs=1e-5)
    assert float(np.dot(got, tiny_encoder.encode_document(["Yarın yağmur yağacak."])[0])) > 0.99


def test_doc_example(llm_cli) -> None:
    run_example("llm-data")  # writes news.jsonl in the working directory
    commands = shell_example("llm")
    assert commands and all(argv[0] == "llm" for argv, _ in commands)
    for argv, expected in commands:
        out = llm_cli(*argv[1:])
        if expected is not None:
            assert _similar(out)[0] == expected, (argv, out)
