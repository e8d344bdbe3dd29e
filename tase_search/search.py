"""Search: one opened generation queried in the dense, sparse, hybrid or auto mode, grouped by document.

A query is answered in passages (vectors and keyword rows are per passage) and returned in documents:
each document keeps its best passage. Dense candidates come from the vector index (filters become an
allow-list of passage ids, tombstones a deny-list), sparse ones from the keyword (FTS5) part; hybrid
fuses the two per document (:mod:`tase_search.fusion`). ``auto`` picks per query by its language
against the corpus's (:mod:`tase_search.modes`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import modes as _modes
from .errors import InputError
from .fusion import FUSIONS, fuse
from .inputs import normalize_filter
from .language import corpus_language, detect_language
from .results import Hit, PassageRef
from .store import fields as _fields
from .store.snapshot import Snapshot
from .text import clean_document, is_blank

MAX_K = 10_000
_UNKNOWN = object()  # not looked at yet


@dataclass(frozen=True)
class Request:
    """A checked search request: the queries as given, and how to search them."""

    queries: list[str]
    single: bool  # one query given as a str: one list of hits back
    k: int
    mode: str  # the requested mode (``auto`` is resolved per query)
    explicit: bool  # the caller named the mode (sparse/hybrid on an index without keywords is then an error)
    fusion: str
    dense_weight: float | None


def parse_request(
    query: str | Sequence[str],
    k: int,
    mode: str | None,
    fusion: str | None,
    dense_weight: float | None,
    default_mode: Callable[[], str],
) -> Request:
    """Check a search's arguments, each with a one-line error naming the bad value. No queries at all
    (an empty list) is a request with no queries, answered by no results."""
    single = isinstance(query, str)
    if not single and (isinstance(query, (bytes, Mapping)) or not isinstance(query, Iterable)):
        raise InputError(f"query is {type(query).__name__}: give a str or a list of str")
    queries = [query] if single else list(query)
    if not queries:
        return Request([], single, 1, "dense", False, _modes.FUSION, None)
    for i, q in enumerate(queries):
        if not isinstance(q, str):
            raise InputError(f"query #{i} is {type(q).__name__}, not str")
        if is_blank(q):  # blank, or only control, zero-width or bidi characters
            raise InputError("query is empty: give some text to search for")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InputError(f"k={k!r} is not valid: give a whole number >= 1")
    requested = default_mode() if mode is None else _modes.check_search_mode(mode)
    fusion = _modes.FUSION if fusion is None else fusion
    if fusion not in FUSIONS:
        raise InputError(f"fusion {fusion!r} is not one of {', '.join(FUSIONS)}")
    if dense_weight is not None:
        weight_ok = isinstance(dense_weight, (int, float)) and not isinstance(dense_weight, bool)
        if not (weight_ok and 0 <= dense_weight <= 1):
            raise InputError(f"dense_weight={dense_weight!r} is not valid: give a number from 0 to 1")
    return Request(queries, single, min(k, MAX_K), requested, mode is not None, fusion, dense_weight)


class Searcher:
    """Searches one opened generation; queries are encoded by ``encode_query`` (a query encoder's
    ``encode_query``), called only for the queries searched by vectors."""

    def __init__(self, path: Path, snap: Snapshot, encode_query: Callable[[list[str]], np.ndarray]) -> None:
        self.path = path
        self.snap = snap
        self._encode_query = encode_query
        self._corpus_language: object = _UNKNOWN  # the documents' language, sampled when first needed

    def search(self, req: Request, filter: Mapping[str, str] | None) -> list[list[Hit]]:  # noqa: A002
        """The hits of each query of ``req``, in order."""
        cleaned = [clean_document(q) for q in req.queries]
        languages = [detect_language(q) for q in cleaned] if req.mode in ("auto", "hybrid") else []
        chosen = [
            self._mode_for(languages[i] if languages else None, req.mode, explicit=req.explicit)
            for i in range(len(cleaned))
        ]
        weights = [
            (self._dense_weight(languages[i]) if req.dense_weight is None else float(req.dense_weight))
            if m == "hybrid"
            else 1.0
            for i, m in enumerate(chosen)
        ]
        return self._search_modes(cleaned, chosen, weights, req.k, filter, req.fusion)

    def _language(self) -> str | None:
        """The corpus's language, from a sample of its documents (once per opened generation)."""
        if self._corpus_language is _UNKNOWN:
            self._corpus_language = corpus_language(self.snap.docs.sample_texts(_modes.CORPUS_SAMPLE))
        return self._corpus_language  # type: ignore[return-value]

    def _dense_weight(self, query_language: str | None) -> float:
        """The dense share of a hybrid query: by whether it is in the corpus's language."""
        return _modes.dense_weight(query_language, self._language())

    def _mode_for(self, query_language: str | None, requested: str, *, explicit: bool) -> str:
        """The mode one query is searched in: ``auto`` resolved by its language against the corpus's,
        and dense where the keyword part cannot be searched (an error when the caller asked for another
        mode by name)."""
        if self.snap.sparse_stale is not None:  # no keyword part to search
            if explicit and requested in ("sparse", "hybrid"):
                raise InputError(_modes.unavailable_error(requested, self.path, self.snap.sparse_stale))
            return "dense"
        return _modes.auto_mode(query_language, self._language()) if requested == "auto" else requested

    def _search_modes(
        self,
        queries: Sequence[str],
        modes: Sequence[str],
        weights: Sequence[float],
        k: int,
        filter: Mapping[str, str] | None,  # noqa: A002
        fusion: str,
    ) -> list[list[Hit]]:
        """Each query in its mode: dense and sparse candidates (``HYBRID_DEPTH`` documents each for
        hybrid), fused per document, then the top ``k`` read back."""
        flt = normalize_filter(filter) if filter else None
        allow = None
        if flt:
            allow = np.asarray(self.snap.docs.pids_matching(flt), dtype=np.int64)
            if len(allow) == 0:
                return [[] for _ in queries]
        depth = max(k, _modes.HYBRID_DEPTH)
        groups: list[list[tuple[int, float]]] = [[] for _ in queries]
        dense_at = [i for i, m in enumerate(modes) if m != "sparse"]
        if dense_at:
            qv = self._encode_query([queries[i] for i in dense_at])
            n = depth if any(modes[i] == "hybrid" for i in dense_at) else k
            for i, g in zip(dense_at, self._dense_groups(qv, n, allow)):
                groups[i] = g
        for i, m in enumerate(modes):
            if m == "dense":
                continue
            found = self._sparse_groups(queries[i], k if m == "sparse" else depth, flt)
            groups[i] = found if m == "sparse" else self._fuse(groups[i], found, fusion, weights[i])
        return self._hits(groups, k)

    def _dense_groups(
        self, qv: np.ndarray, k: int, allow: np.ndarray | None
    ) -> list[list[tuple[int, float]]]:
        """The best ``k`` documents of each query vector as ``(best passage id, cosine)``, best first."""
        total = self.snap.vectors.ntotal
        if total == 0:
            return [[] for _ in range(len(qv))]
        n_docs = self.snap.manifest.documents if allow is None else len(allow)
        want = min(k, n_docs)
        k_search = min(total, max(k * 2, k + 8))
        with _one_search_thread(len(qv) == 1 and self.snap.manifest.backend == "faiss"):
            while True:
                scores, ids = self.snap.vectors.search(qv, k_search, allow=allow, deny=self.snap.deny)
                grouped = [self._group(scores[i], ids[i]) for i in range(len(qv))]
                if all(len(g) >= want for g in grouped) or k_search >= total:
                    break
                k_search = min(total, k_search * 4)
        return [g[:k] for g in grouped]

    def _sparse_groups(self, query: str, k: int, flt: dict[str, str] | None) -> list[tuple[int, float]]:
        """The best ``k`` documents for ``query`` by BM25 as ``(best passage id, score)``, best first."""
        limit = max(k * 2, k + 8)
        while True:
            rows = self.snap.docs.search_sparse(query, limit, flt)
            grouped = self._group([s for _, s in rows], [p for p, _ in rows])
            if len(grouped) >= k or len(rows) < limit:
                return grouped[:k]
            limit *= 4

    def _fuse(
        self,
        dense: list[tuple[int, float]],
        sparse: list[tuple[int, float]],
        fusion: str,
        dense_weight: float,
    ) -> list[tuple[int, float]]:
        """Fuse two per-document rankings of passage ids; a document keeps the passage of the ranking
        it stands higher in (dense on a tie)."""
        doc_of = self.snap.docs.doc_keys([p for p, _ in dense] + [p for p, _ in sparse])
        passage: dict[int, tuple[int, int]] = {}  # document -> (rank, passage id)
        for ranking in (dense, sparse):
            for rank, (pid, _) in enumerate(ranking):
                dk = doc_of.get(pid)
                if dk is not None and (dk not in passage or rank < passage[dk][0]):
                    passage[dk] = (rank, pid)
        by_doc = [[(doc_of[p], s) for p, s in ranking if p in doc_of] for ranking in (dense, sparse)]
        return [(passage[dk][1], score) for dk, score in fuse(by_doc[0], by_doc[1], fusion, dense_weight)]

    def _hits(self, groups: list[list[tuple[int, float]]], k: int) -> list[list[Hit]]:
        """Read the top ``k`` of each ranking back from the document store as hits."""
        wanted = sorted({pid for g in groups for pid, _ in g[:k]})
        stored = self.snap.docs.fetch(wanted)
        out: list[list[Hit]] = []
        for g in groups:
            hits = []
            for pid, score in g:
                sp = stored.get(pid)
                if sp is None:
                    continue
                hits.append(
                    Hit(
                        id=sp.doc_id,
                        score=float(score),
                        text=sp.text,
                        metadata=sp.metadata,
                        source=sp.source,
                        rank=len(hits) + 1,
                        passage=PassageRef(sp.index, sp.count, sp.start, sp.end, sp.text[sp.start : sp.end]),
                    )
                )
                if len(hits) == k:
                    break
            out.append(hits)
        return out

    def _group(self, scores: Sequence[float], ids: Sequence[int]) -> list[tuple[int, float]]:
        """Best passage per document, in score order (documents are resolved later by passage id)."""
        seen_docs: dict[int, None] = {}
        out = []
        valid = [(int(i), float(s)) for i, s in zip(ids, scores) if i >= 0]
        doc_of = self.snap.docs.doc_keys([i for i, _ in valid])
        for pid, score in valid:
            dk = doc_of.get(pid)
            if dk is None or dk in seen_docs:
                continue
            seen_docs[dk] = None
            out.append((pid, score))
        return out

    def missing_filter_keys(self, filter: Mapping[str, str]) -> tuple[list[str], list[str]]:  # noqa: A002
        """``(keys of filter that no document has, some field names that do exist)``: what to tell a
        user whose filtered search found nothing. Scans the documents, so call it only then."""
        conn = self.snap.docs.conn
        missing = [k for k in normalize_filter(filter) if not _fields.has_field(conn, k)]
        return missing, (_fields.some_fields(conn) if missing else [])


@contextlib.contextmanager
def _one_search_thread(active: bool) -> Iterator[None]:
    """Run FAISS with one OpenMP thread for a single-query search.

    FAISS parallelises Flat, HNSW and IVF searches over queries, so one query gains nothing from a
    thread team, but still pays for waking it: bench/index.py measured HNSW32 at 100k vectors
    p50 0.32 ms with one thread vs 8 ms with two on a busy 2-core machine (Flat 10 vs 48 ms).
    Per calling thread (an OpenMP ICV), restored afterwards; batches keep all threads.
    """
    if not active:
        yield
        return
    import faiss

    prev = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(prev)
