"""OpenVINO bf16: the :mod:`.openvino` backend's IR run with bf16 inference precision (``--backend
openvino-bf16``).

OpenVINO's CPU plugin then runs the matrix products on the CPU's bf16 units: AMX tiles on the
``amx`` class, AVX512-BF16 on ``avx512-bf16`` (:mod:`tase_search.runtime.cpu`); elsewhere bf16 would
be emulated, so the backend refuses those CPUs. Same artefact format as ``openvino`` (an fp32 IR),
built once per weights under its own name.
"""

from __future__ import annotations

from typing import Any

from ...runtime.cpu import NATIVE_BF16, cpu_class
from .openvino import OpenVinoRunner, missing, write

NAME = "openvino-bf16"


def unsupported(model: Any) -> str | None:
    found = cpu_class()
    if found not in NATIVE_BF16:
        return f"this CPU ({found}) has no native bf16; use openvino (fp32) or ct2-int8"
    return None


class OpenVinoBf16Runner(OpenVinoRunner):
    PRECISION = "bf16"


#: What opens the artefact (the backend registry reads it).
RUNNER = OpenVinoBf16Runner

__all__ = ["NAME", "RUNNER", "missing", "unsupported", "write"]
