"""Config-driven, staged training of sentence encoders on sentence-transformers' trainer.

A YAML config names a base model, an optional vocabulary extension, an optional frozen teacher,
and a list of stages; each stage trains on one or more tasks (a dataset + a loss) at once with
sentence-transformers' multi-dataset trainer. Why this shape: the paper (arXiv 2311.09748) is two
MNRL stages (translation pairs, then NLI); what works on a 2-core CPU with only small public data
is a multi-task stage mixing translation alignment, distillation from an English teacher and
Turkish semantic tasks - both are configs of this one runner (``configs/paper.yaml``,
``configs/tase-e5-tr.yaml``).

Usage::

    python -m training.pipeline training/configs/tase-e5-tr.yaml --set data_root=/path/to/data
    tase-search train training/configs/paper.yaml --output runs/paper --max-steps 100

Every run writes ``run.json`` in its output directory (config, sha256 of each data file, package
versions, timings, pairs/s, eval results) and the final model as fp16 safetensors in ``model/``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tase_search.errors import DataError, InputError, ModelError

from . import data as tdata
from .config import DEFAULTS, STAGE_DEFAULTS, apply_overrides, load_config, resolve_vars  # noqa: F401
from .export import export_fp16, load_model
from .losses import LOSS_TYPES, _needs_teacher, build_loss  # noqa: F401
from .runlog import _progress_callback, package_versions, write_json
from .selection import Selection, build_selection
from .tasks import (
    _text_columns,
    apply_prompts,
    build_task_dataset,
    data_files,
    normalize_dataset,
    tokenizer_lowercases,  # noqa: F401
)
from .teacher import _load_teacher_cache, _save_teacher_cache, add_self_teacher_labels, add_teacher_labels

log = logging.getLogger("training")

__all__ = [
    "apply_overrides",
    "build_loss",
    "build_task_dataset",
    "export_fp16",
    "load_config",
    "main",
    "resolve_vars",
    "train",
]


# --------------------------------------------------------------------------- precision / models
def resolve_training_precision(precision: str) -> str:
    """``auto`` → bf16 when the CPU runs it natively (2x faster MiniLM training here), else fp32."""
    from tase_search.encoding.precision import cpu_supports_bf16

    if precision not in ("auto", "bf16", "fp32"):
        raise InputError(f"precision {precision!r} must be auto, bf16 or fp32")
    if precision == "auto":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return precision


# --------------------------------------------------------------------------- training
def _run_stage(
    model: Any,
    stage: dict[str, Any],
    cfg: dict[str, Any],
    stage_dir: Path,
    precision: str,
    teacher: Any,
    teacher_cache: dict[str, Any],
    *,
    resume: bool,
    max_steps: int | None,
    selection: Selection | None = None,
) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import MultiDatasetBatchSamplers

    info: dict[str, Any] = {"name": stage["name"], "tasks": {}}
    t_data = time.perf_counter()
    lowercase = tokenizer_lowercases(model.tokenizer)
    datasets: dict[str, Any] = {}
    loss_fns: dict[str, Any] = {}
    for task in stage["tasks"]:
        ds = apply_prompts(
            normalize_dataset(build_task_dataset(task["data"]), lowercase), task.get("prompts")
        )
        if task.get("hard_negatives"):
            from .mining import mine_pair_negatives

            t0 = time.perf_counter()
            ds = mine_pair_negatives(
                ds,
                model,
                task["hard_negatives"],
                precision=precision,
                cache_dir=stage_dir,
                model_tag=f"{cfg.get('name')}/{stage['name']}/{task['name']}",
                log=functools.partial(print, f"[{stage['name']}] task {task['name']}:", flush=True),
            )
            info.setdefault("mining_seconds", 0.0)
            info["mining_seconds"] += round(time.perf_counter() - t0, 1)
        if _needs_teacher(task["loss"]):
            if teacher is None:
                raise InputError(
                    f"task {task['name']!r} uses loss {task['loss']['type']!r} but the config has no teacher"
                )
            column = task["loss"].get("teacher_column") or _text_columns(ds)[-1]
            if column != "self" and column not in ds.column_names:
                raise InputError(
                    f"task {task['name']!r}: teacher_column {column!r} not in {ds.column_names} "
                    "(or 'self': each text distilled to the teacher's embedding of itself)"
                )
            t0 = time.perf_counter()
            if column == "self":
                ds = add_self_teacher_labels(ds, teacher, precision, teacher_cache)
            else:
                ds = add_teacher_labels(ds, teacher, column, precision, teacher_cache)
            info.setdefault("teacher_seconds", 0.0)
            info["teacher_seconds"] += time.perf_counter() - t0
        datasets[task["name"]] = ds
        loss_fns[task["name"]] = build_loss(task["loss"], model)
        info["tasks"][task["name"]] = {"rows": len(ds), "columns": ds.column_names, "loss": task["loss"]}
        print(
            f"[{stage['name']}] task {task['name']}: {len(ds)} rows {ds.column_names} loss {task['loss']['type']}",
            flush=True,
        )
    info["data_seconds"] = round(time.perf_counter() - t_data, 1)

    # a partial of a module-level class: the trainer pickles its args into every checkpoint
    sampler = functools.partial(
        tdata.BucketedNoDuplicatesBatchSampler, bucket_batches=int(stage["bucket_batches"])
    )

    steps = max_steps if max_steps else stage.get("max_steps")
    checkpoints: dict[str, Any] = {"save_strategy": "steps", "save_steps": int(stage["save_steps"])}
    if selection:  # evaluate at the checkpoint steps and keep the best
        checkpoints.update(selection.training_args(int(stage["save_steps"])))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(stage_dir / "checkpoints"),
        num_train_epochs=float(stage["epochs"]),
        max_steps=int(steps) if steps else -1,
        per_device_train_batch_size=int(stage["batch_size"]),
        learning_rate=float(stage["lr"]),
        warmup_steps=float(stage["warmup_ratio"]),  # a float < 1 is a ratio of the total steps
        weight_decay=float(stage["weight_decay"]),
        lr_scheduler_type=stage["scheduler"],
        bf16=precision == "bf16",
        use_cpu=True,
        seed=int(cfg["seed"]),
        data_seed=int(cfg["seed"]),
        batch_sampler=sampler,
        multi_dataset_batch_sampler=(
            MultiDatasetBatchSamplers.ROUND_ROBIN
            if stage["sampler"] == "round_robin"
            else MultiDatasetBatchSamplers.PROPORTIONAL
        ),
        save_total_limit=int(stage["save_total_limit"]),
        logging_steps=int(stage["logging_steps"]),
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=not sys.stderr.isatty(),
        **checkpoints,
    )
    train_ds = datasets if len(datasets) > 1 else next(iter(datasets.values()))
    loss = loss_fns if len(loss_fns) > 1 else next(iter(loss_fns.values()))
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        loss=loss,
        evaluator=selection.evaluator if selection else None,
        callbacks=[
            _progress_callback(stage["name"], int(stage["batch_size"]), stage.get("time_budget_minutes"))
        ],
    )
    ckpts = sorted((stage_dir / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    resume_from = str(ckpts[-1]) if (resume and ckpts) else None
    if resume_from:
        print(f"[{stage['name']}] resuming from {resume_from}", flush=True)
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume_from)
    secs = time.perf_counter() - t0
    steps_done = int(trainer.state.global_step)
    info.update(
        {
            "train_seconds": round(secs, 1),
            "steps": steps_done,
            "rows_seen": steps_done * int(stage["batch_size"]),
            "pairs_per_second": round(steps_done * int(stage["batch_size"]) / secs, 2) if secs > 0 else None,
            "train_loss": float(getattr(result, "training_loss", float("nan"))),
            "resumed_from": resume_from,
            "log_history": trainer.state.log_history[-50:],
        }
    )
    if selection:
        info["selection"] = {
            "metric": selection.metric,
            "best_metric": trainer.state.best_metric,
            "best_checkpoint": trainer.state.best_model_checkpoint,
            "loaded_best": bool(selection.load_best and trainer.state.best_model_checkpoint),
        }
    return info


def _pruned_base(
    base_location: str, vocab_cfg: dict[str, Any], out: Path, run: dict[str, Any], *, resume: bool
) -> Path:
    """The base model with its vocabulary pruned to the pieces the config's text needs (training/prune_vocab.py)."""
    from tase_search.models import resolve

    from .prune_vocab import prune_model

    vdir = out / "vocab-pruned"
    if resume and (vdir / "modules.json").is_file():
        return vdir
    t0 = time.perf_counter()
    texts: list[str] = []
    for spec in vocab_cfg.get("sources", []):
        ds = build_task_dataset(spec)
        for c in _text_columns(ds):
            texts.extend(ds[c])
    lexicon: list[str] = []
    if vocab_cfg.get("lexicon"):  # a WordPiece vocab.txt of a registered model, whole words only
        _, loc = resolve(str(vocab_cfg["lexicon"]))
        words = (Path(loc) / "vocab.txt").read_text(encoding="utf-8").split()
        lexicon = [w for w in words if not w.startswith(("##", "["))]
    report = prune_model(
        resolve(base_location)[1], vdir, texts, budget=int(vocab_cfg.get("budget", 44000)), lexicon=lexicon
    )
    run["vocab"] = {**report.as_dict(), "seconds": round(time.perf_counter() - t0, 1)}
    print(f"vocabulary pruned: {run['vocab']}", flush=True)
    return vdir


def _centered(model_dir: Path, spec: dict[str, Any], out: Path, run: dict[str, Any]) -> Path:
    """``model_dir`` with ``strength`` x the pooled mean of the spec's texts (with their prompts) removed."""
    import random

    from .center import center_model

    texts: list[str] = []
    for source in spec.get("sources", []):
        ds = build_task_dataset(source["data"])
        cols = _text_columns(ds)
        prompts = source.get("prompts") or {}
        rows = list(range(len(ds)))
        random.Random(int(spec.get("seed", 0))).shuffle(rows)
        for i in rows[: int(source.get("limit", 500))]:
            texts.extend(prompts.get(c, "") + ds[i][c] for c in cols)
    t0 = time.perf_counter()
    info = center_model(
        model_dir,
        out / "centered",
        texts,
        strength=float(spec.get("strength", 1.0)),
        max_length=int(spec.get("max_length", 256)),
    )
    run["center"] = {**info, "seconds": round(time.perf_counter() - t0, 1)}
    print(f"centered: {run['center']}", flush=True)
    return out / "centered"


def _freeze(model: Any, patterns: Sequence[str]) -> list[str]:
    """Turn off gradients for parameters whose name contains one of ``patterns``; return their names."""
    names = []
    for name, param in model.named_parameters():
        if any(p in name for p in patterns):
            param.requires_grad_(False)
            names.append(name)
    if patterns and not names:
        raise InputError(f"freeze {list(patterns)} matches no parameter of the model")
    return names


def train(
    config: dict[str, Any],
    output: str | Path | None = None,
    *,
    resume: bool = False,
    max_steps: int | None = None,
) -> Path:
    """Run every stage of ``config``; return the exported fp16 model directory (``OUTPUT/model``).

    ``resume`` skips finished stages (their ``stage-N/model`` exists) and continues the current
    one from its latest checkpoint. ``max_steps`` caps every stage (smoke runs).
    """
    import torch

    t_start = time.perf_counter()
    out = Path(output or config.get("output") or f"runs/{config['name']}")
    out.mkdir(parents=True, exist_ok=True)
    if config.get("threads"):
        torch.set_num_threads(int(config["threads"]))
    precision = resolve_training_precision(str(config["precision"]))
    torch.manual_seed(int(config["seed"]))
    run: dict[str, Any] = {
        "name": config["name"],
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "precision": precision,
        "threads": torch.get_num_threads(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": package_versions(),
        "data_files": {},
        "stages": [],
    }
    specs = [t["data"] for s in config["stages"] for t in s["tasks"]]
    if config.get("vocab"):
        specs += list(config["vocab"].get("sources", [])) + (
            [config["vocab"]["english_probe"]] if config["vocab"].get("english_probe") else []
        )
    for spec in specs:
        for f in data_files(spec):
            if f not in run["data_files"]:
                tdata.check_data_file(f)
                run["data_files"][f] = tdata.file_sha256(f)
    run_path = out / "run.json"
    previous: dict[str, Any] = {}
    if resume and run_path.is_file():
        try:
            previous = json.loads(run_path.read_text())
        except json.JSONDecodeError:
            previous = {}
        run["previous_runs"] = [
            *previous.get("previous_runs", []),
            {k: previous.get(k) for k in ("started", "finished", "config", "total_seconds")},
        ]
    write_json(run_path, run)
    selection = build_selection(config.get("eval"))  # dev files are read (and checked) before any training

    # ---- base model (+ vocabulary extension)
    base_location = config["base_model"]
    vocab_cfg = config.get("vocab") or {}
    if vocab_cfg.get("extend"):
        vdir = out / "vocab-extended"
        if not (resume and (vdir / "modules.json").is_file()):
            from tase_search.models import resolve

            from .vocab import extend_model_vocab

            t0 = time.perf_counter()
            texts: list[str] = []
            for spec in vocab_cfg.get("sources", []):
                ds = build_task_dataset(spec)
                for c in _text_columns(ds):
                    texts.extend(ds[c])
            probe: list[str] = []
            if vocab_cfg.get("english_probe"):
                ds = build_task_dataset(vocab_cfg["english_probe"])
                probe = ds[_text_columns(ds)[-1]][:2000]
            report = extend_model_vocab(
                resolve(base_location)[1],
                vdir,
                texts,
                english_probe=probe,
                vocab_size=int(vocab_cfg.get("vocab_size", 16000)),
                max_new=int(vocab_cfg.get("max_new", 8000)),
                min_frequency=int(vocab_cfg.get("min_frequency", 3)),
            )
            run["vocab"] = {**report.as_dict(), "seconds": round(time.perf_counter() - t0, 1)}
            print(f"vocabulary extended: {run['vocab']}", flush=True)
        base_location = str(vdir)
    if vocab_cfg.get("prune"):
        base_location = str(_pruned_base(base_location, vocab_cfg, out, run, resume=resume))
    model = load_model(base_location)
    save_len = config.get("save_max_seq_length") or model.max_seq_length
    teacher_spec = base_location if config.get("teacher") == "base" else config.get("teacher")
    teacher = load_model(teacher_spec) if teacher_spec else None
    if teacher is not None:  # the teacher sees what the longest stage sees, no more (its cost is quadratic)
        teacher.max_seq_length = max(
            int(s.get("max_seq_length") or config["max_seq_length"]) for s in config["stages"]
        )
    run["frozen_parameters"] = len(_freeze(model, config.get("freeze") or []))
    teacher_cache = _load_teacher_cache(out / "teacher-cache.npz", config.get("teacher"))

    for i, stage in enumerate(config["stages"], 1):
        stage_dir = out / f"stage-{i}"
        done = stage_dir / "model"
        if resume and (done / "modules.json").is_file():
            print(f"[{stage['name']}] already finished, loading {done}", flush=True)
            model = load_model(str(done))
            _freeze(model, config.get("freeze") or [])
            # keep the finished stage's record (timings, pairs/s) from the earlier run
            old = [s for s in previous.get("stages", []) if s.get("name") == stage["name"]]
            run["stages"].append({**(old[-1] if old else {"name": stage["name"]}), "skipped_on_resume": True})
            continue
        model.max_seq_length = int(stage.get("max_seq_length") or config["max_seq_length"])
        info = _run_stage(
            model,
            stage,
            config,
            stage_dir,
            precision,
            teacher,
            teacher_cache,
            resume=resume,
            max_steps=max_steps,
            selection=selection,
        )
        model.max_seq_length = int(save_len)
        if teacher_cache:
            _save_teacher_cache(out / "teacher-cache.npz", config.get("teacher"), teacher_cache)
        model.save(str(done))
        run["stages"].append(info)
        write_json(run_path, run)
        print(
            f"[{stage['name']}] done in {info['train_seconds'] / 60:.1f} min, "
            f"{info['pairs_per_second']} pairs/s -> {done}",
            flush=True,
        )

    final = out / "stage-{}".format(len(config["stages"])) / "model"
    if config.get("center"):  # fold the common direction out of the embeddings (training/center.py)
        final = _centered(final, config["center"], out, run)
    if config.get("interpolate"):  # the exported model is the mix (written as fp16, like export_fp16)
        from .merge import interpolate_models

        spec = config["interpolate"]
        t0 = time.perf_counter()
        model_dir = interpolate_models(str(final), spec["with"], spec["weight"], out / "model")
        run["interpolate"] = {**spec, "seconds": round(time.perf_counter() - t0, 1)}
        print(
            f"interpolated: {1 - spec['weight']:g} x trained + {spec['weight']:g} x {spec['with']}",
            flush=True,
        )
    else:
        model_dir = export_fp16(final, out / "model")
    run["model_dir"] = str(model_dir)
    run["train_seconds"] = round(sum(s.get("train_seconds", 0) for s in run["stages"]), 1)
    eval_cfg = config.get("eval") or {}
    if eval_cfg.get("data_root"):
        from tase_search.evaluation import format_table, jsonable, run_suite

        t0 = time.perf_counter()
        specs = [*eval_cfg.get("compare", []), str(model_dir)]
        res = run_suite(
            specs,
            eval_cfg["data_root"],
            tasks=eval_cfg.get("tasks"),
            limit=eval_cfg.get("limit"),
            progress=lambda line: print(line, flush=True),
        )
        run["eval"] = jsonable(res)
        run["eval_seconds"] = round(time.perf_counter() - t0, 1)
        print(format_table(res), flush=True)
    run["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    run["total_seconds"] = round(time.perf_counter() - t_start, 1)
    write_json(run_path, run)
    return model_dir


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.pipeline CONFIG [--output DIR] [--set k=v ...] [--resume] [--max-steps N]``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m training.pipeline", description=__doc__.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("--output")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--max-steps", type=int)
    ns = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        cfg = load_config(ns.config, ns.overrides)
        path = train(cfg, ns.output, resume=ns.resume, max_steps=ns.max_steps)
    except (InputError, DataError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"model written to {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
