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


def describe(index_dir: Path, m: Manifest) -> dict[str, Any]:
    """What the index holds, from its manifest and document store (no model, no vectors). Sizes count the
    generation's own regular files (never a link's target); a damaged document store leaves ``sources``
    empty (``verify`` says why)."""
    size = 0
    sources: list[tuple[str, int]] = []
    sparse = "unknown (the document store could not be read)"
    try:
        # the checked path only: a generation that is a link, or lies outside the index, is not read
        gen_dir = _gen.generation_path(index_dir, m)
        size = sum(st.st_size for p in gen_dir.iterdir() if stat.S_ISREG((st := p.lstat()).st_mode))
        if not stat.S_ISREG(os.lstat(gen_dir / DOCS_FILE).st_mode):
            raise IndexCorrupt(f"{gen_dir / DOCS_FILE} is not a regular file")
        store = DocStore(gen_dir / DOCS_FILE, readonly=True)
        try:
            sources = store.sources()
            stale = store.sparse_stale_reason(m.rows) if store.sparse else "none"
            sparse = "current" if stale is None else stale
        finally:
            store.close()
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
    }


def _refuse(index_dir: Path, problem: str | None) -> None:
    if problem:
        raise IndexCorrupt(f"{index_dir}: {problem}; {_gen.DAMAGED}")
