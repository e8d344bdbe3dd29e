"""A cold query's quick way to a stored graph: the write path stamps the store's graph and saves it as ONNX
Runtime optimises it; a query runs that form unhashed only while the stamp vouches for both files,
hashes what changed, refuses what does not hash right, never trusts a graph an index carries, and writes
nothing. A long-lived process that loads an unchanged index again reuses the opened bundle."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from tase_search.encoding import graph_cache, graph_store  # noqa: E402
from tase_search.encoding import query_bundle as qb  # noqa: E402
from tase_search.retriever import Retriever  # noqa: E402

DOCS = ["futbol maçı istanbul'da", "yarın yağmur var", "kedi ve köpek", "müzik ve şarkı"]


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the graph bytes hashed on the query path (store graphs through the stamp or by read_graph)."""
    seen: list[int] = []
    real_cache, real_store = graph_cache._hash, graph_store.sha256
    monkeypatch.setattr(graph_cache, "_hash", lambda d: seen.append(len(d)) or real_cache(d))
    monkeypatch.setattr(graph_store, "sha256", lambda d: seen.append(len(d)) or real_store(d))
    return seen


@pytest.fixture(autouse=True)
def _fresh_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qb, "_OPENED", {})


def _open(ix: Path) -> tuple[qb.LightQueryEncoder | None, str]:
    m = Retriever.load(ix).manifest.model
    qb._OPENED.clear()  # a fresh process, as a cold query is
    return qb.open_bundle(
        ix, fingerprint=m.fingerprint, query_prompt=m.query_prompt, passage_prompt=m.passage_prompt
    )


def _built(tiny_model_dir: Path, tmp_path: Path) -> tuple[Path, dict]:
    ix = tmp_path / "ix"
    Retriever.build(DOCS, model=str(tiny_model_dir), path=ix, precision="fp32")
    return ix, qb.read_bundle_file(ix / qb.BUNDLE_DIR)


def _tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-5:] = b"01234" if data[-5:] != b"01234" else b"43210"
    path.write_bytes(bytes(data))


def test_a_write_stamps_the_graph_and_a_query_runs_its_optimised_form_unhashed(
    tiny_model_dir: Path, tmp_path: Path, store: Path, hashes: list[int]
) -> None:
    ix, b = _built(tiny_model_dir, tmp_path)
    name = b["graph"]
    stamp = json.loads((store / graph_cache.stamp_name(name)).read_text())
    assert stamp["sha256"] == b["graph_sha256"] and stamp["bytes"] == b["graph_bytes"]
    opt = store / graph_cache.optimized_name(name, stamp["optimized"]["ort"])
    assert opt.is_file() and opt.stat().st_size == stamp["optimized"]["bytes"]
    hashes.clear()
    light, why = _open(ix)
    assert light is not None and light.graph_optimized, why
    assert hashes == []  # neither graph hashed: both unchanged since the write path checked them
    # the same vectors as the graph the bundle names, run as ONNX Runtime would optimise it at load
    source = graph_store.read_graph(ix / qb.BUNDLE_DIR, name, digest=b["graph_sha256"], size=b["graph_bytes"])
    ref = qb.LightQueryEncoder(b, ix / qb.BUNDLE_DIR, runner=qb.OnnxQueryEncoder(source))
    texts = ["futbol", "yarın hava nasıl olacak acaba"]
    assert np.allclose(light.encode_query(texts), ref.encode_query(texts), atol=1e-5)


def test_a_changed_stamp_identity_costs_a_hash_not_the_fast_path(
    tiny_model_dir: Path, tmp_path: Path, store: Path, hashes: list[int]
) -> None:
    ix, b = _built(tiny_model_dir, tmp_path)
    stamp = json.loads((store / graph_cache.stamp_name(b["graph"])).read_text())
    opt = store / graph_cache.optimized_name(b["graph"], stamp["optimized"]["ort"])
    os.utime(opt)  # same bytes, another identity: hashed, still used
    hashes.clear()
    light, _ = _open(ix)
    assert light is not None and light.graph_optimized and hashes == [stamp["optimized"]["bytes"]]
    os.utime(store / b["graph"])  # the source touched: the stamp vouches for nothing, the source is hashed
    hashes.clear()
    light, _ = _open(ix)
    assert light is not None and not light.graph_optimized and hashes == [b["graph_bytes"]]
    Retriever.load(ix, precision="fp32").add(["yeni belge"])  # the next write renews the stamp
    hashes.clear()
    light, _ = _open(ix)
    assert light is not None and light.graph_optimized and hashes == []


def test_a_tampered_optimised_form_is_not_run(tiny_model_dir: Path, tmp_path: Path, store: Path) -> None:
    ix, b = _built(tiny_model_dir, tmp_path)
    stamp = json.loads((store / graph_cache.stamp_name(b["graph"])).read_text())
    _tamper(store / graph_cache.optimized_name(b["graph"], stamp["optimized"]["ort"]))
    light, why = _open(ix)
    assert light is not None and not light.graph_optimized, why  # the intact source graph instead


def test_a_tampered_store_graph_is_refused_despite_its_stamp(
    tiny_model_dir: Path, tmp_path: Path, store: Path
) -> None:
    ix, b = _built(tiny_model_dir, tmp_path)
    _tamper(store / b["graph"])
    light, why = _open(ix)
    assert light is None and "SHA-256" in why
    # a forged stamp naming the tampered file's identity still needs its SHA-256 to be the bundle's
    path = store / graph_cache.stamp_name(b["graph"])
    stamp = json.loads(path.read_text())
    st = os.lstat(store / b["graph"])
    stamp["identity"] = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    stamp["sha256"] = "0" * 64
    path.write_text(json.dumps(stamp))
    light, why = _open(ix)
    assert light is None and "SHA-256" in why


def test_a_graph_the_index_carries_is_always_hashed(
    tiny_model_dir: Path, tmp_path: Path, store: Path, hashes: list[int]
) -> None:
    ix, b = _built(tiny_model_dir, tmp_path)
    own = qb.make_portable(ix)
    hashes.clear()
    light, _ = _open(ix)
    assert light is not None and not light.graph_optimized and hashes == [b["graph_bytes"]]
    _tamper(own)  # the store's stamp vouches for the digest, but the index's own file is what runs
    light, why = _open(ix)
    assert light is None and "SHA-256" in why


def test_a_query_writes_nothing_to_the_store(tiny_model_dir: Path, tmp_path: Path, store: Path) -> None:
    ix, b = _built(tiny_model_dir, tmp_path)
    (store / graph_cache.stamp_name(b["graph"])).unlink()
    before = sorted(os.listdir(store))
    light, _ = _open(ix)
    assert light is not None and not light.graph_optimized  # hashed, answered
    assert Retriever.load(ix).search("kedi", k=1)
    assert sorted(os.listdir(store)) == before


def test_loading_an_unchanged_index_again_reuses_the_opened_bundle(
    tiny_model_dir: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ix, _ = _built(tiny_model_dir, tmp_path)
    qb._OPENED.clear()
    made: list[int] = []
    real = qb.LightQueryEncoder.__init__
    monkeypatch.setattr(
        qb.LightQueryEncoder, "__init__", lambda s, *a, **k: made.append(1) or real(s, *a, **k)
    )
    first = Retriever.load(ix).query_encoder
    assert Retriever.load(ix).query_encoder is first and made == [1]
    Retriever.load(ix, precision="fp32").add(["yeni belge"])  # a write that leaves the bundle as it is
    assert Retriever.load(ix).query_encoder is first and made == [1]
    (ix / qb.BUNDLE_DIR / qb.BUNDLE_FILE).touch()  # changed on disk: opened and checked again
    assert Retriever.load(ix).query_encoder is not first and made == [1, 1]
