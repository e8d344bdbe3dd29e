"""Crash safety: writers killed (SIGKILL) or interrupted (Ctrl-C) at every commit phase, disk full.

After every fault the index must verify, hold exactly the old or exactly the new documents, answer
queries, and accept the next write. The default run covers every named fault point with the fast
Python-API writer, Ctrl-C of the real CLI and disk-full paths; ``-m slow`` adds every point for every
operation, random-moment kills of the API writer and of the real ``tase-search delete``, and random
kills of the real ``tase-search index`` (new, append, overwrite) with a tiny model. The full campaign
(``python -m campaign.run``) does hundreds.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from pathlib import Path

import pytest

from campaign.common import check_next_write, leftovers, make_docs, snapshot
from campaign.faults import COMMITTED_POINTS, KillCampaign, Op, _cli, _reset
from tase_search.errors import IndexWriteError
from tase_search.retriever import Retriever
from tase_search.store import commit as commit_mod
from tase_search.store import lock as lockmod
from tase_search.store.lock import FAULT_POINTS
from tase_search.store.verify import verify_index
from tase_search.testing import FakeEncoder


@pytest.fixture(scope="module")
def kc(tmp_path_factory: pytest.TempPathFactory) -> KillCampaign:
    """Four write operations (new index, append, delete, overwrite) through the API writer, plus
    ``cli-delete``: the real ``tase-search delete`` (which needs no model)."""
    k = KillCampaign(tmp_path_factory.mktemp("kills"), driver="api", base_docs=120, add_docs=40, seed=1)
    api = k.ops["delete"]  # argv: python -m campaign.apiwriter delete IX ID...
    ids = api.argv[api.argv.index(str(k.ix)) + 1 :]
    op = Op("cli-delete", [*_cli(), "delete", *ids, "--index", str(k.ix)], api.base, api.old)
    k._calibrate(op)
    k.ops["cli-delete"] = op
    return k


def _assert_survived(rec: dict | None) -> None:
    assert rec is not None, "the writer finished before it was killed"
    assert rec["ok"], rec


# ------------------------------------------------------------------------------ the hook itself
def test_fault_points_fire_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(commit_mod, "fault_point", seen.append)
    monkeypatch.setattr(lockmod, "fault_point", seen.append)
    r = Retriever.build(make_docs(5), model=FakeEncoder(), path=tmp_path / "ix")
    assert seen == list(FAULT_POINTS)
    seen.clear()
    r.delete(["d1"])
    assert seen == list(FAULT_POINTS)


def test_fault_hook_is_inert_without_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No signal without TASE_SEARCH_FAULT or for another point; the one asked for at the named point."""
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(lockmod.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    monkeypatch.delenv(lockmod.FAULT_ENV, raising=False)
    lockmod.fault_point("committed")
    monkeypatch.setenv(lockmod.FAULT_ENV, "some-other-point")
    lockmod.fault_point("committed")
    assert sent == []
    for spec in ("committed", "committed:int", "committed:stop"):
        monkeypatch.setenv(lockmod.FAULT_ENV, spec)
        lockmod.fault_point("committed")
    pid = os.getpid()
    assert sent == [(pid, signal.SIGKILL), (pid, signal.SIGINT), (pid, signal.SIGSTOP)]


# ------------------------------------------------------------------------------ SIGKILL
@pytest.mark.parametrize("point", FAULT_POINTS)
def test_kill_append_at_every_point(kc: KillCampaign, point: str) -> None:
    rec = kc.trial("add", fault=point)
    _assert_survived(rec)
    assert rec["state"] == ("new" if point in COMMITTED_POINTS else "old")


@pytest.mark.parametrize(
    ("op", "point"),
    [
        ("index", "copied"),
        ("index", "renamed"),
        ("delete", "manifest-tmp"),
        ("overwrite", "faiss"),
        ("overwrite", "committed"),
        ("delete", "locked"),
    ],
)
def test_kill_other_operations(kc: KillCampaign, op: str, point: str) -> None:
    _assert_survived(kc.trial(op, fault=point))


@pytest.mark.slow
@pytest.mark.parametrize("point", FAULT_POINTS)
@pytest.mark.parametrize("op", ["index", "delete", "overwrite", "cli-delete"])
def test_kill_every_operation_at_every_point(kc: KillCampaign, op: str, point: str) -> None:
    _assert_survived(kc.trial(op, fault=point))


@pytest.mark.slow  # random moments: whether a kill lands inside the write depends on the machine's speed
def test_random_kills_of_real_cli_delete(kc: KillCampaign) -> None:
    """A handful of SIGKILLs of the real ``tase-search delete`` at random moments inside its write."""
    done = 0
    for _ in range(40):
        rec = kc.trial("cli-delete", when="write")
        if rec is None:
            continue
        _assert_survived(rec)
        done += 1
        if done == 4:
            break
    assert done >= 2, "the delete kept finishing before the kill"


@pytest.mark.slow  # random moments, as above; every named point is killed deterministically above
def test_random_kills_api_writer(kc: KillCampaign) -> None:
    stats = kc.run(4, hooks=False, ops=("add", "overwrite"), start_share=0.0)
    assert stats["kills"]["survived"] == stats["kills"]["tried"] == 4, stats


# ------------------------------------------------------------------------------ Ctrl-C
@pytest.mark.parametrize("point", ["copied", "faiss", "renamed", "manifest-tmp"])
def test_ctrl_c_real_cli_before_commit(kc: KillCampaign, point: str) -> None:
    """Ctrl-C mid-write: exit 130, 'nothing was changed', old index, no temporaries, no traceback."""
    rec = kc.trial("cli-delete", fault=point, sig=signal.SIGINT)
    _assert_survived(rec)
    assert rec["exit"] == 130 and rec["state"] == "old" and rec["left_temporaries"] == 0


def test_ctrl_c_real_cli_after_commit_says_so(kc: KillCampaign) -> None:
    rec = kc.trial("cli-delete", fault="committed", sig=signal.SIGINT)
    _assert_survived(rec)
    assert rec["exit"] == 130 and rec["state"] == "new"


def test_ctrl_c_message_texts(kc: KillCampaign) -> None:
    op = kc.ops["cli-delete"]
    for point, want in (("faiss", "nothing was changed"), ("committed", "after the write was saved")):
        _reset(kc.ix, op.base)
        env = {**kc.env, lockmod.FAULT_ENV: f"{point}:int"}
        p = subprocess.run(op.argv, env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 130
        assert want in p.stderr and "Traceback" not in p.stderr, p.stderr


@pytest.mark.slow
def test_ctrl_c_random_api_writer(kc: KillCampaign) -> None:
    stats = kc.run(0, interrupts=12, hooks=False, ops=("add", "delete", "overwrite", "index"))
    assert stats["interrupts"]["survived"] == stats["interrupts"]["tried"], stats


# ------------------------------------------------------------------------------ real CLI, tiny model
@pytest.mark.slow
def test_random_kills_real_cli_index(tmp_path: Path, tiny_model_dir: Path) -> None:
    """SIGKILL ``tase-search index`` (new, append, --overwrite) and ``delete`` with a real model:
    every named point once per operation is too slow here, so a few named points plus random delays."""
    k = KillCampaign(tmp_path, driver="cli", model_dir=tiny_model_dir, base_docs=150, add_docs=80, seed=3)
    for op, point in [
        ("index", "synced"),
        ("add", "renamed"),
        ("overwrite", "manifest-tmp"),
        ("add", "committed"),
    ]:
        _assert_survived(k.trial(op, fault=point))
    stats = k.run(8, interrupts=4, hooks=False, start_share=0.25)
    assert stats["kills"]["survived"] == stats["kills"]["tried"], stats
    assert stats["interrupts"]["survived"] == stats["interrupts"]["tried"], stats


# ------------------------------------------------------------------------------ disk full
def _enospc(*_a: object, **_k: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _faiss_full(self: object, path: Path) -> None:
    Path(path).write_bytes(b"partial")
    raise RuntimeError(
        "Error in void faiss::write_index(...): Error: 'ret == (size * 4)' failed: write error in "
        f"{path}: 10 != 1280 (No space left on device)"
    )


def _sqlite_full(*_a: object, **_k: object) -> None:
    import sqlite3

    raise sqlite3.OperationalError("database or disk is full")


@pytest.mark.parametrize(
    ("op", "target", "replacement"),
    [
        ("add", "tase_search.store.safeio.write_file", _enospc),  # the checked writer of every new file
        ("add", "tase_search.store.vectors.FaissIndex.save", _faiss_full),  # FAISS write_index
        ("add", "tase_search.store.docs.DocStore.commit", _sqlite_full),  # SQLite commit
        ("add", "tase_search.store.safeio.digest_file", _enospc),  # reading back for checksums
        ("add", "tase_search.store.segwrite.os.rename", _enospc),  # the new segment's rename
        ("add", "tase_search.store.lock.os.replace", _enospc),  # the manifest's rename
        ("add", "tase_search.store.lock.os.fsync", _enospc),  # fsync of the files or manifest
        ("delete", "tase_search.store.segment.write_file", _enospc),  # the deletions file
        ("delete", "tase_search.store.lock.os.fsync", _enospc),  # its fsync, the manifest's
        ("delete", "tase_search.store.lock.os.replace", _enospc),
    ],
)
def test_disk_full_during_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, op: str, target: str, replacement: object
) -> None:
    enc = FakeEncoder()
    ix = tmp_path / "ix"
    Retriever.build(make_docs(30), model=enc, path=ix).close()
    before = snapshot(ix)
    r = Retriever.load(ix, model=enc)
    monkeypatch.setattr(target, replacement)
    with pytest.raises(IndexWriteError, match="no space left on the device.*the index is unchanged"):
        r.add(make_docs(10, prefix="new")) if op == "add" else r.delete(["d1", "d7"])
    monkeypatch.undo()
    assert snapshot(ix) == before
    assert verify_index(ix).ok
    assert leftovers(ix) == []
    assert check_next_write(ix, enc) == []


@pytest.mark.parametrize(
    ("op", "target"),
    [
        ("add", "tase_search.store.segwrite.os.rename"),  # the new segment's rename
        ("delete", "tase_search.store.segment.write_file"),  # the deletions file
    ],
)
def test_permission_error_is_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, op: str, target: str
) -> None:
    enc = FakeEncoder()
    ix = tmp_path / "ix"
    Retriever.build(make_docs(10), model=enc, path=ix).close()

    def denied(*_a: object, **_k: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(ix / "x"))

    monkeypatch.setattr(target, denied)
    r = Retriever.load(ix, model=enc)
    with pytest.raises(IndexWriteError, match="Permission denied.*unchanged"):
        r.delete(["d1"]) if op == "delete" else r.add(make_docs(2, prefix="new"))
    monkeypatch.undo()
    assert len(snapshot(ix) or {}) == 10 and leftovers(ix) == []


def test_disk_full_cli_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from tase_search.cli.app import main

    ix = tmp_path / "ix"
    Retriever.build(make_docs(10), model=FakeEncoder(), path=ix).close()
    monkeypatch.setattr("tase_search.store.segment.write_file", _enospc)  # the deletions file
    res = CliRunner().invoke(main, ["delete", "d1", "--index", str(ix)])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)
    assert "no space left on the device" in res.output and "unchanged" in res.output
    assert len(snapshot(ix) or {}) == 10


@pytest.mark.slow  # mounts a tmpfs and fills it (as root)
def test_disk_full_real_tmpfs(tmp_path: Path) -> None:
    """A 2 MB tmpfs: mounting needs root; skipped cleanly elsewhere."""
    from campaign.resources import disk_full_check

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    res = disk_full_check(tmp_path)
    if res.get("ok") is None:
        pytest.skip(res["skipped"])
    assert res["ok"], res
    assert "no space left" in res["message"]
