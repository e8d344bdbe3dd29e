#!/usr/bin/env python
"""Dev metrics of each document backend against the torch path (the quality bound a backend must keep).

Only documents change with a backend (queries keep the encoder's query path), so the tasks are the
dev retrieval sets, each run through :mod:`tase_search.evaluation` with the same queries: TQuAD dev
question -> paragraph (paragraphs split into passages as indexing splits them) and, per bitext TSV,
translation retrieval both ways. With ``--sts`` the STS dev set is scored with *both* sentences encoded
as documents (the path a backend replaces; the ordinary STS score uses queries and cannot move).
Every metric is reported in points (x100) with its change against ``torch``; ``within_0.5_points``
checks the bound (every metric of every task).

    python bench/backend_quality.py --tquad /work/shared/data/tquad/dev-v0.1.json \
        --bitext /work/shared/data/bitext/dev/tatoeba-dev-tur-eng.tsv --sts /work/shared/data/stsb-tr/dev.tsv
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

METRICS = ("accuracy@1", "recall@10", "mrr@10", "ndcg@10")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default")
    p.add_argument("--backends", default="ct2-int8", help="Comma-separated backends to compare with torch.")
    p.add_argument("--tquad", default=None, help="SQuAD-format dev JSON (TQuAD dev).")
    p.add_argument("--bitext", nargs="*", default=[], help="Bitext dev TSVs (tr, en columns).")
    p.add_argument("--sts", default=None, help="STS dev TSV, both sides encoded as documents.")
    p.add_argument("--limit", type=int, default=None, help="First N questions / pairs per task.")
    C.add_common_args(p)
    return p


class _DocumentsBothSides:
    """STS through ``encode_document`` on both sides."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder

    def encode_query(self, texts: Any) -> Any:
        return self.encoder.encode_document(list(texts))


def run(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    import torch

    from tase_search.encoding import backends
    from tase_search.encoding.encoder import Encoder
    from tase_search.evaluation.retrieval import bitext_tasks, evaluate_task, squad_task
    from tase_search.evaluation.sts import evaluate_sts

    if args.threads:
        torch.set_num_threads(args.threads)
    limit = 24 if args.quick else args.limit
    tasks = [squad_task(args.tquad, limit=limit)] if args.tquad else []
    for path in args.bitext:
        tasks += bitext_tasks(path, limit=limit)
    base = Encoder.load(args.model, precision="fp32")
    names = ["torch", *[b for b in args.backends.split(",") if b and b != "torch"]]
    scores: dict[str, dict[str, dict[str, float]]] = {}
    seconds: dict[str, float] = {}
    for name in names:
        enc = backends.with_backend(base, name, build=True)
        t0 = time.perf_counter()
        got = {}
        for task in tasks:
            res = evaluate_task(enc, task)
            got[task.name] = {m: round(100 * float(res[m]), 2) for m in METRICS if m in res}
        if args.sts:
            res = evaluate_sts(_DocumentsBothSides(enc), args.sts, limit=limit)
            got["sts-as-documents"] = {"spearman": round(100 * float(res["spearman"]), 2)}
        scores[name], seconds[name] = got, round(time.perf_counter() - t0, 1)
    deltas = {
        name: {
            t: {m: round(v - scores["torch"][t][m], 2) for m, v in ms.items()}
            for t, ms in scores[name].items()
        }
        for name in names
    }
    worst = {n: max((abs(d) for ms in deltas[n].values() for d in ms.values()), default=0.0) for n in names}
    result = {
        "benchmark": "backend_quality",
        "machine": C.machine_facts(),
        "config": {"model": args.model, "limit": limit, "tasks": [t.name for t in tasks], "sts": args.sts},
        "scores_points": scores,
        "delta_points_vs_torch": deltas,
        "worst_abs_delta_points": worst,
        "within_0.5_points": {n: worst[n] <= 0.5 for n in names},
        "seconds": seconds,
    }
    summary = "; ".join(f"{n}: worst |delta| {worst[n]} points" for n in names if n != "torch")
    return C.finish(result, args.out, f"backend_quality: {summary}")


if __name__ == "__main__":
    run()
