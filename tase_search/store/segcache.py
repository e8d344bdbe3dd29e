"""The older segments as a write sees them: opened once per process, checked in full only when changed.

Why: a write adds a segment, but it must look into every older one (is an id already stored? which
passages does a delete remove?) and must refuse to build on damage. Opening each segment's SQLite file
and hashing its files on every write would make a write cost what the index holds again. Segments are
immutable, so this module keeps, per process, each segment's read-only document store and its
deletions, keyed by the identity of its files on disk (device, inode, size, modification and change
time: :func:`.stamps.identity`). The damage check follows :mod:`.stamps`: a file whose identity matches a
stamp recorded when it was verified (by this or an earlier process) is trusted; any other is checked in
full (SHA-256 against the manifest, SQLite's ``quick_check``, the rows, the counts, the weights
fingerprint) before the write goes on, and stamped once it passes. So a damaged segment is refused by
the next write, and an untouched one costs a few ``lstat`` calls.

What a stamp cannot see is damage that changes no file metadata (a failing disk): ``tase-search
verify`` checks every segment in full, and loading a small index checks its checksums.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import IndexCorrupt
from . import generation as _gen
from . import segment as _seg
from . import stamps as _stamps
from .docs import DocStore
from .layout import DOCS_FILE
from .manifest import Manifest
from .safeio import digest_file
from .writing import Opened

_LOCK = threading.Lock()


@dataclass
class _Entry:
    """A segment opened by this process: what its files were when opened, its store, its deletions."""

    ident: dict[str, list[int]]
    store: DocStore
    deletes: tuple[str, list[int], np.ndarray, np.ndarray] | None = None  # name, identity, keys, pids


#: (index directory, segment name) -> its entry
_CACHE: dict[tuple[str, str], _Entry] = {}
_NONE = np.zeros(0, np.int64)
#: index directory -> the stamps of the segments its running write checked, saved when it publishes
_PENDING: dict[str, dict[str, dict[str, dict[str, object]]]] = {}


def _key(index_dir: Path, name: str) -> tuple[str, str]:
    return (os.path.abspath(index_dir), name)


def open_checked(index_dir: Path, m: Manifest) -> list[Opened]:
    """Every segment of ``m``, its files checked as described above; IndexCorrupt (a write's refusal,
    naming the first problem) when one is damaged. The stores belong to the cache: closing the returned
    :class:`~.segwrite.Opened` leaves them open."""
    from .writing import refuse_damage

    index_dir = Path(index_dir)
    stamps = _stamps.load_segments(index_dir)
    fresh: dict[str, dict[str, dict[str, object]]] = {}
    out: list[Opened] = []
    segs = _seg.segments_of(m)
    totals = (sum(s.live_documents for s in segs), sum(s.live_rows for s in segs))
    if totals != (m.documents, m.rows):
        refuse_damage(index_dir, [f"the manifest's totals {m.documents, m.rows} differ from its segments'"])
    try:
        for s in segs:
            path = _seg.segment_path(index_dir, s)
            view = s.view(m)
            _gen.check_files(path, view, checksum=False)  # listed, regular files of the listed sizes
            ident = {n: _stamps.identity(path / n) for n in sorted(s.files)}
            with _LOCK:
                entry = _CACHE.get(_key(index_dir, s.name))
            if entry is not None and entry.ident != ident:
                _drop(index_dir, s.name)
                entry = None
            if entry is None:
                entry = _open(index_dir, path, s, view, ident, stamps, refuse_damage)
            fresh[s.name] = _stamp(s, ident)
            keys, pids = _deletes(path, s, entry)
            out.append(Opened(s, entry.store, keys, pids, owned=False))
    except FileNotFoundError:
        raise IndexCorrupt(
            f"cannot write to {index_dir}: the index is damaged: run `tase-search verify` (a segment or one "
            "of its files is missing); nothing was changed"
        ) from None
    except IndexCorrupt as exc:
        if str(exc).startswith("cannot write to"):
            raise
        refuse_damage(index_dir, [str(exc)])
    with _LOCK:  # saved with the new segment's stamps once the write is published (:func:`stamp_new`),
        _PENDING[os.path.abspath(index_dir)] = fresh  # so a failed write leaves every index file as it was
    return out


def _open(
    index_dir: Path,
    path: Path,
    s: _seg.Segment,
    view: Manifest,
    ident: dict[str, list[int]],
    stamps: dict[str, dict[str, dict[str, object]]],
    refuse_damage: object,
) -> _Entry:
    """Open a segment's store: in full (checksums, SQLite's check, rows, counts) unless every file is
    stamped as verified and unchanged."""
    untrusted = [
        n
        for n in sorted(s.files)
        if not _stamps.trusted(stamps, s.name, n, str(s.files[n]["sha256"]), ident[n])
    ]
    if stamps.get(s.name, {}).get(_COUNTS) != _counts(s):  # the entry's counts, checked against SQLite
        untrusted = untrusted or [DOCS_FILE]
    for n in untrusted:
        if digest_file(path / n, f"index file {path / n}").sha256 != s.files[n]["sha256"]:
            raise IndexCorrupt(f"{path}: {n}: checksum differs from the manifest (the file is damaged)")
    store = DocStore(path / DOCS_FILE, readonly=True)
    try:
        problems = _gen.store_problems(store, view, integrity="quick_check" if untrusted else None)
        if problems:
            raise IndexCorrupt(f"{path}: {problems[0]}")
    except BaseException:
        store.close()
        raise
    entry = _Entry(ident, store)
    with _LOCK:
        _CACHE[_key(index_dir, s.name)] = entry
    return entry


_COUNTS = "counts"  # not a file name: the segment entry's counts the stamped files were checked with


def _counts(s: _seg.Segment) -> dict[str, object]:
    return {"sha256": "", "identity": [s.documents, s.rows, s.tombstones]}


def _stamp(s: _seg.Segment, ident: dict[str, list[int]]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {_COUNTS: _counts(s)}
    out.update({n: {"sha256": s.files[n]["sha256"], "identity": ident[n]} for n in ident})
    return out


def _deletes(path: Path, s: _seg.Segment, entry: _Entry) -> tuple[np.ndarray, np.ndarray]:
    """The segment's deleted document keys and passage ids, read through the manifest's checksum once per
    deletions file (and again if the file changed on disk)."""
    if s.deletes is None:
        return _NONE, _NONE
    file = path / s.deletes.name
    ident = _stamps.identity(file)
    got = entry.deletes
    if got is not None and got[0] == s.deletes.name and got[1] == ident:
        return got[2], got[3]
    keys, pids = _seg.read_deletes(file, _seg.deletes_digest(s))
    if (len(keys), len(pids)) != (s.deletes.documents, s.deletes.rows):
        raise IndexCorrupt(f"deletions file of {s.name}: its counts differ from the manifest")
    entry.deletes = (s.deletes.name, ident, keys, pids)
    return keys, pids


def stamp_new(index_dir: Path, m: Manifest, names: list[str]) -> None:
    """Record the files of the segments ``names`` (just written and read back by this writer) as
    verified, and forget cached segments ``m`` no longer lists."""
    index_dir = Path(index_dir)
    current = {s.name: s for s in _seg.segments_of(m)}
    with _LOCK:
        pending = _PENDING.pop(os.path.abspath(index_dir), None)
    known = _stamps.load_segments(index_dir) if pending is None else pending
    entries = {k: v for k, v in known.items() if k in current}
    for name in names:
        s = current.get(name)
        if s is None:
            continue
        try:
            entries[name] = _stamp(s, {n: _stamps.identity(index_dir / name / n) for n in s.files})
        except OSError:
            entries.pop(name, None)
    _stamps.save_segments(index_dir, entries)
    with _LOCK:
        gone = [k for k in _CACHE if k[0] == os.path.abspath(index_dir) and k[1] not in current]
    for _, name in gone:
        _drop(index_dir, name)


def _drop(index_dir: Path, name: str) -> None:
    with _LOCK:
        entry = _CACHE.pop(_key(index_dir, name), None)
    if entry is not None:
        entry.store.close()


def forget(index_dir: Path) -> None:
    """Close every cached segment of ``index_dir`` (an index replaced or removed)."""
    with _LOCK:
        names = [k[1] for k in _CACHE if k[0] == os.path.abspath(index_dir)]
    for name in names:
        _drop(index_dir, name)


__all__ = ["forget", "open_checked", "stamp_new"]
