"""Stamps of verified generation files: what lets a write skip re-hashing files nobody touched.

Why: a write checks the generation it copies against the manifest's checksums (so damage is never
carried forward), and hashing a large index costs about a fifth of a write (bench/write_check.py:
0.3 s of SHA-256 and 0.1 s of SQLite ``quick_check`` on a 2 s delete at 100k rows). A writer has just
read back every file it published, so it records, per file, the checksum it verified and the file's
identity on disk: device, inode, size, modification and change time (``.verified.json`` in the index).
The next write trusts a file whose identity is unchanged and checks the rest in full. Any edit, copy,
replacement or ``touch`` changes the change time (which no user can set back), so edits are always
caught; what a stamp cannot see is media damage that changes no metadata, which ``tase-search verify``
(and the load-time checksum of small indexes) still finds.

The stamp file is only a cache: unreadable, stale or absent, it is ignored, and failing to write it
never fails a write.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from .layout import STAMP_NAME, stamp_temporary
from .safeio import read_bytes, write_bytes

_MAX_BYTES = 64 << 10


def identity(path: Path) -> list[int]:
    """What changes whenever the file's content could have: device, inode, size, mtime, ctime."""
    st = os.lstat(path)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def record(index_dir: Path, generation_dir: str, checksums: dict[str, str]) -> None:
    """Remember that the files of ``generation_dir`` were just verified to hold ``checksums``."""
    gen = Path(index_dir) / generation_dir
    tmp = stamp_temporary(index_dir)
    try:
        files = {name: {"sha256": sha, "identity": identity(gen / name)} for name, sha in checksums.items()}
        tmp.unlink(missing_ok=True)
        write_bytes(tmp, json.dumps({"generation": generation_dir, "files": files}, sort_keys=True).encode())
        os.replace(tmp, Path(index_dir) / STAMP_NAME)
    except (OSError, ValueError):
        forget(index_dir)  # only a cache: the next write checks in full
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def unchanged(index_dir: Path, generation_dir: str, name: str, sha256: str) -> bool:
    """Whether ``name`` of ``generation_dir`` is, by its identity on disk, the file verified to hold
    ``sha256`` (the manifest's checksum)."""
    try:
        raw = json.loads(read_bytes(Path(index_dir) / STAMP_NAME, STAMP_NAME, _MAX_BYTES))
        entry = raw["files"][name]
        return (
            raw["generation"] == generation_dir
            and entry["sha256"] == sha256
            and entry["identity"] == identity(Path(index_dir) / generation_dir / name)
        )
    except Exception:  # noqa: BLE001 - a missing, stale or damaged cache means: check in full
        return False


def forget(index_dir: Path) -> None:
    with contextlib.suppress(OSError):
        (Path(index_dir) / STAMP_NAME).unlink(missing_ok=True)


# ------------------------------------------------------------------ segments (format 2)
def load_segments(index_dir: Path) -> dict[str, dict[str, dict[str, object]]]:
    """Segment name -> file name -> ``{"sha256", "identity"}`` of the files verified so far; empty when
    the stamp file is missing, unreadable or of the format-1 shape (then every file is checked in full)."""
    try:
        raw = json.loads(read_bytes(Path(index_dir) / STAMP_NAME, STAMP_NAME, _MAX_SEGMENT_BYTES))
        segs = raw["segments"]
        return segs if isinstance(segs, dict) else {}
    except Exception:  # noqa: BLE001 - a missing, stale or damaged cache means: check in full
        return {}


def trusted(
    entries: dict[str, dict[str, dict[str, object]]], segment: str, name: str, sha256: str, ident: list[int]
) -> bool:
    """Whether ``entries`` say file ``name`` of ``segment`` was verified to hold ``sha256`` and is, by
    its identity on disk, still that file."""
    entry = entries.get(segment, {}).get(name) if isinstance(entries.get(segment), dict) else None
    return isinstance(entry, dict) and entry.get("sha256") == sha256 and entry.get("identity") == ident


def save_segments(index_dir: Path, entries: dict[str, dict[str, dict[str, object]]]) -> None:
    """Replace the stamp file with ``entries``. Not fsynced: it is a cache, and after a crash a stale or
    empty one only makes the next write check the files in full (an entry is trusted only while the
    file's identity is unchanged, so an old entry cannot vouch for a changed file)."""
    tmp = stamp_temporary(index_dir)
    data = json.dumps({"segments": entries}, sort_keys=True).encode()
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, Path(index_dir) / STAMP_NAME)
    except OSError:
        forget(index_dir)
        with contextlib.suppress(OSError):
            os.unlink(tmp)


_MAX_SEGMENT_BYTES = 16 << 20
