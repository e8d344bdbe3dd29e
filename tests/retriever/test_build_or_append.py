"""Build or append (tase_search.writes): the one rule, and each writer that creates or grows an index
going through it (the local CLI and the toolkits' document store here; the Ray engine and
``index --engine ray`` in tests/distributed/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from tase_search import writes
from tase_search.cli.app import main
from tase_search.encoding.external import ExternalEmbedder
from tase_search.errors import IndexExists
from tase_search.integrations._store import IndexStore, make_document
from tase_search.results import AddResult
from tase_search.retriever import Retriever
from tase_search.testing import FakeEncoder


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool | None, str]]:
    """Record each call of build_or_append (the decision it was given, what it did); the real one runs."""
    calls: list[tuple[bool | None, str]] = []
    real = writes.build_or_append

    def recording(path: Any, **kw: Any) -> writes.Written:
        done = real(path, **kw)
        calls.append((kw.get("appending"), done.action))
        return done

    monkeypatch.setattr(writes, "build_or_append", recording)
    return calls


# --------------------------------------------------------------------------- the rule
def test_builds_where_no_index_is_and_appends_where_one_is(tmp_path: Path) -> None:
    calls: list[str] = []

    def build() -> tuple[None, AddResult]:
        calls.append("build")
        return None, AddResult(added=2)

    def append() -> tuple[None, AddResult]:
        calls.append("append")
        return None, AddResult(added=1)

    assert writes.build_or_append(tmp_path / "new", build=build, append=append).action == writes.BUILT
    Retriever.build(["bir", "iki"], model=FakeEncoder(), path=tmp_path / "old")
    assert writes.will_append(tmp_path / "old") and not writes.will_append(tmp_path / "old", overwrite=True)
    assert writes.build_or_append(tmp_path / "old", build=build, append=append).action == writes.APPENDED
    done = writes.build_or_append(tmp_path / "old", build=build, append=append, overwrite=True)
    assert done.action == writes.BUILT and calls == ["build", "append", "build"]


def test_an_index_created_since_the_look_is_appended_to(tmp_path: Path) -> None:
    def raced() -> tuple[None, AddResult]:
        raise IndexExists("an index already exists")

    done = writes.build_or_append(
        tmp_path, build=raced, append=lambda: (None, AddResult(unchanged=3)), appending=False
    )
    assert done.action == writes.UNCHANGED and done.result.unchanged == 3
    with pytest.raises(IndexExists):  # with overwrite no such race exists: the error stands
        writes.build_or_append(tmp_path, build=raced, append=lambda: (None, AddResult()), overwrite=True)


# --------------------------------------------------------------------------- the callers
def test_the_cli_index_command_goes_through_it(tmp_path: Path, tiny_model_dir: Path, spy: list) -> None:
    corpus = tmp_path / "a.txt"
    corpus.write_text("Ankara'da hava güzel.\nİstanbul'da yağmur var.\n", encoding="utf-8")
    runner = CliRunner(env={"TASE_SEARCH_PRECISION": "fp32"})
    args = ["index", str(corpus), "--index", str(tmp_path / "idx"), "--model", str(tiny_model_dir)]
    for _ in range(2):
        out = runner.invoke(main, [*args, "--quiet", "--json"])
        assert out.exit_code == 0, out.output
    more = tmp_path / "b.txt"
    more.write_text("Kedi bahçede uyudu.\n", encoding="utf-8")
    out = runner.invoke(main, ["index", str(more), "--index", str(tmp_path / "idx"), "--quiet", "--json"])
    assert json.loads(out.output.strip().splitlines()[-1])["action"] == "appended to"
    assert spy == [(False, "built"), (True, "unchanged"), (True, "appended to")]


def test_the_document_store_goes_through_it(tmp_path: Path, spy: list) -> None:
    store = IndexStore(tmp_path / "s", FakeEncoder())
    store.add([make_document("a", "Ankara", None, "<test>", 0)])
    store.add(
        [make_document("a", "Ankara", None, "<test>", 0), make_document("b", "İzmir", None, "<test>", 0)]
    )
    store.add([make_document("b", "İzmir", None, "<test>", 0)])
    assert spy == [(False, "built"), (True, "appended to"), (True, "unchanged")]
    assert store.count() == 2


def test_the_document_store_with_outside_vectors_goes_through_it(tmp_path: Path, spy: list) -> None:
    store = IndexStore(tmp_path / "v", ExternalEmbedder("toolkit", 4))
    vec = np.eye(4, dtype=np.float32)
    store.add_vectors([make_document("a", "Ankara", None, "<test>", 0)], vec[:1])
    store.add_vectors([make_document("b", "İzmir", None, "<test>", 0)], vec[1:2])
    assert spy == [(False, "built"), (True, "appended to")] and store.count() == 2
