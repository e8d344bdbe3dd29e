"""Maximal marginal relevance (MMR): a top ``k`` that is relevant and not repetitive.

Why: the nearest documents to a query are often near-copies of each other (the same news item from
several sources); a RAG prompt gains more from ``k`` different ones. MMR picks among the ``fetch_k``
nearest, one at a time, the candidate with the best ``lambda_mult * sim(query, d) - (1 - lambda_mult) *
max sim(d, already picked)``. ``lambda_mult`` 1 is plain relevance order, 0 only diversity. Every front
end (Retriever, HTTP, the toolkit integrations) selects through :func:`mmr_select`.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def check_mmr(k: object, fetch_k: object, lambda_mult: object) -> None:
    """Refuse a bad ``k``, ``fetch_k`` (a whole number >= 1) or ``lambda_mult`` (0..1)."""
    for name, value in (("k", k), ("fetch_k", fetch_k)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name}={value!r} is not valid: give a whole number >= 1")
    ok = isinstance(lambda_mult, (int, float)) and not isinstance(lambda_mult, bool)
    if not (ok and 0 <= lambda_mult <= 1):  # type: ignore[operator]
        raise InputError(f"lambda_mult={lambda_mult!r} is not valid: give a number from 0 to 1")


def mmr_select(query: np.ndarray, candidates: np.ndarray, k: int, lambda_mult: float = 0.5) -> list[int]:
    """Indices into ``candidates`` (rows) of the ``k`` picked, in the order picked. Similarities are
    cosines (rows and query are normalised here; a zero vector is similar to nothing)."""
    if len(candidates) == 0 or k <= 0:
        return []
    cand = _unit(np.asarray(candidates, dtype=np.float32).reshape(len(candidates), -1))
    q = _unit(np.asarray(query, dtype=np.float32).reshape(1, -1))[0]
    relevance = cand @ q
    between = cand @ cand.T
    picked: list[int] = [int(np.argmax(relevance))]
    closest = between[picked[0]].copy()  # each candidate's highest similarity to one already picked
    left = np.ones(len(cand), dtype=bool)
    left[picked[0]] = False
    while len(picked) < min(k, len(cand)):
        score = lambda_mult * relevance - (1.0 - lambda_mult) * closest
        score[~left] = -np.inf
        best = int(np.argmax(score))
        picked.append(best)
        left[best] = False
        closest = np.maximum(closest, between[best])
    return picked


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


__all__ = ["check_mmr", "mmr_select"]
