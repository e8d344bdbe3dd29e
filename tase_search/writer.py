"""A buffered writer: many small adds, few commits (group commit).

Every :meth:`Retriever.add` is durable when it returns: it writes a segment and publishes a new
manifest, with its fsyncs, so a service that adds ten documents at a time pays a commit for every ten.
:class:`BufferedWriter` is Lucene's ``IndexWriter`` between ``commit()`` calls: ``add`` checks the
documents and holds them; a flush writes everything held as one segment in one crash-safe write. It
flushes when it holds ``flush_docs`` documents, on an ``add`` that finds its oldest held document older
than ``flush_seconds``, before a ``delete``, on :meth:`flush`, and when it is closed (leaving a
``with`` block).

What it holds is not in the index yet: searches do not see it, and a crash loses it (what was flushed
is as safe as any write). Bad input is refused by the ``add`` that brings it, not at the flush; with
``on_duplicate="error"`` an id that is already indexed (or held) with other content is refused there
too. A flush that fails (a full disk, another process's conflicting write) raises, leaves the index as
it was, and keeps what it held, so the caller can fix the cause and flush again or :meth:`discard` it.

    >>> with retriever.writer(flush_docs=1000) as w:          # doctest: +SKIP
    ...     for batch in stream:
    ...         w.add(batch)                                  # held; a commit every 1,000 documents
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .arguments import check_docs, check_int, id_list
from .documents.document import Document
from .documents.ingest import EncodedBatch, check_on_duplicate
from .documents.inputs import DocLike, coerce
from .errors import InputError
from .results import AddResult
from .store.content import content_key

#: Defaults: a commit per 10,000 documents (their vectors about 15 MB at 384 dimensions, near Lucene's
#: 16 MB indexing buffer), and none held for more than a second of adds.
FLUSH_DOCS, FLUSH_SECONDS = 10_000, 1.0


@dataclass
class _Run:
    """Consecutive held adds of one kind (text to embed, or documents with their vectors) and one
    ``on_duplicate``: one write at the flush."""

    vectors: bool
    on_duplicate: str
    docs: list[Document] = field(default_factory=list)
    batches: list[EncodedBatch] = field(default_factory=list)  # the documents with their vectors


class BufferedWriter:
    """Adds held in memory and committed in groups (:mod:`tase_search.writer`). Thread-safe: the
    threads of a service may share one."""

    def __init__(
        self, retriever: Any, *, flush_docs: int = FLUSH_DOCS, flush_seconds: float | None = FLUSH_SECONDS
    ) -> None:
        check_int("flush_docs", flush_docs, 1, 10_000_000)
        if flush_seconds is not None and (
            isinstance(flush_seconds, bool)
            or not isinstance(flush_seconds, (int, float))
            or not flush_seconds >= 0
        ):
            raise InputError(f"flush_seconds={flush_seconds!r}: give a number of seconds >= 0, or None")
        self.retriever = retriever
        self.flush_docs, self.flush_seconds = flush_docs, flush_seconds
        self._runs: list[_Run] = []
        self._held_ids: dict[str, Document] = {}  # held documents that have ids
        self._since: float | None = None
        self._lock = threading.RLock()
        self._closed = False
        #: What every flush so far did, summed.
        self.result = AddResult()

    # ------------------------------------------------------------------ adding
    @property
    def pending(self) -> int:
        """Documents held, not yet in the index."""
        return sum(len(r.docs) for r in self._runs)

    def add(self, docs: Iterable[DocLike], *, on_duplicate: str = "error") -> int:
        """Hold ``docs`` (strings, dicts with ``text``, or Documents) to be embedded and written at the
        next flush; returns how many are held after this call."""
        return self._hold(docs, None, on_duplicate)

    def add_vectors(self, docs: Iterable[DocLike], vectors: Any, *, on_duplicate: str = "error") -> int:
        """Hold ``docs`` with vectors made elsewhere, one row per document (the rules of
        :meth:`Retriever.add_vectors`)."""
        return self._hold(docs, vectors, on_duplicate)

    def _hold(self, docs: Iterable[DocLike], vectors: Any, on_duplicate: str) -> int:
        check_docs(docs)
        check_on_duplicate(on_duplicate)
        docs = list(docs)
        batch = None
        if vectors is not None:
            from .query.by_vector import vector_batch

            batch, _ = vector_batch(self.retriever.manifest.model, docs, vectors)
            kept = list(batch.documents)
        else:
            res = AddResult()
            kept = [d for i, d in enumerate(docs) for d in [coerce(d, i, res)] if d is not None]
        with self._lock:
            self._check_open()
            if on_duplicate == "error":
                self._refuse_conflicts(kept)
            run = self._runs[-1] if self._runs else None
            if run is None or run.vectors != (batch is not None) or run.on_duplicate != on_duplicate:
                run = _Run(vectors=batch is not None, on_duplicate=on_duplicate)
                self._runs.append(run)
            run.docs.extend(kept)
            if batch is not None:
                run.batches.append(batch)
            for d in kept:
                if d.id is not None:
                    self._held_ids[d.id] = d
            if kept and self._since is None:
                self._since = time.monotonic()
            if self._due():
                self.flush()
            return self.pending

    def _refuse_conflicts(self, docs: list[Document]) -> None:
        """The error ``on_duplicate="error"`` would raise at the flush, raised now, before anything is
        held. Contents are compared only where an id is seen twice."""
        mine: dict[str, Document] = {}
        for d in docs:
            if d.id is None:
                continue
            earlier = mine.get(d.id) or self._held_ids.get(d.id)
            if earlier is not None and _key(earlier) != _key(d):
                raise InputError(
                    f"document id {d.id!r} is already held by this writer with other text or metadata; "
                    "add with on_duplicate='skip' or 'replace', or give unique ids"
                )
            mine[d.id] = d
        unseen = [i for i in mine if i not in self._held_ids]
        for stored in self.retriever.get(unseen) if unseen else []:
            if content_key(stored["text"], stored["metadata"]) != _key(mine[stored["id"]]):
                raise InputError(
                    f"document id {stored['id']!r} is already in the index with other text or metadata; "
                    "add with on_duplicate='skip' or 'replace', or give unique ids"
                )

    def _due(self) -> bool:
        if self.pending >= self.flush_docs:
            return True
        return (
            self.flush_seconds is not None
            and self._since is not None
            and time.monotonic() - self._since >= self.flush_seconds
        )

    # ------------------------------------------------------------------ committing
    def flush(self) -> AddResult:
        """Write everything held, one write per run of like adds (usually one), and return what they
        did. Durable when it returns; on an error nothing held is dropped."""
        with self._lock:
            done = AddResult()
            while self._runs:
                run = self._runs[0]
                r = self.retriever
                if run.vectors:  # checked and coerced when held: written as they are
                    res = r.add_encoded([_joined(run.batches)], on_duplicate=run.on_duplicate)
                else:
                    res = r.add(run.docs, on_duplicate=run.on_duplicate)
                self._runs.pop(0)
                for d in run.docs:
                    if d.id is not None:
                        self._held_ids.pop(d.id, None)
                _sum_into(done, res)
            self._since = None
            _sum_into(self.result, done)
            return done

    def delete(self, ids: Iterable[str]) -> list[str]:
        """Flush what is held, then delete ``ids`` (durable when it returns, as :meth:`Retriever.delete`)."""
        wanted = id_list(ids, "delete")
        with self._lock:
            self._check_open()
            self.flush()
            return self.retriever.delete(wanted)

    def discard(self) -> int:
        """Drop what is held without writing it; returns how many documents were dropped."""
        with self._lock:
            n = self.pending
            self._runs.clear()
            self._held_ids.clear()
            self._since = None
            return n

    def close(self) -> None:
        """Flush and stop taking adds."""
        with self._lock:
            if not self._closed:
                self.flush()
                self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise InputError("this writer is closed: open another with Retriever.writer()")

    def __enter__(self) -> BufferedWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        """Flush on leaving, also when the block raised: the adds that returned were accepted (as
        Lucene's ``IndexWriter.close`` commits). A flush that fails while the block's own error
        propagates is a warning, so that error is the one raised."""
        if exc_type is None:
            self.close()
            return
        try:
            self.close()
        except Exception as exc_flush:  # noqa: BLE001 - the block's error wins
            warnings.warn(
                f"{self.pending} held documents were not written ({exc_flush}); the index is as the last "
                "flush left it",
                stacklevel=2,
            )

    def __del__(self) -> None:
        if getattr(self, "_runs", None) and not getattr(self, "_closed", True):
            warnings.warn(
                f"a BufferedWriter was dropped holding {self.pending} documents that were never written: "
                "call flush() or close(), or use it in a with block",
                ResourceWarning,
                stacklevel=2,
            )


def _key(d: Document) -> str:
    return content_key(d.text, d.metadata)


def _joined(batches: list[EncodedBatch]) -> EncodedBatch:
    """The held batches as one, so the flush stores them as one add does (one insert, not one each)."""
    if len(batches) == 1:
        return batches[0]
    return EncodedBatch(
        [d for b in batches for d in b.documents],
        [p for b in batches for p in b.passages],
        np.concatenate([b.vectors for b in batches]),
    )


def _sum_into(total: AddResult, part: AddResult) -> None:
    for f in fields(AddResult):
        if f.name == "ids":
            total.ids.extend(part.ids)
        elif isinstance(getattr(total, f.name), (int, float)):
            setattr(total, f.name, getattr(total, f.name) + getattr(part, f.name))


__all__ = ["FLUSH_DOCS", "FLUSH_SECONDS", "BufferedWriter"]
