"""The weights fingerprint an index manifest records, so an index is never searched with other weights."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


def canonical_parameters(model: Any) -> list[tuple[str, Any]]:
    """The model's tensors keyed by the underlying transformers model's own names.

    A :class:`LightSentenceModel` and a SentenceTransformer loaded from the same directory give the
    same list: the Transformer module's ``0.model.`` (sentence-transformers 6) or ``0.auto_model.``
    (older) prefix is dropped; other modules' tensors (a Dense layer, say) keep ``<index>.<name>``.
    """
    inner = getattr(model, "auto_model", None)
    if inner is not None and hasattr(inner, "state_dict"):  # LightSentenceModel (or a bare Transformer)
        return list(inner.state_dict().items())
    named_children = getattr(model, "named_children", None)
    children = list(named_children()) if callable(named_children) else []
    if any(getattr(module, "auto_model", None) is not None for _, module in children):
        items: list[tuple[str, Any]] = []
        for name, module in children:
            tr = getattr(module, "auto_model", None)
            if tr is not None and hasattr(tr, "state_dict"):
                items.extend(tr.state_dict().items())
            else:
                items.extend((f"{name}.{key}", value) for key, value in module.state_dict().items())
        return items
    return list(model.state_dict().items())


def weights_fingerprint(model: Any) -> str:
    """A stable hash of the loaded parameters and the tokenizer vocabulary.

    Recorded in index manifests so an index is never searched with vectors from other weights
    (same name, retrained model = different fingerprint). Hashes the parameters as float16 (so
    fp16-on-disk and fp32 copies of the same weights agree) under the transformers model's own
    names (so the light loader and sentence-transformers agree, see :func:`canonical_parameters`).
    The fp16 conversion is numpy's, single-threaded: torch's threaded one stalls on a busy CPU.
    """
    import torch

    h = hashlib.blake2b(digest_size=16)
    with torch.no_grad():
        for name, tensor in sorted(canonical_parameters(model), key=lambda item: item[0]):
            h.update(name.encode())
            t = tensor.detach()
            if t.device.type != "cpu":
                t = t.cpu()
            if t.is_floating_point() and t.dtype != torch.float16:
                arr = t.to(torch.float32).numpy().astype(np.float16)  # round-to-nearest-even, as torch
            else:
                arr = t.numpy()
            h.update(np.ascontiguousarray(arr))
    tok = getattr(model, "tokenizer", None)
    if tok is not None:
        h.update(str(len(tok)).encode())
    return h.hexdigest()
