"""Dev evaluation of a reranker: rerank an encoder's top-k and compare MRR@10 / R@1 with the encoder alone.

Two tasks, both on DEV files only: TQuAD question -> paragraph (Turkish), and Tatoeba English ->
Turkish sentence (English queries over Turkish text). The score reported for the reranker is its
ranking of the same candidates the encoder returned, so the gain is what ``--rerank k`` adds.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import data as tdata
from .rerank_data import read_squad_source

Scorer = Callable[[Sequence[tuple[str, str]]], np.ndarray]


def _mrr_at_10(ranked: Sequence[int], gold: int) -> float:
    for i, j in enumerate(ranked[:10]):
        if j == gold:
            return 1.0 / (i + 1)
    return 0.0


def rerank_task(
    queries: Sequence[str],
    gold: Sequence[int],
    passages: Sequence[str],
    encoder: Any,
    score: Scorer,
    *,
    top_k: int = 20,
) -> dict[str, float]:
    """MRR@10 and R@1 of the encoder's ranking and of ``score``'s reranking of its top ``top_k``."""
    pv = encoder.encode_document(list(passages))
    qv = encoder.encode_query(list(queries))
    dense_mrr, dense_r1, rr_mrr, rr_r1, recall_k = [], [], [], [], []
    t0 = time.perf_counter()
    for i, q in enumerate(queries):
        s = pv @ qv[i]
        top = [int(j) for j in np.argsort(-s)[:top_k]]
        dense_mrr.append(_mrr_at_10(top, gold[i]))
        dense_r1.append(float(top[0] == gold[i]))
        recall_k.append(float(gold[i] in top))
        probs = np.asarray(score([(q, passages[j]) for j in top]), dtype=np.float64)
        order = [top[j] for j in np.argsort(-probs, kind="stable")]
        rr_mrr.append(_mrr_at_10(order, gold[i]))
        rr_r1.append(float(order[0] == gold[i]))
    elapsed = time.perf_counter() - t0
    return {
        "queries": len(queries),
        "top_k": top_k,
        f"recall@{top_k}": float(np.mean(recall_k)),
        "dense_mrr@10": float(np.mean(dense_mrr)),
        "dense_r@1": float(np.mean(dense_r1)),
        "rerank_mrr@10": float(np.mean(rr_mrr)),
        "rerank_r@1": float(np.mean(rr_r1)),
        "rerank_seconds_per_query": elapsed / max(1, len(queries)),
    }


def evaluate(config: dict[str, Any], encoder: Any, score: Scorer, *, seed: int = 0) -> dict[str, Any]:
    """Both dev tasks named in ``config`` (keys ``tquad_dev``, ``bitext_dev``; ``top_k``; ``limit``)."""
    top_k = int(config.get("top_k", 20))
    limit = config.get("limit")
    out: dict[str, Any] = {}
    if config.get("tquad_dev"):
        src = read_squad_source(config["tquad_dev"], "tquad-dev")
        groups = list(src.groups)
        if limit:
            groups = random.Random(seed).sample(groups, min(int(limit), len(groups)))
        out["tquad_dev"] = rerank_task(
            [g.query for g in groups], [g.positive for g in groups], src.passages, encoder, score, top_k=top_k
        )
    if config.get("bitext_dev"):
        ds = tdata.read_pairs(config["bitext_dev"], ("en", "tr"))
        en, tr = list(ds["en"]), list(ds["tr"])
        idx = list(range(len(en)))
        if limit:
            idx = random.Random(seed).sample(idx, min(int(limit), len(idx)))
        out["tatoeba_dev_en_tr"] = rerank_task([en[i] for i in idx], idx, tr, encoder, score, top_k=top_k)
    return out


__all__ = ["evaluate", "rerank_task"]
