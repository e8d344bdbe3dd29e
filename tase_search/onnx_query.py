"""The ONNX query path's public names at their original import path; the code lives in
:mod:`tase_search.encoding.onnx_runtime` (the session) and :mod:`tase_search.encoding.query_bundle`
(the torch-free path kept in the index directory)."""

from __future__ import annotations

from .cache import cache_dir
from .encoding.onnx_runtime import (
    MAX_BATCH,
    MIN_PROBE_COSINE,
    OPSET,
    PROBE_TEXTS,
    OnnxQueryEncoder,
    export,
    graph_key,
    l2_normalize,
    missing_modules,
)
from .encoding.query_bundle import LightQueryEncoder

__all__ = [
    "MAX_BATCH",
    "MIN_PROBE_COSINE",
    "OPSET",
    "PROBE_TEXTS",
    "LightQueryEncoder",
    "OnnxQueryEncoder",
    "cache_dir",
    "export",
    "graph_key",
    "l2_normalize",
    "missing_modules",
]
