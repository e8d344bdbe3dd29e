#!/usr/bin/env python
"""Dense vs sparse vs hybrid search quality on the dev sets, through real indexes.

Each task's corpus is indexed with ``Retriever.build`` (the model given by ``--model``, the keyword
part on) and its queries searched with ``Retriever.search(..., mode=M)`` for every mode, so passages,
one hit per document and fusion are measured exactly as users get them. Query vectors are computed
once per task and reused by every mode. Tasks:

* ``tquad`` (tr->tr): TQuAD dev questions -> their paragraph (all 275 paragraphs indexed);
* ``titles`` (tr names): every TQuAD dev article title as a query; right = any paragraph of that
  article; ``top1`` counts titles whose first hit is right (``top1_of_first_25``: the first 25 titles);
* ``titles-en`` (en->tr names): English renderings of 38 of those titles (``bench/data/tquad-titles-en.tsv``,
  written for this benchmark) against the same Turkish paragraphs;
* ``<bitext>.tr-en`` and ``<bitext>.en-tr`` for each ``--bitext`` TSV: a sentence -> its translation.

Metrics: ``hit@1``, ``hit@5``, ``mrr@10`` (one relevant set per query). Modes: ``dense``, ``sparse``,
``hybrid`` (the default fusion and dense weight, ``tase_search.query.modes``), ``auto`` (the default mode
per query language, ``tase_search.query.modes.AUTO``); ``--variants`` adds reciprocal rank fusion (``rrf``,
dense weight 0.5 and 0.8) and weighted scores at fixed dense weights (``w-d0.3`` ... ``w-d0.8``), to
choose the defaults from; ``--rerank N`` adds ``dense+rrN`` and ``auto+rrN`` (the top N of that mode
reranked by ``--reranker``, ``Retriever.search(..., rerank=N)``) and ``...-blend`` (ranked by the mean of
the reranker's probability and the first stage's, ``Reranker.blend``); a pair is scored once for all
four, so their ``seconds`` after the first are not the reranker's cost. Score calibration
(``tase_search.query.calibration``) changes no ranking, so none
of these numbers. The table is printed on stderr (markdown) and is in the JSON.

    python bench/hybrid.py --model default --limit 300 --out runs/bench/hybrid.json \\
        --tquad /work/shared/data/tquad/dev-v0.1.json \\
        --bitext /work/shared/data/bitext/dev/tatoeba-dev-tur-eng.tsv /work/shared/data/bitext/dev/newstest2018-tur-eng.tsv
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

TITLES_EN = Path(__file__).resolve().parent / "data" / "tquad-titles-en.tsv"
MODES: dict[str, dict[str, Any]] = {
    "dense": {"mode": "dense"},
    "sparse": {"mode": "sparse"},
    "hybrid": {"mode": "hybrid"},
    "auto": {"mode": "auto"},
}
VARIANTS: dict[str, dict[str, Any]] = {
    "rrf": {"mode": "hybrid", "fusion": "rrf", "dense_weight": 0.5},
    "rrf-d0.8": {"mode": "hybrid", "fusion": "rrf", "dense_weight": 0.8},
    "w-d0.3": {"mode": "hybrid", "fusion": "weighted", "dense_weight": 0.3},
    "w-d0.5": {"mode": "hybrid", "fusion": "weighted", "dense_weight": 0.5},
    "w-d0.7": {"mode": "hybrid", "fusion": "weighted", "dense_weight": 0.7},
    "w-d0.8": {"mode": "hybrid", "fusion": "weighted", "dense_weight": 0.8},
}
K = 10


@dataclass
class Task:
    name: str
    language: str  # of the queries
    queries: list[str]
    corpus: list[str]
    relevant: list[set[int]]
    corpus_key: str  # tasks with the same key share one index


# ----------------------------------------------------------------------------- tasks
def _tquad(path: Path, limit: int | None) -> list[Task]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    paragraphs: list[str] = []
    questions: list[tuple[str, int]] = []
    articles: dict[str, set[int]] = {}
    for article in data:
        for para in article["paragraphs"]:
            text = para["context"].strip()
            if not text:
                continue
            paragraphs.append(text)
            articles.setdefault(article["title"], set()).add(len(paragraphs) - 1)
            questions += [
                (q["question"].strip(), len(paragraphs) - 1) for q in para["qas"] if q["question"].strip()
            ]
    questions = questions[:limit] if limit else questions
    key = f"tquad:{path}"
    tasks = [
        Task("tquad", "tr", [q for q, _ in questions], paragraphs, [{p} for _, p in questions], key),
        Task("titles", "tr", list(articles), paragraphs, list(articles.values()), key),
    ]
    if TITLES_EN.is_file():
        en, rel = [], []
        with TITLES_EN.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
                found = [articles[t.strip()] for t in row["title"].split(" | ") if t.strip() in articles]
                if found:
                    en.append(row["query"])
                    rel.append(set().union(*found))
        tasks.append(Task("titles-en", "en", en, paragraphs, rel, key))
    return tasks


def _bitext(path: Path, limit: int | None) -> list[Task]:
    name = path.name.removesuffix(".tsv").removesuffix("-tur-eng")
    tr: dict[str, int] = {}
    en: dict[str, int] = {}
    tr2en: dict[int, set[int]] = {}
    en2tr: dict[int, set[int]] = {}
    rows = C.read_tsv(path, ["tr", "en"])
    for row in rows[:limit] if limit else rows:
        if row["tr"] and row["en"]:
            t, e = tr.setdefault(row["tr"], len(tr)), en.setdefault(row["en"], len(en))
            tr2en.setdefault(t, set()).add(e)
            en2tr.setdefault(e, set()).add(t)
    return [
        Task(f"{name}.tr-en", "tr", list(tr), list(en), [tr2en[i] for i in range(len(tr))], f"en:{path}"),
        Task(f"{name}.en-tr", "en", list(en), list(tr), [en2tr[i] for i in range(len(en))], f"tr:{path}"),
    ]


# ----------------------------------------------------------------------------- encoder with a query cache
class CachedQueries:
    """The encoder, with each query's vector computed once (every mode asks for the same queries)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def encode_query(self, texts: Sequence[str] | str, **kw: Any) -> Any:
        import numpy as np

        items = [texts] if isinstance(texts, str) else list(texts)
        missing = list(dict.fromkeys(t for t in items if t not in self._cache))
        if missing:
            for t, v in zip(missing, self._inner.encode_query(missing, **kw)):
                self._cache[t] = v
        return np.stack([self._cache[t] for t in items]).astype(np.float32)


def _rerankers(spec: str | None) -> tuple[Any, Any]:
    """The reranker twice, ranking by its probability alone and blended with the first stage's
    (:attr:`Reranker.blend`), sharing one model and one memo of pair scores: each (query, passage)
    pair is read once whatever the variants, and the timing of the first variant is the real one."""
    import copy

    import numpy as np

    from tase_search.query.rerank import DEFAULT_RERANKER, Reranker

    rr = Reranker.load(spec or DEFAULT_RERANKER)
    real, memo = rr.score, {}

    def score(query: str, passages: Sequence[str]) -> Any:
        missing = [p for p in dict.fromkeys(passages) if (query, p) not in memo]
        if missing:
            memo.update(((query, p), float(v)) for p, v in zip(missing, real(query, missing)))
        return np.asarray([memo[(query, p)] for p in passages], dtype=np.float64)

    rr.score = score  # type: ignore[method-assign]
    alone, blended = copy.copy(rr), copy.copy(rr)
    alone.blend, blended.blend = False, True
    return alone, blended


# ----------------------------------------------------------------------------- evaluation
def _metrics(ranked: list[list[int]], relevant: list[set[int]]) -> dict[str, float]:
    n = len(ranked)
    h1 = h5 = mrr = 0.0
    for ids, rel in zip(ranked, relevant):
        for r, i in enumerate(ids[:K]):
            if i in rel:
                h1 += r == 0
                h5 += r < 5
                mrr += 1 / (r + 1)
                break
    return {"hit@1": round(h1 / n, 4), "hit@5": round(h5 / n, 4), "mrr@10": round(mrr / n, 4), "queries": n}


def _run_task(r: Any, task: Task, modes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "language": task.language,
        "queries": len(task.queries),
        "corpus": len(task.corpus),
    }
    for label, how in modes.items():
        how = dict(how)
        if "reranker" in how:  # this variant's reranker, as Retriever.load(reranker=...) would set it
            r._reranker = how.pop("reranker")
        t0 = time.perf_counter()
        results = r.search(task.queries, k=K, **how)
        seconds = time.perf_counter() - t0
        ranked = [[int(h.id) for h in hits] for hits in results]
        m = _metrics(ranked, task.relevant)
        m["seconds"] = round(seconds, 3)
        if task.name == "titles":
            tops = [bool(ids) and ids[0] in rel for ids, rel in zip(ranked, task.relevant)]
            m["top1"] = f"{sum(tops)}/{len(tops)}"
            m["top1_of_first_25"] = f"{sum(tops[:25])}/{min(25, len(tops))}"
        out[label] = m
    return out


def table(results: dict[str, Any], modes: Sequence[str]) -> str:
    """The markdown table: one row per task, hit@1 / hit@5 / MRR@10 per mode (titles: top-1 count)."""
    head = "| task | queries |" + "".join(f" {m} |" for m in modes)
    lines = [head, "|---|---:|" + "---|" * len(modes)]
    for name, res in results.items():
        cells = []
        for m in modes:
            x = res[m]
            cell = f"{x['hit@1']:.3f} / {x['hit@5']:.3f} / {x['mrr@10']:.3f}"
            if "top1" in x:
                cell = f"**{x['top1']}** ({x['top1_of_first_25']} of first 25); " + cell
            cells.append(cell)
        lines.append(f"| {name} ({res['language']}) | {res['queries']} |" + "".join(f" {c} |" for c in cells))
    return "\n".join(lines)


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default", help="Model spec (registered name, directory, hub id).")
    p.add_argument("--tquad", type=Path, default=None, help="TQuAD (SQuAD v1.1) dev JSON.")
    p.add_argument("--bitext", type=Path, nargs="*", default=[], help="Bitext TSVs with tr and en columns.")
    p.add_argument("--limit", type=int, default=None, help="First N TQuAD questions / bitext pairs.")
    p.add_argument("--variants", action="store_true", help="Also fusion variants (to choose the defaults).")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="torch threads.")
    p.add_argument("--quick", action="store_true", help="A smoke run: 40 queries / pairs per task.")
    p.add_argument("--rerank", type=int, default=0, help="Also rerank the top N of dense and auto (0: no).")
    p.add_argument("--reranker", default=None, help="Reranker spec (default: the bundled tase-rerank-tr).")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    from tase_search.encoding.encoder import Encoder
    from tase_search.retriever import Retriever

    limit = 40 if a.quick else a.limit
    tasks = (_tquad(a.tquad, limit) if a.tquad else []) + [t for b in a.bitext for t in _bitext(b, limit)]
    if not tasks:
        p.error("give --tquad and/or --bitext")
    modes = {**MODES, **(VARIANTS if a.variants else {})}
    if a.rerank:
        alone, blended = _rerankers(a.reranker)
        for base in ("dense", "auto"):
            modes[f"{base}+rr{a.rerank}"] = {"mode": base, "rerank": a.rerank, "reranker": alone}
            modes[f"{base}+rr{a.rerank}-blend"] = {"mode": base, "rerank": a.rerank, "reranker": blended}
    encoder = CachedQueries(Encoder.load(a.model, batch_size=a.batch_size))
    result: dict[str, Any] = {
        "machine": C.machine_facts(),
        "model": a.model,
        "k": K,
        "limit": limit,
        "rerank": a.rerank,
        "reranker": a.reranker or ("tase-rerank-tr" if a.rerank else None),
        "rerank_variants": "+rrN: ranked by the reranker's probability; +rrN-blend: by the mean of it and the first stage's",
    }
    results: dict[str, Any] = {}
    indexing: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="tase-hybrid-") as tmp:
        built: dict[str, Any] = {}
        for task in tasks:
            r = built.get(task.corpus_key)
            if r is None:
                t0 = time.perf_counter()
                docs = [{"id": str(i), "text": t} for i, t in enumerate(task.corpus)]
                r = Retriever.build(docs, model=encoder, path=Path(tmp) / f"ix{len(built)}", factory="Flat")
                indexing[task.corpus_key] = round(time.perf_counter() - t0, 2)
                built[task.corpus_key] = r
            results[task.name] = _run_task(r, task, modes)
            print(
                f"{task.name}: " + ", ".join(f"{m} {results[task.name][m]['mrr@10']:.3f}" for m in modes),
                file=sys.stderr,
                flush=True,
            )
    result["results"] = results
    result["indexing_seconds"] = indexing
    result["table_markdown"] = table(results, list(modes))
    return C.finish(result, a.out, result["table_markdown"])


if __name__ == "__main__":
    run()
