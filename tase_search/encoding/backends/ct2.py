"""CTranslate2 int8: the fastest measured document path on CPUs without native bf16.

Why: on a 2-core AVX2-only EPYC (no AVX512, VNNI or AMX), CTranslate2's int8 BERT encoder ran the
default model 2.3x faster than PyTorch fp32 on the same tokenised batches, at cosine 0.996 mean to
fp32, where OpenVINO int8 (NNCF, calibrated) and ONNX Runtime static int8 gained nothing or lost
quality (``bench/encode.py``, bench/README.md). The weights are quantised per output row to int8,
activations dynamically per batch at run time, so no calibration text is needed: the conversion is a
deterministic function of the weights.

Conversion reads the already-loaded transformers ``BertModel`` (no second load from disk) through
CTranslate2's own BERT loader; mean pooling is computed here from the last hidden states with the
attention mask, as the model's Pooling module does (prompt tokens included).
"""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path
from typing import Any

import numpy as np

NAME = "ct2-int8"
COMPUTE_TYPE = "int8"
BATCH_SIZE = 16
MAX_BATCH_TOKENS = 4096


def missing() -> str | None:
    """Why this backend cannot run here (None when it can)."""
    if importlib.util.find_spec("ctranslate2") is None:
        return "ctranslate2 is not installed (pip install 'tase-search[fast]')"
    import ctranslate2

    if COMPUTE_TYPE not in ctranslate2.get_supported_compute_types("cpu"):
        return "this CPU has no int8 support in CTranslate2"
    return None


def transformer_of(model: Any) -> Any:
    """The transformers model inside a LightSentenceModel or SentenceTransformer."""
    inner = getattr(model, "auto_model", None)
    if inner is None:
        first = model[0]
        inner = getattr(first, "model", None) or first.auto_model
    return inner


def pooling_of(model: Any) -> str | None:
    mode = getattr(model, "pooling_mode", None)
    if mode is not None:
        return str(mode)
    for module in list(model)[1:]:  # a SentenceTransformer: its Pooling module
        mode = getattr(module, "pooling_mode", None)
        fn = getattr(module, "get_pooling_mode_str", None)  # sentence-transformers < 6
        if mode is not None or fn is not None:
            return str(mode if mode is not None else fn())
    return None


def unsupported(model: Any) -> str | None:
    """Why this model cannot be converted (None when it can): a BERT encoder with mean pooling."""
    try:
        inner = transformer_of(model)
    except Exception:  # noqa: BLE001 - any other layout is simply not supported
        return "the model is not a transformer encoder"
    if type(inner).__name__ != "BertModel":
        return f"CTranslate2 conversion here handles BertModel, not {type(inner).__name__}"
    if getattr(inner.config, "position_embedding_type", "absolute") != "absolute":
        return "only absolute position embeddings convert"
    if pooling_of(model) != "mean":
        return f"pooling {pooling_of(model)!r} is not mean"
    return None


def write(model: Any, out: Path) -> dict[str, Any]:
    """Convert ``model`` to a CTranslate2 int8 encoder in ``out``; returns metadata for the marker."""
    import copy

    import ctranslate2
    import torch
    from ctranslate2.converters.transformers import BertLoader

    inner = transformer_of(model)
    config = copy.copy(inner.config)
    config.position_embedding_type = "absolute"  # transformers 5 no longer sets it; CT2 asserts it
    hidden = int(config.hidden_size)
    pooler = getattr(inner, "pooler", None)
    if pooler is None:  # never used (mean pooling), but the CT2 BERT spec has the layer
        pooler = types.SimpleNamespace(dense=torch.nn.Linear(hidden, hidden))
    with torch.no_grad():
        # fp32 copies (the spec keeps references), so fp16 or bf16 weights quantise alike
        pooler_copy = copy.deepcopy(pooler)
        if isinstance(pooler_copy, torch.nn.Module):
            pooler_copy.float()
        fp32 = types.SimpleNamespace(
            config=config,
            embeddings=copy.deepcopy(inner.embeddings).float(),
            encoder=copy.deepcopy(inner.encoder).float(),
            pooler=pooler_copy,
        )
        spec = BertLoader()(fp32, model.tokenizer)
    spec.validate()
    spec.optimize(quantization=COMPUTE_TYPE)
    spec.save(str(out))
    return {"ctranslate2": ctranslate2.__version__, "compute_type": COMPUTE_TYPE}


class Ct2Runner:
    """Tokenised batch in, mean-pooled float32 embeddings out."""

    #: The largest batch it is given (length-sorted): on short sentences 16 ran 2.80x ST fp32 against
    #: 2.51x for 32, 2.50x for 64 and 1.50x for 128 (bench/README.md) ...
    batch_size = BATCH_SIZE
    #: ... and at most this many padded tokens a batch: 8 passages of 512 tokens ran 1.28x ST fp32
    #: against 1.22x for 16 and 0.77x for 64.
    max_batch_tokens = MAX_BATCH_TOKENS

    def __init__(self, path: Path, *, threads: int = 1) -> None:
        import ctranslate2

        self.path = path
        #: batches it runs side by side, one thread each: on short sentences two batches on one thread
        #: each ran 1.2-1.4x faster than one batch on two threads (bench/README.md), as a batch of
        #: 16 short rows is too small a product to split well across cores
        self.parallel_batches = max(1, int(threads))
        self.encoder = ctranslate2.Encoder(
            str(path),
            device="cpu",
            compute_type=COMPUTE_TYPE,
            intra_threads=1,
            inter_threads=self.parallel_batches,
        )

    def __call__(self, features: dict[str, np.ndarray]) -> np.ndarray:
        ids = features["input_ids"]
        mask = features["attention_mask"]
        lengths = mask.sum(axis=1)
        batch = [row[:n].tolist() for row, n in zip(ids, lengths)]
        types_ = features.get("token_type_ids")
        kwargs = {}
        if types_ is not None and np.any(types_):
            kwargs["token_type_ids"] = [row[:n].tolist() for row, n in zip(types_, lengths)]
        hidden = np.asarray(self.encoder.forward_batch(batch, **kwargs).last_hidden_state, dtype=np.float32)
        m = mask[:, : hidden.shape[1], None].astype(np.float32)
        return (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)


#: What opens the artefact (the backend registry reads it).
RUNNER = Ct2Runner
