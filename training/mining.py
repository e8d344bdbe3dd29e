"""Hard negatives for pair tasks, mined with the model being trained.

Why: in-batch negatives for translation pairs are mostly easy (64 random sentences rarely look
alike), so once a model is aligned, MNRL on random batches stops teaching it the fine
distinctions bitext retrieval fails on ("Tom is here" vs "Tom was here"). Mining each Turkish
sentence's closest *wrong* English sentence with the current model and adding it as a third
column gives every row one hard negative (MNRL and ``align_distill`` treat extra columns as
negatives). The mining itself is sentence-transformers' ``util.mine_hard_negatives``; this module
only adds the config contract, a relative margin that keeps likely false negatives (duplicates and
near-paraphrases in Tatoeba) out, bf16 where the CPU has it, and a cache so a resumed run does not
mine again.

Config, on a task::

    hard_negatives: {num_negatives: 1, range_max: 10, relative_margin: 0.05}

``relative_margin`` drops candidates whose similarity to the anchor is above
``(1 - margin) x`` the positive's; ``range_max`` looks only at the top-N neighbours.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from tase_search.errors import InputError
from tase_search.store.lock import atomic_write_bytes

__all__ = ["HARD_NEGATIVE_KEYS", "check_hard_negatives", "mine_pair_negatives"]

HARD_NEGATIVE_KEYS = ("num_negatives", "range_min", "range_max", "relative_margin", "batch_size")


def check_hard_negatives(spec: dict[str, Any]) -> dict[str, Any]:
    """Validate a task's ``hard_negatives`` mapping and fill its defaults."""
    if not isinstance(spec, dict):
        raise InputError(f"hard_negatives must be a mapping of {', '.join(HARD_NEGATIVE_KEYS)}, got {spec!r}")
    unknown = sorted(set(spec) - set(HARD_NEGATIVE_KEYS))
    if unknown:
        raise InputError(f"hard_negatives: unknown key(s) {unknown} (valid: {', '.join(HARD_NEGATIVE_KEYS)})")
    out = {
        "num_negatives": int(spec.get("num_negatives", 1)),
        "range_min": int(spec.get("range_min", 0)),
        "range_max": int(spec.get("range_max", 10)),
        "relative_margin": float(spec.get("relative_margin", 0.05)),
        "batch_size": int(spec.get("batch_size", 128)),
    }
    if out["num_negatives"] < 1:
        raise InputError(f"hard_negatives.num_negatives must be >= 1, got {out['num_negatives']}")
    if not out["range_min"] < out["range_max"]:
        raise InputError(
            f"hard_negatives: range_min {out['range_min']} must be < range_max {out['range_max']}"
        )
    if not 0.0 <= out["relative_margin"] < 1.0:
        raise InputError(f"hard_negatives.relative_margin must be in [0, 1), got {out['relative_margin']}")
    return out


def _cache_key(ds: Any, spec: dict[str, Any], model_tag: str) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(spec, sort_keys=True).encode())
    h.update(model_tag.encode())
    h.update(str(len(ds)).encode())
    h.update(ds._fingerprint.encode() if getattr(ds, "_fingerprint", None) else b"")
    return h.hexdigest()[:16]


def mine_pair_negatives(
    ds: Any,
    model: Any,
    spec: dict[str, Any],
    *,
    precision: str = "fp32",
    cache_dir: Path | None = None,
    model_tag: str = "",
    log: Any = print,
) -> Any:
    """(anchor, positive) dataset → (anchor, positive, negative_1..n) with the model's hard negatives.

    Rows for which no candidate survives the margin are dropped (every batch row needs the same
    columns); the count is logged. The result is cached as JSON lines under ``cache_dir``.
    """
    from datasets import Dataset

    spec = check_hard_negatives(spec)
    cols = [c for c in ds.column_names if c not in ("label", "score")]
    if len(cols) != 2:
        raise InputError(f"hard_negatives needs a two-column pair task, got columns {ds.column_names}")
    key = _cache_key(ds, spec, model_tag)
    cache = Path(cache_dir) / f"hard-negatives-{key}.jsonl" if cache_dir else None
    if cache is not None and cache.is_file():
        rows = [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines() if line]
        log(f"hard negatives: {len(rows)} rows from {cache}")
        return Dataset.from_list(rows)

    import torch
    from sentence_transformers.util import mine_hard_negatives

    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    try:
        with ctx, torch.inference_mode():
            mined = mine_hard_negatives(
                ds.select_columns(cols),
                model,
                anchor_column_name=cols[0],
                positive_column_name=cols[1],
                range_min=spec["range_min"],
                range_max=spec["range_max"],
                relative_margin=spec["relative_margin"],
                num_negatives=spec["num_negatives"],
                sampling_strategy="top",
                output_format="n-tuple",
                batch_size=spec["batch_size"],
                use_faiss=False,
                verbose=False,
            )
    finally:
        model.train(was_training)
    log(
        f"hard negatives: {len(mined)} of {len(ds)} rows kept (columns {mined.column_names}) "
        f"in {time.perf_counter() - t0:.0f}s"
    )
    if len(mined) == 0:
        raise InputError(
            f"hard_negatives: no row kept a negative (range {spec['range_min']}-{spec['range_max']}, "
            f"relative_margin {spec['relative_margin']}); widen range_max or lower relative_margin"
        )
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in mined)
        atomic_write_bytes(cache, text.encode("utf-8"))
    return mined
