"""Retrieval evaluation: exact search in numpy, standard ranking metrics, and task adapters.

Metrics (binary relevance, ranking = descending score, ties broken by lower document number):

* ``recall@k`` - ``|relevant in top k| / |relevant|`` (the definition of sentence-transformers'
  ``InformationRetrievalEvaluator``, BEIR and MTEB; a differential test holds them equal).
* ``accuracy@1`` - the share of queries whose first result is relevant (the hit rate; Tatoeba-style
  accuracy, reported as ``accuracy`` by translation tasks). With one relevant document per query
  it equals ``recall@1``.
* ``mrr@10`` - reciprocal rank of the first relevant document in the top 10 (else 0).
* ``ndcg@10`` - DCG with gain 1 and discount ``1/log2(rank + 1)`` over the top 10, divided by the
  DCG of an ideal ranking.

Adapters turn files into :class:`RetrievalTask` objects: :func:`bitext_tasks` (translation
retrieval both ways), :func:`squad_task` (question -> paragraph, optionally cross-lingual) and
:func:`english_check_task` (English -> English with words dropped).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..encoding.protocols import DocumentEncoder
from ..errors import DataError, InputError
from .labelled_data import read_squad, read_table

__all__ = [
    "RetrievalTask",
    "bitext_tasks",
    "english_check_task",
    "evaluate_retrieval",
    "evaluate_task",
    "load_qrels_files",
    "retrieval_metrics",
    "search_topk",
    "squad_task",
]

K_VALUES = (1, 5, 10)
_BLOCK_FLOATS = 1 << 24  # a query-block x corpus score matrix holds at most this many floats (64 MiB)


# ------------------------------------------------------------------------------------- search
def _topk_block(scores: np.ndarray, k: int) -> np.ndarray:
    """Top-k document numbers per row, best first, ties broken by lower document number."""
    n_docs = scores.shape[1]
    k = min(k, n_docs)
    if k >= n_docs:
        return np.argsort(-scores, axis=1, kind="stable")
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=-1)
    top = np.take_along_axis(part, order, axis=1)
    # argpartition picks arbitrarily among values tied with the k-th: redo those rows exactly.
    kth = vals.min(axis=1)
    tied = np.flatnonzero((scores >= kth[:, None]).sum(axis=1) > k)
    for r in tied:
        top[r] = np.argsort(-scores[r], kind="stable")[:k]
    return top


def search_topk(
    queries: np.ndarray,
    docs: np.ndarray,
    k: int,
    *,
    doc_groups: np.ndarray | None = None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Exact inner-product search: ``(n_queries, min(k, n_docs))`` document numbers, best first.

    Queries are scored in blocks so the score matrix never exceeds ~64 MiB (100k documents fit).
    ``doc_groups`` (sorted group number per row of ``docs``) scores a group by its best row: used
    when long documents were split into passages.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    d = np.ascontiguousarray(docs, dtype=np.float32)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise InputError(f"embedding shapes do not match: queries {q.shape}, documents {d.shape}")
    starts = None
    n_out = d.shape[0]
    if doc_groups is not None:
        g = np.asarray(doc_groups)
        if g.shape[0] != d.shape[0] or np.any(np.diff(g) < 0):
            raise InputError("doc_groups must give a non-decreasing group number per document row")
        starts = np.flatnonzero(np.concatenate(([True], g[1:] != g[:-1])))
        n_out = starts.size
    if chunk_size is None:
        chunk_size = max(1, _BLOCK_FLOATS // max(1, d.shape[0]))
    out = np.empty((q.shape[0], min(k, n_out)), dtype=np.int64)
    for s in range(0, q.shape[0], chunk_size):
        block = q[s : s + chunk_size] @ d.T
        if starts is not None:
            block = np.maximum.reduceat(block, starts, axis=1)
        out[s : s + chunk_size] = _topk_block(block, k)
    return out


# ------------------------------------------------------------------------------------ metrics
def _metrics_from_topk(top: np.ndarray, qrels: Sequence[Iterable[int]], n_docs: int) -> dict[str, Any]:
    kmax = max(K_VALUES)
    discounts = 1.0 / np.log2(np.arange(2, kmax + 2))
    recall = {k: 0.0 for k in K_VALUES}
    mrr = ndcg = hit1 = 0.0
    for i, rel in enumerate(qrels):
        rel_set = set(rel)
        hits = np.fromiter(
            (int(j) in rel_set for j in top[i, :kmax]), dtype=bool, count=min(kmax, top.shape[1])
        )
        for k in K_VALUES:
            recall[k] += hits[:k].sum() / len(rel_set)
        hit1 += float(hits[:1].sum())
        first = np.flatnonzero(hits)
        if first.size:
            mrr += 1.0 / (first[0] + 1)
        dcg = float(discounts[: hits.size][hits].sum())
        idcg = float(discounts[: min(len(rel_set), kmax)].sum())
        ndcg += dcg / idcg
    n = len(qrels)
    out: dict[str, Any] = {f"recall@{k}": float(recall[k] / n) for k in K_VALUES}
    out["accuracy@1"] = float(hit1 / n)
    out["mrr@10"] = float(mrr / n)
    out["ndcg@10"] = float(ndcg / n)
    out["n_queries"] = n
    out["n_docs"] = int(n_docs)
    return out


def _check_qrels(qrels: Sequence[Iterable[int]], n_queries: int, n_docs: int) -> list[set[int]]:
    if len(qrels) != n_queries:
        raise InputError(
            f"{n_queries} queries but {len(qrels)} qrel sets: give one set of relevant ids per query"
        )
    if n_queries == 0:
        raise InputError("no queries to evaluate")
    out = []
    for i, rel in enumerate(qrels):
        s = {int(j) for j in rel}
        if not s:
            raise InputError(f"query #{i} has no relevant documents: drop it or add a qrel")
        bad = [j for j in s if j < 0 or j >= n_docs]
        if bad:
            raise InputError(f"query #{i}: relevant document {bad[0]} is out of range (corpus has {n_docs})")
        out.append(s)
    return out


def retrieval_metrics(
    scores: np.ndarray,
    qrels: Sequence[Iterable[int]],
    doc_embeddings: np.ndarray | None = None,
    *,
    chunk_size: int | None = None,
) -> dict[str, Any]:
    """Recall@1/5/10, MRR@10, nDCG@10 for a ranking (see the module docstring for definitions).

    Either ``scores`` is a ``(n_queries, n_docs)`` score matrix, or ``scores`` holds query
    embeddings and ``doc_embeddings`` the corpus embeddings (scored by inner product in blocks).
    ``qrels[i]`` is the set of relevant document numbers of query ``i``.

    >>> retrieval_metrics(np.eye(3), [{0}, {1}, {2}])["ndcg@10"]
    1.0
    """
    s = np.asarray(scores)
    if doc_embeddings is None:
        if s.ndim != 2:
            raise InputError(f"scores must be a 2-d (queries x documents) matrix, got shape {s.shape}")
        rel = _check_qrels(qrels, s.shape[0], s.shape[1])
        top = np.concatenate(
            [
                _topk_block(s[i : i + 4096].astype(np.float64), max(K_VALUES))
                for i in range(0, s.shape[0], 4096)
            ]
        )
        return _metrics_from_topk(top, rel, s.shape[1])
    d = np.asarray(doc_embeddings)
    rel = _check_qrels(qrels, s.shape[0], d.shape[0])
    top = search_topk(s, d, max(K_VALUES), chunk_size=chunk_size)
    return _metrics_from_topk(top, rel, d.shape[0])


def evaluate_retrieval(
    encoder: DocumentEncoder,
    queries: Sequence[str],
    corpus: Sequence[str],
    qrels: Sequence[Iterable[int]],
    *,
    split_passages: bool = False,
) -> dict[str, Any]:
    """Encode ``queries`` (``encode_query``) and ``corpus`` (``encode_document``), search, score.

    With ``split_passages`` long documents are cut by ``encoder.split_passages`` (as the index
    does) and a document scores as its best passage, instead of being truncated by the model.
    """
    rel = _check_qrels(qrels, len(queries), len(corpus))
    groups = None
    texts = list(corpus)
    if split_passages and hasattr(encoder, "split_passages"):
        texts, g = [], []
        for i, doc in enumerate(corpus):
            for p in encoder.split_passages(doc):
                texts.append(doc[p.start : p.end])
                g.append(i)
        groups = np.asarray(g, dtype=np.int64)
    q = encoder.encode_query(list(queries))
    d = encoder.encode_document(texts)
    top = search_topk(q, d, max(K_VALUES), doc_groups=groups)
    out = _metrics_from_topk(top, rel, len(corpus))
    if groups is not None:
        out["n_passages"] = int(groups.size)
    return out


# -------------------------------------------------------------------------------------- tasks
@dataclass
class RetrievalTask:
    """A retrieval test set: ``qrels[i]`` holds the numbers of ``corpus`` documents relevant to ``queries[i]``.

    ``aliases`` adds extra names for metrics in the result (``{"accuracy": "accuracy@1"}``).
    """

    name: str
    queries: list[str]
    corpus: list[str]
    qrels: list[set[int]]
    description: str = ""
    aliases: dict[str, str] = field(default_factory=dict)
    split_passages: bool = False

    def __len__(self) -> int:
        return len(self.queries)


def evaluate_task(encoder: DocumentEncoder, task: RetrievalTask) -> dict[str, Any]:
    """:func:`evaluate_retrieval` on a task, with its metric aliases added."""
    out = evaluate_retrieval(
        encoder, task.queries, task.corpus, task.qrels, split_passages=task.split_passages
    )
    for alias, metric in task.aliases.items():
        out[alias] = out[metric]
    return out


class _Interner:
    """Numbers unique strings in order of first appearance."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.items: list[str] = []

    def __call__(self, text: str) -> int:
        i = self.ids.get(text)
        if i is None:
            i = self.ids[text] = len(self.items)
            self.items.append(text)
        return i


def _task_name(path: str | Path) -> str:
    stem = Path(path).name
    for suffix in (".tsv", ".json", ".txt"):
        stem = stem.removesuffix(suffix)
    return re.sub(r"-(tur-eng|eng-tur|tr-en|en-tr)$", "", stem)


def bitext_tasks(
    path: str | Path, name: str | None = None, *, limit: int | None = None
) -> list[RetrievalTask]:
    """Translation retrieval both ways from a bitext TSV (header row with ``tr`` and ``en`` columns).

    Returns ``[<name>.tr-en, <name>.en-tr]``. In ``tr-en`` every distinct Turkish sentence is a query
    and the corpus is every distinct English sentence; the relevant documents are the English
    sentences it is paired with. Identical strings are merged on both sides, so a sentence that
    occurs twice is one document (retrieving "the other copy" cannot count as a miss) and a query
    that occurs twice is asked once with all its translations relevant. ``accuracy@1`` is also
    reported as ``accuracy`` (Tatoeba-style: the first result is one of the translations).
    ``limit`` keeps the first N pairs.
    """
    name = name or _task_name(path)
    rows = read_table(path, ("tr", "en"), what="bitext", fmt="tsv", limit=limit, allow_empty=True)
    tr, en = _Interner(), _Interner()
    tr2en: dict[int, set[int]] = {}
    en2tr: dict[int, set[int]] = {}
    for row in rows:
        if not row["tr"] or not row["en"]:
            continue
        t, e = tr(row["tr"]), en(row["en"])
        tr2en.setdefault(t, set()).add(e)
        en2tr.setdefault(e, set()).add(t)
    if not tr.items:
        raise DataError(f"bitext file {str(path)!r} has no rows with both a tr and an en sentence")
    aliases = {"accuracy": "accuracy@1"}
    return [
        RetrievalTask(
            f"{name}.tr-en",
            list(tr.items),
            list(en.items),
            [tr2en[i] for i in range(len(tr.items))],
            description=f"Turkish -> English translation retrieval ({Path(path).name})",
            aliases=aliases,
        ),
        RetrievalTask(
            f"{name}.en-tr",
            list(en.items),
            list(tr.items),
            [en2tr[i] for i in range(len(en.items))],
            description=f"English -> Turkish translation retrieval ({Path(path).name})",
            aliases=dict(aliases),
        ),
    ]


def squad_task(
    path: str | Path,
    aligned_path: str | Path | None = None,
    *,
    name: str | None = None,
    limit: int | None = None,
) -> RetrievalTask:
    """Question -> paragraph retrieval from a SQuAD v1.1 JSON file (e.g. TQuAD).

    The corpus is the distinct paragraphs of ``path`` (those without questions too, as
    distractors); each question's relevant document is its own paragraph. With ``aligned_path`` (a SQuAD file in another language whose question ids
    match, e.g. English SQuAD for Turkish TQuAD) the queries are the aligned file's questions and
    the corpus stays ``path``'s paragraphs: cross-lingual question -> paragraph retrieval. Questions
    whose id is missing from the aligned file are left out. Long paragraphs are split into
    passages at evaluation time (a paragraph scores as its best passage). ``limit`` keeps the
    first N questions (the corpus stays whole).
    """
    squad = read_squad(path)
    paras = _Interner()
    doc_of = [paras(ctx) for ctx in squad.paragraphs]
    selected = squad.questions[:limit] if limit is not None else squad.questions
    if aligned_path is None:
        queries = [q.question for q in selected]
        qrels = [{doc_of[q.paragraph]} for q in selected]
        desc = f"question -> paragraph retrieval ({Path(path).name})"
    else:
        other = {q.id: q.question for q in read_squad(aligned_path, what="aligned SQuAD JSON").questions}
        queries, qrels = [], []
        for q in selected:
            if q.id in other:
                queries.append(other[q.id])
                qrels.append({doc_of[q.paragraph]})
        if not queries:
            raise DataError(
                f"no question id of {str(path)!r} occurs in the aligned file {str(aligned_path)!r}: "
                "the two files must share question ids"
            )
        desc = (
            f"cross-lingual question -> paragraph retrieval ({Path(aligned_path).name} -> {Path(path).name})"
        )
    default = _task_name(path) + (f".{_task_name(aligned_path)}" if aligned_path is not None else "")
    return RetrievalTask(
        name or default, queries, list(paras.items), qrels, description=desc, split_passages=True
    )


def english_check_task(
    paths: str | Path | Sequence[str | Path],
    *,
    drop: float = 0.3,
    seed: int = 0,
    min_words: int = 4,
    column: str = "en",
    name: str = "english-check",
    limit: int | None = None,
) -> RetrievalTask:
    """English -> English retrieval from the English side of bitext files: is English quality kept?

    Construction: the corpus is every distinct sentence of the ``column`` (default ``en``) column
    of all ``paths`` together. Every corpus sentence with at least ``min_words`` whitespace-separated
    words becomes a query with ``round(drop * n_words)`` of its words removed (at least one removed,
    at least one kept; positions drawn with ``numpy.random.default_rng(seed)``, word order kept),
    and its only relevant document is the original sentence. A model that lost English semantics
    during Turkish training drops on this task while an English model scores near 1. Headline
    metric: ``ndcg@10``. ``limit`` keeps the first N rows of each file.
    """
    if not 0.0 < drop < 1.0:
        raise InputError(f"drop {drop} must be between 0 and 1")
    if isinstance(paths, (str, Path)):
        paths = [paths]
    sents = _Interner()
    for p in paths:
        for row in read_table(p, (column,), what="bitext", fmt="tsv", limit=limit, allow_empty=True):
            if row[column]:
                sents(row[column])
    rng = np.random.default_rng(seed)
    queries: list[str] = []
    qrels: list[set[int]] = []
    for i, sent in enumerate(sents.items):
        words = sent.split()
        n = len(words)
        if n < min_words:
            continue
        n_drop = min(n - 1, max(1, int(round(drop * n))))
        gone = set(rng.choice(n, size=n_drop, replace=False).tolist())
        queries.append(" ".join(w for j, w in enumerate(words) if j not in gone))
        qrels.append({i})
    if not queries:
        raise DataError(
            f"no {column!r} sentence with at least {min_words} words in {', '.join(map(str, paths))}"
        )
    return RetrievalTask(
        name,
        queries,
        list(sents.items),
        qrels,
        description=f"English sentences with {drop:.0%} of words dropped -> the original ({len(paths)} file(s))",
    )


def load_qrels_files(
    queries_path: str | Path, corpus_path: str | Path, qrels_path: str | Path, *, name: str = "custom"
) -> RetrievalTask:
    """A task from three TSV files with header rows (BEIR-like).

    * queries: ``id``, ``text``
    * corpus: ``id``, ``text`` (an optional ``title`` column is not used)
    * qrels: ``query_id``, ``doc_id`` and optionally ``score`` (rows with score <= 0 are ignored);
      ``query-id`` / ``corpus-id`` headers are accepted too.

    Queries without a relevant document are left out; a qrel naming an unknown id is an error.
    """
    qrows = read_table(queries_path, ("id", "text"), what="queries", fmt="tsv", allow_empty=True)
    crows = read_table(corpus_path, ("id", "text"), what="corpus", fmt="tsv", allow_empty=True)
    aliases = {"query_id": ("query-id", "qid"), "doc_id": ("corpus-id", "docid", "corpus_id", "pid")}
    rrows = read_table(
        qrels_path, ("query_id", "doc_id"), what="qrels", fmt="tsv", optional=("score",), aliases=aliases
    )
    doc_num: dict[str, int] = {}
    corpus: list[str] = []
    for r in crows:
        if r["id"] in doc_num:
            raise DataError(f"corpus file {str(corpus_path)!r}: document id {r['id']!r} occurs twice")
        doc_num[r["id"]] = len(corpus)
        corpus.append(r["text"])
    qtext = {r["id"]: r["text"] for r in qrows}
    rel: dict[str, set[int]] = {}
    for r in rrows:
        try:
            if float(r.get("score", "1") or "1") <= 0:
                continue
        except ValueError as exc:
            raise DataError(f"qrels file {str(qrels_path)!r}: score {r['score']!r} is not a number") from exc
        if r["query_id"] not in qtext:
            raise DataError(
                f"qrels file {str(qrels_path)!r}: query id {r['query_id']!r} is not in {str(queries_path)!r}"
            )
        if r["doc_id"] not in doc_num:
            raise DataError(
                f"qrels file {str(qrels_path)!r}: document id {r['doc_id']!r} is not in {str(corpus_path)!r}"
            )
        rel.setdefault(r["query_id"], set()).add(doc_num[r["doc_id"]])
    queries = [qtext[r["id"]] for r in qrows if r["id"] in rel]
    qrels = [rel[r["id"]] for r in qrows if r["id"] in rel]
    if not queries:
        raise DataError(f"qrels file {str(qrels_path)!r} gives no query a relevant document")
    return RetrievalTask(
        name, queries, corpus, qrels, description="queries/corpus/qrels TSV files", split_passages=True
    )
