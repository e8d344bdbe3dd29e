"""The copy-on-write commit: how every change to an index becomes visible all at once, or not at all.

A write, under the writer lock (:class:`~.lock.WriterLock`):

1. removes what killed writers left (``locked``);
2. copies the current generation's document store into a temporary generation and loads its vectors,
   each checked against the manifest in the same pass, so damage is refused, never carried forward
   (``copied``);
3. runs the caller's ``mutate(store, slot, base)`` inside one SQLite transaction (``ingested``),
   commits SQLite (``sqlite``), saves the vectors, read back (``faiss``), fsyncs (``synced``);
4. renames the temporary directory to ``gen-NNNNNN`` (``renamed``) and atomically replaces
   ``manifest.json`` (``manifest-tmp``, then ``committed``): the commit point;
5. removes generations older than the previous one (``cleaned``).

The names in parentheses are the :data:`~.lock.FAULT_POINTS` the crash tests stop at. Before the commit
point a failure (a kill, Ctrl-C, a full disk) leaves the previous index as it was, and the temporary
generation is removed by this writer or the next; after it, the new generation is what readers see.

What a write does to the rows is the caller's business: :func:`commit` knows nothing of encoders,
deduplication or index types. ``mutate`` gets the working :class:`~.docs.DocStore` (in its transaction)
and a :class:`VectorSlot` to fill; whatever vector index is in the slot when it returns is saved, so a
caller may swap in another index type. To commit vectors computed elsewhere (another process, a cluster),
call :func:`commit` with a ``mutate`` that inserts their documents and adds their vectors
(:func:`tase_search.ingest.add_encoded` does, with the usual deduplication).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from ..errors import IndexCorrupt, IndexExists, IndexWriteError, InputError, TaseSearchError
from . import generation as _gen
from . import layout, safeio
from . import segcache as _segcache
from . import segment as _seg
from . import segwrite as _segwrite
from . import stamps as _stamps
from .docs import DocStore
from .layout import DOCS_FILE, LOCK_NAME
from .lock import WriterLock, fault_point
from .manifest import Manifest, read_existing, read_generation, read_manifest_safe, write_manifest
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


def commit(
    index_dir: Path,
    mutate: Mutate[T],
    *,
    new: Manifest | None = None,
    check: Callable[[Manifest], None] | None = None,
    on_commit: Callable[[Manifest], None] | None = None,
) -> T:
    """Apply ``mutate`` to a copy of the current generation and publish it as the next; its result.

    ``new``: the manifest of a first build (an existing index there is replaced; its generation numbers
    keep increasing); otherwise the current manifest is read under the lock and ``check(current)`` may
    refuse it (an encoder of other weights). ``on_commit(manifest)`` hears of the new manifest as soon as
    it is visible, also when an error after the commit point is then raised.
    """
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with WriterLock(index_dir):
        remove_stale_temporaries(index_dir)
        fault_point("locked")
        old = None if new is not None else read_existing(index_dir)
        base = new if new is not None else old
        assert base is not None
        if old is not None and check is not None:
            check(old)
        if new is not None and layout.manifest_path(index_dir).exists():
            base = _bump_past(base, read_manifest_safe(index_dir))
        manifest, (result, sparse) = _publish(index_dir, base, old, mutate, on_commit)
        _segcache.stamp_new(index_dir, manifest, _new_segments(manifest, old))
        fault_point("committed")
        if on_commit is not None:
            on_commit(manifest)
        _segwrite.cleanup(index_dir, [manifest, old])
        fault_point("cleaned")
        from .merge import after_write

        after_write(index_dir, manifest, on_commit, sparse=sparse)
    return result


def _publish(
    index_dir: Path,
    base: Manifest,
    old: Manifest | None,
    mutate: Mutate[T],
    on_commit: Callable[[Manifest], None] | None,
) -> tuple[Manifest, tuple[T, bool]]:
    """Steps 2-4: the new segment and deletions files (:mod:`.segwrite`), then the manifest replaced;
    ``mutate``'s result and whether the older segments need a keyword part (a merge gives it)."""
    made: list[Path] = []
    gen = base.generation + 1
    sparse: list[bool] = []
    published = False
    try:
        backend = get_backend(base.backend)
        manifest, result, made = _segwrite.write_segment(
            index_dir,
            base,
            old,
            mutate,
            lambda factory: backend.create(factory, base.model.dimension, ""),
            made,
            sparse,
        )
        published = True
        write_manifest(index_dir, manifest)  # the commit point
    except BaseException as exc:
        if published and read_generation(index_dir) == gen:
            # the manifest was replaced before the error (syncing its directory failed, or Ctrl-C came just
            # then): the new version is what readers see, so it stays
            if on_commit is not None:
                on_commit(manifest)
            why = write_failure(exc)
            if why is not None:
                raise IndexWriteError(
                    f"{index_dir} holds the new version (generation {gen}), but the write did not finish "
                    f"cleanly: {why.removesuffix(UNCHANGED)}"
                ) from exc
            raise
        left = remove_unpublished(made)
        why = None if isinstance(exc, TaseSearchError) else write_failure(exc)
        if why is not None:
            still = f" (generation {old.generation} is still the current one)" if old is not None else ""
            raise IndexWriteError(
                f"could not write the new version of {index_dir}: {why}{still}{left}"
            ) from exc
        raise
    return manifest, (result, bool(sparse and sparse[0]))


def _new_segments(m: Manifest, old: Manifest | None) -> list[str]:
    """The segments of ``m`` this write made (and read back): those ``old`` did not list."""
    before = {s.name for s in _seg.segments_of(old)} if old is not None else set()
    return [s.name for s in _seg.segments_of(m) if s.name not in before]


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


def _fill(
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


def _checked_sqlite(path: Path, expected_bytes: int) -> safeio.Digest:
    """fsync the committed SQLite file and read it back: its size must be what SQLite says it wrote."""
    safeio.fsync_file(path)
    digest = safeio.digest_file(path, f"index file {path}")
    if digest.bytes != expected_bytes:
        what = f"the document store on disk has {digest.bytes} bytes, SQLite wrote {expected_bytes}"
        raise OSError(errno.EIO, what, str(path))
    return digest


def _bump_past(base: Manifest, existing: Manifest | None) -> Manifest:
    """A first build over ``existing``: generation and segment numbers keep increasing (readers of the
    replaced index may still open its segments)."""
    if existing is None:
        return base
    counters = {"next_segment": max(1, int(existing.counters.get("next_segment", 1)))}
    return replace(base, generation=max(base.generation, existing.generation), counters=counters)


def _remove_new_generation(tmp: Path, final: Path | None) -> str:
    """Remove the unpublished new generation; a note for the message when some of it could not be."""
    left = []
    for d in (tmp, final):
        if d is not None and os.path.lexists(d):
            shutil.rmtree(d, ignore_errors=True)
            if os.path.lexists(d):
                left.append(str(d))
    if not left:
        return ""
    return f"; could not remove the unfinished new version {', '.join(left)}: remove it by hand"


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


def check_new_index(index_dir: Path, *, overwrite: bool) -> None:
    """Refuse to build where an index is (unless ``overwrite``) or where unrelated files are."""
    refuse_foreign(index_dir)
    if layout.manifest_path(index_dir).exists() and not overwrite:
        raise IndexExists(
            f"an index already exists at {index_dir}; add to it with Retriever.load(...).add(...) "
            "(CLI: tase-search index appends), or pass overwrite=True (--overwrite) to replace it"
        )


def refuse_foreign(index_dir: Path) -> None:
    """Refuse to turn a directory with unrelated files (a typo'd --index ~/Documents) into an index."""
    if not index_dir.exists():
        return
    if not index_dir.is_dir():
        raise InputError(f"{index_dir} exists and is not a directory; choose another --index")
    foreign = layout.foreign_entries(index_dir)
    if foreign:
        raise InputError(
            f"{index_dir} is not empty and is not a tase-search index (it holds {', '.join(foreign[:3])}); "
            "choose a new directory or an index name"
        )


def remove_unborn(index_dir: Path) -> None:
    """After a failed first build: remove the index directory it created, when it holds nothing but the
    writer's lock file (another writer's files, or one holding the lock now, are left alone)."""
    try:
        if {p.name for p in index_dir.iterdir()} - {LOCK_NAME}:
            return
        with WriterLock(index_dir):
            (index_dir / LOCK_NAME).unlink(missing_ok=True)
        index_dir.rmdir()
    except (OSError, TaseSearchError):  # locked by another writer, or not ours to remove
        pass
