"""CPU classes from flags, and the per-class choices they drive, on any machine (TASE_SEARCH_CPU_FLAGS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tase_search.encoding import backends
from tase_search.encoding.precision import cpu_supports_bf16, resolve_precision
from tase_search.runtime.cpu import CPU_CLASSES, cpu_class, cpu_flags

SAPPHIRE_RAPIDS = "fpu sse2 avx avx2 avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8"
ZEN4 = "fpu sse2 avx avx2 avx512f avx512_vnni avx512_bf16"
SKYLAKE_SP = "fpu sse2 avx avx2 avx512f avx512_vnni"
EPYC_ZEN2 = "fpu sse2 avx avx2 fma"
OLD = "fpu sse2"


@pytest.mark.parametrize(
    ("flags", "klass"),
    [
        (SAPPHIRE_RAPIDS, "amx"),
        (ZEN4, "avx512-bf16"),
        (SKYLAKE_SP, "avx512"),
        (EPYC_ZEN2, "avx2"),
        (OLD, "baseline"),
        ("", "baseline"),
    ],
)
def test_class_from_flags(flags: str, klass: str) -> None:
    assert cpu_class(frozenset(flags.split())) == klass
    assert klass in CPU_CLASSES


def test_the_environment_stands_in_for_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASE_SEARCH_CPU_FLAGS", "AVX2, fma")
    assert cpu_flags() == {"avx2", "fma"} and cpu_class() == "avx2"
    monkeypatch.setenv("TASE_SEARCH_CPU_FLAGS", "")
    real = Path("/proc/cpuinfo")
    if real.is_file():
        assert cpu_class() == cpu_class(cpu_flags())


@pytest.mark.parametrize(
    ("flags", "bf16"), [(SAPPHIRE_RAPIDS, True), (ZEN4, True), (SKYLAKE_SP, False), (EPYC_ZEN2, False)]
)
def test_precision_auto_follows_the_class(monkeypatch: pytest.MonkeyPatch, flags: str, bf16: bool) -> None:
    import torch

    monkeypatch.setenv("TASE_SEARCH_CPU_FLAGS", flags)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    assert cpu_supports_bf16() is bf16
    assert resolve_precision("auto") == ("bf16" if bf16 else "fp32")
    monkeypatch.setenv("TASE_SEARCH_FORCE_NO_BF16", "1")
    assert resolve_precision("auto") == "fp32"


class _Enc:
    def __init__(self, precision: str) -> None:
        self.precision = precision
        self.model = object()


@pytest.mark.parametrize("flags", [SAPPHIRE_RAPIDS, ZEN4, SKYLAKE_SP, EPYC_ZEN2])
def test_auto_document_backend_per_class(monkeypatch: pytest.MonkeyPatch, flags: str) -> None:
    monkeypatch.setenv("TASE_SEARCH_CPU_FLAGS", flags)
    klass = cpu_class()
    for precision in ("bf16", "fp32"):
        got = backends.choose("auto", _Enc(precision))
        want = backends.auto_choice(klass, precision)
        # the rule's pick, or torch when that backend cannot run here (not installed, model not convertible)
        assert got in (want, backends.TORCH)
        if want != backends.TORCH and backends.why_not(want, object()) is None:
            assert got == want
    assert backends.choose("ct2-int8", _Enc("bf16")) == "ct2-int8"  # an explicit name is kept


def test_openvino_bf16_refuses_a_cpu_without_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    from tase_search.encoding.backends import openvino_bf16

    monkeypatch.setenv("TASE_SEARCH_CPU_FLAGS", EPYC_ZEN2)
    assert "no native bf16" in openvino_bf16.unsupported(object())
    monkeypatch.setenv("TASE_SEARCH_CPU_FLAGS", SAPPHIRE_RAPIDS)
    assert openvino_bf16.unsupported(object()) is None
    assert "openvino-bf16" in backends.backend_names()
