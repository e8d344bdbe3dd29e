"""Teacher labels for distillation: a frozen model's embeddings of the training texts, computed once and cached.

The cache (``teacher-cache.npz`` in the run directory) is keyed by the teacher's name, so a resumed
run or a later stage does not pay again for minutes of CPU on tens of thousands of texts.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from tase_search.store.lock import atomic_write_bytes

from .tasks import _text_columns

__all__ = ["add_self_teacher_labels", "add_teacher_labels", "teacher_embeddings"]


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
