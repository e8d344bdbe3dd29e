"""Remove the common direction from a mean-pooled model's embeddings, inside its own weights.

e5-style models put every text in a narrow cone: two unrelated Turkish sentences score cosine
~0.8, a same-image caption pair ~0.88. Ranking only needs the order, but a user reading scores
(thresholds, "is this a match?") needs a gap, and the Tasviret check measures exactly that gap.
Subtracting the corpus mean ``c`` of the pooled vectors before normalising spreads the cone
(Mu & Viswanath 2018, "All-but-the-Top"; Su et al. 2021, whitening).

For mean pooling the subtraction folds into the weights: the pooled vector is the mean of the
last layer's outputs ``LayerNorm(x_t) = gamma * z_t + beta``, so ``pooled - c`` is what the same
model gives with ``beta - c``. The result is an ordinary Transformer -> mean Pooling -> Normalize
directory (every loader, the ONNX export and the fingerprint work unchanged).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tase_search.errors import ModelError

__all__ = ["center_model", "pooled_mean"]


def pooled_mean(
    model_dir: str | Path, texts: Sequence[str], *, max_length: int = 256, batch_size: int = 32
) -> np.ndarray:
    """The average of the (unnormalised) mean-pooled last hidden states over ``texts``."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir))
    model.train(False)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    total = torch.zeros(model.config.hidden_size, dtype=torch.float64)
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            batch = [texts[i] for i in order[s : s + batch_size]]
            enc = tok(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            total += pooled.sum(0).double()
    return (total / max(1, len(texts))).float().numpy()


def _last_layernorm_bias(keys: Sequence[str]) -> str:
    cands = [k for k in keys if k.endswith("output.LayerNorm.bias") and "attention" not in k]
    if not cands:
        raise ModelError("centering needs a BERT-style model (no final output.LayerNorm.bias found)")

    def layer(k: str) -> int:
        parts = k.split(".")
        return int(parts[parts.index("layer") + 1]) if "layer" in parts else -1

    return max(cands, key=layer)


def center_model(
    model_dir: str | Path,
    out_dir: str | Path,
    texts: Sequence[str],
    *,
    strength: float = 1.0,
    max_length: int = 256,
) -> dict[str, Any]:
    """Copy ``model_dir`` to ``out_dir`` with ``strength`` x the pooled mean of ``texts`` folded out.

    ``texts`` should carry the prompts the model is used with (queries and passages both), since
    the prompt tokens are part of every pooled vector.
    """
    import torch
    from safetensors.torch import load_file, save_file

    src, out = Path(model_dir), Path(out_dir)
    pooling = (
        json.loads((src / "1_Pooling" / "config.json").read_text()) if (src / "1_Pooling").is_dir() else {}
    )
    if pooling and not (pooling.get("pooling_mode_mean_tokens") or pooling.get("pooling_mode") == "mean"):
        raise ModelError(f"{src}: centering folds into the weights only for mean pooling")
    if not texts:
        raise ModelError("centering needs some text to take the mean over")
    c = pooled_mean(src, texts, max_length=max_length)
    if out.resolve() != src.resolve():
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(src, out)
    state = load_file(str(out / "model.safetensors"))
    key = _last_layernorm_bias(list(state))
    dtype = state[key].dtype
    state[key] = (state[key].float() - strength * torch.from_numpy(c)).to(dtype)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    info = {
        "strength": strength,
        "texts": len(texts),
        "mean_norm": float(np.linalg.norm(c)),
        "parameter": key,
    }
    (out / "centering.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
