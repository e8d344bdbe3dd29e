"""The weighted score: each list's scores min-max scaled to 0..1 over its own candidates, then
``w * dense + (1 - w) * sparse``. It keeps how far apart candidates are, which the evaluated corpora
reward (the default, :data:`tase_search.query.modes.FUSION`)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


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


fuse = weighted
