#!/usr/bin/env python
"""Filtered search: latency by selectivity, and recall against an exact filtered search.

No model: N documents get random unit vectors (an encoder stand-in, one passage each) and random
metadata, so what is timed is the store: the filter's SQL (the passage ids it keeps), the vector
search restricted to them, and reading the hits back. Queries are random unit vectors too.

Filters, by the share of documents they keep (``bucket`` is a random permutation of 0..9999, so each
selectivity is exact whatever N is a multiple of 10,000):

* 50%: ``{"bucket": {"$lt": 5000}}`` (a number range);
* 1%: ``{"topic": "k042"}`` (string equality) and ``{"tags": "h42", "year": {"$gte": 2000}}``
  (list membership and a range, AND);
* 0.01%: ``{"bucket": 4242}``; and ``{"id": {"$in": [10 ids]}}`` (the id column's index).

For each: the first search with the filter (the process has not seen it: its SQL runs, its rows are
copied side by side), then p50/p95 of ``Retriever.search(mode="dense", k=10)`` one query at a time with
the same filter (answered from the filter cache, :mod:`tase_search.store.filter_cache`, as a service's
repeated filters are), p50 of the SQL alone with the cache emptied (``DocStore.pids_matching``), and a
1% case whose filter is new at every query (the uncached cost); how many documents matched (checked against the Python evaluator
:func:`tase_search.query.filters.matches`), and recall@10 against brute force over the matching
documents' vectors. Plus the same search without a filter, for scale.

    python bench/filters.py --n 100000 --out runs/bench/filters-100k.json
    python bench/filters.py --n 1000000 --queries 50 --out runs/bench/filters-1m.json
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

BUCKETS = 10_000


class RandomUnitVectors:
    """An encoder stand-in: random unit vectors, one passage per document. Keeps what it made, so the
    benchmark can search them exactly."""

    model_id = "random-unit-vectors"
    max_seq_length = 512
    query_prompt = None
    passage_prompt = None

    def __init__(self, dimension: int, seed: int = 0) -> None:
        self.dimension = dimension
        self.fingerprint = hashlib.blake2b(f"random:{dimension}".encode(), digest_size=16).hexdigest()
        self._docs = np.random.default_rng(seed)
        self._queries = np.random.default_rng(seed + 1)
        self.documents: list[np.ndarray] = []
        self.last_query: np.ndarray | None = None

    def _unit(self, rng: np.random.Generator, n: int) -> np.ndarray:
        v = rng.standard_normal((n, self.dimension)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def encode_document(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        v = self._unit(self._docs, len(texts))
        self.documents.append(v)
        if progress is not None:
            progress(len(texts))
        return v

    def encode_query(self, texts: Sequence[str] | str, *, batch_size: int | None = None) -> np.ndarray:
        self.last_query = self._unit(self._queries, 1 if isinstance(texts, str) else len(texts))
        return self.last_query

    def split_passages(self, text: str, overlap: int = 32) -> list[Any]:
        from tase_search.encoding.passages import Passage

        return [Passage(0, len(text), 0, 1)]


def _metadata(n: int, seed: int) -> list[dict[str, Any]]:
    """Random metadata; ``bucket`` is a permutation of 0..9999 repeated, so selectivities are exact."""
    rng = np.random.default_rng(seed)
    buckets = np.concatenate([rng.permutation(BUCKETS) for _ in range(-(-n // BUCKETS))])[:n]
    years = rng.integers(1990, 2026, n)
    out = []
    for i in range(n):
        b = int(buckets[i])
        out.append(
            {
                "bucket": b,
                "topic": f"k{b // 100:03d}",  # 100 topics, 1% each
                "tags": [f"g{b % 7}", f"h{b % 100}"],
                "year": int(years[i]) if b % 100 != 42 else 2000 + int(years[i]) % 26,
                "title": f"başlık {i} şehir",
            }
        )
    return out


def _filters(n: int) -> dict[str, tuple[str, dict[str, Any]]]:
    ids = [str(i) for i in np.random.default_rng(7).choice(n, size=min(10, n), replace=False)]
    return {
        "50%: bucket < 5000": ("50%", {"bucket": {"$lt": 5000}}),
        "1%: topic = k042": ("1%", {"topic": "k042"}),
        "1%: tags has h42 and year >= 2000": ("1%", {"tags": "h42", "year": {"$gte": 2000}}),
        "0.01%: bucket = 4242": ("0.01%", {"bucket": 4242}),
        "0.01%: id in 10 ids": (f"{len(ids)} docs", {"id": {"$in": ids}}),
    }


def _build(
    n: int, dim: int, factory: str | None, sparse: bool, tmp: Path
) -> tuple[Any, Any, list[Any], float]:
    from tase_search.retriever import Retriever

    enc = RandomUnitVectors(dim)
    metas = _metadata(n, seed=1)
    docs = ({"id": str(i), "text": metas[i]["title"], **metas[i]} for i in range(n))
    t0 = time.perf_counter()
    r = Retriever.build(docs, model=enc, path=tmp / "idx", factory=factory, sparse=sparse)
    return r, enc, metas, time.perf_counter() - t0


def _docs_bytes(m: Any) -> int:
    """The size of the index's document stores (every segment's; a format-1 generation's own)."""
    entries = m.segments or [{"files": m.files}]
    return sum(int(s["files"]["docs.sqlite"]["bytes"]) for s in entries)


def _measure(
    r: Any, enc: RandomUnitVectors, metas: list[dict[str, Any]], queries: int, k: int
) -> dict[str, Any]:
    from tase_search.query.filters import matches

    vectors = np.concatenate(enc.documents)
    store = r._open().snap.docs
    r.search("ısınma", k=k, mode="dense")  # open the files outside the timing
    out: dict[str, Any] = {}
    cases: dict[str, tuple[str, dict[str, Any] | None]] = {
        "no filter": ("100%", None),
        **_filters(len(metas)),
    }
    for label, (share, flt) in cases.items():
        keep = (
            np.arange(len(metas))
            if flt is None
            else np.array(
                [i for i, m in enumerate(metas) if matches(flt, m, doc_id=str(i), source="<python>")],
                dtype=np.int64,
            )
        )
        sql_times = []
        if flt is not None:
            for _ in range(min(queries, 20)):
                _forget_filters()
                t0 = time.perf_counter()
                pids = store.pids_matching(flt)
                sql_times.append(time.perf_counter() - t0)
            assert len(pids) == len(keep), (label, len(pids), len(keep))  # the SQL equals the evaluator
        _forget_filters()
        times, recalls, first = [], [], None
        for _ in range(queries):
            t0 = time.perf_counter()
            hits = r.search("sorgu", k=k, filter=flt, mode="dense")
            times.append(time.perf_counter() - t0)
            first = times[0]
            assert enc.last_query is not None
            scores = vectors[keep] @ enc.last_query[0]
            top = keep[np.argsort(-scores, kind="stable")[:k]]
            exact = {str(i) for i in top}
            found = {h.id for h in hits}
            recalls.append(len(exact & found) / len(exact) if exact else float(not found))
        pct = C.percentiles_ms(times)
        xs = sorted(times)
        out[label] = {
            "selectivity": share,
            "matched": int(len(keep)),
            "first_search_ms": round(1000 * (first or 0.0), 3),
            "search_p50_ms": pct["p50_ms"],
            "search_p95_ms": round(xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))] * 1000, 3),
            "sql_p50_ms": C.percentiles_ms(sql_times).get("p50_ms"),
            "recall_at_k": round(float(np.mean(recalls)), 4),
        }
        print(f"  {label}: {out[label]}", file=sys.stderr, flush=True)
    out["1%: topic, a filter never seen before each query"] = _unseen_filters(
        r, enc, metas, vectors, queries, k
    )
    return out


def _forget_filters() -> None:
    """Empty the filter cache and the copied row blocks, so the next search is a filter's first."""
    try:
        from tase_search.store import filter_cache, gather
    except ImportError:  # a store without them
        return
    filter_cache.CACHE = filter_cache.FilterCache()
    gather.BLOCKS = gather.BlockCache()


def _unseen_filters(
    r: Any, enc: RandomUnitVectors, metas: list[dict[str, Any]], vectors: np.ndarray, queries: int, k: int
) -> dict[str, Any]:
    """1% filters, each query's one new to the process (the caches emptied before it): the cost of a
    filter the first time, which a service pays once per filter and segment."""
    from tase_search.query.filters import matches

    topics = np.array([m["topic"] for m in metas])
    times, recalls = [], []
    for i in range(queries):
        flt = {"topic": f"k{(i * 37) % 100:03d}"}
        keep = np.flatnonzero(topics == flt["topic"])
        assert all(matches(flt, metas[j]) for j in keep[:5])
        _forget_filters()
        t0 = time.perf_counter()
        hits = r.search("sorgu", k=k, filter=flt, mode="dense")
        times.append(time.perf_counter() - t0)
        assert enc.last_query is not None
        top = keep[np.argsort(-(vectors[keep] @ enc.last_query[0]), kind="stable")[:k]]
        recalls.append(len({str(j) for j in top} & {h.id for h in hits}) / k)
    xs = sorted(times)
    res = {
        "selectivity": "1%",
        "matched": int(len(metas) // 100),
        "first_search_ms": None,
        "search_p50_ms": C.percentiles_ms(times)["p50_ms"],
        "search_p95_ms": round(xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))] * 1000, 3),
        "sql_p50_ms": None,
        "recall_at_k": round(float(np.mean(recalls)), 4),
    }
    print(f"  unseen 1% filters: {res}", file=sys.stderr, flush=True)
    return res


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="Documents (random unit vectors).")
    p.add_argument("--dim", type=int, default=384, help="Vector dimension (the default model's).")
    p.add_argument("--queries", type=int, default=100, help="Queries per filter, one at a time.")
    p.add_argument("-k", type=int, default=10)
    p.add_argument(
        "--factory", default="Flat", help="FAISS factory ('Flat': exact; 'auto': as an index chooses)."
    )
    p.add_argument("--sparse", action="store_true", help="Build the keyword part too (slower to build).")
    p.add_argument("--workdir", type=Path, default=None, help="Where the index goes (default: a temp dir).")
    p.add_argument("--quick", action="store_true", help="A smoke run: 2,000 documents, 5 queries.")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    n, queries = (2000, 5) if a.quick else (a.n, a.queries)
    factory = None if a.factory == "auto" else a.factory
    result: dict[str, Any] = {
        "machine": C.machine_facts(),
        "n": n,
        "dim": a.dim,
        "k": a.k,
        "queries": queries,
    }
    with tempfile.TemporaryDirectory(prefix="tase-filters-", dir=a.workdir) as tmp:
        r, enc, metas, seconds = _build(n, a.dim, factory, a.sparse, Path(tmp))
        result["build_seconds"] = round(seconds, 1)
        result["factory"] = r.manifest.factory
        result["docs_sqlite_bytes"] = _docs_bytes(r.manifest)
        result["segments"] = len(r.manifest.segments) or 1
        print(f"built {n:,} documents in {seconds:.1f} s ({result['factory']})", file=sys.stderr, flush=True)
        result["filters"] = _measure(r, enc, metas, queries, a.k)
        r.close()
    lines = [f"{n:,} documents, dim {a.dim}, {result['factory']}:"]
    for label, m in result["filters"].items():
        lines.append(
            f"  {label:<36} matched {m['matched']:>8,}  first {_ms(m['first_search_ms'])} ms  "
            f"search p50 {m['search_p50_ms']:8.2f} ms  "
            f"p95 {m['search_p95_ms']:8.2f} ms  sql p50 {_ms(m['sql_p50_ms'])} ms  recall {m['recall_at_k']}"
        )
    return C.finish(result, a.out, "\n".join(lines))


def _ms(value: float | None) -> str:
    return "       -" if value is None else f"{value:8.2f}"


if __name__ == "__main__":
    run()
