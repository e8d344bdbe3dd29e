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

from campaign.common import fake_encoder, leftovers, make_docs, snapshot


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
