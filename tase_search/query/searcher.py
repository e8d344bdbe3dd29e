"""Search: one opened generation queried in the dense, sparse, hybrid or auto mode, grouped by document.

A query is answered in passages (vectors and keyword rows are per passage) and returned in documents:
each document keeps its best passage. Dense candidates come from the vector index (filters become an
allow-list of passage ids, tombstones a deny-list), sparse ones from the keyword (FTS5) part; hybrid
fuses the two per document (:mod:`tase_search.query.fusion`). ``auto`` picks per query by its language
against the corpus's (:mod:`tase_search.query.modes`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..results import Hit, PassageRef
from ..store import fields as _fields
from ..store.snapshot import Snapshot
from ..text.language import corpus_language, detect_language
from ..text.normalize import clean_document, is_blank
from . import modes as _modes
from .calibration import Calibration, Logistic
from .filters import COLUMNS, Filter, fields, parse_filter
from .fusion import fuse, fusion_names

MAX_K = 10_000
#: A filtered vector search pre-filters when the payload index narrows the filter to fewer than this
#: share (1/N) of the documents, or :data:`PREFILTER_MIN`; otherwise it post-filters (see
#: :meth:`Searcher._dense_filtered`). Measured (bench/filters.py): the pre-filter's SQL costs about
#: 4 µs a kept document, an unfiltered Flat search about 0.1 µs a vector at 384 dimensions.
PREFILTER_SHARE = 50
PREFILTER_MIN = 1000
#: The most nearest passages a post-filtered search checks before it pre-filters instead.
POSTFILTER_MAX = 4096
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
    min_score: float | None = None  # hits scoring below it are left out
    highlight: bool = False  # name each hit's best-answering sentence (tase_search.text.highlight)
    rerank: int = 0  # rerank the first max(rerank, k) hits with ``reranker`` (tase_search.query.rerank)
    reranker: Any = None  # a Reranker (anything with ``rerank(query, hits, limit=)``) when rerank > 0


@dataclass
class Scored:
    """A candidate passage with its raw parts (None: that part did not run) and its score."""

    pid: int
    score: float
    dense: float | None = None
    keyword: float | None = None
    #: what its probability is computed from (:data:`tase_search.query.calibration.FEATURES`)
    features: Mapping[str, float] | None = None


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
    if fusion not in fusion_names():
        raise InputError(f"fusion {fusion!r} is not one of {', '.join(fusion_names())}")
    if dense_weight is not None:
        weight_ok = isinstance(dense_weight, (int, float)) and not isinstance(dense_weight, bool)
        if not (weight_ok and 0 <= dense_weight <= 1):
            raise InputError(f"dense_weight={dense_weight!r} is not valid: give a number from 0 to 1")
    return Request(queries, single, min(k, MAX_K), requested, mode is not None, fusion, dense_weight)


class Searcher:
    """Searches one opened generation; queries are encoded by ``encode_query`` (a query encoder's
    ``encode_query``), called only for the queries searched by vectors."""

    def __init__(
        self,
        path: Path,
        snap: Snapshot,
        encode_query: Callable[[list[str]], np.ndarray],
        calibration: Calibration | None = None,
        keyword_calibration: Logistic | None = None,
    ) -> None:
        self.path = path
        self.snap = snap
        self._encode_query = encode_query
        self._corpus_language: object = _UNKNOWN  # the documents' language, sampled when first needed
        #: the index's model's calibration (None: scores are cosines / fused scores, see calibration.py)
        self.calibration = calibration
        #: the keyword-only regression for sparse mode (model-independent; from any calibration file)
        self.keyword_calibration = (
            calibration.modes.get("sparse") if calibration else None
        ) or keyword_calibration
        #: a background vector that stands in for the calibration's (what the fit measures with)
        self.background: np.ndarray | None = None
        #: per search, per query, the hits' features while :meth:`recording_features` runs
        self._features: list[list[tuple[str, dict[str, float]]]] | None = None

    def search(self, req: Request, filter: Filter | None) -> list[list[Hit]]:  # noqa: A002
        """The hits of each query of ``req``, in order, among the documents ``filter`` keeps."""
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
        fetch = max(req.k, req.rerank) if req.rerank else req.k
        results = self._search_modes(cleaned, chosen, weights, fetch, parse_filter(filter), req.fusion)
        if req.rerank:
            results = [
                req.reranker.rerank(q, hits, limit=req.k) if _reads(req.reranker, q) else hits[: req.k]
                for q, hits in zip(cleaned, results)
            ]
        if req.min_score is not None:
            results = [[h for h in hits if h.score >= req.min_score] for hits in results]
            results = [[dataclasses.replace(h, rank=i + 1) for i, h in enumerate(hits)] for hits in results]
        if req.highlight:
            from ..text.highlight import highlight_hits

            results = [
                highlight_hits(q, hits, None if m == "sparse" else self._encode_query)
                for q, hits, m in zip(cleaned, results, chosen)
            ]
        return results

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
        flt: Filter | None,
        fusion: str | None,
    ) -> list[list[Hit]]:
        """Each query in its mode: dense and sparse candidates (``HYBRID_DEPTH`` documents each for
        hybrid), scored (:meth:`_score_dense`, :meth:`_score_sparse`, :meth:`_score_hybrid`), then the
        top ``k`` read back. A filter restricts the vector search (:meth:`_dense_filtered`) and is the
        same SQL condition on the keyword part's rows."""
        depth = max(k, _modes.HYBRID_DEPTH)
        dense: list[list[tuple[int, float]]] = [[] for _ in queries]
        vectors: dict[int, np.ndarray] = {}
        dense_at = [i for i, m in enumerate(modes) if m != "sparse"]
        if dense_at:
            qv = self._encode_query([queries[i] for i in dense_at])
            # at least two candidates: a hit's lead over the next one is part of its probability
            n = depth if any(modes[i] == "hybrid" for i in dense_at) else max(k, 2)
            found = self._dense_groups(qv, n, None) if flt is None else self._dense_filtered(qv, n, flt)
            for j, (i, g) in enumerate(zip(dense_at, found)):
                dense[i] = g
                vectors[i] = qv[j]
        scored: list[tuple[list[Scored], str]] = []
        for i, m in enumerate(modes):
            if m == "dense":
                scored.append(self._score_dense(dense[i], vectors[i]))
                continue
            sparse = self._sparse_groups(queries[i], max(k, 2) if m == "sparse" else depth, flt)
            if m == "sparse":
                scored.append(self._score_sparse(queries[i], sparse))
            else:
                scored.append(
                    self._score_hybrid(queries[i], vectors[i], dense[i], sparse, fusion, weights[i], k)
                )
        return self._hits(scored, modes, k)

    def _score_dense(self, dense: list[tuple[int, float]], qvec: np.ndarray) -> tuple[list[Scored], str]:
        """Dense hits: the calibrated probability of the cosine (its lead, gap, rank), else the cosine."""
        f = self.calibration.modes.get("dense") if self.calibration else None
        feats = _dense_features([c for _, c in dense], self._background_cosine(qvec))
        if f is None:
            return [Scored(p, c, c, None, x) for (p, c), x in zip(dense, feats)], "cosine"
        return [Scored(p, f.of(x), c, None, x) for (p, c), x in zip(dense, feats)], "probability"

    def _background_cosine(self, qvec: np.ndarray) -> float | None:
        """The query's mean cosine to the calibration's background sentences (None: no background, or
        one of another dimension)."""
        bg = self.background
        if bg is None and self.calibration is not None and self.calibration.background is not None:
            bg = np.asarray(self.calibration.background, dtype=np.float32)
        if bg is None or bg.shape != np.shape(qvec):
            return None
        return float(np.dot(bg, qvec))

    def _keyword_scores(
        self, weights: Sequence[tuple[list[str], float]], bm25: Mapping[int, float], pids: Sequence[int]
    ) -> dict[int, float]:
        """Each passage's BM25 divided by what the query typically scores (the sum of its words'
        ``weights``, :func:`tase_search.store.sparse.group_weights`)."""
        norm = sum(w for _, w in weights)
        return {p: (bm25.get(p, 0.0) / norm if norm > 0 else 0.0) for p in pids}

    def _score_sparse(self, query: str, sparse: list[tuple[int, float]]) -> tuple[list[Scored], str]:
        """Keyword hits: the calibrated probability of the normalised keyword score (its lead, the
        passage's coverage of the query), capped at the score of the hit above; else that score."""
        pids = [p for p, _ in sparse]
        weights = self.snap.docs.sparse_query_weights(query)
        kw = self._keyword_scores(weights, dict(sparse), pids)
        f = self.keyword_calibration
        cov: dict[int, float] = {}
        if pids and (self._features is not None or (f is not None and f.coverage)):
            cov = self.snap.docs.sparse_coverage(weights, pids)
        lead = _leads([kw[p] for p in pids], floor=0.0)
        feats = [
            {"keyword": kw[p], "keyword_lead": lead[i], "coverage": cov.get(p, 0.0), "top": float(i == 0)}
            for i, p in enumerate(pids)
        ]
        if f is None:
            return [Scored(p, kw[p], None, kw[p], x) for p, x in zip(pids, feats)], "keyword"
        out: list[Scored] = []
        cap = 1.0
        for p, x in zip(pids, feats):
            cap = min(cap, f.of(x))
            out.append(Scored(p, cap, None, kw[p], x))
        return out, "probability"

    def _score_hybrid(
        self,
        query: str,
        qvec: np.ndarray,
        dense: list[tuple[int, float]],
        sparse: list[tuple[int, float]],
        fusion: str,
        dense_weight: float,
        k: int,
    ) -> tuple[list[Scored], str]:
        """The first ``k`` hybrid hits, ranked by :meth:`_fuse`. Every candidate of either side gets both
        parts (the cosine of a passage only the keyword side found is computed from its stored vector,
        the BM25 of one only the dense side found by a keyword query on that passage). With a calibrated model a
        hit's score is its probability, capped at the score of the hit ranked above it (the fused
        ranking, measured best, is kept, and scores still fall down the list); else the fused value."""
        cos = dict(dense)
        bm25 = dict(sparse)
        pids = list(dict.fromkeys([p for p, _ in dense] + [p for p, _ in sparse]))
        missing = [p for p in pids if p not in cos]
        if missing:
            cos.update(self._cosines(qvec, missing, min(cos.values(), default=0.0)))
        missing = [p for p in pids if p not in bm25]
        if missing:
            bm25.update(self.snap.docs.sparse_scores_of(query, missing))
        weights = self.snap.docs.sparse_query_weights(query)
        kw = self._keyword_scores(weights, bm25, pids)
        # the first k of the fused ranking are the hits (a hit's score depends only on those above it)
        fused = sorted(self._fuse(dense, sparse, fusion, dense_weight), key=lambda x: -x[1])[:k]
        d_lead = dict(zip(pids, _leads([cos[p] for p in pids])))
        k_lead = dict(zip(pids, _leads([kw[p] for p in pids], floor=0.0)))
        f = self.calibration.modes.get("hybrid") if self.calibration else None
        cov: dict[int, float] = {}
        if fused and (self._features is not None or (f is not None and f.coverage)):
            cov = self.snap.docs.sparse_coverage(weights, [p for p, _ in fused])
        bg = self._background_cosine(qvec)
        feats = [
            {
                "dense": cos[p],
                "keyword": kw[p],
                "dense_lead": d_lead[p],
                "keyword_lead": k_lead[p],
                "dense_gap": cos[p] - bg if bg is not None else 0.0,
                "coverage": cov.get(p, 0.0),
                "top": float(i == 0),
            }
            for i, (p, _) in enumerate(fused)
        ]
        if f is None:
            return [Scored(p, v, cos.get(p), kw.get(p), x) for (p, v), x in zip(fused, feats)], "fused"
        out: list[Scored] = []
        cap = 1.0
        for (p, _), x in zip(fused, feats):
            cap = min(cap, f.of(x))
            out.append(Scored(p, cap, cos[p], kw[p], x))
        return out, "probability"

    def _cosines(self, qvec: np.ndarray, pids: Sequence[int], fallback: float) -> dict[int, float]:
        """The query's score against stored passage vectors; ``fallback`` (the dense side's lowest, an
        upper bound) for an index type that cannot give its vectors back."""
        from ..store.stored_vectors import vectors_by_pid

        try:
            vecs = vectors_by_pid(self.snap.vectors, pids)
        except (KeyError, RuntimeError, AttributeError):
            return dict.fromkeys(pids, fallback)
        return {p: float(v) for p, v in zip(pids, vecs @ np.asarray(qvec, dtype=np.float32))}

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

    def _dense_filtered(self, qv: np.ndarray, k: int, flt: Filter) -> list[list[tuple[int, float]]]:
        """The best ``k`` documents ``flt`` keeps for each query vector, by the cheaper of two exact ways.

        Pre-filtering: the passage ids the filter keeps (one SQL query, from the payload index when it
        narrows the filter) restrict the vector search. Its cost grows with the documents kept, so it
        is taken when the index says they are few (under 1/:data:`PREFILTER_SHARE` of the corpus).
        Otherwise post-filtering: the nearest passages without the filter, checked by SQL, more of
        them until ``k`` documents pass; the same answer, since the nearest that pass are the nearest
        of those kept. When that needs more than :data:`POSTFILTER_MAX` passages (few documents
        pass after all), pre-filtering takes over."""
        docs = self.snap.docs
        cap = max(PREFILTER_MIN, self.snap.manifest.documents // PREFILTER_SHARE)
        kept = docs.candidate_count(flt, cap)
        if kept is None or kept >= cap:
            post = self._post_filtered(qv, k, flt)
            if post is not None:
                return post
        allow = docs.pid_array(flt)
        if len(allow) == 0:
            return [[] for _ in range(len(qv))]
        return self._dense_groups(qv, k, allow)

    def _post_filtered(self, qv: np.ndarray, k: int, flt: Filter) -> list[list[tuple[int, float]]] | None:
        """Post-filtering (see :meth:`_dense_filtered`); None when it would need too many passages."""
        total = self.snap.vectors.ntotal
        if total == 0:
            return [[] for _ in range(len(qv))]
        k_search = min(total, 4 * max(k * 2, k + 8))
        passed: dict[int, bool] = {}  # passage id -> whether the filter keeps its document
        with _one_search_thread(len(qv) == 1 and self.snap.manifest.backend == "faiss"):
            while True:
                scores, ids = self.snap.vectors.search(qv, k_search, deny=self.snap.deny)
                new = sorted({int(i) for i in ids.ravel() if i >= 0 and int(i) not in passed})
                kept = self.snap.docs.pids_among(flt, new)
                passed.update((p, p in kept) for p in new)
                grouped = []
                for row_s, row_i in zip(scores, ids):
                    hits = [(float(sc), int(i)) for sc, i in zip(row_s, row_i) if i >= 0 and passed[int(i)]]
                    grouped.append(self._group([sc for sc, _ in hits], [i for _, i in hits]))
                if all(len(g) >= k for g in grouped) or k_search >= total:
                    return [g[:k] for g in grouped]
                if k_search >= POSTFILTER_MAX:
                    return None
                k_search = min(total, k_search * 4, POSTFILTER_MAX)

    def _sparse_groups(self, query: str, k: int, flt: Filter | None) -> list[tuple[int, float]]:
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

    def _hits(self, scored: list[tuple[list[Scored], str]], modes: Sequence[str], k: int) -> list[list[Hit]]:
        """Read the top ``k`` of each ranking (best score first) back from the document store as hits."""
        ranked = [(sorted(g, key=lambda s: -s.score), kind) for g, kind in scored]
        wanted = sorted({s.pid for g, _ in ranked for s in g[:k]})
        stored = self.snap.docs.fetch(wanted)
        out: list[list[Hit]] = []
        for (g, kind), mode in zip(ranked, modes):
            hits = []
            found: list[tuple[str, dict[str, float]]] = []
            for s in g:
                sp = stored.get(s.pid)
                if sp is None:
                    continue
                hits.append(
                    Hit(
                        id=sp.doc_id,
                        score=float(s.score),
                        text=sp.text,
                        metadata=sp.metadata,
                        source=sp.source,
                        rank=len(hits) + 1,
                        passage=PassageRef(sp.index, sp.count, sp.start, sp.end, sp.text[sp.start : sp.end]),
                        mode=mode,
                        dense_score=s.dense,
                        keyword_score=s.keyword,
                        score_kind=kind,
                    )
                )
                if self._features is not None:
                    found.append((sp.doc_id, dict(s.features or {})))
                if len(hits) == k:
                    break
            out.append(hits)
            if self._features is not None:
                self._features.append(found)
        return out

    @contextlib.contextmanager
    def recording_features(self) -> Iterator[list[list[tuple[str, dict[str, float]]]]]:
        """Within the block, each search appends, per query, its hits' ``(document id, features)``:
        what ``tase-search eval calibrate`` fits the score regressions on, computed where the search
        computes them. Not for concurrent use."""
        self._features = []
        try:
            yield self._features
        finally:
            self._features = None

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

    def missing_filter_keys(
        self,
        filter: Filter | Mapping[str, object] | None,  # noqa: A002
    ) -> tuple[list[str], list[str]]:
        """``(keys of filter that no document has, some field names that do exist)``: what to tell a
        user whose filtered search found nothing. Scans the documents, so call it only then."""
        conn = self.snap.docs.conn
        keys = [k for k in fields(parse_filter(filter)) if k not in COLUMNS]
        missing = [k for k in keys if not _fields.has_field(conn, k)]
        return missing, (_fields.some_fields(conn) if missing else [])


def _dense_features(values: Sequence[float], background: float | None) -> list[dict[str, float]]:
    """Each dense candidate's features (``values``: the cosines, best first; ``background``: the
    query's mean cosine to the background sentences)."""
    lead = _leads(values)
    return [
        {
            "dense": c,
            "dense_lead": lead[i],
            "dense_gap": c - background if background is not None else 0.0,
            "top": float(i == 0),
        }
        for i, c in enumerate(values)
    ]


def _leads(values: Sequence[float], floor: float | None = None) -> list[float]:
    """How far each value leads the best of the others (0 for all but the first). ``floor`` is what the
    passages that are not candidates score (keywords: 0, they hold no query word), the lead of a sole
    candidate; None: unknown, no lead."""
    if not values:
        return []
    order = sorted(range(len(values)), key=lambda i: -values[i])
    second = values[order[1]] if len(values) > 1 else floor
    out = [0.0] * len(values)
    if second is not None:
        out[order[0]] = max(0.0, values[order[0]] - second)
    return out


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


def _reads(reranker: Any, query: str) -> bool:
    """Whether ``reranker`` reads ``query``: every query, unless it reads questions only
    (:mod:`.question`)."""
    if not getattr(reranker, "questions_only", False):
        return True
    from .question import is_question

    return is_question(query)
