"""Precision: whether this CPU runs bf16 natively, what ``auto`` means here, and the bf16 weight cast.

Why bf16 weights rather than autocast is explained on :class:`tase_search.encoding.encoder.Encoder`.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from ..errors import InputError
from ..runtime.config import PRECISIONS


def cpu_supports_bf16() -> bool:
    """True when this CPU runs bf16 matmuls natively (its class is ``amx`` or ``avx512-bf16``,
    :mod:`tase_search.runtime.cpu`), where bf16 pays, and torch's oneDNN agrees.

    On CPUs without it bf16 is emulated and slower than fp32, so ``precision="auto"`` falls back.
    ``TASE_SEARCH_FORCE_NO_BF16=1`` forces the fallback; ``TASE_SEARCH_CPU_FLAGS`` stands in for the
    CPU's flags (both used by tests to cover every path on any machine).
    """
    from ..runtime.cpu import NATIVE_BF16, cpu_class

    if os.environ.get("TASE_SEARCH_FORCE_NO_BF16") == "1":
        return False
    if cpu_class() not in NATIVE_BF16:
        return False
    try:
        import torch

        fn = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return fn is None or bool(fn())
    except Exception:  # noqa: BLE001 - any failure means "do not rely on it"
        return False


def resolve_precision(precision: str) -> str:
    """Map ``auto`` to ``bf16`` or ``fp32`` for this machine; validate the others.

    ``bf16`` (bf16 weights) and ``bf16-autocast`` (fp32 weights under bf16 autocast, the behaviour
    before bf16 weights became the default) are taken as asked for, even on a CPU without native
    bf16, where they run emulated and slower than fp32.
    """
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return precision


def to_bf16(model: Any, *, copy_model: bool = True) -> Any:
    """``model`` with its floating-point weights in bf16: a copy (default) or ``model`` itself, cast in place.

    The copy never holds a second fp32 set of weights: each parameter is converted straight into
    the copy (shared/tied parameters stay shared), then ``.to(bfloat16)`` converts the floating
    buffers. The caller's model is left exactly as it was.
    """
    import torch

    if not copy_model:
        return model.to(torch.bfloat16)
    memo: dict[int, Any] = {}
    with torch.no_grad():
        for param in model.parameters():
            if param.is_floating_point() and id(param) not in memo:
                memo[id(param)] = torch.nn.Parameter(
                    param.detach().to(torch.bfloat16, copy=True), requires_grad=param.requires_grad
                )
    clone = copy.deepcopy(model, memo)
    return clone.to(torch.bfloat16)
