"""A reranker directory that borrows tensors and its tokenizer from a model it was trained from.

Why: the bundled reranker is trained from the bundled encoder with its word embeddings frozen, so
17M of its 38M weights, and its tokenizer, are the encoder's byte for byte. Shipping them twice would
double what the package weighs for nothing. Such a directory has ``shared.json``:

    {"format": 1, "model": "tase-e5-tr", "tokenizer": true,
     "tensors": {"bert.embeddings.word_embeddings.weight":
                 {"name": "embeddings.word_embeddings.weight", "sha256": "..."}}}

``model`` is a registered name; each borrowed tensor is read from that model's ``model.safetensors``
and must match its SHA-256 (of its raw bytes) or the load fails naming both; the tokenizer is that
model's. :func:`write_shared` makes such a directory from a full one, borrowing only what is equal.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from ..errors import ModelError

SHARED = "shared.json"
FORMAT = 1
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def is_shared(location: str | Path) -> bool:
    return (Path(location) / SHARED).is_file()


def _tensor_sha(t: Any) -> str:
    """SHA-256 of a tensor's raw bytes (its dtype's, in order)."""
    import torch

    return hashlib.sha256(t.contiguous().view(-1).view(torch.uint8).numpy().tobytes()).hexdigest()


def _read_spec(location: Path) -> dict[str, Any]:
    try:
        spec = json.loads((location / SHARED).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{location / SHARED} cannot be read ({exc}); reinstall tase-search") from None
    if (
        not isinstance(spec, dict)
        or spec.get("format") != FORMAT
        or not isinstance(spec.get("model"), str)
        or not isinstance(spec.get("tensors"), dict)
    ):
        raise ModelError(f"{location / SHARED} is not a shared-weights description of format {FORMAT}")
    return spec


def load_shared(location: str | Path, dtype: Any) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of a shared-weights directory: its own tensors plus the borrowed ones."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from ..models import resolve

    location = Path(location)
    spec = _read_spec(location)
    _, source = resolve(spec["model"])
    state = load_file(str(location / "model.safetensors"))
    with safe_open(str(Path(source) / "model.safetensors"), "pt") as f:
        for name, want in spec["tensors"].items():
            t = f.get_tensor(want["name"])
            if _tensor_sha(t) != want["sha256"]:
                raise ModelError(
                    f"reranker {location}: tensor {want['name']!r} of {spec['model']} is not the one it was "
                    f"trained with (SHA-256 differs); reinstall tase-search so the two models match"
                )
            state[name] = t
    config = AutoConfig.from_pretrained(str(location))
    model = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids")]
    if missing or unexpected:
        raise ModelError(
            f"reranker {location}: weights do not fit its config (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    model = model.to(dtype)
    tokenizer = AutoTokenizer.from_pretrained(source if spec.get("tokenizer") else str(location))
    return model.eval(), tokenizer


def write_shared(
    full: str | Path, out: str | Path, source_model: str, *, min_numel: int = 1_000_000
) -> dict[str, Any]:
    """Write the reranker in ``full`` (a sequence-classification directory) to ``out`` as fp16
        safetensors, borrowing from ``source_model`` every tensor equal to one of its own (same name after
        the task prefix, same fp16 bytes, at least ``min_numel`` values) and its tokenizer when it encodes
    alike. Returns ``shared.json``'s
        content (``tensors`` empty: nothing borrowed, and no file written)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    from ..models import resolve

    full, out = Path(full), Path(out)
    _, source = resolve(source_model)
    state = {
        k: v.to(torch.float16).contiguous() for k, v in load_file(str(full / "model.safetensors")).items()
    }
    borrowed: dict[str, Any] = {}
    with safe_open(str(Path(source) / "model.safetensors"), "pt") as f:
        theirs = set(f.keys())
        for name in list(state):
            base = name.split(".", 1)[1] if "." in name else name
            if base in theirs:
                t = f.get_tensor(base)
                if t.dtype == torch.float16 and t.shape == state[name].shape and torch.equal(t, state[name]):
                    borrowed[name] = {"name": base, "sha256": _tensor_sha(t)}
    # only large tensors are worth borrowing: the rest is kept so the file stands on its own for them
    borrowed = {k: v for k, v in borrowed.items() if state[k].numel() >= min_numel}
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v for k, v in state.items() if k not in borrowed}, str(out / "model.safetensors"))
    config = json.loads((full / "config.json").read_text(encoding="utf-8"))
    config["dtype"] = "float16"
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    mine, theirs_tok = AutoTokenizer.from_pretrained(str(full)), AutoTokenizer.from_pretrained(source)
    probe = [
        "Türkiye'nin başkenti neresidir?",
        "İstanbul Boğazı",
        "Oxygen is a chemical element.",
        "çğıöşü ÇĞİÖŞÜ 123",
    ]
    same_tok = all(mine(p)["input_ids"] == theirs_tok(p)["input_ids"] for p in probe) and len(mine) == len(
        theirs_tok
    )
    if not same_tok:
        for name in _TOKENIZER_FILES:
            if (full / name).is_file():
                shutil.copyfile(full / name, out / name)
    spec = {"format": FORMAT, "model": source_model, "tokenizer": same_tok, "tensors": borrowed}
    if borrowed or same_tok:
        (out / SHARED).write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return spec


__all__ = ["SHARED", "is_shared", "load_shared", "write_shared"]
