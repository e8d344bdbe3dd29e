"""Task data for the trainer: a config's data spec -> a ``datasets.Dataset`` the losses take, as the encoder sees text.

Kinds (``type``): ``pairs``, ``sts``, ``sts_pairs``, ``squad``, ``nli_tr``, ``parallel_hub`` (the
readers are in :mod:`.data`); every text column is normalised as :class:`tase_search.encoding.encoder.Encoder`
normalises input and prefixed with the task's prompts, so the model trains on what it will see.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from typing import Any

from tase_search.errors import DataError, InputError

from . import data as tdata

__all__ = ["apply_prompts", "build_task_dataset", "data_files", "normalize_dataset", "tokenizer_lowercases"]


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
    from tase_search.text.normalize import normalize_for_model

    cols = _text_columns(ds)

    def fn(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return {c: [normalize_for_model(t, lowercase=lowercase) for t in batch[c]] for c in cols}

    return ds.map(fn, batched=True, batch_size=2000, desc=None)


def tokenizer_lowercases(tok: Any) -> bool:
    """Same rule as :attr:`tase_search.encoding.encoder.Encoder.lowercases` (one definition, in encoder.py)."""
    from tase_search.encoding.passages import tokenizer_lowercases as rule

    return rule(tok)


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
