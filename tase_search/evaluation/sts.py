"""Semantic textual similarity: Spearman (and Pearson) between cosine similarity and gold scores.

Input: a TSV with a header row and columns ``score``, ``sentence1``, ``sentence2`` (STS-B style,
e.g. STSb-TR with scores 0-5). Each distinct sentence is encoded once with ``encode_query`` (a
symmetric task); Spearman uses average ranks for ties, as is standard.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..encoding.protocols import QueryEncoder
from ..errors import DataError
from .labelled_data import read_sts
from .stats import pearson, spearman

__all__ = ["evaluate_sts", "load_sts", "sts_metrics", "sts_scores"]


def load_sts(path: str | Path, *, limit: int | None = None) -> tuple[list[float], list[str], list[str]]:
    """``(scores, sentences1, sentences2)`` from an STS TSV (:func:`tase_search.evaluation.labelled_data.read_sts`)."""
    pairs = read_sts(path, limit=limit)
    if len(pairs) < 2:
        raise DataError(f"{path}: STS file needs at least two scored pairs for a correlation")
    return pairs.scores, pairs.sentences1, pairs.sentences2


def sts_metrics(gold: Sequence[float], emb1: np.ndarray, emb2: np.ndarray) -> dict[str, Any]:
    """Spearman/Pearson of the row-wise cosine of two unit-length embedding matrices against ``gold``."""
    cos = np.einsum("ij,ij->i", np.asarray(emb1, dtype=np.float64), np.asarray(emb2, dtype=np.float64))
    return {"spearman": spearman(cos, gold), "pearson": pearson(cos, gold), "n": int(len(gold))}


def evaluate_sts(encoder: QueryEncoder, path: str | Path, *, limit: int | None = None) -> dict[str, Any]:
    """``{"spearman", "pearson", "n"}`` for ``encoder`` on an STS TSV file."""
    return sts_scores(encoder, *load_sts(path, limit=limit))


def sts_scores(
    encoder: QueryEncoder, gold: Sequence[float], s1: Sequence[str], s2: Sequence[str]
) -> dict[str, Any]:
    """``{"spearman", "pearson", "n"}`` of ``encoder``'s cosines against ``gold`` for the pairs ``(s1[i], s2[i])``."""
    uniq = list(dict.fromkeys(s1 + s2))
    pos = {s: i for i, s in enumerate(uniq)}
    emb = encoder.encode_query(uniq)
    return sts_metrics(gold, emb[[pos[s] for s in s1]], emb[[pos[s] for s in s2]])
