"""The read side: one published generation opened for searching, checked on the way in.

Loading checks what is cheap always (the manifest's files are the generation's own regular files, their
sizes, the vector count, the weights the documents were indexed with) and, for a small index, what
costs a full read (checksums, SQLite's counts against the manifest): the same checks as ``tase-search
verify`` (:mod:`.generation`), so a damaged index fails loudly instead of answering from bad state.

A writer may publish newer generations and remove the one being opened: :func:`open_current` then
retries with the newest manifest; a failure while the manifest still names the same generation is real
damage and is raised.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorrupt
from . import generation as _gen
from . import segment as _seg
from . import segwrite as _sw
from .docs import DocStore
from .layout import DOCS_FILE
from .manifest import Manifest, read_existing
from .vectors import get_backend

#: Loading checks file sizes and the vector count always; when the index files are at most this big
#: together it also recomputes their SHA-256 and compares SQLite's counts with the manifest (under
#: 0.1 s). Larger indexes skip those two (they would add seconds): ``tase-search verify`` does them.
VERIFY_ON_LOAD_BYTES = 64 << 20
_RETRIES = 10


@dataclass
class Snapshot:
    """An opened generation: its vectors, its document store, and what searching it needs to know."""

    manifest: Manifest
    vectors: Any
    docs: DocStore
    deny: np.ndarray | None  # tombstoned passage ids, left out of every vector search
    sparse_stale: str | None  # why the keyword part cannot be searched (None: it can)

    def close(self) -> None:
        self.docs.close()


def open_current(
    index_dir: Path, m: Manifest, *, mmap: bool = False, on_newer: Callable[[Manifest], None] | None = None
) -> Snapshot:
    """Open the generation ``m`` names, or a newer one if a writer removed it meanwhile (``on_newer``
    hears of each newer manifest before it is opened, and may refuse it by raising)."""
    for attempt in range(_RETRIES):
        try:
            return open_generation(index_dir, m, mmap=mmap)
        except (FileNotFoundError, IndexCorrupt) as exc:
            newest = read_existing(index_dir)
            if newest.generation == m.generation or attempt == _RETRIES - 1:
                if isinstance(exc, IndexCorrupt):
                    raise
                raise IndexCorrupt(
                    f"generation {Path(index_dir) / m.generation_dir} named by the manifest is missing; the "
                    "index is damaged (run `tase-search verify`)"
                ) from None
            m = newest
            if on_newer is not None:
                on_newer(m)
    raise AssertionError("unreachable")  # pragma: no cover


def open_generation(index_dir: Path, m: Manifest, *, mmap: bool = False) -> Snapshot:
    """Open and check the files of the generation ``m`` names. FileNotFoundError when it vanished (a
    writer may just have removed it); IndexCorrupt naming the first problem when it is damaged."""
    if not _seg.is_legacy(m):
        return open_segments(index_dir, m, mmap=mmap)
    gen_dir = _gen.generation_path(index_dir, m)
    small = sum(int(i["bytes"]) for i in m.files.values()) <= VERIFY_ON_LOAD_BYTES
    # the listed files, confined to the generation, sizes always; small index: checksums (milliseconds)
    _gen.check_files(gen_dir, m, checksum=small)
    docs = DocStore(gen_dir / DOCS_FILE, readonly=True)
    try:
        _refuse(index_dir, _gen.fingerprint_problem(docs, m))
        vectors = get_backend(m.backend).load(
            gen_dir / _gen.vectors_file(m), m.factory, m.model.dimension, m.search_params, mmap=mmap
        )
        _refuse(index_dir, _gen.vector_count_problem(vectors.ntotal, m))
        if small:
            _refuse(index_dir, next(iter(_gen.count_problems(docs, m)), None))
        tomb = docs.tombstones()
        stale = docs.sparse_stale_reason(m.rows) if docs.sparse else "it has no keyword (sparse) part"
    except BaseException:
        docs.close()
        raise
    deny = np.asarray(tomb, dtype=np.int64) if tomb else None
    return Snapshot(m, vectors, docs, deny, stale)


def open_segments(index_dir: Path, m: Manifest, *, mmap: bool = False) -> Snapshot:
    """Open every segment ``m`` lists, each checked as a format-1 generation is (sizes and the vector
    count always; checksums and SQLite's counts for a small index). One segment without deletions is
    searched directly; several, through :mod:`.multi`."""
    from .multi import MultiDocs, MultiVectors

    segs = _seg.segments_of(m)
    totals = (sum(s.live_documents for s in segs), sum(s.live_rows for s in segs))
    if totals != (m.documents, m.rows):
        _refuse(index_dir, f"the manifest's totals {m.documents, m.rows} differ from its segments' {totals}")
    small = sum(int(i["bytes"]) for s in segs for i in s.files.values()) <= VERIFY_ON_LOAD_BYTES
    parts = _sw.open_segments(index_dir, m, checksum=small)
    try:
        indexes = []
        for o in parts:
            view = o.seg.view(m)
            path = _seg.segment_path(index_dir, o.seg) / _gen.vectors_file(view)
            vec = get_backend(m.backend).load(
                path, view.factory, m.model.dimension, view.search_params, mmap=mmap
            )
            _refuse(index_dir, _gen.vector_count_problem(vec.ntotal, view))
            if small:
                _refuse(index_dir, next(iter(_gen.count_problems(o.store, view)), None))
            indexes.append(vec)
        stale = None
        for o in parts:
            stale = stale or (
                o.store.sparse_stale_reason(o.seg.rows)
                if o.store.sparse
                else "it has no keyword (sparse) part"
            )
        if len(parts) == 1 and parts[0].seg.deletes is None:
            tomb = parts[0].store.tombstones()
            deny = np.asarray(tomb, dtype=np.int64) if tomb else None
            return Snapshot(m, indexes[0], parts[0].store, deny, stale)
        if not parts:
            docs_none = _empty_store(index_dir, m)
            return Snapshot(
                m, get_backend(m.backend).create("Flat", m.model.dimension, ""), docs_none, None, stale
            )
        vectors = MultiVectors(parts, indexes, m.model.dimension, m.factory)
        return Snapshot(m, vectors, MultiDocs(parts), None, stale)  # type: ignore[arg-type]
    except BaseException:
        for o in parts:
            o.close()
        raise


def _empty_store(index_dir: Path, m: Manifest) -> Any:
    """A segmented index with no segment (every document deleted and merged away): an empty store in
    memory answers its reads."""
    return DocStore(Path(":memory:"))


def open_documents(index_dir: Path, m: Manifest) -> Any:
    """The document store of the index ``m`` describes, read-only, for listing documents without the
    vectors: a :class:`~.docs.DocStore`, or a :class:`~.multi.MultiDocs` over its segments. Close it."""
    if _seg.is_legacy(m):
        return DocStore(_gen.generation_path(index_dir, m) / DOCS_FILE, readonly=True)
    from .multi import MultiDocs

    parts = _sw.open_segments(index_dir, m)
    if not parts:
        return _empty_store(index_dir, m)
    return MultiDocs(parts)


def describe(index_dir: Path, m: Manifest) -> dict[str, Any]:
    """What the index holds, from its manifest and document store (no model, no vectors). Sizes count the
    generation's own regular files (never a link's target); a damaged document store leaves ``sources``
    empty (``verify`` says why)."""
    size = 0
    sources: list[tuple[str, int]] = []
    sparse = "unknown (the document store could not be read)"
    segs = _seg.segments_of(m)
    try:
        for s in segs:
            # the checked path only: a segment that is a link, or lies outside the index, is not read
            seg_dir = _seg.segment_path(index_dir, s)
            size += sum(st.st_size for p in seg_dir.iterdir() if stat.S_ISREG((st := p.lstat()).st_mode))
            if not stat.S_ISREG(os.lstat(seg_dir / DOCS_FILE).st_mode):
                raise IndexCorrupt(f"{seg_dir / DOCS_FILE} is not a regular file")
        found: dict[str, int] = {}
        reasons: list[str | None] = []
        for s in segs:
            store = DocStore(_seg.segment_path(index_dir, s) / DOCS_FILE, readonly=True)
            try:
                for name, n in store.sources():
                    found[name] = found.get(name, 0) + n
                reasons.append(store.sparse_stale_reason(s.rows) if store.sparse else "none")
            finally:
                store.close()
        sparse = next((r for r in reasons if r is not None), "current")
        sources = sorted(found.items(), key=lambda kv: -kv[1])[:20]
    except (OSError, IndexCorrupt):
        pass
    return {
        "path": str(index_dir),
        "documents": m.documents,
        "passages": m.rows,
        "tombstones": m.tombstones,
        "model": m.model.id,
        "model_fingerprint": m.model.fingerprint,
        "dimension": m.model.dimension,
        "max_seq_length": m.model.max_seq_length,
        "metric": m.metric,
        "normalized": m.model.normalized,
        "backend": m.backend,
        "factory": m.factory,
        "index_type": m.index_type,
        "search_params": m.search_params,
        "generation": m.generation,
        "bytes_on_disk": size,
        "created": m.created,
        "updated": m.updated,
        "format_version": m.format_version,
        "versions": m.versions,
        "sources": dict(sources),
        "sparse": sparse,
        "segments": len(segs),
        "deleted_documents": sum(s.documents - s.live_documents for s in segs),
    }


def _refuse(index_dir: Path, problem: str | None) -> None:
    if problem:
        raise IndexCorrupt(f"{index_dir}: {problem}; {_gen.DAMAGED}")
