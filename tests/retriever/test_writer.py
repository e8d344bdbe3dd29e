"""BufferedWriter: held adds committed in groups, checked where they enter, never lost by a failed flush."""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import tase_search.store.commit as commit_mod
from tase_search.errors import InputError
from tase_search.retriever import Retriever
from tase_search.testing import FakeEncoder


def _generation(path: Path) -> int:
    return json.loads((path / "manifest.json").read_text())["generation"]


def _docs(start: int, n: int) -> list[dict]:
    return [
        {"id": f"d{i}", "text": f"belge numarası {i} hakkında kısa bir metin", "n": i}
        for i in range(start, start + n)
    ]


@pytest.fixture
def index(tmp_path: Path, fake_encoder: FakeEncoder) -> Retriever:
    return Retriever.build(_docs(0, 3), model=fake_encoder, path=tmp_path / "ix")


def test_adds_are_held_until_the_buffer_is_full_then_written_in_one_commit(index: Retriever) -> None:
    gen = _generation(index.path)
    w = index.writer(flush_docs=25, flush_seconds=None)
    for i in range(2):
        w.add(_docs(100 + 10 * i, 10))
    assert w.pending == 20 and _generation(index.path) == gen and len(index) == 3
    assert index.search("belge numarası 105", k=50, mode="dense")  # reads still answer
    assert "d105" not in {h.id for h in index.search("belge", k=50, mode="dense")}
    w.add(_docs(120, 10))  # 30 >= 25: one commit of all 30
    assert w.pending == 0 and _generation(index.path) == gen + 1 and len(index) == 33
    w.close()
    assert w.result.added == 30


def test_the_same_documents_give_the_same_index_as_one_add(
    tmp_path: Path, fake_encoder: FakeEncoder, index: Retriever
) -> None:
    one = Retriever.build(_docs(0, 3), model=fake_encoder, path=tmp_path / "one")
    one.add(_docs(100, 57))
    with index.writer(flush_docs=10, flush_seconds=None) as w:
        for i in range(0, 57, 3):
            w.add(_docs(100 + i, min(3, 57 - i)))
    q = "belge numarası 130 hakkında"
    got = {h.id: round(h.score, 5) for h in index.search(q, k=60, mode="dense")}
    want = {h.id: round(h.score, 5) for h in one.search(q, k=60, mode="dense")}
    assert got == want and len(got) == len(index) == len(one) == 60


def test_leaving_the_block_flushes_and_closes(index: Retriever) -> None:
    with index.writer(flush_docs=1000) as w:
        w.add(_docs(10, 4))
        assert len(index) == 3
    assert len(index) == 7
    with pytest.raises(InputError, match="closed"):
        w.add(_docs(20, 1))


def test_old_held_documents_are_flushed_by_the_next_add(
    index: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [100.0]
    monkeypatch.setattr("tase_search.writer.time.monotonic", lambda: clock[0])
    w = index.writer(flush_docs=1000, flush_seconds=2.0)
    w.add(_docs(10, 1))
    clock[0] += 1.0
    w.add(_docs(11, 1))
    assert w.pending == 2
    clock[0] += 1.5
    w.add(_docs(12, 1))
    assert w.pending == 0 and len(index) == 6
    w.close()


def test_bad_documents_are_refused_by_the_add_that_brings_them(index: Retriever) -> None:
    w = index.writer(flush_seconds=None)
    w.add(_docs(10, 2))
    with pytest.raises(InputError, match="no string 'text'"):
        w.add([{"id": "x"}])
    with pytest.raises(InputError, match="on_duplicate"):
        w.add(_docs(12, 1), on_duplicate="sometimes")
    with pytest.raises(InputError, match="already in the index"):
        w.add([{"id": "d0", "text": "başka bir metin"}])
    with pytest.raises(InputError, match="already held"):
        w.add([{"id": "d10", "text": "başka bir metin"}])
    assert w.pending == 2  # the refused adds held nothing
    w.add([{"id": "d0", "text": "başka bir metin"}], on_duplicate="replace")
    w.close()
    assert index.get(["d0"])[0]["text"] == "başka bir metin" and len(index) == 5


def test_a_held_document_added_again_unchanged_is_not_a_conflict(index: Retriever) -> None:
    with index.writer(flush_seconds=None) as w:
        w.add(_docs(0, 3) + _docs(10, 1))
        w.add(_docs(10, 1))
    assert len(index) == 4 and w.result.added == 1 and w.result.unchanged == 4


def test_a_failed_flush_keeps_what_was_held_and_leaves_the_index(
    index: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = index.writer(flush_docs=1000, flush_seconds=None)
    w.add(_docs(10, 5))
    gen = _generation(index.path)
    real = commit_mod.commit

    def full_disk(*a: object, **k: object) -> object:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(commit_mod, "commit", full_disk)
    with pytest.raises(OSError):
        w.flush()
    assert w.pending == 5 and _generation(index.path) == gen and len(index) == 3
    monkeypatch.setattr(commit_mod, "commit", real)
    assert w.flush().added == 5 and len(index) == 8


def test_delete_flushes_first_so_order_is_kept(index: Retriever) -> None:
    with index.writer(flush_seconds=None) as w:
        w.add(_docs(10, 2))
        assert sorted(w.delete(["d10", "d1"])) == ["d1", "d10"] and w.pending == 0
        w.add([{"id": "d10", "text": "geri geldi"}])
    assert {d["id"] for d in index.get(["d10", "d11", "d1"])} == {"d10", "d11"}
    assert index.get(["d10"])[0]["text"] == "geri geldi"


def test_vectors_and_texts_in_one_writer(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((6, 8)).astype(np.float32)
    docs = [{"id": f"v{i}", "text": f"metin {i}"} for i in range(6)]
    r = Retriever.build_from_vectors(docs[:1], vecs[:1], "random", tmp_path / "v")
    with r.writer(flush_docs=100) as w:
        w.add_vectors(docs[1:3], vecs[1:3])
        w.add_vectors(docs[3:6], vecs[3:6])
        with pytest.raises(InputError, match="dimension"):
            w.add_vectors(docs[:1], np.ones((1, 3), np.float32))
    assert len(r) == 6
    hit = r.search_by_vector(vecs[4], k=1)[0]
    assert hit.id == "v4"


def test_threads_share_one_writer(index: Retriever) -> None:
    w = index.writer(flush_docs=40, flush_seconds=None)

    def work(t: int) -> None:
        for i in range(10):
            w.add(_docs(1000 * (t + 1) + 5 * i, 5))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.close()
    assert len(index) == 3 + 200 and w.result.added == 200


def test_a_block_that_raises_still_writes_what_was_accepted(index: Retriever) -> None:
    with pytest.raises(RuntimeError), index.writer(flush_seconds=None) as w:
        w.add(_docs(10, 3))
        raise RuntimeError("the caller's own failure")
    assert len(index) == 6


def test_dropping_a_writer_that_holds_documents_warns(index: Retriever) -> None:
    w = index.writer(flush_seconds=None)
    w.add(_docs(10, 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        w.__del__()
    assert any("never written" in str(c.message) for c in caught)
    w.discard()


@pytest.mark.parametrize("bad", [0, -1, "10", 2.5])
def test_bad_flush_docs_is_refused(index: Retriever, bad: object) -> None:
    with pytest.raises(InputError, match="flush_docs"):
        index.writer(flush_docs=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, "1", True, float("nan")])
def test_bad_flush_seconds_is_refused(index: Retriever, bad: object) -> None:
    with pytest.raises(InputError, match="flush_seconds"):
        index.writer(flush_seconds=bad)  # type: ignore[arg-type]
