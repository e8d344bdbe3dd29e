"""What every write to an index shares, below the write protocols (:mod:`.commit` for a write,
:mod:`.merge` for a merge): the vector index a write fills, the working copy of a format-1 generation,
refusing damage instead of carrying it forward, the committed SQLite file read back, what a failed
write says and what it leaves to remove."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..errors import IndexCorrupt
from . import generation as _gen
from . import layout, safeio
from . import stamps as _stamps
from .docs import DocStore
from .layout import DOCS_FILE
from .lock import fault_point
from .manifest import Manifest
from .segment import Segment
from .vectors import get_backend

T = TypeVar("T")
UNCHANGED = "; the index is unchanged"
_DAMAGED_SUFFIX = "; the index is damaged"


@dataclass
class VectorSlot:
    """The vector index a write is filling and its factory string. A write may swap in another type
    mid-way (an ``auto`` index outgrowing Flat), so the index travels in this holder, never in a local
    that would keep the old one (and a second copy of every vector) alive."""

    vectors: Any
    factory: str


Mutate = Callable[[DocStore, VectorSlot, Manifest], T]


class NothingChanged(Exception):  # noqa: N818 - control flow, never seen by users
    """Raised by a ``mutate`` whose input changed nothing: the temporary generation is dropped instead of
    committing a copy of the old one, and the exception (with ``result``) reaches the caller."""

    def __init__(self, result: Any) -> None:
        super().__init__("nothing changed")
        self.result = result


def remove_unpublished(made: list[Path]) -> str:
    """Remove what an abandoned write made (no manifest names it); a note for the message when some of
    it could not be."""
    left = []
    for p in reversed(made):
        if os.path.islink(p) or os.path.isfile(p):
            with contextlib.suppress(OSError):
                os.unlink(p)
        elif os.path.lexists(p):
            shutil.rmtree(p, ignore_errors=True)
        if os.path.lexists(p):
            left.append(str(p))
    if not left:
        return ""
    return f"; could not remove the unfinished new version {', '.join(left)}: remove it by hand"


def fill(
    index_dir: Path, base: Manifest, old: Manifest | None, tmp: Path, mutate: Mutate[T]
) -> tuple[T, dict[str, int], VectorSlot]:
    """Step 2-3 up to the SQLite commit: the working copy, ``mutate`` in one transaction, the counts."""
    if old is not None:
        carried, docs_trusted = carry_over(index_dir, old, tmp)
        slot = VectorSlot(carried, old.factory)
        del carried
    else:
        docs_trusted = False
        slot = VectorSlot(
            get_backend(base.backend).create(base.factory, base.model.dimension, base.search_params),
            base.factory,
        )
    fault_point("copied")
    store = DocStore(tmp / DOCS_FILE)
    try:
        if old is not None:  # the copy matched its checksum; now what SQLite and the counts say
            check = None if docs_trusted else "quick_check"
            refuse_damage(index_dir, _gen.store_problems(store, old, integrity=check))
        store.begin()
        if store.sparse_stale_reason() is not None:  # an older version wrote, or an old analyser
            store.build_sparse()
        result = mutate(store, slot, base)
        counts = {"tombstones": len(store.tombstones())}
        store.record_sparse()
        counts["documents"], counts["passages"] = store.counts()
        store.set_model_fingerprint(base.model.fingerprint)
        fault_point("ingested")
        store.commit()
        counts["bytes"] = store.file_bytes()
    finally:
        store.rollback()
        store.close()
    return result, counts, slot


def carry_over(index_dir: Path, old: Manifest, tmp: Path) -> tuple[Any, bool]:
    """Copy the current generation's document store into ``tmp`` and load its vectors, each through its
    manifest checksum in the same pass as the copy or load (and its size and type before that), so damage
    makes the write refuse instead of carrying it into a new version that then verifies as good.

    A file stamped as verified and untouched since (:mod:`.stamps`) is copied or loaded without the hash.
    Returns the vectors and whether the document store was such a file (then SQLite's own check is
    skipped too)."""
    try:
        gen_dir = _gen.generation_path(index_dir, old)
        _gen.check_files(gen_dir, old, checksum=False)
        vec = _gen.vectors_file(old)
        name_of = old.generation_dir
        trusted = {
            n
            for n in (DOCS_FILE, vec)
            if _stamps.unchanged(index_dir, name_of, n, str(old.files[n]["sha256"]))
        }
        # a working copy: SQLite changes it and it is synced and read back once committed
        what = f"index file {gen_dir / DOCS_FILE}"
        copied = safeio.copy_file(
            gen_dir / DOCS_FILE, tmp / DOCS_FILE, what, sync=False, hash=DOCS_FILE not in trusted
        )
        if DOCS_FILE not in trusted and copied != _gen.expected(old, DOCS_FILE):
            raise IndexCorrupt(f"{DOCS_FILE}: checksum differs from the manifest (the file is damaged)")
        expect = None if vec in trusted else _gen.expected(old, vec)
        vectors = get_backend(old.backend).load(
            gen_dir / vec, old.factory, old.model.dimension, old.search_params, expect=expect
        )
    except FileNotFoundError:
        raise IndexCorrupt(
            f"cannot write to {index_dir}: the index is damaged: run `tase-search verify` (the generation "
            "or one of its files is missing); nothing was changed"
        ) from None
    except IndexCorrupt as exc:
        refuse_damage(index_dir, [str(exc)])
    problem = _gen.vector_count_problem(vectors.ntotal, old)
    refuse_damage(index_dir, [problem] if problem else [])
    return vectors, DOCS_FILE in trusted


def refuse_damage(index_dir: Path, problems: list[str]) -> None:
    """Raise IndexCorrupt naming the first problem, if any: a write never copies damage forward."""
    if problems:
        why = problems[0].split(_DAMAGED_SUFFIX)[0]
        raise IndexCorrupt(
            f"cannot write to {index_dir}: the index is damaged: run `tase-search verify` ({why}); "
            "nothing was changed, and the damage was not copied into a new version"
        )


def checked_sqlite(path: Path, expected_bytes: int) -> safeio.Digest:
    """fsync the committed SQLite file and read it back: its size must be what SQLite says it wrote."""
    safeio.fsync_file(path)
    digest = safeio.digest_file(path, f"index file {path}")
    if digest.bytes != expected_bytes:
        what = f"the document store on disk has {digest.bytes} bytes, SQLite wrote {expected_bytes}"
        raise OSError(errno.EIO, what, str(path))
    return digest


def write_failure(exc: BaseException) -> str | None:
    """Describe a failed write that is the system's doing (full disk, permissions, I/O), else None.

    The message says the index is unchanged: it is only used before the commit point.
    """
    full = "no space left on the device; free some space (a write needs room for a copy of the index)"
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            what = full
        else:
            what = f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
    elif isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorname", "")
        msg = str(exc).lower()
        if code == "SQLITE_FULL" or "disk is full" in msg:
            what = full
        elif code.startswith(("SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN")) or "i/o" in msg:
            what = f"SQLite could not write ({exc})"
        else:
            return None
    elif isinstance(exc, RuntimeError) and "write error" in str(exc):  # FAISS write_index
        what = full if "No space left" in str(exc) else f"the vector index could not be saved ({exc})"
    else:
        return None
    return what + UNCHANGED


def remove_stale_temporaries(index_dir: Path) -> None:
    """Temporaries left by killed writers (the caller holds the lock, so none is in progress)."""
    for p in layout.temporaries(index_dir):
        if p.name.startswith((layout.TMP_PREFIX, layout.TMP_SEG_PREFIX)):
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


@dataclass
class Opened:
    """An older segment opened for a write (or a merge): its store and what was deleted from it."""

    seg: Segment
    store: DocStore
    gone_keys: np.ndarray
    gone_pids: np.ndarray
    owned: bool = True  # False: the store belongs to the per-process cache (:mod:`.segcache`)

    def close(self) -> None:
        if self.owned:
            self.store.close()
