"""Reciprocal rank fusion (RRF, Cormack et al. 2009): ranks only, so no score calibration is needed,
which matters because a cosine and a BM25 score live on unrelated scales (BM25 grows with query
length and corpus statistics)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
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


def fuse(
    dense: Sequence[tuple[K, float]], sparse: Sequence[tuple[K, float]], dense_weight: float = 0.5
) -> list[tuple[K, float]]:
    """The fusion method's form: ``(key, score)`` rankings in, fused ``(key, score)`` out."""
    return rrf([key for key, _ in dense], [key for key, _ in sparse], dense_weight)
