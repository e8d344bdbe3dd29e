"""What a hit's score means: an estimated probability that the passage is relevant to the query.

Why: a cosine, a BM25 score and a fused rank score live on unrelated scales that move with the
query, the corpus and the model, so no threshold on them means "answer" or "no answer". A logistic
regression per search mode, fitted on labelled question -> passage pairs and questions with no
answer (``tase-search eval calibrate``, :mod:`tase_search.evaluation.calibrate`), maps a hit's raw
parts to a probability that is comparable across queries and modes:

- ``dense``: ``sigmoid(a * cosine + b)``;
- ``sparse``: ``sigmoid(c * keyword + d)``, ``keyword`` being the BM25 score divided by what the query
  scores on an average-length passage holding each of its words once
  (the sum of :func:`tase_search.store.sparse.group_weights`; 0: no query word, about 1: every word once);
- ``hybrid``: ``sigmoid(a * cosine + c * keyword + b)``;

each with the hit's *lead* too: how far its part is ahead of the best other candidate's (0 unless it is
the best), since a clear winner is more often the answer than one of several near-equals. Dense and
hybrid add the hit's *gap* (its cosine minus the query's mean cosine to a fixed background of
generic Turkish sentences, :attr:`Calibration.background`: how far the hit stands out from what the
query finds in any text, the same whatever the corpus's size) and whether it is the *top* candidate;
sparse and hybrid add the hit's *coverage* (the share of the query's words, weighted by IDF, that the
passage holds: a passage that matches one rare word of five, "arabası" for "bebek arabası
tavsiyesi", covers little of the query however high BM25 puts it). A query's ranking is not changed: dense scores rise with the cosine, and
sparse and hybrid keep their own ranking, a hit's score capped at the score of the hit above it.

The parameters are per model (cosine distributions are model-specific) and live in
``calibration.json`` next to the model's weights, with the weights fingerprint they were fitted on:
a file fitted on other weights is not used. The keyword-only regression does not depend on the model,
so an index of a model without a calibration file still gets probabilities in ``sparse`` mode from
the bundled model's file. Otherwise the score says what it is (:data:`SCORE_KINDS`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FEATURES",
    "FILE",
    "PROBABLY_NOT_RELEVANT",
    "PROBABLY_RELEVANT",
    "SCORE_KINDS",
    "Calibration",
    "Logistic",
    "calibration_path",
    "fit_logistic",
    "for_model",
    "keyword_only",
    "reliability",
]

#: The file next to a model's weights.
FILE = "calibration.json"
FORMAT = 1
#: A calibrated score at or above this: probably relevant (44-96% of such hits were, by mode and bin, on
#: TQuAD dev).
PROBABLY_RELEVANT = 0.5
#: A calibrated score below this: probably not relevant (on TQuAD dev, 2-3% of hits under 0.1 and 15-21%
#: of those from 0.1 to 0.2 were relevant, by mode; off-topic questions score here).
PROBABLY_NOT_RELEVANT = 0.2
#: What ``Hit.score`` is: ``probability`` (calibrated), ``cosine`` (dense search with a model that has
#: no calibration), ``fused`` (hybrid with a model that has no calibration: the fused score in 0..1,
#: comparable only within one result list), ``keyword`` (the normalised
#: keyword score, sparse search when no calibration is found at all).
SCORE_KINDS = ("probability", "cosine", "fused", "keyword")


#: The longest background vector a calibration file may hold.
MAX_DIM = 8192
#: The features of a regression, in the order of :class:`Logistic`'s weights (a file that lacks one
#: weighs it 0).
FEATURES = ("dense", "keyword", "dense_lead", "keyword_lead", "dense_gap", "top", "coverage")


@dataclass(frozen=True)
class Logistic:
    """``sigmoid(bias + the sum of each feature times its weight)`` (:data:`FEATURES`, the module doc):
    a lead is how far a hit's part is ahead of the best other candidate's (0 unless it is the best: a
    clear winner is more likely the answer than one of several near-equals)."""

    bias: float
    dense: float = 0.0
    keyword: float = 0.0
    dense_lead: float = 0.0
    keyword_lead: float = 0.0
    dense_gap: float = 0.0
    top: float = 0.0
    coverage: float = 0.0

    def of(self, features: Mapping[str, float]) -> float:
        """The probability for a hit's features (:data:`FEATURES`; a missing one counts 0)."""
        z = self.bias + sum(getattr(self, name) * float(features.get(name, 0.0)) for name in FEATURES)
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"bias": self.bias, **{name: getattr(self, name) for name in FEATURES}}


@dataclass(frozen=True)
class Calibration:
    """One model's regressions by search mode, and how they were fitted (``meta``)."""

    modes: dict[str, Logistic]
    fingerprint: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: the mean document vector of the background sentences: a query's mean cosine to them is the
    #: query vector's dot product with it (what a hit's ``dense_gap`` is measured from)
    background: tuple[float, ...] | None = None

    def to_json(self) -> str:
        body = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "modes": {m: f.to_dict() for m, f in self.modes.items()},
            **({"background": list(self.background)} if self.background is not None else {}),
            **self.meta,
        }
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        """Parse a calibration file; ValueError on anything but the shape :meth:`to_json` writes."""
        body = json.loads(text)
        if (
            not isinstance(body, dict)
            or body.get("format") != FORMAT
            or not isinstance(body.get("modes"), dict)
        ):
            raise ValueError("not a tase-search calibration file")
        modes: dict[str, Logistic] = {}
        for mode, p in body["modes"].items():
            if mode not in ("dense", "sparse", "hybrid") or not isinstance(p, dict):
                raise ValueError(f"calibration mode {mode!r} is not valid")
            vals = [p.get(k, 0.0) for k in ("bias", *FEATURES)]
            if not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in vals
            ):
                raise ValueError(f"calibration of mode {mode!r} has a value that is not a number")
            modes[mode] = Logistic(*(float(v) for v in vals))
        fp = body.get("fingerprint")
        bg = body.get("background")
        if bg is not None and not (
            isinstance(bg, list)
            and 0 < len(bg) <= MAX_DIM
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bg)
        ):
            raise ValueError(f"calibration background is not a list of at most {MAX_DIM} numbers")
        meta = {k: v for k, v in body.items() if k not in ("format", "fingerprint", "modes", "background")}
        background = tuple(float(v) for v in bg) if bg is not None else None
        return cls(modes, fp if isinstance(fp, str) else None, meta, background)


def calibration_path(model_id: str) -> Path | None:
    """Where the calibration file of the model recorded as ``model_id`` in a manifest lives: in a bundled
    model's directory, or in a model directory given by path; None for hub ids and external embedders."""
    from ..models.registry import _HERE, get_entry

    entry = get_entry(model_id)
    if entry is not None:
        return _HERE / entry.bundled / FILE if entry.bundled else None
    path = Path(model_id)
    return path / FILE if path.is_absolute() and path.is_dir() else None


def _read(path: Path | None) -> Calibration | None:
    try:
        return Calibration.from_json(path.read_text(encoding="utf-8")) if path is not None else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def for_model(model_id: str, fingerprint: str | None) -> Calibration | None:
    """The calibration of a model, when its file exists and was fitted on these weights."""
    cal = _read(calibration_path(model_id))
    if cal is None or (cal.fingerprint is not None and cal.fingerprint != fingerprint):
        return None
    return cal


def keyword_only() -> Logistic | None:
    """The keyword-only regression of the default model's file: it does not depend on the model."""
    from ..models.registry import DEFAULT_MODEL

    cal = _read(calibration_path(DEFAULT_MODEL))
    return None if cal is None else cal.modes.get("sparse")


# ----------------------------------------------------------------------------- fitting and measuring
def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = 1e-4, iterations: int = 50
) -> tuple[np.ndarray, float]:
    """Weights and bias of a logistic regression of labels ``y`` (0/1) on features ``x`` (n, d), by
    Newton's method with a small L2 penalty on the weights (no bias penalty)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    a = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(a.shape[1])
    reg = np.full(a.shape[1], l2 * len(x))
    reg[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -60, 60)))
        grad = a.T @ (p - y) + reg * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(reg) + 1e-9 * np.eye(a.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return w[:-1], float(w[-1])


def reliability(p: Sequence[float], y: Sequence[int], bins: int = 10) -> tuple[list[dict[str, float]], float]:
    """The reliability table (equal-width bins of predicted probability: count, mean predicted,
    observed share relevant) and the expected calibration error (the count-weighted mean gap)."""
    p_arr = np.asarray(p, dtype=np.float64)
    y_arr = np.asarray(y, dtype=np.float64)
    rows: list[dict[str, float]] = []
    ece = 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    for i in range(bins):
        lo, hi = edges[i], edges[i + 1]
        sel = (p_arr >= lo) & ((p_arr < hi) if i < bins - 1 else (p_arr <= hi))
        n = int(sel.sum())
        if n == 0:
            continue
        mean_p, obs = float(p_arr[sel].mean()), float(y_arr[sel].mean())
        rows.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": n, "predicted": mean_p, "observed": obs})
        ece += n / len(p_arr) * abs(mean_p - obs)
    return rows, float(ece)
