"""Train the Turkish reranker: a cross-encoder from the shipped encoder's first layers, BCE on mined pairs.

Usage::

    python -m training.rerank training/configs/tase-rerank-tr.yaml --set data_root=/path/to/data \
        --output runs/tase-rerank-tr

Running the same command again resumes: the mined rows are cached in ``rows.jsonl`` and the
trainer restarts from its last checkpoint. The run writes ``run.json`` (config, data hashes,
package versions, timings, dev evaluation) and the final model as fp16 safetensors in ``model/``,
a sentence-transformers ``CrossEncoder`` directory whose score (sigmoid of one logit) is the
probability that the passage answers the query.
"""

from __future__ import annotations

import argparse
import functools
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

from tase_search.errors import InputError

from . import data as tdata
from .config import apply_overrides, resolve_vars
from .export import export_fp16
from .runlog import _progress_callback, package_versions, write_json

log = logging.getLogger("training.rerank")

TRAIN_DEFAULTS: dict[str, Any] = {
    "max_steps": 900,
    "batch_size": 32,
    "lr": 5e-5,
    "warmup_ratio": 0.1,
    "save_steps": 50,
    "logging_steps": 10,
    "bucket_batches": 16,
    "time_budget_minutes": None,
}


def load_rerank_config(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    import yaml

    p = Path(path)
    if not p.is_file():
        p = Path(__file__).parent / "configs" / f"{path}.yaml"
    if not p.is_file():
        raise InputError(f"reranker config {path!r} is not a file or a shipped config name")
    raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or "sources" not in raw:
        raise InputError(f"{p}: a reranker config is a mapping with 'sources'")
    cfg = resolve_vars(apply_overrides(raw, overrides))
    cfg["train"] = {**TRAIN_DEFAULTS, **(cfg.get("train") or {})}
    return cfg


def init_model(base: str, layers: int, out: Path) -> Path:
    """A sequence-classification model (1 logit) from ``base``'s first ``layers`` layers, saved to ``out``."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from tase_search.models import resolve

    if (out / "config.json").is_file():
        return out
    _, location = resolve(base)
    config = AutoConfig.from_pretrained(location, num_labels=1)
    if layers and layers < config.num_hidden_layers:
        config.num_hidden_layers = layers
    model = AutoModelForSequenceClassification.from_pretrained(location, config=config)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(location).save_pretrained(tmp)
    tmp.replace(out)
    return out


def _last_checkpoint(folder: Path) -> Path | None:
    found = sorted(
        (p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    return found[-1] if found else None


def train(cfg: dict[str, Any], output: Path, rows: list[dict[str, Any]]) -> Path:
    """Train on ``rows``; returns the saved (fp32) model directory."""
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    from tase_search.encoding.precision import resolve_precision

    t = cfg["train"]
    init = init_model(cfg["base_model"], int(cfg.get("layers", 0)), output / "init")
    model = CrossEncoder(str(init), num_labels=1, max_length=int(cfg.get("max_length", 256)), device="cpu")
    for name, param in model.model.named_parameters():
        # frozen word embeddings: most of the weights, and pieces unseen in training keep their values
        if any(f in name for f in cfg.get("freeze") or ()):
            param.requires_grad_(False)
    ds = Dataset.from_dict({k: [r[k] for r in rows] for k in ("query", "passage", "label")})
    bf16 = resolve_precision(str(cfg.get("precision", "auto"))) == "bf16"
    ckpt = output / "checkpoints"
    args = CrossEncoderTrainingArguments(
        output_dir=str(ckpt),
        max_steps=int(t["max_steps"]),
        per_device_train_batch_size=int(t["batch_size"]),
        learning_rate=float(t["lr"]),
        warmup_steps=int(float(t["warmup_ratio"]) * int(t["max_steps"])),
        bf16=bf16,
        use_cpu=True,
        save_steps=int(t["save_steps"]),
        save_total_limit=2,
        logging_steps=int(t["logging_steps"]),
        seed=int(cfg.get("seed", 42)),
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        batch_sampler=functools.partial(
            tdata.BucketedNoDuplicatesBatchSampler, bucket_batches=int(t["bucket_batches"]), dedup=False
        ),
    )
    trainer = CrossEncoderTrainer(
        model=model,
        args=args,
        train_dataset=ds,
        loss=BinaryCrossEntropyLoss(model),
        callbacks=[_progress_callback("rerank", int(t["batch_size"]), t.get("time_budget_minutes"))],
    )
    resume = _last_checkpoint(ckpt)
    if resume is not None:
        log.info("resuming from %s", resume)
    torch.manual_seed(int(cfg.get("seed", 42)))
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    final = output / "final"
    shutil.rmtree(final, ignore_errors=True)
    model.save_pretrained(str(final))
    return final


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.rerank", description=__doc__.split("\n")[0])
    ap.add_argument("config", help="a config file or a shipped config name (tase-rerank-tr)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--output", required=True, help="run folder (resumed when it exists)")
    ap.add_argument("--max-steps", type=int, help="override train.max_steps")
    ap.add_argument("--eval-only", metavar="MODEL_DIR", help="evaluate a trained reranker, no training")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    overrides = list(a.overrides) + ([f"train.max_steps={a.max_steps}"] if a.max_steps else [])
    cfg = load_rerank_config(a.config, overrides)
    output = Path(a.output)
    output.mkdir(parents=True, exist_ok=True)

    import torch

    torch.set_num_threads(int(cfg.get("threads") or os.cpu_count() or 1))
    from tase_search.encoding.encoder import Encoder

    from .rerank_eval import evaluate

    encoder = Encoder.load(cfg.get("mining", {}).get("model", "tase-e5-tr"), backend="torch")
    run: dict[str, Any] = {
        "config": cfg,
        "started": datetime.now(timezone.utc).isoformat(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "mining_model_fingerprint": encoder.fingerprint,
    }
    t0 = time.perf_counter()
    if a.eval_only:
        model_dir = Path(a.eval_only)
    else:
        rows = __import__("training.rerank_data", fromlist=["build_rows"]).build_rows(
            cfg, encoder, output / "rows.jsonl"
        )
        run["rows"] = {"total": len(rows), "positives": sum(1 for r in rows if r["label"] > 0.5)}
        run["data_sha256"] = {
            str(p): tdata.file_sha256(p)
            for s in cfg["sources"]
            for p in ([s["path"]] if "path" in s else s["paths"])
        }
        t1 = time.perf_counter()
        final = train(cfg, output, rows)
        run["train_seconds"] = time.perf_counter() - t1
        model_dir = export_fp16(final, output / "model")
    run["mine_and_train_seconds"] = time.perf_counter() - t0
    from sentence_transformers.cross_encoder import CrossEncoder

    from tase_search.encoding.precision import resolve_precision

    reranker = CrossEncoder(str(model_dir), device="cpu")
    bf16 = resolve_precision(str(cfg.get("precision", "auto"))) == "bf16"
    reranker.model.to(torch.bfloat16 if bf16 else torch.float32)

    def score(pairs: Sequence[tuple[str, str]]) -> Any:
        return reranker.predict(list(pairs), batch_size=32, show_progress_bar=False)

    if cfg.get("eval"):
        run["eval"] = evaluate(cfg["eval"], encoder, score)
        log.info("eval: %s", run["eval"])
    run["finished"] = datetime.now(timezone.utc).isoformat()
    write_json(output / ("eval.json" if a.eval_only else "run.json"), run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
