"""The copy-on-write commit on its own: no encoder, no deduplication, no change of index type.

Each write here stores plain rows and random vectors (numpy backend) through ``commit``; a failure is
injected at every fault point with the cleanup disabled, which leaves what a kill there would leave.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from store_helpers import docs_file, live_ids, segment_names

import tase_search.store.commit as commit_mod
import tase_search.store.lock as lock_mod
from tase_search.errors import IndexCorrupt, IndexMismatch, IndexWriteError
from tase_search.store import layout, safeio
from tase_search.store.commit import NothingChanged, VectorSlot, commit
from tase_search.store.docs import DocStore
from tase_search.store.manifest import Manifest, ModelInfo, read_manifest
from tase_search.store.verify import verify_index

DIM = 4


def _manifest() -> Manifest:
    model = ModelInfo(id="plain", fingerprint="f" * 16, dimension=DIM, max_seq_length=64)
    return Manifest(model=model, factory="Flat", index_type="custom", backend="numpy")


def _put(*ids: str):  # noqa: ANN202 - a mutate
    """A mutate that stores one single-passage document per id and a random unit vector for it."""

    def mutate(store: DocStore, slot: VectorSlot, m: Manifest) -> list[str]:
        pids = store.insert(
            [(i, f"text {i}", {}, None, None) for i in ids], [[(0, 1, 0, 4)]] * len(ids), store.next_pid()
        )
        vecs = np.random.default_rng(len(pids)).normal(size=(len(pids), DIM)).astype(np.float32)
        slot.vectors.add(vecs / np.linalg.norm(vecs, axis=1, keepdims=True), np.asarray(pids, np.int64))
        return list(ids)

    return mutate


def _ids(ix: Path) -> list[str]:
    """The document ids the current manifest holds."""
    return live_ids(ix)


def _only_named_segments(ix: Path) -> bool:
    """No segment directory is left that the current manifest does not name."""
    return [d.name for d in layout.segment_dirs(ix)] == segment_names(ix) and not layout.generation_dirs(ix)


@pytest.fixture
def ix(tmp_path: Path) -> Path:
    path = tmp_path / "ix"
    assert commit(path, _put("a", "b"), new=_manifest()) == ["a", "b"]
    return path


def test_commits_publish_generations_and_keep_the_previous_one(ix: Path) -> None:
    seen: list[int] = []
    commit(ix, _put("c"), on_commit=lambda m: seen.append(m.generation))
    commit(ix, _put("d"))
    m = read_manifest(ix)
    assert (m.generation, m.documents, m.rows, seen) == (3, 4, 4, [2])
    assert _ids(ix) == ["a", "b", "c", "d"]
    assert segment_names(ix) == ["seg-000001", "seg-000002", "seg-000003"]  # each write adds one
    assert _only_named_segments(ix)
    assert verify_index(ix).ok and not layout.temporaries(ix)


def test_check_refuses_before_anything_is_written(ix: Path) -> None:
    def refuse(current: Manifest) -> None:
        raise IndexMismatch(f"not generation {current.generation}")

    with pytest.raises(IndexMismatch, match="not generation 1"):
        commit(ix, _put("c"), check=refuse)
    assert read_manifest(ix).generation == 1 and not layout.temporaries(ix)


class _Stop(Exception):
    pass


@pytest.mark.parametrize("point", lock_mod.FAULT_POINTS)
def test_a_failure_at_each_point_leaves_the_old_or_the_new_index(
    ix: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    def stop_at(name: str) -> None:
        if name == point:
            raise _Stop(name)

    with monkeypatch.context() as mp:
        mp.setattr(commit_mod, "fault_point", stop_at)
        mp.setattr(lock_mod, "fault_point", stop_at)
        mp.setattr(commit_mod.shutil, "rmtree", lambda *a, **k: None)  # a killed writer removes nothing
        mp.setattr(lock_mod.Path, "unlink", lambda *a, **k: None)
        with pytest.raises(_Stop):
            commit(ix, _put("c"))
    committed = lock_mod.FAULT_POINTS.index(point) >= lock_mod.FAULT_POINTS.index("committed")
    assert _ids(ix) == (["a", "b", "c"] if committed else ["a", "b"])
    assert verify_index(ix).ok
    commit(ix, _put("d"))  # the next writer is not bothered by what was left, and tidies it up
    assert _ids(ix) == (["a", "b", "c", "d"] if committed else ["a", "b", "d"])
    assert not layout.temporaries(ix) and _only_named_segments(ix)


def test_nothing_changed_publishes_nothing(ix: Path) -> None:
    def nothing(store: DocStore, slot: VectorSlot, m: Manifest) -> None:
        raise NothingChanged("unchanged")

    with pytest.raises(NothingChanged) as caught:
        commit(ix, nothing)
    assert caught.value.result == "unchanged"
    assert read_manifest(ix).generation == 1 and not layout.temporaries(ix)


def test_damage_is_refused_not_carried_forward(ix: Path) -> None:
    docs = docs_file(ix)
    raw = bytearray(docs.read_bytes())
    raw[200] ^= 0xFF
    docs.write_bytes(bytes(raw))
    with pytest.raises(IndexCorrupt, match="the index is damaged: run `tase-search verify`"):
        commit(ix, _put("c"))
    assert read_manifest(ix).generation == 1 and not layout.temporaries(ix)


def test_a_full_disk_is_a_clean_error(ix: Path) -> None:
    safeio.simulate_full_disk(0)
    try:
        with pytest.raises(IndexWriteError, match="no space left.*generation 1 is still the current one"):
            commit(ix, _put("c"))
    finally:
        safeio.simulate_full_disk(None)
    assert _ids(ix) == ["a", "b"] and not layout.temporaries(ix)


def test_a_first_build_over_an_index_keeps_generations_increasing(ix: Path) -> None:
    commit(ix, _put("x"), new=_manifest())
    assert read_manifest(ix).generation == 2 and _ids(ix) == ["x"]
