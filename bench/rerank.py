#!/usr/bin/env python
"""What reranking 20 passages costs: tase-search's Reranker on each CPU path against sentence-transformers'
``CrossEncoder.predict`` in fp32 (the obvious alternative), same model, same pairs, interleaved.

Each query is scored against ``--passages`` TQuAD dev paragraphs of about 150 tokens (120 to 180
pieces of the reranker's tokenizer), one query at a time, as ``--rerank 20`` does for one search.
Paths: ``fp32``; ``bf16`` (weights in bf16; measured only where the CPU runs bf16 natively, as
``precision="auto"`` picks it); ``int8`` (torch dynamic int8 quantisation of the linear layers). For
each: p50 / p90 seconds per query, the speed-up over ``CrossEncoder.predict``, and the largest
difference from fp32's probabilities.

    python bench/rerank.py --tquad /path/to/data/tquad/dev-v0.1.json --reranker tase-rerank-tr --out runs/bench/rerank.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


def _pairs(tquad: Path, tokenizer: Any, n_passages: int, n_queries: int) -> tuple[list[str], list[str]]:
    paras, questions = C.read_tquad(tquad)
    sized = [p for p in paras if 120 <= len(tokenizer(p)["input_ids"]) <= 180]
    if len(sized) < n_passages:
        sized = paras
    return sized[:n_passages], questions[:n_queries]


def run(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tquad", type=Path, required=True, help="TQuAD (SQuAD v1.1) dev JSON")
    p.add_argument("--reranker", default="tase-rerank-tr")
    p.add_argument("--passages", type=int, default=20)
    p.add_argument("--queries", type=int, default=12)
    C.add_common_args(p)
    a = p.parse_args(argv)
    if a.quick:
        a.passages, a.queries = 4, 2
    import torch
    from sentence_transformers import CrossEncoder

    from tase_search.query.rerank import Reranker
    from tase_search.runtime.cpu import cpu_class

    if a.threads:
        torch.set_num_threads(a.threads)
    fp32 = Reranker.load(a.reranker, precision="fp32")
    passages, queries = _pairs(a.tquad, fp32.tokenizer, a.passages, a.queries)
    paths: dict[str, Any] = {"fp32": fp32}
    if cpu_class() in ("amx", "avx512-bf16"):
        paths["bf16"] = Reranker.load(a.reranker, precision="bf16")
    int8 = Reranker.load(a.reranker, precision="int8")
    paths["int8"] = int8
    full = tempfile.TemporaryDirectory(prefix="rerank-full-")  # the same weights as a plain directory
    fp32.model.save_pretrained(full.name)
    fp32.tokenizer.save_pretrained(full.name)
    ce = CrossEncoder(full.name, device="cpu")

    def st(q: str) -> np.ndarray:
        logits = ce.predict([(q, x) for x in passages], batch_size=16, activation_fn=torch.nn.Identity())
        return 1 / (1 + np.exp(-np.asarray(logits, dtype=np.float64)))

    runners = {name: (lambda q, r=r: r.score(q, passages)) for name, r in paths.items()}
    runners["sentence-transformers CrossEncoder fp32"] = st
    for fn in runners.values():  # warm-up: shapes built, weights paged in
        fn(queries[0])
    times: dict[str, list[float]] = {k: [] for k in runners}
    scores: dict[str, list[np.ndarray]] = {k: [] for k in runners}
    for q in queries:
        for name, fn in runners.items():  # interleaved
            t0 = time.perf_counter()
            scores[name].append(np.asarray(fn(q), dtype=np.float64))
            times[name].append(time.perf_counter() - t0)
    ref = "sentence-transformers CrossEncoder fp32"
    ref_p50 = statistics.median(times[ref])
    out: dict[str, Any] = {
        "machine": C.machine_facts(),
        "reranker": a.reranker,
        "passages": len(passages),
        "queries": len(queries),
        "mean_tokens": round(float(np.mean([len(fp32.tokenizer(x)["input_ids"]) for x in passages])), 1),
        "paths": {},
    }
    for name in runners:
        xs = sorted(times[name])
        diff = max(float(np.abs(s - f).max()) for s, f in zip(scores[name], scores["fp32"]))
        out["paths"][name] = {
            "p50_s": round(statistics.median(xs), 4),
            "p90_s": round(xs[int(0.9 * (len(xs) - 1))], 4),
            "speedup_vs_crossencoder": round(ref_p50 / statistics.median(xs), 2),
            "max_abs_diff_vs_fp32": round(diff, 4),
        }
    summary = "; ".join(
        f"{k}: {v['p50_s'] * 1000:.0f} ms p50 (x{v['speedup_vs_crossencoder']}, diff {v['max_abs_diff_vs_fp32']})"
        for k, v in out["paths"].items()
    )
    return C.finish(out, a.out, f"{len(passages)} passages of ~{out['mean_tokens']} tokens: {summary}")


if __name__ == "__main__":
    run()
