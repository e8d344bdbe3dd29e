"""Document-encoding backends: which runner turns tokenised passages into vectors.

``torch`` (the encoder's own PyTorch path) runs everywhere and is the fallback. The others run a
converted copy of the same weights (an *artefact*, see :mod:`.artefacts`), built once per weights on
a write path and only opened afterwards:

* ``ct2-int8`` - CTranslate2 int8 (:mod:`.ct2`): the default where it can run (``auto``), measured
  fastest at the quality bounds on an AVX2-only CPU;
* ``openvino`` - OpenVINO fp32 (:mod:`.openvino`);
* ``openvino-bf16`` - the same IR at bf16 inference precision, on CPUs with native bf16 (:mod:`.openvino_bf16`).

``auto`` is chosen once, at load (:func:`choose`), by the CPU's class and the encoder's precision
(:data:`AUTO_RULE`): ``ct2-int8`` when ctranslate2 is installed, the CPU has AVX2 or better and the
model converts (a BERT encoder with mean pooling), else ``torch`` (with bf16 weights on CPUs with
native bf16). Queries never come here (they keep the encoder's query path, fp32 ONNX or PyTorch).

Every opened runner is checked against the torch path on probe texts; below :data:`MIN_BACKEND_COSINE`
the backend is refused (an explicit choice raises, ``auto`` falls back to torch with a warning).
"""

from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError, ModelError
from ..agreement import MIN_BACKEND_COSINE
from . import artefacts, ct2
from .document import BackendEncoder

log = logging.getLogger(__name__)

AUTO = "auto"
TORCH = "torch"
#: The modules of this folder that are document backends. Each has a ``NAME``, ``missing()`` (the
#: package it needs, if absent), ``unsupported(model)`` (why this model cannot run on it), ``write(model,
#: out)`` (the weights converted into an artefact) and ``RUNNER``, the class that opens the artefact.
BUILTIN: tuple[str, ...] = ("ct2", "openvino", "openvino_bf16")
_MODULES: dict[str, Any] = {}


def register(module: Any) -> Any:
    """Add a document backend (a module or object with the attributes :data:`BUILTIN`'s modules have)."""
    _MODULES[module.NAME] = module
    return module


for _name in BUILTIN:
    register(importlib.import_module(f"{__name__}.{_name}"))


def backend_names() -> tuple[str, ...]:
    """Every ``backend=`` / ``--backend`` value: ``auto``, ``torch`` and the registered backends."""
    return (AUTO, TORCH, *_MODULES)


def converted_names() -> tuple[str, ...]:
    """The backends that run a converted artefact (``tase-search model export --backend``)."""
    return tuple(_MODULES)


#: The built-in ``backend=`` / ``--backend`` values.
BACKENDS = backend_names()
PROBE_TEXTS = (
    "Merhaba dünya",
    "İstanbul'da yarın yağmur yağacak mı?",
    "The committee will publish its report on Monday.",
    "Türkiye'nin en kalabalık şehri olan İstanbul, Boğaziçi'nin iki yakasında kurulmuştur ve "
    "tarih boyunca pek çok imparatorluğa başkentlik yapmıştır; bugün de ülkenin ekonomik merkezidir.",
)


def check_name(backend: str) -> str:
    if backend not in backend_names():
        raise InputError(f"backend {backend!r} is not one of {', '.join(backend_names())}; pick one of those")
    return backend


def why_not(backend: str, model: Any) -> str | None:
    """Why ``backend`` cannot run ``model`` here (None when it can)."""
    if backend == TORCH:
        return None
    mod = _MODULES[check_name(backend)]
    return mod.missing() or mod.unsupported(model)


#: What ``auto`` runs documents on, per CPU class (:mod:`tase_search.runtime.cpu`), for an encoder
#: with bf16 weights (``precision`` auto on a CPU with native bf16) and for an fp32 one. Measured side
#: by side with ``bench/encode.py`` (bench/README.md, "documents by CPU class"): CTranslate2 int8 is the
#: fastest path at cosine >= 0.99 on every class measured - AVX2 2.3-3.1x sentence-transformers fp32,
#: AVX512-BF16 3.3x (bf16 weights 2.0x, OpenVINO bf16 1.3x), AMX 2.36x (bf16 weights 2.20x); a pick
#: that cannot run here (ctranslate2 not installed, model not convertible) falls back to torch, which
#: uses the bf16 weights where the CPU has native bf16.
AUTO_RULE: dict[str, dict[str, str]] = {
    "amx": {"bf16": ct2.NAME, "fp32": ct2.NAME},
    "avx512-bf16": {"bf16": ct2.NAME, "fp32": ct2.NAME},
    "avx512": {"bf16": ct2.NAME, "fp32": ct2.NAME},
    "avx2": {"bf16": ct2.NAME, "fp32": ct2.NAME},
    "baseline": {"bf16": TORCH, "fp32": TORCH},
}


def auto_choice(cpu_class: str, precision: str) -> str:
    """:data:`AUTO_RULE`'s pick for a CPU class and an encoder precision (``bf16`` or anything else)."""
    row = AUTO_RULE.get(cpu_class, AUTO_RULE["baseline"])
    return row["bf16" if precision == "bf16" else "fp32"]


def choose(backend: str, encoder: Any) -> str:
    """Resolve ``auto`` for this encoder on this CPU (explicit names are returned as given)."""
    from ...runtime.cpu import cpu_class

    if check_name(backend) != AUTO:
        return backend
    klass = cpu_class()
    pick = auto_choice(klass, getattr(encoder, "precision", "fp32"))
    reason = None if pick == TORCH else why_not(pick, encoder.model)
    if reason is not None:
        log.debug("document backend auto -> torch (%s CPU, %s not usable: %s)", klass, pick, reason)
        return TORCH
    return pick


def model_dir(encoder: Any) -> Path | None:
    """The local directory of the encoder's model, when it has one (artefacts may go beside it)."""
    from ...models import resolve

    try:
        location = Path(resolve(encoder.model_id)[1])
    except Exception:  # noqa: BLE001 - a hub id or a name that no longer resolves
        return None
    return location if location.is_dir() else None


def export(encoder: Any, backend: str) -> Path:
    """Build (or find) the artefact of ``backend`` for the encoder's weights; returns its directory."""
    if backend in (AUTO, TORCH):
        raise InputError(f"backend {backend!r} has nothing to export; name one of {', '.join(_MODULES)}")
    reason = why_not(backend, encoder.model)
    if reason is not None:
        raise ModelError(f"backend {backend} cannot run model {encoder.model_id}: {reason}")
    where = model_dir(encoder)
    found = artefacts.find(backend, encoder.fingerprint, where)
    if found is not None:
        return found
    t0 = time.perf_counter()
    path = artefacts.build(
        backend, encoder.fingerprint, where, lambda out: _MODULES[backend].write(encoder.model, out)
    )
    log.info(
        "built the %s artefact of %s in %.1f s: %s", backend, encoder.model_id, time.perf_counter() - t0, path
    )
    return path


def probe_cosine(runner: Any, encoder: Any) -> float:
    """Smallest cosine between ``runner``'s and the torch path's vectors of the probe texts."""
    ref = encoder.encode_document(list(PROBE_TEXTS))
    got = BackendEncoder(encoder, runner, "probe").encode_document(list(PROBE_TEXTS), batch_size=2)
    if not np.isfinite(got).all():
        return -1.0
    return float((ref * got).sum(axis=1).min())


def with_backend(
    encoder: Any, backend: str = AUTO, *, build: bool = False, threads: int | None = None
) -> Any:
    """``encoder`` with documents on ``backend`` (resolved once here), or ``encoder`` itself for torch.

    ``build=True`` (write paths: indexing, export) converts the weights when no artefact exists;
    otherwise a missing artefact means the torch path (``auto``) or a ModelError naming the export
    command (an explicit backend).
    """
    name = choose(backend, encoder)
    if name == TORCH:
        return encoder
    explicit = backend != AUTO
    try:
        reason = why_not(name, encoder.model)
        if reason is not None:
            raise ModelError(f"backend {name} cannot run model {encoder.model_id}: {reason}")
        path = artefacts.find(name, encoder.fingerprint, model_dir(encoder))
        if path is None:
            if not build:
                raise ModelError(
                    f"backend {name} has no converted model for {encoder.model_id} yet; "
                    f"run `tase-search model export --backend {name} -m {encoder.model_id}` (or index once)"
                )
            path = export(encoder, name)
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        runner = _MODULES[name].RUNNER(path, threads=threads)
        worst = probe_cosine(runner, encoder)
        if worst < MIN_BACKEND_COSINE:
            raise ModelError(
                f"backend {name} disagrees with the torch path (probe cosine {worst:.4f} < {MIN_BACKEND_COSINE}) "
                f"at {path}; delete that directory and export again, or use --backend torch"
            )
    except ModelError as exc:
        if explicit:
            raise
        log.warning("document backend auto: using torch (%s)", exc)
        return encoder
    except Exception as exc:  # noqa: BLE001 - a failed conversion must not stop indexing under auto
        if explicit:
            raise ModelError(
                f"backend {name} failed for model {encoder.model_id}: {type(exc).__name__}: {exc}"
            ) from exc
        log.warning("document backend auto: using torch (%s failed: %s: %s)", name, type(exc).__name__, exc)
        return encoder
    log.debug("documents encoded with %s from %s", name, path)
    return BackendEncoder(encoder, runner, name)


__all__ = [
    "AUTO",
    "BACKENDS",
    "BUILTIN",
    "backend_names",
    "converted_names",
    "register",
    "TORCH",
    "BackendEncoder",
    "check_name",
    "choose",
    "export",
    "with_backend",
]
