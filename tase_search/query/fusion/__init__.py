"""Fusing a dense and a sparse ranking into one, by a named method: the fusion registry.

A fusion method takes the two ``(key, score)`` rankings (best first) and the dense side's weight
(0..1) and returns the fused ``(key, score)`` ranking, best first. Built in: ``weighted`` (min-max
scaled scores; the default, :data:`tase_search.query.modes.FUSION`) and ``rrf`` (reciprocal rank
fusion). ``Retriever.search(fusion=...)`` and the CLI's ``--fusion`` choices read this registry.

Adding a method is one module in this folder defining ``fuse`` (as :mod:`.rrf` does) and its name in
:data:`BUILTIN`; or, from outside the package, one :func:`register` call.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

from .rrf import RRF_K, rrf
from .weighted import weighted

K = TypeVar("K", bound=Hashable)
FusionMethod = Callable[
    [Sequence[tuple[Any, float]], Sequence[tuple[Any, float]], float], list[tuple[Any, float]]
]

#: The modules of this folder whose ``fuse`` is registered under the module's name.
BUILTIN: tuple[str, ...] = ("rrf", "weighted")
#: The built-in methods' names.
FUSIONS = BUILTIN

_REGISTRY: dict[str, FusionMethod] = {}


def register(name: str, method: FusionMethod) -> FusionMethod:
    """Add (or replace) the fusion method ``name``; returned, so it can be a decorator's result."""
    _REGISTRY.update(methods())
    _REGISTRY[name] = method
    return method


def methods() -> dict[str, FusionMethod]:
    """Every fusion method by name, the built-in ones first."""
    for name in BUILTIN:
        if name not in _REGISTRY:
            _REGISTRY[name] = importlib.import_module(f"{__name__}.{name}").fuse
    return dict(_REGISTRY)


def fusion_names() -> tuple[str, ...]:
    return tuple(methods())


def fuse(
    dense: Sequence[tuple[K, float]],
    sparse: Sequence[tuple[K, float]],
    fusion: str = "rrf",
    dense_weight: float = 0.5,
) -> list[tuple[K, float]]:
    """``(key, score)`` rankings fused by the method ``fusion``."""
    found = methods().get(fusion)
    if found is None:
        raise ValueError(f"fusion {fusion!r} is not one of {', '.join(fusion_names())}")
    return found(dense, sparse, dense_weight)


__all__ = [
    "BUILTIN",
    "FUSIONS",
    "RRF_K",
    "FusionMethod",
    "fuse",
    "fusion_names",
    "methods",
    "register",
    "rrf",
    "weighted",
]
