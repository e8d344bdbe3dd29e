"""The query graph lives once per model in the user's graph store (int8), not in every index: indexes
stay small, a second index of the model reuses the stored graph, a copied index without it still answers,
``make_portable`` carries it along, and a write does not re-open an unchanged bundle."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from tase_search.encoding import graph_store  # noqa: E402
from tase_search.encoding import query_bundle as qb  # noqa: E402
from tase_search.errors import ModelError  # noqa: E402
from tase_search.retriever import Retriever  # noqa: E402

DOCS = ["futbol maçı istanbul'da", "yarın yağmur var", "kedi ve köpek", "müzik ve şarkı"]


def _bundle(ix: Path) -> dict:
    return qb.read_bundle_file(ix / qb.BUNDLE_DIR)


def _light(ix: Path) -> bool:
    return isinstance(Retriever.load(ix, precision="fp32").query_encoder, qb.LightQueryEncoder)


def test_the_graph_is_stored_once_and_int8(
    tiny_model_dir: Path, tmp_path: Path, store: Path, monkeypatch
) -> None:
    Retriever.build(DOCS, model=str(tiny_model_dir), path=tmp_path / "a", precision="fp32")
    b = _bundle(tmp_path / "a")
    assert not list((tmp_path / "a").rglob("*.onnx"))  # the index carries no graph
    assert (store / b["graph"]).stat().st_size == b["graph_bytes"]
    assert b["graph_precision"] == "int8" and _light(tmp_path / "a")
    # a second index of the same model, in a process that never exported it, reuses the stored graph
    monkeypatch.setattr(qb, "_WRITTEN", {})

    def no_export(*a: object, **k: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr("tase_search.encoding.onnx_runtime.export_guarded", no_export)
    Retriever.build(DOCS[:2], model=str(tiny_model_dir), path=tmp_path / "b", precision="fp32")
    assert _bundle(tmp_path / "b")["graph"] == b["graph"] and _light(tmp_path / "b")
    stem = b["graph"].removesuffix(".onnx")  # the graph, its stamp and its optimised form (graph_cache)
    kept = sorted(p.name for p in store.iterdir() if not p.name.startswith("."))
    assert [n for n in kept if n != b["graph"]] == sorted(
        [f"{stem}.stamp.json", f"{stem}.ort-{ort.__version__}.onnx"]
    )


def test_a_copy_without_the_store_answers_and_portable_carries_it(
    tiny_model_dir: Path, tmp_path: Path, store: Path, monkeypatch
) -> None:
    ix = tmp_path / "ix"
    Retriever.build(DOCS, model=str(tiny_model_dir), path=ix, precision="fp32")
    other = tmp_path / "other-machine-graphs"
    monkeypatch.setenv(graph_store.STORE_ENV, str(other))  # another machine: an empty store
    r = Retriever.load(ix, precision="fp32")
    assert r.search("kedi", k=1) and not isinstance(r.query_encoder, qb.LightQueryEncoder)
    with pytest.raises(ModelError, match="not in this machine's store"):
        qb.make_portable(ix)
    monkeypatch.setenv(graph_store.STORE_ENV, str(store))
    path = qb.make_portable(ix)
    assert path.parent == ix / qb.BUNDLE_DIR and path.stat().st_size == _bundle(ix)["graph_bytes"]
    shutil.copytree(ix, tmp_path / "travelled")
    monkeypatch.setenv(graph_store.STORE_ENV, str(other))
    assert _light(tmp_path / "travelled")
    Retriever.load(tmp_path / "travelled", precision="fp32").add(["yeni belge"])  # stays portable
    assert (tmp_path / "travelled" / qb.BUNDLE_DIR / _bundle(tmp_path / "travelled")["graph"]).is_file()


def test_a_tampered_stored_graph_is_refused_then_rewritten(
    tiny_model_dir: Path, tmp_path: Path, store: Path
) -> None:
    ix = tmp_path / "ix"
    Retriever.build(DOCS, model=str(tiny_model_dir), path=ix, precision="fp32")
    g = store / _bundle(ix)["graph"]
    g.write_bytes(g.read_bytes()[:-10] + b"0123456789")
    keys = Retriever.load(ix).manifest.model
    light, why = qb.open_bundle(
        ix, fingerprint=keys.fingerprint, query_prompt=keys.query_prompt, passage_prompt=keys.passage_prompt
    )
    assert light is None and "SHA-256" in why
    Retriever.load(ix, precision="fp32").add(["yeni belge"])
    assert _light(ix)


def test_a_write_does_not_reopen_an_unchanged_bundle(
    tiny_model_dir: Path, tmp_path: Path, store: Path, monkeypatch
) -> None:
    ix = tmp_path / "ix"
    r = Retriever.build(DOCS, model=str(tiny_model_dir), path=ix, precision="fp32")
    opened: list[int] = []
    real = qb.open_bundle
    monkeypatch.setattr(qb, "open_bundle", lambda *a, **k: opened.append(1) or real(*a, **k))
    r.add(["bir"])
    r.add(["iki"])
    assert opened == []
    (ix / qb.BUNDLE_DIR / qb.BUNDLE_FILE).touch()  # changed on disk: checked again
    r.add(["üç"])
    assert opened == [1]
