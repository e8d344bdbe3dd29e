"""OpenVINO fp32: the model's ONNX graph compiled by OpenVINO's CPU plugin (a ``--backend`` choice).

Measured on the AVX2-only development CPU at about PyTorch fp32's speed (1.07x on the same batches),
so it is not the default there; on CPUs where OpenVINO's kernels pull ahead it can be chosen with
``--backend openvino``. NNCF static int8 was measured too (bench/README.md) and is not offered: it was
no faster than fp32 on that CPU and fell to cosine 0.97 on some sentences.

The artefact is the IR (``model.xml`` + ``model.bin``) converted from the graph
:func:`tase_search.encoding.onnx_runtime.export` writes, so it pools and normalises exactly like that graph.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

NAME = "openvino"


def missing() -> str | None:
    if importlib.util.find_spec("openvino") is None:
        return "openvino is not installed (pip install 'tase-search[fast]')"
    return None


def unsupported(model: Any) -> str | None:
    return None  # whatever torch.onnx.export traces


def write(model: Any, out: Path) -> dict[str, Any]:
    import openvino as ov

    from ..onnx_runtime import export

    onnx_path = out / "model.onnx"
    export(model, onnx_path)
    ov.save_model(ov.Core().read_model(str(onnx_path)), str(out / "model.xml"), compress_to_fp16=False)
    onnx_path.unlink()
    return {"openvino": ov.__version__}


class OpenVinoRunner:
    """Tokenised batch in, the graph's sentence embeddings out."""

    #: OpenVINO's inference precision for this runner (the IR's weights stay fp32).
    PRECISION = "f32"

    def __init__(self, path: Path, *, threads: int = 1) -> None:
        import openvino as ov

        core = ov.Core()
        cfg = {
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": self.PRECISION,
        }
        self.compiled = core.compile_model(core.read_model(str(path / "model.xml")), "CPU", cfg)
        self.inputs = [i.get_any_name() for i in self.compiled.inputs]

    def __call__(self, features: dict[str, np.ndarray]) -> np.ndarray:
        out = self.compiled({name: features[name] for name in self.inputs})
        return np.asarray(out[0], dtype=np.float32)


#: What opens the artefact (the backend registry reads it).
RUNNER = OpenVinoRunner
