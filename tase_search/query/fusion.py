"""Fusing a dense and a sparse ranking into one: reciprocal rank fusion or a weighted score.

Why two: reciprocal rank fusion (RRF, Cormack et al. 2009) needs no score calibration, which matters
because a cosine and a BM25 score live on unrelated scales (BM25 grows with query length and corpus
statistics); it is the default. The weighted score (each list's scores min-max scaled to 0..1 over
its own candidates, then ``w * dense + (1 - w) * sparse``) keeps how far apart candidates are, which
some corpora reward; it is the option.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

__all__ = ["FUSIONS", "RRF_K", "fuse", "rrf", "weighted"]

K = TypeVar("K", bound=Hashable)
FUSIONS = ("rrf", "weighted")
#: The rank offset of RRF: 60, as in the paper and most search engines.
RRF_K = 60


def rrf(
    dense: Sequence[K], sparse: Sequence[K], dense_weight: float = 0.5, k: int = RRF_K
) -> list[tuple[K, float]]:
    """Keys of both rankings (best first) by ``w / (k + rank_dense) + (1 - w) / (k + rank_sparse)``,
    ranks from 1, divided by ``1 / (k + 1)`` so that first in both is 1.0 (and first in one only, with
    equal weights, about 0.5); a key missing from a ranking gets nothing from it. Ties keep dense order
    first."""
    score: dict[K, float] = {}
    for weight, ranking in ((dense_weight, dense), (1.0 - dense_weight, sparse)):
        for rank, key in enumerate(ranking, 1):
            score[key] = score.get(key, 0.0) + weight * (k + 1) / (k + rank)
    return sorted(score.items(), key=lambda kv: -kv[1])


def weighted(
    dense: Sequence[tuple[K, float]], sparse: Sequence[tuple[K, float]], dense_weight: float = 0.5
) -> list[tuple[K, float]]:
    """Keys by ``w * dense' + (1 - w) * sparse'``, each score min-max scaled over its own list (a list's
    best is 1, its worst 0; a list of equal scores is all 1); a key missing from a list gets 0 from it."""
    score: dict[K, float] = {}
    for weight, ranking in ((dense_weight, dense), (1.0 - dense_weight, sparse)):
        if not ranking:
            continue
        values = [s for _, s in ranking]
        lo, hi = min(values), max(values)
        for key, s in ranking:
            scaled = (s - lo) / (hi - lo) if hi > lo else 1.0
            score[key] = score.get(key, 0.0) + weight * scaled
    return sorted(score.items(), key=lambda kv: -kv[1])


def fuse(
    dense: Sequence[tuple[K, float]],
    sparse: Sequence[tuple[K, float]],
    fusion: str = "rrf",
    dense_weight: float = 0.5,
) -> list[tuple[K, float]]:
    """``(key, score)`` rankings fused by ``fusion`` (``rrf`` or ``weighted``)."""
    if fusion == "rrf":
        return rrf([key for key, _ in dense], [key for key, _ in sparse], dense_weight)
    if fusion == "weighted":
        return weighted(dense, sparse, dense_weight)
    raise ValueError(f"fusion {fusion!r} is not one of {', '.join(FUSIONS)}")
