"""Models in and out of training: a base or teacher loaded by name (`load_model`), and the shipped form
of a trained model (`export_fp16`): its model files only, weights as fp16 safetensors declared float32."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tase_search.errors import ModelError

__all__ = ["export_fp16", "load_model"]


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


def load_model(spec: str) -> Any:
    """Load a base/teacher model by registered name, directory or hub id (T5 → encoder-only + mean)."""
    from tase_search.encoding.st_loader import load_sentence_transformer
    from tase_search.models import resolve

    _, location = resolve(spec)
    return load_sentence_transformer(location)
