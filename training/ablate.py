"""The ablation table the paper leaves open: stage 1 only, stage 2 only, both, and both with distillation.

Each row is a config in ``training/configs/ablation/`` (the header comment of each says what question
the row answers); all rows start from the same base model with the same step budget. This runner trains
every row with :func:`training.pipeline.train` (a row whose ``OUTPUT/ROW/model`` exists is not trained
again, an interrupted one resumes from its checkpoints), evaluates the untrained base and every row's
model on the dev suite (:func:`tase_search.evaluation.run_suite`, cached per model in
``OUTPUT/ROW/eval.json`` so a later session does not redo it), and writes one comparison table.

Usage::

    python -m training.ablate --data-root /path/to/data --output runs/ablation
    python -m training.ablate --data-root DATA --rows stage1,both --max-steps 40 --table-out t.md --json-out t.json

``--max-steps N`` is the total budget of each row (split over a row's stages in the configs'
proportions), so rows stay comparable; ``--tasks``/``--limit`` shrink the evaluation (smoke runs).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tase_search.errors import DataError, InputError, ModelError
from tase_search.store.lock import atomic_write_bytes

from . import pipeline

__all__ = [
    "CONFIG_DIR",
    "ROWS",
    "ablation_table",
    "check_data",
    "load_row_config",
    "main",
    "run_ablation",
    "set_step_budget",
    "step_budget",
]

CONFIG_DIR = Path(__file__).resolve().parent / "configs" / "ablation"
ROWS: tuple[str, ...] = ("stage1", "stage2", "both", "both-distill")
BASE = "base"
TRAIN_LAYOUT = "bitext/train/*.tsv (columns tr, en), stsb-tr/train.tsv, tquad/train-v0.1.json"


# --------------------------------------------------------------------------- configs
def step_budget(cfg: dict[str, Any]) -> int:
    """Total optimizer steps of a row (the sum of its stages' ``max_steps``)."""
    total = 0
    for st in cfg["stages"]:
        if not st.get("max_steps"):
            raise InputError(
                f"config {cfg.get('name')!r}: stage {st['name']!r} has no max_steps (ablation rows need a step budget)"
            )
        total += int(st["max_steps"])
    return total


def set_step_budget(cfg: dict[str, Any], total: int) -> dict[str, Any]:
    """Split ``total`` steps over the stages in the proportions of their ``max_steps`` (each stage >= 1)."""
    stages = cfg["stages"]
    if total < len(stages):
        raise InputError(f"--max-steps {total} is less than the {len(stages)} stages of {cfg.get('name')!r}")
    old = step_budget(cfg)
    steps = [max(1, int(st["max_steps"]) * total // old) for st in stages]
    steps[-1] += total - sum(steps)
    for st, n in zip(stages, steps, strict=True):
        st["max_steps"] = n
    return cfg


def load_row_config(
    row: str,
    data_root: str | Path,
    *,
    config_dir: str | Path = CONFIG_DIR,
    overrides: Sequence[str] = (),
    base_model: str | None = None,
    teacher: str | None = None,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """A row's config with ``data_root`` set; ``base_model`` replaces every row's base, ``teacher`` the
    teacher of rows that have one; ``max_steps`` re-splits the row's total budget."""
    path = Path(config_dir) / f"{row}.yaml"
    if not path.is_file():
        have = sorted(p.stem for p in Path(config_dir).glob("*.yaml"))
        raise InputError(f"no ablation row {row!r}: {path} not found (rows: {', '.join(have) or 'none'})")
    sets = [f"data_root={data_root}", *overrides]
    if base_model:
        sets.append(f"base_model={base_model}")
    cfg = pipeline.load_config(path, sets)
    if teacher and cfg.get("teacher"):
        cfg["teacher"] = teacher
    step_budget(cfg)  # every row must have one
    if max_steps:
        set_step_budget(cfg, int(max_steps))
    cfg["ablation_row"] = row
    return cfg


# --------------------------------------------------------------------------- data check
def _eval_files(tasks: Sequence[str] | None) -> list[str]:
    from tase_search.evaluation import DEV_SUITE

    chosen = [
        t for t in DEV_SUITE if not tasks or t.name in tasks or any(t.name.startswith(n + ".") for n in tasks)
    ]
    if tasks and not chosen:
        raise InputError(
            f"no evaluation task matches {list(tasks)}: choose from {', '.join(t.name for t in DEV_SUITE)}"
        )
    return list(dict.fromkeys(f for t in chosen for f in t.files))


def check_data(
    data_root: str | Path,
    configs: Sequence[dict[str, Any]],
    tasks: Sequence[str] | None = None,
    *,
    evaluate: bool = True,
) -> None:
    """Fail before any training when a training file of the rows (or, with ``evaluate``, a dev file) is missing."""
    root = Path(data_root).expanduser()
    missing: list[str] = []
    for cfg in configs:
        for st in cfg["stages"]:
            for task in st["tasks"]:
                spec = task["data"]
                try:
                    files = pipeline.data_files(spec)
                except DataError:  # a glob that matches nothing
                    paths = spec.get("paths") or spec.get("path")
                    files = [paths] if isinstance(paths, str) else [str(p) for p in paths]
                missing += [f for f in files if not Path(f).is_file()]
    if evaluate:
        missing += [str(root / f) for f in _eval_files(tasks) if not (root / f).is_file()]
    if not missing:
        return
    where = f"{str(root)!r} does not exist" if not root.is_dir() else f"missing under {str(root)!r}"
    raise DataError(
        f"ablation data not found ({where}):\n"
        + "".join(f"  {m} (no such file)\n" for m in dict.fromkeys(missing))
        + f"--data-root must be a folder laid out like the shared data folder: for training {TRAIN_LAYOUT}; "
        f"for evaluation {', '.join(_eval_files(None))} (or name fewer --tasks, or --no-eval)."
    )


# --------------------------------------------------------------------------- train
def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _recorded_budget(run: dict[str, Any]) -> int | None:
    try:
        return step_budget(run["config"])
    except (KeyError, TypeError, InputError):
        return None


def check_budget(cfg: dict[str, Any], out_dir: Path) -> int:
    """The row's step budget; InputError when ``out_dir`` already holds the row trained with another one."""
    budget = step_budget(cfg)
    run_path = out_dir / "run.json"
    if run_path.is_file():
        had = _recorded_budget(_read_json(run_path))
        if had is not None and had != budget:
            raise InputError(
                f"{out_dir} holds row {cfg['ablation_row']!r} trained with a {had}-step budget, this run asks for "
                f"{budget}: remove {out_dir} or choose another --output"
            )
    return budget


def train_row(cfg: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Train one row into ``out_dir`` unless ``out_dir/model`` exists; return its timings and steps."""
    row = cfg["ablation_row"]
    run_path = out_dir / "run.json"
    budget = check_budget(cfg, out_dir)
    trained_now = not (out_dir / "model" / "modules.json").is_file()
    if trained_now:
        print(f"[ablate] training {row}: {budget} steps -> {out_dir}", flush=True)
        pipeline.train(cfg, out_dir, resume=True)
    else:
        print(f"[ablate] {row}: {out_dir / 'model'} exists, not training again", flush=True)
    run = _read_json(run_path)
    stages = run.get("stages", [])
    return {
        "question": cfg.get("question"),
        "model_dir": str(out_dir / "model"),
        "trained_now": trained_now,
        "step_budget": budget,
        "steps": sum(int(s.get("steps", 0)) for s in stages),
        "train_seconds": run.get("train_seconds"),
        "teacher_seconds": round(sum(float(s.get("teacher_seconds", 0)) for s in stages), 3),
        "pairs_per_second": [s.get("pairs_per_second") for s in stages],
        "finished": run.get("finished"),
    }


# --------------------------------------------------------------------------- eval
def _evaluate_cached(
    label: str,
    spec: str,
    data_root: Path,
    tasks: Sequence[str] | None,
    limit: int | None,
    cache: Path,
    stamp: str | None,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """``run_suite`` for one model, reusing ``cache`` when it was made for the same data, tasks, limit and model."""
    from tase_search.evaluation import jsonable, run_suite

    key = {
        "spec": spec,
        "data_root": str(data_root),
        "tasks": list(tasks or []),
        "limit": limit,
        "model": stamp,
    }
    old = _read_json(cache) if cache.is_file() else {}
    if old.get("key") == key and old.get("results"):
        progress(f"[ablate] {label}: evaluation reused from {cache}")
        return old["results"]
    res = jsonable(
        run_suite([spec], data_root, tasks=list(tasks) if tasks else None, limit=limit, progress=progress)
    )
    pipeline.write_json(cache, {"key": key, "results": res})
    return res


def _merge(parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One run_suite-shaped result whose models are keyed by row label."""
    first = next(iter(parts.values()))
    merged = {k: v for k, v in first.items() if k not in ("models", "seconds")}
    merged["models"] = {label: next(iter(res["models"].values())) for label, res in parts.items()}
    merged["seconds"] = round(sum(float(r.get("seconds") or 0) for r in parts.values()), 3)
    return merged


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def ablation_table(results: dict[str, Any], rows: dict[str, dict[str, Any]], base_model: str) -> str:
    """Markdown: one row per model (the untrained base first), one column per headline metric of the suite."""
    cols = [(task, m) for task, info in results["tasks"].items() for m in info["headline"]]
    head = ["model", "steps", "train min", *[f"{t} {m}" for t, m in cols]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, entry in results["models"].items():
        info = rows.get(label, {})
        name = f"{BASE} ({base_model})" if label == BASE else label
        secs = info.get("train_seconds")
        cells = [name, str(info.get("steps", 0)), "-" if secs is None else f"{secs / 60:.1f}"]
        cells += [_cell(entry["tasks"].get(t, {}).get("metrics", {}).get(m)) for t, m in cols]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- **{label}**: {info['question']}" for label, info in rows.items() if info.get("question")]
    return "\n".join(lines + ([""] + notes if notes else []))


# --------------------------------------------------------------------------- runner
def run_ablation(
    data_root: str | Path,
    output: str | Path = "runs/ablation",
    rows: Sequence[str] = ROWS,
    *,
    max_steps: int | None = None,
    tasks: Sequence[str] | None = None,
    limit: int | None = None,
    config_dir: str | Path = CONFIG_DIR,
    overrides: Sequence[str] = (),
    base_model: str | None = None,
    teacher: str | None = None,
    evaluate: bool = True,
    table_out: str | Path | None = None,
    json_out: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train (or reuse) each row, evaluate base + rows, write the table and JSON; return the JSON object."""
    from tase_search.evaluation import format_table

    say = progress or (lambda line: print(line, flush=True))
    if not rows:
        raise InputError("no rows: name at least one of " + ", ".join(ROWS))
    root = Path(data_root).expanduser()
    out = Path(output)
    configs = {
        r: load_row_config(
            r,
            root,
            config_dir=config_dir,
            overrides=overrides,
            base_model=base_model,
            teacher=teacher,
            max_steps=max_steps,
        )
        for r in rows
    }
    bases = {str(c["base_model"]) for c in configs.values()}
    if len(bases) != 1:
        raise InputError(f"ablation rows must share one base model, got {sorted(bases)}")
    base = bases.pop()
    check_data(root, list(configs.values()), tasks, evaluate=evaluate)
    for r, cfg in configs.items():  # before any training: a mixed-budget table is refused up front
        check_budget(cfg, out / r)
    report: dict[str, Any] = {
        "data_root": str(root),
        "output": str(out),
        "base_model": base,
        "rows": {},
    }
    for r, cfg in configs.items():
        report["rows"][r] = train_row(cfg, out / r)
    if evaluate:
        threads = next((c.get("threads") for c in configs.values() if c.get("threads")), None)
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        parts: dict[str, dict[str, Any]] = {}
        t0 = time.perf_counter()
        parts[BASE] = _evaluate_cached(BASE, base, root, tasks, limit, out / "base-eval.json", base, say)
        for r, info in report["rows"].items():
            parts[r] = _evaluate_cached(
                r, info["model_dir"], root, tasks, limit, out / r / "eval.json", info.get("finished"), say
            )
        results = _merge(parts)
        report["eval_seconds"] = round(time.perf_counter() - t0, 1)
        report["eval"] = results
        table = ablation_table(results, report["rows"], base)
        report["table"] = table
        md = f"# Ablation (data: {root})\n\n{table}\n\n## Per task\n\n{format_table(results)}\n"
        target = Path(table_out) if table_out else out / "ablation.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, md.encode("utf-8"))
        say(table)
        say(f"[ablate] table written to {target}")
    target_json = Path(json_out) if json_out else out / "ablation.json"
    pipeline.write_json(target_json, report)
    say(f"[ablate] results written to {target_json}")
    return report


def _csv(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.ablate --data-root DATA [--output DIR] [--rows a,b] [--max-steps N] ...``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m training.ablate", description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", required=True, help="folder laid out like the shared data folder")
    ap.add_argument(
        "--output", default="runs/ablation", help="one sub-folder per row (default runs/ablation)"
    )
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated rows (default {','.join(ROWS)})")
    ap.add_argument(
        "--max-steps", type=int, help="total steps per row (smoke runs); default: the configs' budget"
    )
    ap.add_argument("--tasks", help="comma-separated evaluation tasks (default: the whole dev suite)")
    ap.add_argument("--limit", type=int, help="evaluate on the first N rows of each dev file (smoke runs)")
    ap.add_argument("--no-eval", action="store_true", help="only train the rows")
    ap.add_argument("--config-dir", default=str(CONFIG_DIR))
    ap.add_argument("--base-model", help="replace the rows' base model (and the evaluated base)")
    ap.add_argument("--teacher", help="replace the teacher of rows that distil")
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override applied to every row",
    )
    ap.add_argument("--table-out", help="markdown table (default OUTPUT/ablation.md)")
    ap.add_argument("--json-out", help="JSON report (default OUTPUT/ablation.json)")
    ns = ap.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        run_ablation(
            ns.data_root,
            ns.output,
            _csv(ns.rows) or [],
            max_steps=ns.max_steps,
            tasks=_csv(ns.tasks),
            limit=ns.limit,
            config_dir=ns.config_dir,
            overrides=ns.overrides,
            base_model=ns.base_model,
            teacher=ns.teacher,
            evaluate=not ns.no_eval,
            table_out=ns.table_out,
            json_out=ns.json_out,
        )
    except (InputError, DataError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
