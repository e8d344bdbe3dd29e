"""Checkpoint selection: evaluators run during each stage, and the best checkpoint is the stage's model.

Config (all keys optional; ``data_root``, ``tasks``, ``compare`` and ``limit`` are the dev suite run
after training, see :func:`tase_search.evaluation.run_suite`)::

    eval:
      evaluators:                      # tase_search.evaluation.evaluators.build_evaluator specs
        - {type: sts, path: "${data_root}/stsb-tr/dev.tsv", name: stsb-tr}
        - {type: bitext, path: "${data_root}/bitext/dev/tatoeba-dev-tur-eng.tsv", direction: tr-en, limit: 500}
      steps: 100                       # evaluate (and checkpoint) every N steps; default: the stage's save_steps
      metric_for_best_model: stsb-tr_spearman   # default: the first evaluator's primary metric
      load_best_model_at_end: true     # default: true when evaluators are given

Why in the trainer: the last step is not the best one when a stage overfits a small Turkish set,
and sentence-transformers' trainer already keeps the best checkpoint by a named metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tase_search.errors import InputError

__all__ = ["EVAL_KEYS", "Selection", "build_selection", "check_eval_spec"]

SUITE_KEYS = {"data_root", "tasks", "compare", "limit"}
SELECTION_KEYS = {"evaluators", "steps", "metric_for_best_model", "load_best_model_at_end"}
EVAL_KEYS = SUITE_KEYS | SELECTION_KEYS


def check_eval_spec(spec: Any) -> dict[str, Any]:
    """The ``eval`` mapping of a config, checked for shape (files are read later, by :func:`build_selection`)."""
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise InputError(f"eval must be a mapping with keys {sorted(EVAL_KEYS)}, got {type(spec).__name__}")
    unknown = set(spec) - EVAL_KEYS
    if unknown:
        raise InputError(f"eval has unknown keys {sorted(unknown)}; known: {sorted(EVAL_KEYS)}")
    evaluators = spec.get("evaluators") or []
    if not isinstance(evaluators, list) or not all(isinstance(e, dict) and e.get("type") for e in evaluators):
        raise InputError(
            "eval.evaluators must be a list of mappings with a type (e.g. {type: sts, path: ...})"
        )
    steps = spec.get("steps")
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
        raise InputError(f"eval.steps {steps!r} must be a whole number >= 1")
    if not evaluators and (SELECTION_KEYS - {"evaluators"}) & set(spec):
        raise InputError("eval.steps / metric_for_best_model / load_best_model_at_end need eval.evaluators")
    return spec


@dataclass
class Selection:
    """The evaluators of a run and how the trainer uses them."""

    evaluators: list[Any]
    metric: str
    steps: int | None
    load_best: bool

    @property
    def evaluator(self) -> Any:
        """What the trainer's ``evaluator=`` takes: one evaluator, or a list (run in order)."""
        return self.evaluators[0] if len(self.evaluators) == 1 else list(self.evaluators)

    def training_args(self, save_steps: int) -> dict[str, Any]:
        """Trainer arguments: evaluate and checkpoint at the same steps, keep the best by :attr:`metric`."""
        steps = int(self.steps or save_steps)
        return {
            "eval_strategy": "steps",
            "eval_steps": steps,
            "save_steps": steps,
            "metric_for_best_model": self.metric,
            "greater_is_better": all(e.greater_is_better for e in self.evaluators),
            "load_best_model_at_end": self.load_best,
        }


def build_selection(spec: dict[str, Any] | None) -> Selection | None:
    """The run's :class:`Selection` from its ``eval`` mapping (reads the dev files), or None without evaluators."""
    spec = check_eval_spec(spec)
    if not spec.get("evaluators"):
        return None
    from tase_search.evaluation.evaluators import build_evaluator

    evaluators = [build_evaluator(e) for e in spec["evaluators"]]
    names = [e.name for e in evaluators]
    if len(set(names)) != len(names):
        raise InputError(f"eval.evaluators share a name ({names}); give each a distinct name")
    metric = str(spec.get("metric_for_best_model") or evaluators[0].primary_metric).removeprefix("eval_")
    if not any(metric.startswith(f"{name}_") for name in names):
        raise InputError(
            f"eval.metric_for_best_model {metric!r} is not a metric of the evaluators; "
            f"use <name>_<metric>, e.g. {', '.join(e.primary_metric for e in evaluators)}"
        )
    return Selection(evaluators, metric, spec.get("steps"), bool(spec.get("load_best_model_at_end", True)))
