"""Evaluation suite: translation retrieval, the Tasviret check, STS, question -> paragraph retrieval.

The functions take an encoder (anything with ``encode_query`` / ``encode_document`` returning
L2-normalised float32 arrays, e.g. :class:`tase_search.encoding.encoder.Encoder`) and return metrics as a
plain dict; only numpy is used for the math, matplotlib only to draw plots. The same tasks as
objects with a primary metric, usable as training-time evaluators, are in
:mod:`~tase_search.evaluation.evaluators` (imported on first use: it imports sentence-transformers).
"""

from __future__ import annotations

from typing import Any

from .report import DEV_SUITE, SuiteTask, format_table, jsonable, run_suite, suite_task_names
from .retrieval import (
    RetrievalTask,
    bitext_tasks,
    english_check_task,
    evaluate_retrieval,
    evaluate_task,
    load_qrels_files,
    retrieval_metrics,
    squad_task,
)
from .stats import average_ranks, pearson, roc_auc, spearman
from .sts import evaluate_sts
from .tasviret import evaluate_tasviret

__all__ = [
    "DEV_SUITE",
    "RetrievalTask",
    "SuiteTask",
    "average_ranks",
    "bitext_tasks",
    "english_check_task",
    "evaluate_retrieval",
    "evaluate_sts",
    "evaluate_task",
    "evaluate_tasviret",
    "format_table",
    "jsonable",
    "load_qrels_files",
    "pearson",
    "retrieval_metrics",
    "roc_auc",
    "run_suite",
    "spearman",
    "squad_task",
    "suite_task_names",
]

_EVALUATORS = ("Evaluator", "RetrievalEvaluator", "StsEvaluator", "TasviretEvaluator", "build_evaluator")


def __getattr__(name: str) -> Any:
    if name in _EVALUATORS:
        from . import evaluators

        return getattr(evaluators, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
