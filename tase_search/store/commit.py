"""The commit: how every change to an index becomes visible all at once, or not at all.

A write, under the writer lock (:class:`~.lock.WriterLock`):

1. removes what killed writers left (``locked``);
2. opens the older segments and reads their deletions through their checksums, so damage is refused,
   never carried forward (``copied``; a format-1 generation is copied into a segment here);
3. runs the caller's ``mutate(store, slot, base)`` inside one SQLite transaction of a new segment
   (``ingested``), commits SQLite (``sqlite``), saves the vectors, read back (``faiss``), writes the
   deletions files and fsyncs (``synced``);
4. renames the temporary directory to ``seg-NNNNNN`` (``renamed``) and atomically replaces
   ``manifest.json`` (``manifest-tmp``, then ``committed``): the commit point;
5. removes what no kept manifest names (``cleaned``), then lets the merge policy (:mod:`.merge`)
   combine small segments, each merge a write of its own.

The names in parentheses are the :data:`~.lock.FAULT_POINTS` the crash tests stop at. Before the commit
point a failure (a kill, Ctrl-C, a full disk) leaves the previous index as it was, and the temporary
segment is removed by this writer or the next; after it, the new segment is what readers see.

What a write does to the rows is the caller's business: :func:`commit` knows nothing of encoders,
deduplication or index types. ``mutate`` gets the new segment's :class:`~.segwrite.SegmentStore` (in
its transaction) and a :class:`~.writing.VectorSlot` to fill; whatever vector index is in the slot when
it returns is saved, so a caller may swap in another index type. To commit vectors computed elsewhere
(another process, a cluster), call :func:`commit` with a ``mutate`` that inserts their documents and
adds their vectors (:func:`tase_search.documents.ingest.add_encoded` does, with the usual
deduplication).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from ..errors import IndexExists, IndexWriteError, InputError, TaseSearchError
from . import layout
from . import segcache as _segcache
from . import segment as _seg
from . import segwrite as _segwrite
from .layout import LOCK_NAME
from .lock import WriterLock, fault_point
from .manifest import Manifest, read_existing, read_generation, read_manifest_safe, write_manifest
from .vectors import get_backend
from .writing import (  # NothingChanged, VectorSlot: what a mutate raises and fills, named here too
    UNCHANGED,
    Mutate,
    NothingChanged,
    VectorSlot,
    remove_stale_temporaries,
    remove_unpublished,
    write_failure,
)

T = TypeVar("T")


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


__all__ = [
    "Mutate",
    "NothingChanged",
    "VectorSlot",
    "check_new_index",
    "commit",
    "refuse_foreign",
    "remove_unborn",
    "write_failure",
]
