"""Weight interpolation between two fine-tunes of one model (WiSE-FT / "model soups").

Why: the shipped encoder is pulled two ways. Long translation alignment (bitext MNRL + distillation)
raises tatoeba/newstest, while a short run on the Turkish semantic tasks (STSb-TR, TQuAD) raises
STS and question->paragraph retrieval but starts to forget alignment. Two fine-tunes that share a
starting point usually sit in one basin of the loss, so a straight line between their weights
keeps much of what each one learned (Wortsman et al. 2022, "Robust fine-tuning of zero-shot
models", and "Model soups"), for the price of one weighted sum and no further training.

    python -m training.merge runs/aligned/model runs/semantic/model --weight 0.5 --output runs/merged

writes ``weight * B + (1 - weight) * A`` as an fp16 sentence-transformers model (the files of A,
weights replaced). The two models must have the same architecture (parameter names and shapes)
and the same tokenizer, else the sum is meaningless and a ``ModelError`` says what differs. A
training config can do the same as its last step (``interpolate: {with: MODEL, weight: W}``).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tase_search.errors import InputError, ModelError

__all__ = ["check_interpolate_spec", "interpolate_state_dicts", "interpolate_models", "main"]


def check_interpolate_spec(spec: Any) -> dict[str, Any]:
    """Validate a config's ``interpolate:`` mapping; return it with the weight as a float."""
    if not isinstance(spec, dict):
        raise InputError(f"'interpolate' must be a mapping like {{with: MODEL, weight: 0.5}}, got {spec!r}")
    unknown = set(spec) - {"with", "weight"}
    if unknown:
        raise InputError(f"'interpolate' has unknown keys {sorted(unknown)}; valid keys: ['weight', 'with']")
    if not spec.get("with"):
        raise InputError(
            "'interpolate' needs 'with': the model to interpolate with (name, directory or hub id)"
        )
    return {"with": str(spec["with"]), "weight": _check_weight(spec.get("weight", 0.5))}


def _check_weight(weight: Any) -> float:
    try:
        w = float(weight)
    except (TypeError, ValueError):
        raise InputError(
            f"interpolation weight {weight!r} is not a number; give one between 0 and 1"
        ) from None
    if not 0.0 <= w <= 1.0:
        raise InputError(
            f"interpolation weight {w} is outside [0, 1] (0 keeps the first model, 1 the second)"
        )
    return w


def interpolate_state_dicts(a: dict[str, Any], b: dict[str, Any], weight: float) -> dict[str, Any]:
    """``weight * b + (1 - weight) * a`` for every floating tensor; integer buffers must be equal.

    Sums in fp32 whatever the stored dtype (fp16 shipped weights), and returns a's dtypes.
    """
    import torch

    w = _check_weight(weight)
    if set(a) != set(b):
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        raise ModelError(
            "the models have different parameters (not the same architecture): "
            f"only in the first {only_a[:5]}{' ...' if len(only_a) > 5 else ''}, "
            f"only in the second {only_b[:5]}{' ...' if len(only_b) > 5 else ''}"
        )
    out: dict[str, Any] = {}
    for k, ta in a.items():
        tb = b[k]
        if tuple(ta.shape) != tuple(tb.shape):
            raise ModelError(
                f"parameter {k!r} has shape {tuple(ta.shape)} in the first model and "
                f"{tuple(tb.shape)} in the second (different vocabulary or size?)"
            )
        if ta.is_floating_point():
            mixed = ta.float() * (1.0 - w) + tb.float() * w
            out[k] = mixed.to(ta.dtype)
        else:
            if not torch.equal(ta, tb):
                raise ModelError(
                    f"integer buffer {k!r} differs between the models; they cannot be interpolated"
                )
            out[k] = ta.clone()
    return out


def _tokenizer_fingerprint(model: Any) -> str:
    tok = model.tokenizer
    vocab = sorted(tok.get_vocab().items())
    h = hashlib.sha256(repr(vocab).encode("utf-8"))
    h.update(repr((type(tok).__name__, getattr(tok, "do_lower_case", None))).encode("utf-8"))
    return h.hexdigest()


def interpolate_models(
    first: str, second: str, weight: float, output: str | Path, *, fp16: bool = True
) -> Path:
    """Write ``weight * second + (1 - weight) * first`` to ``output``; return the directory.

    ``first``/``second`` are registered names, directories or hub ids. The result keeps first's
    files (tokenizer, pooling, config); with ``fp16`` (the default) its weights are stored as fp16
    safetensors like every exported model of this project.
    """
    from .export import export_fp16, load_model

    w = _check_weight(weight)
    ma, mb = load_model(first), load_model(second)
    if _tokenizer_fingerprint(ma) != _tokenizer_fingerprint(mb):
        raise ModelError(
            f"{first!r} and {second!r} use different tokenizers (vocabulary or casing); "
            "interpolate only fine-tunes of the same base model"
        )
    ma.load_state_dict(interpolate_state_dicts(ma.state_dict(), mb.state_dict(), w))
    out = Path(output)
    if not fp16:
        if out.exists():
            shutil.rmtree(out)
        ma.save(str(out))
        return out
    with tempfile.TemporaryDirectory(prefix="tase-merge-") as tmp:
        ma.save(tmp)
        return export_fp16(tmp, out)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.merge FIRST SECOND --weight W --output DIR``."""
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m training.merge",
        description="Interpolate the weights of two fine-tunes of one model: WEIGHT * SECOND + (1 - WEIGHT) * FIRST.",
        epilog="example: python -m training.merge tase-e5-tr runs/semantic/model --weight 0.5 --output runs/merged",
    )
    ap.add_argument("first", help="model A (registered name, directory or hub id); its files are kept")
    ap.add_argument("second", help="model B, same architecture and tokenizer")
    ap.add_argument("--weight", type=float, default=0.5, help="weight of SECOND, in [0, 1] (default 0.5)")
    ap.add_argument("--output", required=True, help="directory to write (replaced if it exists)")
    ap.add_argument("--fp32", action="store_true", help="store fp32 weights instead of fp16")
    ns = ap.parse_args(argv)
    try:
        out = interpolate_models(ns.first, ns.second, ns.weight, ns.output, fp16=not ns.fp32)
    except (InputError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
