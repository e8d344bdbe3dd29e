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
import glob
import io
import json
import logging
import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tase_search.errors import DataError, InputError, ModelError
from tase_search.store.lock import atomic_write_bytes

from . import data as tdata
from .config import DEFAULTS, STAGE_DEFAULTS, apply_overrides, load_config, resolve_vars  # noqa: F401
from .selection import Selection, build_selection

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


# --------------------------------------------------------------------------- data
def _expand(paths: str | Sequence[str]) -> list[str]:
    items = [paths] if isinstance(paths, str) else list(paths)
    out: list[str] = []
    for item in items:
        item = os.path.expanduser(str(item))
        hits = sorted(glob.glob(item)) if any(c in item for c in "*?[") else [item]
        if not hits:
            raise DataError(f"{item}: no file matches (check data_root)")
        out.extend(hits)
    return out


def data_files(spec: dict[str, Any]) -> list[str]:
    """The local files a data spec reads (for run.json checksums)."""
    if "paths" in spec:
        return _expand(spec["paths"])
    if "path" in spec:
        return _expand(spec["path"])
    return []


def build_task_dataset(spec: dict[str, Any]) -> Any:
    """A data spec from the config → ``datasets.Dataset``.

    Types: ``pairs`` (paths, columns[, names]), ``sts`` (path: s1, s2, score/5), ``sts_pairs`` (path,
    min_score), ``squad`` (path, target paragraph|sentence, max_chars), ``nli_tr`` (hub; part
    triplets|pairs|all), ``parallel_hub`` (hub_id, source, target[, config, split]). Common keys:
    ``limit`` (keep the first N rows), ``repeat`` (float: >1 upsamples, <1 subsamples, seeded).
    """
    kind = spec.get("type")
    limit = spec.get("limit")
    if kind == "pairs":
        ds = tdata.read_pairs(
            data_files(spec), spec.get("columns", ["tr", "en"]), names=spec.get("names"), limit=limit
        )
    elif kind == "sts":
        ds = tdata.read_sts(spec["path"], limit=limit)
    elif kind == "sts_pairs":
        ds = tdata.sts_positive_pairs(spec["path"], min_score=float(spec.get("min_score", 4.0)))
    elif kind == "squad":
        ds = tdata.read_squad(
            spec["path"], target=spec.get("target", "paragraph"), max_chars=spec.get("max_chars"), limit=limit
        )
    elif kind == "nli_tr":
        parts = tdata.load_nli_tr(
            spec.get("configs", ["snli_tr", "multinli_tr"]),
            split=spec.get("split", "train"),
            hub_id=spec.get("hub_id", "boun-tabi/nli_tr"),
            hard_negatives=bool(spec.get("hard_negatives", True)),
            limit=limit,
        )
        part = spec.get("part", "all")
        if part == "all":
            from datasets import concatenate_datasets

            # triplets keep their hard negative; entailment pairs without one become (anchor, positive)
            ds = parts.get("triplets")
            if "pairs" in parts:
                pairs = parts["pairs"]
                ds = (
                    pairs
                    if ds is None
                    else concatenate_datasets([ds.select_columns(["anchor", "positive"]), pairs])
                )
        elif part in parts:
            ds = parts[part]
        else:
            raise DataError(f"nli_tr: no {part!r} examples (have {sorted(parts)})")
    elif kind == "parallel_hub":
        ds = tdata.load_parallel_hub(
            spec["hub_id"],
            spec.get("source", "tr"),
            spec.get("target", "en"),
            config=spec.get("config"),
            split=spec.get("split", "train"),
            limit=limit,
        )
    else:
        raise InputError(f"unknown data type {kind!r} (pairs, sts, sts_pairs, squad, nli_tr, parallel_hub)")
    repeat = float(spec.get("repeat", 1.0))
    if repeat != 1.0:
        ds = _resample(ds, repeat, seed=int(spec.get("seed", 0)))
    return ds


def _resample(ds: Any, factor: float, seed: int) -> Any:
    import numpy as np
    from datasets import concatenate_datasets

    if factor <= 0:
        raise InputError(f"repeat must be > 0, got {factor}")
    whole = int(factor)
    parts = [ds] * whole
    frac = factor - whole
    if frac > 0:
        rng = np.random.default_rng(seed)
        idx = sorted(rng.choice(len(ds), size=max(1, int(round(frac * len(ds)))), replace=False).tolist())
        parts.append(ds.select(idx))
    return concatenate_datasets(parts) if len(parts) > 1 else parts[0]


def _text_columns(ds: Any) -> list[str]:
    return [c for c in ds.column_names if c not in ("label", "score") and isinstance(ds[0][c], str)]


def normalize_dataset(ds: Any, lowercase: bool) -> Any:
    """Apply the encoder's own input normalisation (NFC; İ→i for lowercasing tokenizers) to every text column,
    so training sees exactly what ``Encoder`` feeds the model at search time."""
    from tase_search.text import normalize_for_model

    cols = _text_columns(ds)

    def fn(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return {c: [normalize_for_model(t, lowercase=lowercase) for t in batch[c]] for c in cols}

    return ds.map(fn, batched=True, batch_size=2000, desc=None)


def tokenizer_lowercases(tok: Any) -> bool:
    """Same rule as :attr:`tase_search.encoder.Encoder.lowercases` (one definition, in encoder.py)."""
    from tase_search.encoder import tokenizer_lowercases as rule

    return rule(tok)


# --------------------------------------------------------------------------- precision / models
def resolve_training_precision(precision: str) -> str:
    """``auto`` → bf16 when the CPU runs it natively (2x faster MiniLM training here), else fp32."""
    from tase_search.encoder import cpu_supports_bf16

    if precision not in ("auto", "bf16", "fp32"):
        raise InputError(f"precision {precision!r} must be auto, bf16 or fp32")
    if precision == "auto":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return precision


def load_model(spec: str) -> Any:
    """Load a base/teacher model by registered name, directory or hub id (T5 → encoder-only + mean)."""
    from tase_search.encoder import load_sentence_transformer
    from tase_search.models import resolve

    _, location = resolve(spec)
    return load_sentence_transformer(location)


def teacher_embeddings(teacher: Any, texts: list[str], precision: str, batch_size: int = 128) -> Any:
    """Teacher embeddings (float32 numpy) computed once, length-sorted, under inference mode (+ bf16)."""
    import contextlib

    import numpy as np
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    teacher.eval()
    with torch.inference_mode(), ctx:
        emb = teacher.encode(
            [texts[i] for i in order], batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False
        )
    out = np.zeros_like(emb, dtype=np.float32)
    out[order] = emb.astype(np.float32)
    return out


def add_teacher_labels(ds: Any, teacher: Any, column: str, precision: str, cache: dict[str, Any]) -> Any:
    """Add ``label`` = teacher embedding of ``column`` (cached by text across tasks)."""
    import numpy as np

    texts = ds[column]
    todo = list(dict.fromkeys(t for t in texts if t not in cache))
    if todo:
        emb = teacher_embeddings(teacher, todo, precision)
        for t, v in zip(todo, emb, strict=True):
            cache[t] = v
    labels = np.stack([cache[t] for t in texts]).astype(np.float32)
    if "label" in ds.column_names:
        ds = ds.remove_columns("label")
    return ds.add_column("label", list(labels))


def add_self_teacher_labels(ds: Any, teacher: Any, precision: str, cache: dict[str, Any]) -> Any:
    """Add ``label`` = the teacher's embeddings of each text column, concatenated (``columns * dim`` per row).

    Self-distillation: each text is held near where the frozen base put it, so a ranking loss on
    Turkish pairs cannot reshape the space the base model's semantic scores come from.
    """
    import numpy as np

    cols = _text_columns(ds)
    todo = list(dict.fromkeys(t for c in cols for t in ds[c] if t not in cache))
    if todo:
        for t, v in zip(todo, teacher_embeddings(teacher, todo, precision), strict=True):
            cache[t] = v
    columns = [ds[c] for c in cols]
    labels = np.stack([np.concatenate([cache[col[i]] for col in columns]) for i in range(len(ds))]).astype(
        np.float32
    )
    if "label" in ds.column_names:
        ds = ds.remove_columns("label")
    return ds.add_column("label", list(labels))


def apply_prompts(ds: Any, prompts: dict[str, str] | None) -> Any:
    """Prefix text columns with the model's prompts (``{column: "query: "}``), as the encoder does at search time.

    Prefixing the data (rather than the trainer's prompt option) keeps the teacher labels, the
    duplicate check and the length buckets on exactly the text the model sees.
    """
    if not prompts:
        return ds
    unknown = set(prompts) - set(ds.column_names)
    if unknown:
        raise InputError(
            f"prompts name columns {sorted(unknown)} that the data does not have ({ds.column_names})"
        )

    def fn(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return {c: [p + t for t in batch[c]] for c, p in prompts.items()}

    return ds.map(fn, batched=True, batch_size=2000, desc=None)


def _load_teacher_cache(path: Path, teacher: str | None) -> dict[str, Any]:
    """Teacher embeddings saved by an earlier run/stage of this output dir (minutes of CPU on 60k texts)."""
    import numpy as np

    if not teacher or not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as z:
        if str(z["teacher"]) != str(teacher):
            return {}
        raw = z["texts"]
        texts = json.loads(raw.tobytes().decode("utf-8")) if raw.dtype == np.uint8 else raw.tolist()
        return dict(zip(texts, z["emb"], strict=True))


def _save_teacher_cache(path: Path, teacher: str | None, cache: dict[str, Any]) -> None:
    import numpy as np

    texts = list(cache)
    # texts as one UTF-8 JSON blob: a numpy unicode array pads every text to the longest (GBs for 60k texts)
    blob = np.frombuffer(json.dumps(texts, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, teacher=np.array(str(teacher)), texts=blob, emb=np.stack([cache[t] for t in texts]))
    atomic_write_bytes(path, buf.getvalue())


# --------------------------------------------------------------------------- losses
LOSS_TYPES = ("mnrl", "mnrl_symmetric", "cached_mnrl", "mse", "cosent", "align_distill")


def build_loss(spec: dict[str, Any], model: Any) -> Any:
    """A loss spec → loss module. ``align_distill`` (training.losses) = symmetric MNRL + teacher MSE in one pass."""
    try:
        from sentence_transformers.sentence_transformer import losses
    except ImportError:  # pragma: no cover - sentence-transformers < 6
        from sentence_transformers import losses  # type: ignore[no-redef]

    kind = spec.get("type")
    scale = float(spec.get("scale", 20.0))
    if kind == "mnrl":
        return losses.MultipleNegativesRankingLoss(model, scale=scale)
    if kind == "mnrl_symmetric":
        try:  # sentence-transformers >= 6: the symmetric loss is an option of MNRL
            return losses.MultipleNegativesRankingLoss(
                model,
                scale=scale,
                directions=("query_to_doc", "doc_to_query"),
                partition_mode="per_direction",
            )
        except TypeError:
            return losses.MultipleNegativesSymmetricRankingLoss(model, scale=scale)
    if kind == "cached_mnrl":
        return losses.CachedMultipleNegativesRankingLoss(
            model, scale=scale, mini_batch_size=int(spec.get("mini_batch_size", 32))
        )
    if kind == "mse":
        return losses.MSELoss(model)
    if kind == "cosent":
        return losses.CoSENTLoss(model, scale=float(spec.get("scale", 20.0)))
    if kind == "align_distill":
        from .losses import AlignDistillLoss

        return AlignDistillLoss(
            model,
            scale=scale,
            mnrl_weight=float(spec.get("mnrl_weight", 1.0)),
            mse_weight=float(spec.get("mse_weight", 1.0)),
            symmetric=bool(spec.get("symmetric", True)),
        )
    raise InputError(f"unknown loss {kind!r}: choose from {', '.join(LOSS_TYPES)}")


def _needs_teacher(loss_spec: dict[str, Any]) -> bool:
    return loss_spec.get("type") in ("mse", "align_distill") and loss_spec.get("mse_weight", 1.0) != 0


# --------------------------------------------------------------------------- export
def export_fp16(model_dir: str | Path, out_dir: str | Path) -> Path:
    """Copy a saved SentenceTransformer to ``out_dir`` with its weights as fp16 safetensors.

    Only model files are copied (no optimizer states, checkpoints, trainer files): the result is
    what ships. fp16 halves the size; inference upcasts to fp32/bf16 on load, and the values
    round-trip to within fp16 precision.
    """
    import torch
    from safetensors.torch import load_file, save_file

    src, dst = Path(model_dir), Path(out_dir)
    if not (src / "modules.json").is_file():
        raise ModelError(f"{src}: not a sentence-transformers model directory (no modules.json)")
    if dst.exists():
        shutil.rmtree(dst)
    skip = {"optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "training_args.bin"}
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if path.is_dir() or rel.parts[0].startswith("checkpoint-") or path.name in skip:
            continue
        out = dst / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".safetensors":
            tensors = load_file(str(path))
            half = {
                k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous()
                for k, v in tensors.items()
            }
            save_file(half, str(out), metadata={"format": "pt"})
        elif path.suffix == ".bin" and path.name == "pytorch_model.bin":
            state = torch.load(str(path), map_location="cpu", weights_only=True)
            save_file(
                {
                    k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous()
                    for k, v in state.items()
                },
                str(out.with_name("model.safetensors")),
                metadata={"format": "pt"},
            )
        else:
            shutil.copy2(path, out)
    cfg = dst / "config.json"
    if cfg.is_file():
        # Declare float32: transformers loads with dtype="auto" from the config, and fp16 weights on CPU
        # are slow and break bf16 autocast (layer_norm on mixed dtypes); declared fp32, they are upcast on load.
        obj = json.loads(cfg.read_text())
        obj.pop("torch_dtype", None)
        obj["dtype"] = "float32"
        cfg.write_text(json.dumps(obj, indent=2) + "\n")
    tok = dst / "tokenizer.json"
    if tok.is_file():
        # the last training call's truncation/padding is saved with the tokenizer; plain `tokenizers`
        # users would inherit it (sentence-transformers overrides it): ship the tokenizer without either
        obj = json.loads(tok.read_text(encoding="utf-8"))
        if obj.get("truncation") is not None or obj.get("padding") is not None:
            obj["truncation"] = obj["padding"] = None
            tok.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return dst


# --------------------------------------------------------------------------- run bookkeeping
def package_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in (
        "tase-search",
        "sentence-transformers",
        "transformers",
        "torch",
        "tokenizers",
        "datasets",
        "accelerate",
    ):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON, atomically (a killed run leaves the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(
        path, (json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    )


def _progress_callback(stage_name: str, batch_size: int, budget_minutes: float | None = None) -> Any:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """One line per logging step: loss, step/total, pairs/s and ETA (the tqdm bar is unreadable in a log file)."""

        def __init__(self) -> None:
            self.t0 = time.perf_counter()
            self.step0: int | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.t0 = time.perf_counter()
            self.step0 = state.global_step

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            # A wall-clock budget: CPU speed varies with load, so a step count cannot promise a deadline.
            if budget_minutes and time.perf_counter() - self.t0 > budget_minutes * 60:
                print(
                    f"[{stage_name}] time budget of {budget_minutes} min reached at step {state.global_step}",
                    flush=True,
                )
                control.should_training_stop = True

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
        ) -> None:
            if not logs or "loss" not in logs:
                return
            el = time.perf_counter() - self.t0
            done = state.global_step - (self.step0 or 0)
            rate = done / el if el > 0 else 0.0
            eta = (state.max_steps - state.global_step) / rate if rate > 0 else float("nan")
            print(
                f"[{stage_name}] step {state.global_step}/{state.max_steps} loss {logs['loss']:.4f} "
                f"lr {logs.get('learning_rate', 0):.2e} {rate * batch_size:.1f} pairs/s "
                f"elapsed {el / 60:.1f} min eta {eta / 60:.1f} min",
                flush=True,
            )

    return Progress()


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
