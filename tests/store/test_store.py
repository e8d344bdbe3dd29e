"""The index store pieces: manifest, SQLite document store, writer lock and vector backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tase_search.errors import IndexCorrupt, IndexLocked, IndexMismatch, InputError
from tase_search.store import vectors as V
from tase_search.store.docs import DocStore
from tase_search.store.lock import WriterLock, atomic_write_bytes
from tase_search.store.manifest import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    Manifest,
    ModelInfo,
    check_compatible,
    read_manifest,
    write_manifest,
)
from tase_search.store.vectors import FaissIndex, NumpyIndex, choose_factory, get_backend, validate_factory

DIM = 64


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def random_unit(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return unit(np.random.default_rng(seed).standard_normal((n, dim)))


def blobs(n: int, dim: int = DIM, centers: int = 40, spread: float = 0.35, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors (gaussian blobs around random centres): realistic for ANN recall."""
    rng = np.random.default_rng(seed)
    c = unit(rng.standard_normal((centers, dim)))
    which = rng.integers(0, centers, n)
    return unit(c[which] + spread * rng.standard_normal((n, dim)) / np.sqrt(dim) * 4)


def make_manifest(**changes: object) -> Manifest:
    m = Manifest(
        model=ModelInfo(id="tiny-a", fingerprint="f" * 32, dimension=DIM, max_seq_length=128),
        factory="Flat",
        index_type="auto",
    )
    return replace(m, **changes) if changes else m


# ================================================================================ manifest
def test_manifest_round_trip(tmp_path: Path) -> None:
    m = make_manifest(
        generation=3,
        rows=10,
        documents=7,
        tombstones=2,
        files={"docs.sqlite": {"bytes": 12, "sha256": "ab" * 32}},
        search_params="efSearch=96",
    )
    write_manifest(tmp_path, m)
    back = read_manifest(tmp_path)
    assert back == m
    assert back.generation_dir == "gen-000003"
    raw = json.loads((tmp_path / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert raw["format_version"] == FORMAT_VERSION
    assert raw["model"]["fingerprint"] == "f" * 32
    # no temporary file left behind by the atomic write
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_NAME]


def test_manifest_bumped_keeps_identity() -> None:
    m = make_manifest()
    b = m.bumped(generation=1, rows=5)
    assert (b.generation, b.rows, b.model, b.created) == (1, 5, m.model, m.created)


def test_manifest_unsupported_format_version(tmp_path: Path) -> None:
    raw = json.loads(make_manifest().to_json())
    raw["format_version"] = FORMAT_VERSION + 1
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(IndexMismatch, match="format version"):
        read_manifest(tmp_path)


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2]", json.dumps({"format_version": FORMAT_VERSION, "factory": "Flat"}), b"\xff\xfe"],
)
def test_manifest_corrupt(tmp_path: Path, content: str | bytes) -> None:
    p = tmp_path / MANIFEST_NAME
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(IndexCorrupt):
        read_manifest(tmp_path)


def test_manifest_unknown_field_is_corrupt(tmp_path: Path) -> None:
    raw = json.loads(make_manifest().to_json())
    raw["surprise"] = 1
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(IndexCorrupt, match="surprise"):
        read_manifest(tmp_path)


def test_manifest_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_manifest(tmp_path)


def test_check_compatible() -> None:
    m = make_manifest()
    check_compatible(m, model_id="tiny-a", fingerprint="f" * 32, dimension=DIM)
    # another name with the same weights is fine (a renamed copy of the model)
    check_compatible(m, model_id="/models/copy", fingerprint="f" * 32, dimension=DIM)
    with pytest.raises(IndexMismatch, match="dimension 64") as e:
        check_compatible(m, model_id="big", fingerprint="f" * 32, dimension=384)
    assert "384" in str(e.value) and "'tiny-a'" in str(e.value)
    with pytest.raises(IndexMismatch) as e:
        check_compatible(m, model_id="tiny-b", fingerprint="0" * 32, dimension=DIM)
    assert "'tiny-a'" in str(e.value) and "'tiny-b'" in str(e.value)


def test_atomic_write_bytes(tmp_path: Path) -> None:
    p = tmp_path / "f.json"
    atomic_write_bytes(p, b"one")
    atomic_write_bytes(p, b"two")
    assert p.read_bytes() == b"two"
    assert [x.name for x in tmp_path.iterdir()] == ["f.json"]


# ================================================================================ DocStore
def _filled_store(path: Path) -> tuple[DocStore, list[int]]:
    s = DocStore(path)
    s.begin()
    pids = s.insert(
        [
            ("a", "Galatasaray maçı kazandı.", {"topic": "spor", "year": 2024}, "haber.jsonl", 1),
            ("b", "İstanbul'da yağmur; ılık, şık ğ.", {"topic": "hava"}, "haber.jsonl", 2),
            ("c", "uzun belge", {"topic": "spor", "etiket": "İĞŞ"}, "other.txt", 1),
        ],
        [[(0, 1, 0, 25)], [(0, 1, 0, 32)], [(0, 2, 0, 4), (1, 2, 3, 10)]],
        first_pid=100,
        next_auto_id=5,
    )
    s.commit()
    return s, pids


def test_docstore_insert_fetch(tmp_path: Path) -> None:
    s, pids = _filled_store(tmp_path / "d.sqlite")
    assert pids == [100, 101, 102, 103]
    assert s.counts() == (3, 4)
    assert s.next_pid() == 104 and s.next_auto_id() == 5
    got = s.fetch([101, 103, 999])
    assert set(got) == {101, 103}
    b = got[101]
    assert (b.doc_id, b.text, b.metadata, b.source) == (
        "b",
        "İstanbul'da yağmur; ılık, şık ğ.",
        {"topic": "hava"},
        "haber.jsonl",
    )
    c = got[103]
    assert (c.doc_id, c.index, c.count, c.start, c.end) == ("c", 1, 2, 3, 10)
    assert s.get_documents(["c", "zz", "a"]) == [
        {
            "id": "c",
            "text": "uzun belge",
            "metadata": {"topic": "spor", "etiket": "İĞŞ"},
            "source": "other.txt",
            "line": 1,
        },
        {
            "id": "a",
            "text": "Galatasaray maçı kazandı.",
            "metadata": {"topic": "spor", "year": 2024},
            "source": "haber.jsonl",
            "line": 1,
        },
    ]
    assert s.existing_ids(["a", "x", "c"]) == {"a", "c"}
    assert s.all_pids() == [100, 101, 102, 103]
    s.close()
    # readable read-only afterwards, and the Turkish text is stored as-is
    ro = DocStore(tmp_path / "d.sqlite", readonly=True)
    assert ro.fetch([101])[101].text == "İstanbul'da yağmur; ılık, şık ğ."
    ro.close()


def test_docstore_duplicate_id(tmp_path: Path) -> None:
    s, _ = _filled_store(tmp_path / "d.sqlite")
    s.begin()
    with pytest.raises(InputError, match="'a'"):
        s.insert([("a", "x", {}, None, None)], [[(0, 1, 0, 1)]], first_pid=s.next_pid())
    s.rollback()
    assert s.counts() == (3, 4)


def test_docstore_delete(tmp_path: Path) -> None:
    s, _ = _filled_store(tmp_path / "d.sqlite")
    s.begin()
    deleted, pids = s.delete(["c", "missing", "a"])
    s.commit()
    assert deleted == ["c", "a"]
    assert sorted(pids) == [100, 102, 103]
    assert s.counts() == (1, 1)
    assert s.fetch([100, 102, 103]) == {}
    # passage ids are never reused
    assert s.next_pid() == 104


def test_docstore_filters(tmp_path: Path) -> None:
    s, _ = _filled_store(tmp_path / "d.sqlite")
    assert sorted(s.pids_matching({"topic": "spor"})) == [100, 102, 103]
    assert sorted(s.pids_matching({"topic": "spor", "etiket": "İĞŞ"})) == [102, 103]
    assert s.pids_matching({"topic": "yok"}) == []
    assert s.pids_matching({"year": 2024}) == [100]
    assert s.pids_matching({"year": "2024"}) == []  # a string is not a number (docs/filters.md)
    assert s.pids_matching({"id": "b"}) == [101]
    assert sorted(s.pids_matching({"source": "haber.jsonl"})) == [100, 101]
    assert s.pids_matching({"missing_key": "x"}) == []
    for odd in ("a.b", 'a"b', "a[0]"):  # literal key names, quoted safely
        assert s.pids_matching({odd: "x"}) == []
    with pytest.raises(InputError, match=r"operator '\$x' is not valid here"):
        s.pids_matching({"$x": "x"})


def test_docstore_tombstones(tmp_path: Path) -> None:
    s, _ = _filled_store(tmp_path / "d.sqlite")
    s.begin()
    s.add_tombstones([7, 3, 7])
    s.commit()
    assert s.tombstones() == [3, 7]
    s.begin()
    s.clear_tombstones()
    s.commit()
    assert s.tombstones() == []


def test_docstore_rollback(tmp_path: Path) -> None:
    s, _ = _filled_store(tmp_path / "d.sqlite")
    s.begin()
    s.delete(["a", "b", "c"])
    s.rollback()
    assert s.counts() == (3, 4)


def test_docstore_missing_or_damaged(tmp_path: Path) -> None:
    with pytest.raises(IndexCorrupt, match="missing"):
        DocStore(tmp_path / "nope.sqlite", readonly=True)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(IndexCorrupt, match="damaged"):
        DocStore(junk, readonly=True)


# ================================================================================ lock
def test_lock_second_writer_refused(tmp_path: Path) -> None:
    first = WriterLock(tmp_path).acquire()
    try:
        with pytest.raises(IndexLocked, match=f"locked by PID {os.getpid()}"):
            WriterLock(tmp_path).acquire()
    finally:
        first.release()
    with WriterLock(tmp_path):  # free again
        pass


_HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from tase_search.store.lock import WriterLock
    WriterLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(120)
    """
)


def test_lock_of_killed_process_is_free(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLocked, match=f"PID {proc.pid}"):
            WriterLock(tmp_path).acquire()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # the lock file still names the dead PID, but the kernel dropped the lock with the process
    assert (tmp_path / ".lock").read_text().strip() == str(proc.pid)
    with WriterLock(tmp_path):
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())


# ================================================================================ vectors
def test_choose_factory_thresholds() -> None:
    assert choose_factory(0) == "Flat"
    assert choose_factory(V.FLAT_MAX - 1) == "Flat"
    assert choose_factory(V.FLAT_MAX) == f"HNSW{V.HNSW_M},Flat"
    assert choose_factory(V.HNSW_MAX - 1) == f"HNSW{V.HNSW_M},Flat"
    for n in (V.HNSW_MAX, 10 * V.HNSW_MAX, 100 * V.HNSW_MAX):
        f = choose_factory(n)
        assert f.startswith("IVF") and f.endswith(",SQ8")
        nlist = int(f[3:].split(",")[0])
        assert nlist & (nlist - 1) == 0  # a power of two
        assert 2 * np.sqrt(n) <= nlist <= 8 * np.sqrt(n)
    assert choose_factory(V.HNSW_MAX) == "IVF8192,SQ8"


def test_default_search_params() -> None:
    assert V.default_search_params("Flat") == ""
    assert V.default_search_params("HNSW32,Flat") == f"efSearch={V.HNSW_EF_SEARCH}"
    assert V.default_search_params("IVF64,Flat") == f"nprobe={V.IVF_NPROBE}"
    assert V.default_search_params("OPQ16,IVF64,PQ16") == f"nprobe={V.IVF_NPROBE}"


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        ("", "not valid"),
        ("Flat; rm -rf /", "not valid"),
        ("HNSW32 Flat", "not valid"),
        ("IDMap2,Flat", "IDMap"),
        ("IDMap,Flat", "IDMap"),
        ("NotAnIndex", "refused by FAISS"),
        ("HNSW32,Bogus", "refused by FAISS"),
        ("IVFx,Flat", "refused by FAISS"),
    ],
)
def test_bad_factory_strings(factory: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        FaissIndex.create(factory, DIM)


def test_validate_factory_accepts_common_strings() -> None:
    for f in ("Flat", "HNSW32,Flat", "IVF1024,SQ8", "OPQ16,IVF1024,PQ16", "IVF4096,PQ32x8"):
        validate_factory(f)


def test_unknown_backend() -> None:
    with pytest.raises(InputError, match="numpy"):
        get_backend("annoy")
    assert get_backend("faiss") is FaissIndex and get_backend("numpy") is NumpyIndex


def test_search_params_that_do_not_apply() -> None:
    with pytest.raises(InputError, match="do not apply"):
        FaissIndex.create("Flat", DIM, "nprobe=4")


def _pair(vecs: np.ndarray, ids: np.ndarray, factory: str = "Flat") -> tuple[FaissIndex, NumpyIndex]:
    f = FaissIndex.create(factory, vecs.shape[1])
    if f.needs_training:
        f.train(vecs)
    f.add(vecs, ids)
    n = NumpyIndex.create("numpy", vecs.shape[1])
    n.add(vecs, ids)
    return f, n


def _assert_same_results(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> None:
    (sa, ia), (sb, ib) = a, b
    np.testing.assert_array_equal(ia, ib)
    valid = ia >= 0
    np.testing.assert_allclose(sa[valid], sb[valid], rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def diff_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vecs = random_unit(600, seed=1)
    ids = np.random.default_rng(2).permutation(10_000)[:600].astype(np.int64) * 3 + 7  # sparse, unordered
    queries = random_unit(25, seed=3)
    return vecs, ids, queries


@pytest.mark.parametrize("k", [1, 10, 50])
def test_flat_equals_numpy(diff_data: tuple[np.ndarray, np.ndarray, np.ndarray], k: int) -> None:
    vecs, ids, queries = diff_data
    f, n = _pair(vecs, ids)
    assert f.ntotal == n.ntotal == 600
    _assert_same_results(f.search(queries, k), n.search(queries, k))


def test_flat_equals_numpy_with_selectors(diff_data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    vecs, ids, queries = diff_data
    f, n = _pair(vecs, ids)
    rng = np.random.default_rng(4)
    allow = rng.choice(ids, 150, replace=False)
    deny = rng.choice(ids, 200, replace=False)
    for kw in (
        {"allow": allow},
        {"deny": deny},
        {"allow": allow, "deny": deny},
        {"deny": np.zeros(0, np.int64)},
    ):
        fr = f.search(queries, 20, **kw)
        _assert_same_results(fr, n.search(queries, 20, **kw))
        got = set(fr[1][fr[1] >= 0].tolist())
        if "allow" in kw:
            assert got <= set(kw["allow"].tolist())
        if "deny" in kw:
            assert not got & set(kw["deny"].tolist())


def test_selector_with_fewer_candidates_than_k(diff_data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    vecs, ids, queries = diff_data
    f, n = _pair(vecs, ids)
    allow = ids[:3]
    fs, fi = f.search(queries, 10, allow=allow)
    ns, ni = n.search(queries, 10, allow=allow)
    _assert_same_results((fs, fi), (ns, ni))
    assert (fi[:, :3] >= 0).all() and (fi[:, 3:] == -1).all()


def test_flat_remove_equals_numpy(diff_data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    vecs, ids, queries = diff_data
    f, n = _pair(vecs, ids)
    gone = ids[::4]
    assert f.remove(gone) is True and n.remove(gone) is True
    assert f.ntotal == n.ntotal == 600 - len(gone)
    fr = f.search(queries, 30)
    _assert_same_results(fr, n.search(queries, 30))
    assert not set(fr[1].ravel().tolist()) & set(gone.tolist())
    assert f.remove(np.zeros(0, np.int64)) is True


def test_hnsw_cannot_remove() -> None:
    vecs = random_unit(200, seed=5)
    f = FaissIndex.create("HNSW32,Flat", DIM)
    f.add(vecs, np.arange(200))
    assert f.remove(np.array([3, 4], dtype=np.int64)) is False
    assert f.ntotal == 200
    # the tombstone path: deny the ids at search time instead
    _, got = f.search(vecs[3:5], 5, deny=np.array([3, 4], dtype=np.int64))
    assert not {3, 4} & set(got.ravel().tolist())


@pytest.mark.parametrize("factory", ["Flat", "HNSW32,Flat", "IVF8,Flat"])
def test_reconstruct_save_load(tmp_path: Path, factory: str) -> None:
    vecs = blobs(400, seed=6)
    ids = np.arange(400, dtype=np.int64) * 2 + 1
    f, _ = _pair(vecs, ids, factory)
    got_ids, got_vecs = f.reconstruct_all()
    order = np.argsort(got_ids)
    np.testing.assert_array_equal(got_ids[order], ids)
    np.testing.assert_allclose(got_vecs[order], vecs, atol=1e-6)
    f.save(tmp_path / "v.faiss")
    g = FaissIndex.load(tmp_path / "v.faiss", factory, DIM)
    assert g.ntotal == 400 and g.search_params == V.default_search_params(factory)
    q = blobs(10, seed=7)
    _assert_same_results(f.search(q, 10), g.search(q, 10))


def test_numpy_save_load(tmp_path: Path, diff_data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    vecs, ids, queries = diff_data
    _, n = _pair(vecs, ids)
    n.save(tmp_path / "v.npz")
    m = NumpyIndex.load(tmp_path / "v.npz", "numpy", DIM)
    _assert_same_results(n.search(queries, 10), m.search(queries, 10))
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(IndexCorrupt):
        NumpyIndex.load(tmp_path / "bad.npz", "numpy", DIM)


def test_faiss_load_damaged(tmp_path: Path) -> None:
    (tmp_path / "bad.faiss").write_bytes(b"\x00" * 64)
    with pytest.raises(IndexCorrupt, match="could not be read"):
        FaissIndex.load(tmp_path / "bad.faiss", "Flat", DIM)
    f = FaissIndex.create("Flat", DIM)
    f.add(random_unit(5), np.arange(5))
    f.save(tmp_path / "v.faiss")
    with pytest.raises(IndexCorrupt, match="dimension"):
        FaissIndex.load(tmp_path / "v.faiss", "Flat", DIM * 2)


def test_empty_index_search() -> None:
    for idx in (FaissIndex.create("Flat", DIM), NumpyIndex.create("numpy", DIM)):
        assert idx.ntotal == 0
        scores, ids = idx.search(random_unit(2), 5)
        assert (ids == -1).all()
        got_ids, got_vecs = idx.reconstruct_all()
        assert got_ids.shape == (0,) and got_vecs.shape == (0, DIM)


# ---------------------------------------------------------------------------- ANN recall
def _recall_at_10(approx: np.ndarray, exact: np.ndarray) -> float:
    hits = sum(len(set(a.tolist()) & set(e.tolist())) for a, e in zip(approx, exact))
    return hits / exact.size


@pytest.fixture(scope="module")
def ann_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    vecs = blobs(3000, seed=10)
    ids = np.arange(3000, dtype=np.int64) + 1000
    queries = blobs(200, seed=11)
    exact = FaissIndex.create("Flat", DIM)
    exact.add(vecs, ids)
    return vecs, ids, queries, exact.search(queries, 10)[1]


@pytest.mark.parametrize("factory", [choose_factory(V.FLAT_MAX), "IVF64,Flat"])
def test_ann_recall_vs_flat(ann_data: tuple[np.ndarray, ...], factory: str) -> None:
    vecs, ids, queries, exact = ann_data
    idx = FaissIndex.create(factory, DIM)  # default search params (efSearch / nprobe)
    if idx.needs_training:
        idx.train(vecs)
    idx.add(vecs, ids)
    recall = _recall_at_10(idx.search(queries, 10)[1], exact)
    assert recall >= 0.95, f"{factory}: recall@10 {recall:.3f}"
    # the selector path (used for filters and tombstones) keeps recall too
    deny = ids[::10]
    ex = FaissIndex.create("Flat", DIM)
    ex.add(vecs, ids)
    exact_d = ex.search(queries, 10, deny=deny)[1]
    got_d = idx.search(queries, 10, deny=deny)[1]
    assert not set(got_d.ravel().tolist()) & set(deny.tolist())
    recall_d = _recall_at_10(got_d, exact_d)
    assert recall_d >= 0.95, f"{factory} with deny: recall@10 {recall_d:.3f}"
