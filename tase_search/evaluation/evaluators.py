"""Evaluators as objects: one task each, a primary metric, usable by the trainer and by the report.

Each evaluator is a sentence-transformers ``SentenceEvaluator``, so the training pipeline passes it
as ``evaluator=`` and selects checkpoints by its :attr:`~Evaluator.primary_metric`:
``evaluator(model)`` returns ``{"<name>_<metric>": float}``. :meth:`Evaluator.evaluate` is the
report's view of the same numbers: unprefixed metrics with their counts, for any encoder with
``encode_query`` / ``encode_document`` (:class:`tase_search.encoding.encoder.Encoder`, the test fake). A
``SentenceTransformer`` being trained is adapted (:func:`as_encoder`): texts normalised as the
encoder normalises them, embeddings L2-normalised, no passage splitting.

Files are read when an evaluator is made, so a missing dev file fails before training starts.
This module imports sentence-transformers; the rest of :mod:`tase_search.evaluation` does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

try:
    from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator
except ImportError:  # pragma: no cover - sentence-transformers < 6
    from sentence_transformers.evaluation import SentenceEvaluator  # type: ignore[no-redef]

from ..errors import InputError
from .labelled_data import read_sts
from .retrieval import RetrievalTask, bitext_tasks, english_check_task, evaluate_task, squad_task
from .sts import sts_scores
from .tasviret import load_captions, tasviret_scores

__all__ = [
    "EVALUATOR_TYPES",
    "Evaluator",
    "RetrievalEvaluator",
    "SentenceTransformerEncoder",
    "StsEvaluator",
    "TasviretEvaluator",
    "as_encoder",
    "build_evaluator",
]


class SentenceTransformerEncoder:
    """A ``SentenceTransformer`` seen as an evaluation encoder: the model as it is at this step of training."""

    def __init__(self, model: Any, batch_size: int = 64) -> None:
        from ..encoding.passages import tokenizer_lowercases

        self.model = model
        self.batch_size = batch_size
        self.model_id = str(getattr(model, "model_id", None) or type(model).__name__)
        self.lowercase = tokenizer_lowercases(model.tokenizer)

    def _encode(self, fn: Any, texts: Sequence[str] | str) -> np.ndarray:
        from ..text.normalize import normalize_for_model

        items = [texts] if isinstance(texts, str) else list(texts)
        emb = fn(
            [normalize_for_model(t, lowercase=self.lowercase) for t in items],
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(emb, dtype=np.float32)

    def encode_query(self, texts: Sequence[str] | str, **_: Any) -> np.ndarray:
        return self._encode(self.model.encode_query, texts)

    def encode_document(self, texts: Sequence[str] | str, **_: Any) -> np.ndarray:
        return self._encode(self.model.encode_document, texts)


def as_encoder(model: Any) -> Any:
    """``model`` as an evaluation encoder: a ``SentenceTransformer`` is wrapped, anything else used as is."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformerEncoder(model) if isinstance(model, SentenceTransformer) else model


class Evaluator(SentenceEvaluator):
    """One evaluation task. ``metric`` is the unprefixed primary metric (``ndcg@10``);
    :attr:`primary_metric` is the name the trainer sees (``<name>_ndcg@10``). Higher is better."""

    def __init__(self, name: str, metric: str) -> None:
        super().__init__()
        self.name = name
        self.metric = metric
        self.primary_metric = f"{name}_{metric}"
        self.greater_is_better = True

    def evaluate(self, encoder: Any) -> dict[str, Any]:
        """The task's metrics for ``encoder`` (counts included), as the report shows them."""
        raise NotImplementedError

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        metrics = self.evaluate(as_encoder(model))
        if self.metric not in metrics:
            raise InputError(
                f"evaluator {self.name!r}: no metric {self.metric!r}; it reports {sorted(metrics)}"
            )
        numeric = {
            k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        out = self.prefix_name_to_metrics(numeric, self.name)
        if getattr(model, "model_card_data", None) is not None:
            self.store_metrics_in_model_card_data(model, out, epoch, steps)
        return out

    def get_config_dict(self) -> dict[str, Any]:
        return {"name": self.name, "metric": self.metric}


class RetrievalEvaluator(Evaluator):
    """Ranking metrics (:func:`~tase_search.evaluation.retrieval.retrieval_metrics`) on a :class:`RetrievalTask`."""

    def __init__(self, task: RetrievalTask, metric: str = "ndcg@10", name: str | None = None) -> None:
        super().__init__(name or task.name, metric)
        self.task = task

    def evaluate(self, encoder: Any) -> dict[str, Any]:
        return evaluate_task(encoder, self.task)


class StsEvaluator(Evaluator):
    """Spearman (and Pearson) of cosine similarity against gold scores on an STS file."""

    def __init__(
        self, path: str | Path, *, name: str = "sts", metric: str = "spearman", limit: int | None = None
    ):
        super().__init__(name, metric)
        self.pairs = read_sts(path, limit=limit)

    def evaluate(self, encoder: Any) -> dict[str, Any]:
        return sts_scores(encoder, self.pairs.scores, self.pairs.sentences1, self.pairs.sentences2)


class TasviretEvaluator(Evaluator):
    """The Tasviret check (:mod:`~tase_search.evaluation.tasviret`): same-image captions vs random pairs."""

    def __init__(
        self,
        path: str | Path,
        *,
        name: str = "tasviret",
        metric: str = "auc",
        seed: int = 0,
        limit: int | None = None,
        plot: str | None = None,
    ) -> None:
        super().__init__(name, metric)
        self.image_ids, self.captions = load_captions(path, limit=limit)
        self.seed = seed
        self.plot = plot

    def evaluate(self, encoder: Any) -> dict[str, Any]:
        return tasviret_scores(encoder, self.image_ids, self.captions, seed=self.seed, plot=self.plot)


# ------------------------------------------------------------------------------- from a config
def _bitext(spec: dict[str, Any]) -> Evaluator:
    direction = spec.get("direction", "tr-en")
    tasks = {t.name.rsplit(".", 1)[1]: t for t in bitext_tasks(spec["path"], limit=spec.get("limit"))}
    if direction not in tasks:
        raise InputError(f"bitext evaluator: direction {direction!r} must be tr-en or en-tr")
    return RetrievalEvaluator(tasks[direction], spec.get("metric", "accuracy@1"), name=spec.get("name"))


def _squad(spec: dict[str, Any]) -> Evaluator:
    task = squad_task(spec["path"], spec.get("aligned_path"), limit=spec.get("limit"))
    return RetrievalEvaluator(task, spec.get("metric", "ndcg@10"), name=spec.get("name"))


def _english_check(spec: dict[str, Any]) -> Evaluator:
    task = english_check_task(
        spec["paths"],
        limit=spec.get("limit"),
        drop=float(spec.get("drop", 0.3)),
        seed=int(spec.get("seed", 0)),
    )
    return RetrievalEvaluator(task, spec.get("metric", "ndcg@10"), name=spec.get("name"))


def _sts(spec: dict[str, Any]) -> Evaluator:
    return StsEvaluator(
        spec["path"],
        name=spec.get("name", "sts"),
        metric=spec.get("metric", "spearman"),
        limit=spec.get("limit"),
    )


def _tasviret(spec: dict[str, Any]) -> Evaluator:
    return TasviretEvaluator(
        spec["path"],
        name=spec.get("name", "tasviret"),
        metric=spec.get("metric", "auc"),
        seed=int(spec.get("seed", 0)),
        limit=spec.get("limit"),
    )


EVALUATOR_TYPES = {
    "bitext": _bitext,
    "squad": _squad,
    "english_check": _english_check,
    "sts": _sts,
    "tasviret": _tasviret,
}
"""Config ``type`` -> a function of the spec returning an :class:`Evaluator` (where to add a new one)."""


def build_evaluator(spec: dict[str, Any]) -> Evaluator:
    """An evaluator from a config mapping: ``{type: sts, path: ..., name, metric, limit}``.

    Types: ``bitext`` (path, direction tr-en|en-tr; metric accuracy@1), ``squad`` (path[, aligned_path];
    ndcg@10), ``english_check`` (paths; ndcg@10), ``sts`` (path; spearman), ``tasviret`` (path; auc).
    """
    kind = spec.get("type")
    make = EVALUATOR_TYPES.get(str(kind))
    if make is None:
        raise InputError(f"unknown evaluator type {kind!r}: choose from {', '.join(EVALUATOR_TYPES)}")
    try:
        return make(spec)
    except KeyError as exc:
        raise InputError(
            f"evaluator {spec}: missing key {exc} (see build_evaluator for each type's keys)"
        ) from None
