"""What :class:`~tase_search.Retriever` does with vectors made elsewhere: add them, search by them,
re-rank by maximal marginal relevance, and read the stored ones back.

Kept apart from the Retriever, which only delegates here, so the rules live in one place: a vector
has the index's dimension and is scaled to unit length when the index's vectors are; each document
added with a vector is one passage; a search by vector is the ordinary search (filters, tombstones,
grouping by document, hybrid fusion when the query text comes too) with the query encoder replaced
by the given vector.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..arguments import check_docs, id_list
from ..documents import ingest as _ingest
from ..documents.ingest import EncodedBatch
from ..documents.inputs import DocLike, coerce, scrub
from ..encoding import external as _external
from ..encoding.passages import Passage
from ..errors import IndexMismatch, InputError
from ..results import AddResult, Hit
from ..store.stored_vectors import vectors_by_pid
from . import searcher as _search
from .filters import parse_filter_argument
from .mmr import check_mmr, mmr_select

if TYPE_CHECKING:
    from ..retriever import Retriever


def vector_batch(
    manifest_model: Any, docs: Sequence[DocLike], vectors: Any, embedder: Any = None
) -> tuple[EncodedBatch, int]:
    """``docs`` with their vectors as one :class:`~tase_search.documents.ingest.EncodedBatch` (one passage each,
    blank documents left out with their vectors), and how many were blank. Checked before any write."""
    m = manifest_model
    if embedder is not None:
        name = embedder.name if isinstance(embedder, _external.ExternalEmbedder) else embedder
        if _external.PREFIX + _external.check_name(name) != m.id:
            raise IndexMismatch(
                f"vectors from {_external.PREFIX + name!r} cannot go into an index of {m.id!r}: give vectors "
                "of the embedder the index was built with, or build a new index"
            )
    arr = _shape(vectors, m, "vectors", rows=len(docs))
    res = AddResult()
    kept, rows = [], []
    for i, d in enumerate(docs):
        doc = coerce(d, i, res)
        if doc is not None:
            kept.append(doc)
            rows.append(i)
    parts = [[Passage(0, len(d.text), 0, 1)] for d in kept]
    return EncodedBatch(kept, parts, arr[rows] if rows else arr[:0]), res.skipped_empty


def query_matrix(manifest_model: Any, vector: Any) -> tuple[np.ndarray, bool]:
    """A query vector (or rows of them) checked against the index: ``(rows, given as one vector)``."""
    single = np.ndim(vector) == 1
    arr = _shape(vector, manifest_model, "query vector")
    if not len(arr):
        raise InputError("no query vector given: give a list of numbers (or rows of them)")
    return arr, single


def _shape(vectors: Any, m: Any, what: str, rows: int | None = None) -> np.ndarray:
    arr = _external.as_matrix(vectors, what)
    if rows is not None and arr.shape[0] != rows:
        raise InputError(f"{arr.shape[0]} {what} for {rows} documents: give one vector per document")
    if len(arr) and arr.shape[1] != m.dimension:
        raise InputError(
            f"{what} of dimension {arr.shape[1]}, but the index's vectors ({m.id}) have {m.dimension}"
        )
    return _external.normalized(arr) if m.normalized else arr


def search_by_vector(
    r: Retriever,
    vector: Any,
    k: int,
    filter: Mapping[str, Any] | None,  # noqa: A002
    query: str | Sequence[str] | None,
    mode: str | None,
    fusion: str | None,
    dense_weight: float | None,
) -> list[Hit] | list[list[Hit]]:
    """:meth:`Retriever.search_by_vector`: each row searched as a query whose encoder gives that row."""
    qv, single = query_matrix(r.manifest.model, vector)
    texts = None if query is None else ([query] if isinstance(query, str) else list(query))
    if texts is None and mode not in (None, "dense"):
        raise InputError(
            f"mode {mode!r} needs the query text as well: give query=TEXT (the keyword part searches text)"
        )
    if texts is not None and len(texts) != len(qv):
        raise InputError(f"{len(texts)} query texts for {len(qv)} query vectors: give one text per vector")
    base = r._open()
    out: list[list[Hit]] = []
    for i in range(len(qv)):
        if texts is None:
            req = _search.parse_request("<vector>", k, "dense", fusion, dense_weight, lambda: "dense")
        else:
            req = _search.parse_request(texts[i], k, mode, fusion, dense_weight, lambda: r.search_mode)
        row = qv[i : i + 1]
        searcher = _search.Searcher(
            r.path,
            base.snap,
            lambda _queries, row=row: row,
            calibration=base.calibration,
            keyword_calibration=base.keyword_calibration,
        )
        searcher._corpus_language = base._corpus_language  # sampled once per opened generation
        out.append(searcher.search(req, filter)[0])
        base._corpus_language = searcher._corpus_language
    return out[0] if single else out


def search_mmr(
    r: Retriever,
    query: str | None,
    vector: Any,
    k: int,
    fetch_k: int,
    lambda_mult: float,
    filter: Mapping[str, Any] | None,  # noqa: A002
) -> list[Hit]:
    """:meth:`Retriever.search_mmr`: the ``fetch_k`` nearest by vector, then :func:`mmr_select`."""
    check_mmr(k, fetch_k, lambda_mult)
    if (query is None) == (vector is None):
        raise InputError("give the query text or a query vector (one of them)")
    if vector is None:
        _search.parse_request(query, k, "dense", None, None, lambda: "dense")  # type: ignore[arg-type]
        vector = r.query_encoder.encode_query([query])[0]
    qv, single = query_matrix(r.manifest.model, vector)
    if not single and len(qv) != 1:
        raise InputError("MMR takes one query vector")
    found = search_by_vector(r, qv[0], max(k, fetch_k), filter, None, None, None, None)
    if not found:
        return []
    vecs = hit_vectors(r, found)  # type: ignore[arg-type]
    order = mmr_select(qv[0], vecs, k, float(lambda_mult))
    return [dataclasses.replace(found[i], rank=n + 1) for n, i in enumerate(order)]  # type: ignore[arg-type]


def hit_vectors(r: Retriever, hits: Sequence[Hit]) -> np.ndarray:
    """The stored vectors of the passages ``hits`` matched with, in order."""
    return _vectors_of(r, [(h.id, h.passage.index) for h in hits])


def stored_vectors(r: Retriever, ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Document id -> the stored vector of its first passage (for a document added with a vector, that
    vector, unit length if the index normalises); ids not stored are left out."""
    return {
        doc_id: row
        for doc_id, row in zip(ids, _vectors_of(r, [(str(i), 0) for i in ids], missing_ok=True))
        if row is not None
    }


def _vectors_of(r: Retriever, keys: Sequence[tuple[str, int]], *, missing_ok: bool = False) -> Any:
    snap = r._open().snap
    pids = [snap.docs.passage_pid(doc_id, idx) for doc_id, idx in keys]
    found = [p for p in pids if p is not None]
    rows = dict(zip(found, vectors_by_pid(snap.vectors, found))) if found else {}
    if missing_ok:
        return [None if p is None else rows[p] for p in pids]
    return (
        np.stack([rows[p] for p in pids]) if pids else np.zeros((0, r.manifest.model.dimension), np.float32)
    )


class VectorMethods:
    """The :class:`~tase_search.Retriever` methods for vectors made elsewhere (the Retriever inherits
    them): build from, add, search by and re-rank with such vectors, and read the stored ones back."""

    @classmethod
    def build_from_vectors(
        cls,
        docs: Iterable[DocLike],
        vectors: Any,
        embedder: str | _external.ExternalEmbedder,
        path: str | os.PathLike[str] | None = None,
        *,
        normalize: bool = True,
        factory: str | None = None,
        overwrite: bool = False,
        on_duplicate: str = "error",
        sparse: bool = True,
    ) -> Retriever:
        """A new index of ``docs`` with ``vectors`` (one per document) made by an external ``embedder``: its
        name (``"openai:text-embedding-3-small"``) or an :class:`~tase_search.encoding.external.ExternalEmbedder`.
        The manifest records the name, the dimension and ``normalize`` (unit length: scores are
        cosines) and refuses vectors of any other; the keyword part is built from the text as in
        :meth:`build`, so sparse and hybrid search work. See :meth:`add_vectors`."""
        check_docs(docs)
        docs = list(docs)
        ext = (
            embedder
            if isinstance(embedder, _external.ExternalEmbedder)
            else _external.ExternalEmbedder(embedder, normalize=normalize)
        )
        ext.prepare(vectors, len(docs))  # learns the dimension; checked before anything is written
        r = cls.build([], model=ext, path=path, factory=factory, overwrite=overwrite, sparse=sparse)
        batch, blank = vector_batch(r.manifest.model, docs, vectors)
        r.last_add = r.add_encoded([batch], on_duplicate=on_duplicate)
        r.last_add.skipped_empty += blank
        return r

    def add_vectors(
        self,
        docs: Iterable[DocLike],
        vectors: Any,
        *,
        on_duplicate: str = "error",
        embedder: str | _external.ExternalEmbedder | None = None,
    ) -> AddResult:
        """Append documents with vectors made elsewhere, ``(len(docs), dimension)``, in one write with the
        rules of :meth:`add`. Each document is one passage (its embedder saw the whole text); a document
        stored with the same text and metadata is unchanged and keeps its vector. ``embedder`` (a name)
        is checked against the one the index records. Vectors are scaled to unit length when the
        index's are. On an index of one of our models the vectors must come from that model."""
        check_docs(docs)
        _ingest.check_on_duplicate(on_duplicate)
        batch, blank = vector_batch(self.manifest.model, list(docs), vectors, embedder)
        res = self.add_encoded([batch], on_duplicate=on_duplicate)
        res.skipped_empty += blank
        return res

    def search_by_vector(
        self,
        vector: Any,
        k: int = 10,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        *,
        query: str | Sequence[str] | None = None,
        mode: str | None = None,
        fusion: str | None = None,
        dense_weight: float | None = None,
    ) -> list[Hit] | list[list[Hit]]:
        """Top-``k`` documents for a query vector made elsewhere (one vector: a list of hits; rows of them:
        a list per row), filtered as in :meth:`search`. Without ``query`` the search is dense. With
        ``query``, the text the vector was made from (one per row), the keyword part joins as in
        :meth:`search`: ``mode`` hybrid fuses BM25 over the text with the vector's ranking (auto, or
        None: the index's default mode). The vector is scaled to unit length when the index's are."""
        flt = parse_filter_argument(filter)
        return search_by_vector(self, vector, k, flt, query, mode, fusion, dense_weight)

    def search_mmr(
        self,
        query: str | None = None,
        *,
        vector: Any = None,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
    ) -> list[Hit]:
        """Maximal marginal relevance (:mod:`tase_search.query.mmr`): of the ``fetch_k`` documents nearest
        the query, ``k`` picked one at a time for relevance to it less similarity to those already
        picked (``lambda_mult`` 1: relevance only, 0: diversity only). Give the query text (encoded with
        the index's model) or a ``vector``. Scores stay each hit's own (its probability of relevance with
        a calibrated model, else its cosine)."""
        flt = parse_filter_argument(filter)
        return search_mmr(self, query, vector, k, fetch_k, lambda_mult, flt)

    def stored_vectors(self, ids: Sequence[str]) -> dict[str, Any]:
        """Document id -> its stored vector (of its first passage: for a document added with a vector,
        that vector, unit length if the index normalises), a float32 array; missing ids left out."""
        return stored_vectors(self, [scrub(str(i)) for i in id_list(ids, "stored_vectors")])


__all__ = [
    "VectorMethods",
    "hit_vectors",
    "query_matrix",
    "search_by_vector",
    "search_mmr",
    "stored_vectors",
    "vector_batch",
]
