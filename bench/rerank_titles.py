#!/usr/bin/env python
"""Can the reranker help name and title queries? Query renderings and fusions, measured side by side.

The bundled reranker was trained on questions; on a bare title ("Oxygen", "Uluğ Bey") it reorders
worse than the search, so it reads questions only (``rerank.json``). This script measures the ways
around that which need no new weights, on ``bench/hybrid.py``'s tasks (TQuAD questions, Turkish
titles, English titles over the same Turkish paragraphs), over ``auto``'s top ``--rerank`` hits:

* query renderings the reranker reads: as given (``raw``), or a non-question asked as a question,
  ``"{q} nedir?"`` for a Turkish query and ``"What is {q}?"`` for an English one (``question``);
* fusions of its probability ``r`` with the search's calibrated probability ``s``: the search alone
  (``search``), ``r`` alone, the mean (what ships for questions), the geometric mean, and reciprocal
  rank fusion of the two rankings (k = 60).

MRR@10 per task, rendering and fusion, with the CPU class recorded.

    python bench/rerank_titles.py --tquad /path/to/data/tquad/dev-v0.1.json --limit 150 --out runs/bench/rerank_titles.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
import hybrid as H  # noqa: E402

FUSIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "search": lambda r, s: s,
    "reranker": lambda r, s: r,
    "mean": lambda r, s: (r + s) / 2,
    "geometric": lambda r, s: np.sqrt(r * s),
    "rrf": lambda r, s: 1 / (60 + _ranks(r)) + 1 / (60 + _ranks(s)),
}


def _ranks(v: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(-v, kind="stable"), kind="stable").astype(np.float64)


def render(query: str, language: str, how: str) -> str:
    """The query as the reranker reads it (questions are always read as given)."""
    from tase_search.query.question import is_question

    if how == "raw" or is_question(query):
        return query
    return f"What is {query}?" if language == "en" else f"{query} nedir?"


def _mrr(ranked: list[list[int]], relevant: list[set[int]]) -> float:
    total = 0.0
    for ids, rel in zip(ranked, relevant):
        total += next((1 / (r + 1) for r, i in enumerate(ids[: H.K]) if i in rel), 0.0)
    return round(total / max(len(ranked), 1), 4)


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tquad", type=Path, required=True, help="TQuAD (SQuAD v1.1) dev JSON.")
    p.add_argument("--model", default="default", help="Encoder spec.")
    p.add_argument("--reranker", default=None, help="Reranker spec (default: the bundled tase-rerank-tr).")
    p.add_argument("--limit", type=int, default=150, help="First N TQuAD questions (titles: all).")
    p.add_argument("--rerank", type=int, default=20, help="Hits of auto read again.")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)

    from tase_search import Retriever
    from tase_search.encoding.encoder import Encoder
    from tase_search.query.rerank import DEFAULT_RERANKER, Reranker

    tasks = H._tquad(a.tquad, a.limit)
    reranker = Reranker.load(a.reranker or DEFAULT_RERANKER)
    encoder = H.CachedQueries(Encoder.load(a.model))
    results: dict[str, Any] = {}
    memo: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="tase-rerank-titles-") as tmp:
        docs = [{"id": str(i), "text": t} for i, t in enumerate(tasks[0].corpus)]
        r = Retriever.build(docs, model=encoder, path=Path(tmp) / "ix", factory="Flat")
        for task in tasks:
            found = r.search(task.queries, k=a.rerank, mode="auto")
            rows: dict[str, dict[str, float]] = {}
            for how in ("raw", "question"):
                ranked: dict[str, list[list[int]]] = {name: [] for name in FUSIONS}
                for q, hits in zip(task.queries, found):
                    ids = [int(h.id) for h in hits]
                    s = np.asarray([h.score for h in hits], dtype=np.float64)
                    asked = render(q, task.language, how)
                    key = (asked, tuple(ids))
                    if key not in memo:  # a question reads the same under both renderings
                        memo[key] = reranker.score(asked, [h.text for h in hits])
                    rr = memo[key]
                    for name, fuse in FUSIONS.items():
                        v = fuse(rr, s)
                        ranked[name].append(
                            [ids[i] for i in sorted(range(len(ids)), key=lambda i: (-v[i], i))]
                        )
                rows[how] = {name: _mrr(ranked[name], task.relevant) for name in FUSIONS}
            results[task.name] = {"queries": len(task.queries), "mrr@10": rows}
            print(f"{task.name}: {rows}", file=sys.stderr)
    lines = [
        "| task | queries | rendering | " + " | ".join(FUSIONS) + " |",
        "|---|---|---|" + "---|" * len(FUSIONS),
    ]
    for name, res in results.items():
        for how, row in res["mrr@10"].items():
            lines.append(
                f"| {name} | {res['queries']} | {how} | "
                + " | ".join(f"{row[f]:.3f}" for f in FUSIONS)
                + " |"
            )
    out = {
        "machine": C.machine_facts(),
        "model": a.model,
        "reranker": a.reranker or DEFAULT_RERANKER,
        "rerank": a.rerank,
        "limit": a.limit,
        "results": results,
        "table_markdown": "\n".join(lines),
    }
    return C.finish(out, a.out, out["table_markdown"])


if __name__ == "__main__":
    run()
