"""The CPU's class, from its flags: what the fast paths are chosen by.

Why classes: the fastest document path depends on which matrix instructions the CPU has, and a
development machine often lacks what users' servers have (most current Xeons have AMX). Reading the
flags in one place, with ``TASE_SEARCH_CPU_FLAGS`` to stand in for them, makes every per-CPU choice
testable on any machine and lets a benchmark print the class its numbers belong to.

Classes, best first:

- ``amx``: AMX bf16 tiles (``amx_bf16``; Sapphire Rapids and later Xeons);
- ``avx512-bf16``: AVX-512 with native bf16 dot products (``avx512_bf16``; Cooper Lake, Zen 4 and later);
- ``avx512``: AVX-512 without bf16 (``avx512f``);
- ``avx2``: AVX2 only (``avx2``);
- ``baseline``: none of those (old x86, or flags that could not be read).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: The classes, best first.
CPU_CLASSES = ("amx", "avx512-bf16", "avx512", "avx2", "baseline")
#: Space- or comma-separated flags used instead of the machine's (tests; forcing a class).
FLAGS_ENV = "TASE_SEARCH_CPU_FLAGS"
#: Classes whose bf16 matmuls are native (bf16 weights pay there; elsewhere bf16 is emulated and slow).
NATIVE_BF16 = frozenset({"amx", "avx512-bf16"})


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo``), or ``$TASE_SEARCH_CPU_FLAGS`` when set."""
    given = os.environ.get(FLAGS_ENV)
    if given is not None and given.strip():
        return frozenset(f for f in re.split(r"[\s,]+", given.strip().lower()) if f)
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_class(flags: frozenset[str] | set[str] | None = None) -> str:
    """The class of a CPU with ``flags`` (default: this one's, see :func:`cpu_flags`)."""
    f = cpu_flags() if flags is None else flags
    if "amx_bf16" in f:
        return "amx"
    if "avx512_bf16" in f:
        return "avx512-bf16"
    if "avx512f" in f:
        return "avx512"
    if "avx2" in f:
        return "avx2"
    return "baseline"


__all__ = ["CPU_CLASSES", "FLAGS_ENV", "NATIVE_BF16", "cpu_class", "cpu_flags"]
