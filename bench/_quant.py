"""Calibrated static int8 variants for bench/encode.py: OpenVINO + NNCF and ONNX Runtime QDQ.

Measured, not shipped (bench/README.md says why): both start from the fp32 graph the query path
exports (:func:`tase_search.encoding.onnx_runtime.export`), calibrated on the texts given (Turkish and English,
with the passage prompt, tokenised as the encoder tokenises them). Each returns a runner: numpy
features in, sentence embeddings out.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _features(model: Any, texts: Sequence[str], bs: int = 8) -> list[dict[str, np.ndarray]]:
    preprocess = getattr(model, "preprocess", None) or model.tokenize
    out = []
    for i in range(0, len(texts), bs):
        feats = preprocess(list(texts[i : i + bs]))
        out.append({k: v.numpy() for k, v in feats.items() if hasattr(v, "numpy")})
    return out


def _onnx(model: Any) -> Path:
    from tase_search.encoding.onnx_runtime import export

    path = Path(tempfile.mkdtemp(prefix="tase-bench-quant-")) / "model.onnx"
    export(model, path)
    return path


def openvino_int8(model: Any, calibration: Sequence[str], threads: int) -> Callable[[dict[str, Any]], Any]:
    import nncf
    import openvino as ov

    core = ov.Core()
    feats = _features(model, calibration)
    quantised = nncf.quantize(
        core.read_model(str(_onnx(model))),
        nncf.Dataset(feats),
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(feats),
    )
    compiled = core.compile_model(
        quantised, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    )
    names = [i.get_any_name() for i in compiled.inputs]
    return lambda f: np.asarray(compiled({n: f[n] for n in names})[0], dtype=np.float32)


def onnxruntime_int8_static(
    model: Any, calibration: Sequence[str], threads: int
) -> Callable[[dict[str, Any]], Any]:
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src = _onnx(model)
    pre, out = src.with_name("pre.onnx"), src.with_name("int8.onnx")
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    feats = iter(_features(model, calibration))

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(feats, None)

    # reduce_range: 7-bit weights, so AVX2's u8*s8 pair sums cannot saturate on CPUs without VNNI
    quantize_static(
        str(pre),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
    )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(out), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return lambda f: np.asarray(sess.run(None, {n: f[n] for n in names})[0], dtype=np.float32)
