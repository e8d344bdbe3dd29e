"""Ingest: documents into one write's working copy, deduplicated, embedded and streamed into the vectors.

A write (:func:`tase_search.store.commit.commit`) hands ``mutate`` the working document store, the
vector slot and the manifest; the functions here are such mutates' bodies:

- :func:`add_documents` embeds documents with an encoder (``split_passages`` then ``encode_document``)
  chunk by chunk, so memory stays at one chunk of vectors (plus those an untrained index holds back);
- :func:`add_encoded` takes :class:`EncodedBatch` es whose passages and vectors were computed elsewhere
  (worker processes, a cluster) and stores them the same way, in the same single commit. This is the
  entry point for an engine that encodes in parallel::

      from tase_search.store.commit import commit
      from tase_search.documents.ingest import EncodedBatch, add_encoded

      commit(index_dir, lambda store, slot, m: add_encoded(batches, store, slot, m), check=...)

  (``Retriever.add_encoded`` does this for a loaded index, with its encoder's compatibility check and the
  index-type policy.)

Both share the rules: a document identical to one already stored (text and metadata, and the same id
if it has one) or to an earlier one in the input is *unchanged*, counted and not stored again; an id
already indexed with other content follows ``on_duplicate`` (error, skip or replace). An index type that
needs training holds vectors back until it has ``TRAIN_SAMPLE`` of them, trains once, then adds
directly; an ``auto`` index changes type as soon as it outgrows the current one
(:mod:`tase_search.store.retype`). Vector adds run on a background thread (:class:`BackgroundAdds`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import InputError
from ..results import AddResult
from ..runtime.progress import passages_of, stage_of
from ..store import content as _content
from ..store import retype as _retype
from ..store import vectors as _vec
from ..store.commit import NothingChanged, VectorSlot
from ..store.docs import DocStore
from ..store.manifest import Manifest
from ..store.vectors import choose_factory
from .document import Document
from .inputs import DocLike, as_documents, coerce

CHUNK_DOCS = 2048
ON_DUPLICATE = ("error", "skip", "replace")

#: One kept document of a chunk: (its position in the chunk, the id it is stored under, the document).
Row = tuple[int, str, Document]


class Span(Protocol):
    """A passage of a document: what ``split_passages`` returns (``tase_search.encoding.passages.Passage``)."""

    index: int
    count: int
    start: int
    end: int


@dataclass(frozen=True)
class EncodedBatch:
    """Documents with their passages and vectors, computed outside this process.

    ``passages[i]`` are document ``i``'s spans as ``encoder.split_passages(text, overlap=...)`` gives
    them for its text after :func:`tase_search.text.clean_document` (a text that cleaning changes is
    refused: its spans would point elsewhere); ``vectors`` has one unit-length row per passage, in order,
    made by the index's model with its passage prompt.
    """

    documents: Sequence[DocLike]
    passages: Sequence[Sequence[Span]]
    vectors: np.ndarray


def check_on_duplicate(on_duplicate: str) -> None:
    if on_duplicate not in ON_DUPLICATE:
        raise InputError(f"on_duplicate={on_duplicate!r} is not one of {', '.join(ON_DUPLICATE)}")


def add_documents(
    docs: Iterable[DocLike],
    encoder: Any,
    store: DocStore,
    slot: VectorSlot,
    m: Manifest,
    on_duplicate: str = "error",
    progress: Callable[[int], None] | None = None,
    *,
    noop_if_unchanged: bool = False,
) -> AddResult:
    """Embed and store ``docs`` with ``encoder``, streaming their vectors into ``slot`` chunk by chunk.

    With ``noop_if_unchanged`` a write that would change nothing raises :class:`NothingChanged`, so no
    new generation is committed. ``progress(n)`` hears of documents as they are embedded and, if it has a
    ``stage(name)`` method, of building and saving.
    """
    ing = _Ingest(store, slot, m, on_duplicate, progress)
    overlap = m.overlap_tokens

    def embed(rows: list[Row], n_docs: int) -> tuple[list[Sequence[Span]], np.ndarray]:
        parts = [encoder.split_passages(d.text, overlap=overlap) for _, _, d in rows]
        texts = [d.text[p.start : p.end] for (_, _, d), ps in zip(rows, parts) for p in ps]
        share = _PassageShare(ing.report, len(texts), n_docs)
        emb = encoder.encode_document(texts, progress=share)
        share.finish()
        return parts, emb

    return ing.run(_chunks(as_documents(docs, ing.res), CHUNK_DOCS), embed, noop_if_unchanged)


def add_encoded(
    batches: Iterable[EncodedBatch],
    store: DocStore,
    slot: VectorSlot,
    m: Manifest,
    on_duplicate: str = "error",
    progress: Callable[[int], None] | None = None,
    *,
    noop_if_unchanged: bool = False,
) -> AddResult:
    """Store documents whose passages and vectors were computed elsewhere (see :class:`EncodedBatch`),
    with the same deduplication, hold-back and type changes as :func:`add_documents`. Each batch is one
    chunk; the vectors of documents left out (unchanged, skipped, blank) are dropped. Nothing is encoded
    here for an add to overlap, so vectors are added in line (with every FAISS thread)."""
    ing = _Ingest(store, slot, m, on_duplicate, progress, inline_adds=True)
    current: list[tuple[Sequence[Span], np.ndarray]] = []  # the passages and vectors of the chunk's documents

    def chunks() -> Iterator[list[Document]]:
        seen = 0
        for batch in batches:
            chunk: list[Document] = []
            current.clear()
            for doc, parts, emb in _split_batch(batch, m.model.dimension, seen):
                coerced = coerce(doc, seen, ing.res)
                seen += 1
                if coerced is None:
                    continue
                if coerced.text != (doc if isinstance(doc, str) else _text_of(doc)):
                    raise InputError(
                        f"document #{seen - 1}: its text changes when cleaned (clean_document), so its "
                        "passages point elsewhere; split and encode the cleaned text"
                    )
                chunk.append(coerced)
                current.append((parts, emb))
            yield chunk

    def embed(rows: list[Row], n_docs: int) -> tuple[list[Sequence[Span]], np.ndarray]:
        kept = [current[pos] for pos, _, _ in rows]
        return [p for p, _ in kept], np.concatenate([e for _, e in kept])

    return ing.run(chunks(), embed, noop_if_unchanged)


def by_content_only(doc: Document) -> bool:
    """Whether ``doc`` is known by its content alone: it has no id, or the id its reader made from its
    text (:func:`tase_search.store.content.content_id`, every ``.txt`` line). Such a document is
    unchanged when any stored document has its text and metadata, whatever that one's id (an index
    whose ``.txt`` lines got sequential ids finds them unchanged too)."""
    return doc.id is None or doc.id == _content.content_id(doc.text)


def all_unchanged(conn: Any, docs: Sequence[Document]) -> bool:
    """Whether a write would find every one of ``docs`` unchanged (the rules of ``_Ingest.plan``), from a
    read-only look at a document store: how ``tase-search index`` knows there is nothing to embed
    before it loads a model. False for a store without content hashes (it gets them at its next write)."""
    if not _content.has_column(conn):
        return False
    anon = [d for d in docs if by_content_only(d)]
    named = [d for d in docs if not by_content_only(d)]
    if anon:
        known = _content.known_keys(conn, [_content.content_hash(d.text, d.metadata) for d in anon])
        if any(_content.content_key(d.text, d.metadata) not in known for d in anon):
            return False
    if named:
        stored = _content.keys_by_id(conn, [str(d.id) for d in named])
        return all(stored.get(str(d.id)) == _content.content_key(d.text, d.metadata) for d in named)
    return True


def remove_documents(ids: Sequence[str], store: DocStore, slot: VectorSlot) -> list[str]:
    """Delete documents by id, their vectors too (tombstoned where the index type cannot remove);
    returns the ids that were present."""
    deleted, pids = store.delete(ids)
    if pids and not slot.vectors.remove(np.asarray(pids, dtype=np.int64)):
        store.add_tombstones(pids)
    return deleted


def _text_of(doc: Any) -> str:
    return doc.text if isinstance(doc, Document) else doc["text"]


def _split_batch(
    batch: EncodedBatch, dimension: int, first: int
) -> Iterator[tuple[Any, Sequence[Span], np.ndarray]]:
    """Each document of ``batch`` with its passages and their rows of the batch's vectors."""
    vectors = np.asarray(batch.vectors, dtype=np.float32)
    n = sum(len(p) for p in batch.passages)
    if len(batch.documents) != len(batch.passages):
        raise InputError(
            f"batch from document #{first}: {len(batch.documents)} documents but {len(batch.passages)} "
            "passage lists; give one list of passages per document"
        )
    if vectors.ndim != 2 or vectors.shape != (n, dimension):
        raise InputError(
            f"batch from document #{first}: vectors of shape {vectors.shape}, expected ({n}, {dimension}): "
            "one row per passage, of the index's dimension"
        )
    at = 0
    for doc, parts in zip(batch.documents, batch.passages):
        yield doc, parts, vectors[at : at + len(parts)]
        at += len(parts)


class _Ingest:
    """One write's ingest: what was done so far, the next automatic id, the vectors held back for
    training and the background adds."""

    def __init__(
        self,
        store: DocStore,
        slot: VectorSlot,
        m: Manifest,
        on_duplicate: str,
        progress: Callable[[int], None] | None,
        *,
        inline_adds: bool = False,
    ) -> None:
        check_on_duplicate(on_duplicate)
        self.store, self.slot, self.m, self.on_duplicate = store, slot, m, on_duplicate
        self.t0 = time.perf_counter()
        self.res = AddResult()
        self.report = progress if progress is not None else (lambda _n: None)
        self.stage = stage_of(progress)
        self.report(0)  # starts the clock of a docs/s reporter
        _content.ensure_column(store.conn)
        self.auto_id = store.next_auto_id()
        self.held: list[tuple[np.ndarray, np.ndarray]] = []  # vectors waiting for the index to be trained
        self.held_rows = 0
        self.adds = BackgroundAdds(inline=inline_adds)
        self.total = slot.vectors.ntotal  # rows in the index once the add in flight lands

    def run(
        self,
        chunks: Iterable[list[Document]],
        embed: Callable[[list[Row], int], tuple[list[Sequence[Span]], np.ndarray]],
        noop_if_unchanged: bool,
    ) -> AddResult:
        try:
            for chunk in chunks:
                rows = self.plan(chunk)
                if not rows:
                    self.report(len(chunk))
                    continue
                parts, emb = embed(rows, len(chunk))
                self.put(rows, parts, emb)
            self.adds.wait()
            if self.held:
                self.stage(f"building the index: training {self.slot.factory} on {self.held_rows:,} vectors")
                _retype.train_and_add(self.slot, self.held)
        except BaseException:
            self.adds.close(quiet=True)  # the error already propagating is the one to report
            raise
        self.adds.close()
        res = self.res
        res.seconds = time.perf_counter() - self.t0
        if noop_if_unchanged and not (res.added or res.replaced):
            raise NothingChanged(res)
        self.stage("saving the index")
        return res

    def plan(self, chunk: list[Document]) -> list[Row]:
        """The documents of ``chunk`` to store, with their ids; the rest counted as unchanged or skipped.
        A replaced document is removed here (its vectors too, or tombstoned)."""
        store, res = self.store, self.res
        rows: list[Row] = []
        ids_in_chunk: set[str] = set()
        keys = [_content.content_key(d.text, d.metadata) for d in chunk]
        by_content = [by_content_only(d) for d in chunk]
        explicit = [d.id for d, anon in zip(chunk, by_content) if not anon and d.id is not None]
        stored_by_id = _content.keys_by_id(store.conn, explicit) if explicit else {}
        existing = set(stored_by_id)
        anonymous = [_content.content_hash(d.text, d.metadata) for d, anon in zip(chunk, by_content) if anon]
        known = _content.known_keys(store.conn, anonymous) if anonymous else set()
        key_of_id: dict[str, str] = {}  # ids of this chunk -> their content
        for pos, (d, key, anon) in enumerate(zip(chunk, keys, by_content)):
            doc_id = d.id
            if (anon and key in known) or (
                not anon and key in (stored_by_id.get(doc_id), key_of_id.get(doc_id))  # type: ignore[arg-type]
            ):
                res.unchanged += 1
                continue
            if doc_id is None:
                while True:
                    doc_id = str(self.auto_id)
                    self.auto_id += 1
                    if doc_id not in ids_in_chunk and not store.existing_ids([doc_id]):
                        break
            elif anon:  # an id made from the text: taken by other content only by a rare collision
                base, n = doc_id, 1
                while doc_id in ids_in_chunk or store.existing_ids([doc_id]):
                    n += 1
                    doc_id = f"{base}-{n}"
            elif doc_id in existing or doc_id in ids_in_chunk:
                if self.on_duplicate == "error":
                    raise InputError(
                        f"document id {doc_id!r} ({d.source}:{d.line}) is already in the index or earlier "
                        "in the input, with other text or metadata; choose --on-duplicate skip or replace, "
                        "or give unique ids"
                    )
                if self.on_duplicate == "skip":
                    res.skipped_duplicate += 1
                    continue
                if doc_id in ids_in_chunk:  # replace an earlier row of this same chunk
                    rows = [r for r in rows if r[1] != doc_id]
                else:
                    self._remove(doc_id)
                    existing.discard(doc_id)
                res.replaced += 1
            ids_in_chunk.add(doc_id)
            key_of_id[doc_id] = key
            known.add(key)  # a later copy in the input is unchanged too
            rows.append((pos, doc_id, d))
        return rows

    def _remove(self, doc_id: str) -> None:
        """Remove a stored document that is being replaced: its rows, and its vectors (from those held back
        for training, from the index, or as tombstones where the index cannot remove)."""
        _, pids = self.store.delete([doc_id])
        gone = np.asarray(pids, dtype=np.int64)
        if self.held and len(gone):  # its vectors still wait for training: drop them
            in_held = np.isin(gone, np.concatenate([i for _, i in self.held]))
            self.held = [(e[keep], i[keep]) for e, i in self.held for keep in [~np.isin(i, gone)]]
            self.held_rows = sum(len(i) for _, i in self.held)
            gone = gone[~in_held]
        if len(gone):
            self.adds.wait()
            if not self.slot.vectors.remove(gone):
                self.store.add_tombstones(gone.tolist())
            self.total = self.slot.vectors.ntotal

    def put(self, rows: list[Row], parts: list[Sequence[Span]], emb: np.ndarray) -> None:
        """Store ``rows`` with their passages and add their vectors (held back while the index is untrained;
        changing type once an ``auto`` index outgrows its own)."""
        store, slot = self.store, self.slot
        pids = store.insert(
            [(doc_id, d.text, d.metadata, d.source, d.line) for _, doc_id, d in rows],
            [[(p.index, p.count, p.start, p.end) for p in ps] for ps in parts],
            store.next_pid(),
            next_auto_id=self.auto_id,
        )
        _content.set_hashes(
            store.conn, [(_content.content_hash(d.text, d.metadata), doc_id) for _, doc_id, d in rows]
        )
        ids_arr = np.asarray(pids, dtype=np.int64)
        if slot.vectors.needs_training:
            self.held.append((emb, ids_arr))
            self.held_rows += len(ids_arr)
            del emb
            if self.held_rows >= _vec.TRAIN_SAMPLE:
                self.stage(f"building the index: training {slot.factory} on {self.held_rows:,} vectors")
                _retype.train_and_add(slot, self.held)
                self.held_rows = 0
        else:
            self.adds.submit(slot.vectors, emb, ids_arr)
            self.total += len(ids_arr)
            del emb
            if _retype.growth_due(self.m, slot, self.total - store.tombstone_count()):
                self.adds.wait()
                live = slot.vectors.ntotal - store.tombstone_count()
                self.stage(f"building the index: moving {live:,} vectors to {choose_factory(live)}")
                _retype.grow_if_due(self.m, slot, store)
                self.total = slot.vectors.ntotal
        self.res.added += len(rows)
        self.res.passages += len(pids)
        self.res.ids.extend(doc_id for _, doc_id, _ in rows)


class BackgroundAdds:
    """Vector-index adds on one worker thread, so chunk N's add overlaps chunk N+1's encoding.

    Why: indexing is encode-bound, but an HNSW insert costs ~0.2-0.5 ms and grows with the graph,
    so run in line the adds are 4-10% of a large build. FAISS releases the GIL and the encoder's
    tokenisation and pooling leave a core idle at times, so the add can hide in those gaps. At most
    one add is in flight and every add waits for the previous one, so rows enter the index in the
    same order as in line (the result is the same index). The worker limits FAISS to one OpenMP
    thread so it does not fight the encoder's threads. Anything that reads or changes the index
    (remove, retype, train, save) calls :meth:`wait` first; an add's exception surfaces there.
    ``inline``: no worker (nothing to overlap: vectors made elsewhere); each add runs in the caller.
    """

    def __init__(self, *, inline: bool = False) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = (
            None
            if inline
            else ThreadPoolExecutor(1, thread_name_prefix="tase-search-add", initializer=_one_omp_thread)
        )
        self._future: Any = None

    def submit(self, vectors: Any, emb: np.ndarray, ids: np.ndarray) -> None:
        self.wait()
        if self._pool is None:
            vectors.add(emb, ids)
            return
        self._future = self._pool.submit(vectors.add, emb, ids)

    def wait(self) -> None:
        future, self._future = self._future, None
        if future is not None:
            future.result()

    def close(self, *, quiet: bool = False) -> None:
        """Wait for the add in flight and stop the worker; ``quiet`` drops the add's error (used while
        another error is already propagating, which is the one the caller should see)."""
        try:
            self.wait()
        except BaseException:
            if not quiet:
                raise
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


class _PassageShare:
    """Turns the encoder's per-batch passage counts into document counts for a progress reporter, so a
    chunk of 2,048 documents moves the count (and the docs/s and ETA) while it is embedded, not only
    when it is done. ``finish`` reports what is left of the chunk (skipped documents included)."""

    def __init__(self, report: Callable[[int], None], passages: int, docs: int) -> None:
        self.report, self.passages, self.docs = report, max(1, passages), docs
        self.seen = self.told = 0
        self.tell_passages = passages_of(report)

    def __call__(self, n: int) -> None:
        self.seen += n
        self.tell_passages(n)
        due = min(self.docs, self.docs * self.seen // self.passages)
        if due > self.told:
            self.report(due - self.told)
            self.told = due

    def finish(self) -> None:
        if self.docs > self.told:
            self.report(self.docs - self.told)
            self.told = self.docs


def _one_omp_thread() -> None:
    import sys

    faiss = sys.modules.get("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(1)  # OpenMP's thread count is per calling thread: this worker only


def _chunks(it: Iterable[Document], n: int) -> Iterator[list[Document]]:
    buf: list[Document] = []
    for x in it:
        buf.append(x)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf
