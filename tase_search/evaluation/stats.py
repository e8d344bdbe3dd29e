"""Small statistics in numpy: average ranks, Pearson, Spearman and ROC-AUC (no scipy/sklearn)."""

from __future__ import annotations

import numpy as np


def average_ranks(x: np.ndarray | list[float]) -> np.ndarray:
    """1-based ranks of ``x`` with tied values given the average of the ranks they span.

    >>> average_ranks([10, 20, 20, 30]).tolist()
    [1.0, 2.5, 2.5, 4.0]
    """
    a = np.asarray(x, dtype=np.float64).ravel()
    n = a.size
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    order = np.argsort(a, kind="mergesort")
    s = a[order]
    bounds = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1], [True])))  # tie-group starts + n
    avg = (bounds[:-1] + bounds[1:] - 1) / 2.0 + 1.0
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(avg, np.diff(bounds))
    return ranks


def pearson(x: np.ndarray | list[float], y: np.ndarray | list[float]) -> float:
    """Pearson correlation; NaN when either side is constant or there are fewer than 2 points."""
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if a.size != b.size:
        raise ValueError(f"pearson: {a.size} vs {b.size} values")
    if a.size < 2:
        return float("nan")
    a = a - a.mean()
    b = b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    if denom == 0:
        return float("nan")
    return float((a * b).sum() / denom)


def spearman(x: np.ndarray | list[float], y: np.ndarray | list[float]) -> float:
    """Spearman's rho: Pearson of the average ranks (the standard tie handling)."""
    return pearson(average_ranks(x), average_ranks(y))


def roc_auc(positives: np.ndarray | list[float], negatives: np.ndarray | list[float]) -> float:
    """Area under the ROC curve for scores of positives vs negatives (Mann-Whitney U / (n+ n-)).

    Equals the probability that a random positive scores above a random negative, ties counting
    half. 1.0 = perfectly separable, 0.5 = no better than chance.
    """
    pos = np.asarray(positives, dtype=np.float64).ravel()
    neg = np.asarray(negatives, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    ranks = average_ranks(np.concatenate([pos, neg]))
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))
