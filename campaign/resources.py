"""Disk full during a write: a clear error, the old index intact, nothing left behind.

:func:`disk_full_check` mounts a small tmpfs (root only; skipped otherwise), builds an index in it,
then appends more than fits. The append must fail with ``IndexWriteError`` ("no space left on the
device ... the index is unchanged"), the index must still be exactly the old one and verify, no
temporary generation may remain, and a small append must then succeed.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from campaign.common import check_next_write, fake_encoder, leftovers, make_docs, snapshot


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "2m") -> Iterator[Path | None]:
    """A tmpfs of ``size`` mounted at ``where``; yields None when mounting is not permitted."""
    where.mkdir(parents=True, exist_ok=True)
    try:
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        yield None
        return
    if r.returncode != 0:
        yield None
        return
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def fill_and_check(ix: Path, *, big_docs: int = 1500, big_chars: int = 3000) -> dict[str, Any]:
    """``ix`` is an index on a small filesystem: overfill it with one append and check the outcome."""
    from tase_search.errors import IndexWriteError
    from tase_search.retriever import Retriever
    from tase_search.store.verify import verify_index

    enc = fake_encoder()
    before = snapshot(ix)
    problems: list[str] = []
    message = ""
    try:
        with Retriever.load(ix, model=enc) as r:
            r.add(
                {"id": f"big{i}", "text": f"belge {i} " + "futbol maç " * (big_chars // 11)}
                for i in range(big_docs)
            )
        problems.append("the oversized append did not fail")
    except IndexWriteError as exc:
        message = str(exc)
        if "no space left" not in message:
            problems.append(f"unclear message: {message}")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"not a clean error: {type(exc).__name__}: {exc}")
    if snapshot(ix) != before:
        problems.append("the index changed")
    rep = verify_index(ix)
    if not rep.ok:
        problems.extend(rep.problems)
    if leftovers(ix):
        problems.append(f"temporaries left: {leftovers(ix)}")
    try:
        with Retriever.load(ix, model=enc) as r:
            r.add(make_docs(3, prefix="after"))
            if len(r.search("futbol", k=3)) != 3:
                problems.append("search after the failed append returned too few hits")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"a small append after the failure failed: {exc!r}")
    return {"ok": not problems, "message": message, "problems": problems}


def disk_full_check(work: Path) -> dict[str, Any]:
    from tase_search.retriever import Retriever

    mnt = Path(work) / "tmpfs"
    with small_tmpfs(mnt) as fs:
        if fs is None:
            return {"ok": None, "skipped": "mounting a tmpfs is not permitted here"}
        ix = fs / "ix"
        Retriever.build(make_docs(100, prefix="f"), model=fake_encoder(), path=ix).close()
        res = fill_and_check(ix)
        shutil.rmtree(ix, ignore_errors=True)
        return res


def disk_full_sweep(work: Path, *, steps: int = 40, step: int = 4096, size: str = "8m") -> dict[str, Any]:
    """Appends on a real small filesystem with the free space set, 4 KiB apart, around what the append
    needs (found by bisection first): every trial must leave the old index byte-identical with nothing
    left behind, or a new one that verifies; after a failure the next write must succeed.

    One tmpfs (root only; skipped otherwise) holds the index and a filler file sized so that exactly the
    wanted space is free.
    """
    import os

    from campaign.hostile import index_bytes, restore
    from tase_search.errors import IndexWriteError
    from tase_search.retriever import Retriever
    from tase_search.store.verify import verify_index

    enc = fake_encoder()
    mnt = Path(work) / "tmpfs-sweep"
    with small_tmpfs(mnt, size) as fs:
        if fs is None:
            return {"ok": None, "skipped": "mounting a tmpfs is not permitted here"}
        ix, filler = fs / "ix", fs / "filler"
        Retriever.build(make_docs(100, prefix="f"), model=enc, path=ix).close()
        pristine = index_bytes(ix)
        new_docs = make_docs(60, prefix="n", seed=5)

        def trial(free: int) -> dict[str, Any]:
            restore(ix, pristine)
            st = os.statvfs(fs)
            fill = st.f_bavail * st.f_frsize - free
            if fill > 0:
                with open(filler, "wb") as fh:
                    os.posix_fallocate(fh.fileno(), 0, fill)
            problems: list[str] = []
            try:
                with Retriever.load(ix, model=enc) as r:
                    r.add(new_docs)
                state = "new"
            except IndexWriteError as exc:
                state = "old"
                if "no space left" not in str(exc) or "unchanged" not in str(exc):
                    problems.append(f"unclear message: {exc}")
            except Exception as exc:  # noqa: BLE001
                state = "error"
                problems.append(f"not a clean error: {type(exc).__name__}: {exc}")
            finally:
                filler.unlink(missing_ok=True)
            gens = sorted(p.name for p in ix.iterdir() if p.name.startswith(("gen-", "seg-", ".tmp-")))
            if state == "old":
                if index_bytes(ix) != pristine:
                    problems.append("the old index is not byte-identical")
                if gens != ["seg-000001"]:
                    problems.append(f"generations left: {gens}")
                problems.extend(check_next_write(ix, enc))
            elif state == "new":
                rep = verify_index(ix)
                problems.extend(rep.problems)
                if leftovers(ix):
                    problems.append(f"temporaries left: {leftovers(ix)}")
            return {"free": free, "state": state, "problems": problems}

        lo, hi = 0, 4 << 20  # free bytes: the append fails at lo and succeeds at hi
        if trial(hi)["state"] != "new":
            return {"ok": False, "problems": [f"the append fails even with {hi} bytes free"]}
        while hi - lo > step:
            mid = (lo + hi) // 2 // step * step
            if trial(mid)["state"] == "new":
                hi = mid
            else:
                lo = mid
        results = [trial(max(0, hi + (i - steps // 2) * step)) for i in range(steps)]
        shutil.rmtree(ix, ignore_errors=True)
    bad = [r for r in results if r["problems"] or r["state"] == "error"]
    return {
        "ok": not bad,
        "threshold_free_bytes": hi,
        "tried": len(results),
        "step_bytes": step,
        "old": sum(r["state"] == "old" for r in results),
        "new": sum(r["state"] == "new" for r in results),
        "problems": [f"{r['free']} bytes free: {'; '.join(r['problems'])}" for r in bad][:10],
    }
