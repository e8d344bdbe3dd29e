"""Concurrency: readers in other processes while one writer appends, deletes and replaces.

Readers never see an error or a result that does not match one committed generation exactly
(``campaign.concurrency.check_reads`` recomputes every answer); a second writer is refused with
"locked by PID …"; a lock left by a killed writer is stale and the next writer proceeds.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from store_helpers import newest_segment

from campaign.common import make_docs
from campaign.concurrency import run_concurrency, stale_lock_check
from tase_search.errors import IndexCorrupt, IndexLocked
from tase_search.retriever import Retriever
from tase_search.store import docs as docs_mod
from tase_search.store import segwrite as segwrite_mod
from tase_search.store import snapshot as snapshot_mod
from tase_search.store.lock import LOCK_NAME, WriterLock
from tase_search.testing import FakeEncoder


def _assert_clean(res: dict) -> None:
    assert res["problems"] == [], res
    assert res["query_errors"] == 0 and res["inconsistent_results"] == 0, res
    assert res["final_verify_ok"], res


def test_readers_and_writer(tmp_path: Path) -> None:
    # min_commits: on a loaded machine the writer's start-up can eat most of 3 s; the run is then
    # extended (writer until 6 commits, readers until the writer is done) instead of failing.
    res = run_concurrency(tmp_path, readers=2, seconds=3.0, docs=120, min_commits=6)
    _assert_clean(res)
    assert res["queries_served"] > 20
    assert res["generations_committed"] > 3
    assert res["generations_seen_by_readers"] > 1  # readers really followed the writer
    assert res["lock_probe"]["refused_with_pid"] > 0  # "locked by PID <writer>" while it wrote
    assert res["lock_probe"]["refused_unclear"] == 0


@pytest.mark.slow
def test_readers_and_writer_long(tmp_path: Path) -> None:
    res = run_concurrency(tmp_path, readers=4, seconds=20.0, docs=400)
    _assert_clean(res)


@pytest.mark.slow
def test_readers_and_writer_with_tombstones(tmp_path: Path) -> None:
    """HNSW cannot remove vectors: deletes become tombstones (and compactions); readers still agree."""
    res = run_concurrency(tmp_path, readers=3, seconds=10.0, docs=300, factory="HNSW32,Flat")
    _assert_clean(res)


def test_second_writer_refused_and_stale_lock_recovered(tmp_path: Path) -> None:
    res = stale_lock_check(tmp_path)
    assert res["ok"], res
    assert "locked by PID" in res["second_writer_message"]
    assert res["stale"]["temporaries"], "the killed writer should have left its temporary generation"


def test_second_writer_in_process_names_pid(tmp_path: Path) -> None:
    enc = FakeEncoder()
    ix = tmp_path / "ix"
    r = Retriever.build(make_docs(5), model=enc, path=ix)
    with WriterLock(ix):
        with pytest.raises(IndexLocked, match=f"locked by PID {os.getpid()}.*searches keep working"):
            r.add(make_docs(1, prefix="x"))
        assert len(r.search("futbol", k=3)) == 3  # readers are not blocked by the writer lock
    r.add(make_docs(1, prefix="x"))  # released: writes go through
    assert r.manifest.documents == 6


def test_lock_file_from_dead_writer_is_not_a_lock(tmp_path: Path) -> None:
    enc = FakeEncoder()
    ix = tmp_path / "ix"
    Retriever.build(make_docs(5), model=enc, path=ix).close()
    (ix / LOCK_NAME).write_text("999999999\n")  # a PID that cannot exist, no flock held
    r = Retriever.load(ix, model=enc)
    r.delete(["d1"])
    assert r.manifest.documents == 4


@pytest.mark.parametrize("where", ["before DocStore", "inside sqlite3.connect"])
def test_reader_survives_generation_vanishing_mid_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A reader that read manifest g, then lost g's segment to quick commits (a merge, and a write after
    it) while opening, retries with the newest generation instead of reporting the index as damaged."""
    enc = FakeEncoder()
    ix = tmp_path / "ix"
    Retriever.build(make_docs(20), model=enc, path=ix).close()
    reader = Retriever.load(ix, model=enc)
    writer = Retriever.load(ix, model=enc)
    calls = {"n": 0}

    def race() -> None:
        if calls["n"] == 0:
            calls["n"] += 1
            writer.add(make_docs(1, prefix="x"))  # g+1: g's segment and a new one
            writer.optimize()  # g+2: both merged into one (g+1's kept for its readers)
            writer.add(make_docs(1, prefix="y"))  # g+3: g's segment is removed now

    if where == "before DocStore":
        real_docstore = snapshot_mod.DocStore

        def racing_docstore(path: Path, *, readonly: bool = False) -> object:
            if readonly:
                race()
            return real_docstore(path, readonly=readonly)

        monkeypatch.setattr(snapshot_mod, "DocStore", racing_docstore)
        monkeypatch.setattr(segwrite_mod, "DocStore", racing_docstore)  # a segment's store
    else:  # after DocStore checked the file exists, before SQLite opens it
        real_connect = sqlite3.connect

        def racing_connect(target: str, *a: object, **k: object) -> object:
            if "mode=ro" in str(target):
                race()
            return real_connect(target, *a, **k)

        monkeypatch.setattr(docs_mod.sqlite3, "connect", racing_connect)
    hits = reader.search("futbol", k=50)
    assert reader.manifest.generation == writer.manifest.generation
    assert len(hits) == 22


def test_real_damage_is_not_retried_away(tmp_path: Path) -> None:
    enc = FakeEncoder()
    ix = tmp_path / "ix"
    Retriever.build(make_docs(20), model=enc, path=ix)
    gen = newest_segment(ix)
    (gen / "docs.sqlite").unlink()
    with pytest.raises(IndexCorrupt, match="missing"):
        Retriever.load(ix, model=enc).search("futbol")
