"""Where a backend's converted model (its *artefact*) lives, and how it is written.

Why this module: a converted model (CTranslate2 int8 weights, an OpenVINO IR) is built once per
set of weights on a write path (``tase-search index``, ``tase-search model export``) and only read
afterwards. Readers must never see a half-written directory, two writers must not clash, and an
artefact of other weights must never be picked up.

Layout: ``<root>/backends/<backend>-v<FORMAT>-<fingerprint[:20]>/`` holding the backend's files and
``artefact.json`` (written last: the directory is complete when it is there). Roots, in order:

1. beside the model: ``<model dir>/backends/...`` (when the model is a local directory; what
   ``tase-search model export`` writes when that directory is writable);
2. the user cache: ``<cache>/backends/...`` (:func:`tase_search.runtime.cache.cache_dir`), used when
   the model directory is read-only (a packaged model in a system-wide install).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...runtime.cache import cache_dir

#: Bumped when an artefact's files change meaning; older ones are then ignored (and left alone).
FORMAT_VERSION = 1
MARKER = "artefact.json"


def artefact_name(backend: str, fingerprint: str) -> str:
    return f"{backend}-v{FORMAT_VERSION}-{fingerprint[:20]}"


def roots(model_dir: str | os.PathLike[str] | None) -> list[Path]:
    """The directories artefacts are looked for in (and written to), in order."""
    out = []
    if model_dir is not None and Path(model_dir).is_dir():
        out.append(Path(model_dir) / "backends")
    out.append(cache_dir() / "backends")
    return out


def find(backend: str, fingerprint: str, model_dir: str | os.PathLike[str] | None) -> Path | None:
    """The first complete artefact of ``backend`` for these weights, or None."""
    name = artefact_name(backend, fingerprint)
    for root in roots(model_dir):
        marker = root / name / MARKER
        try:
            meta = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if meta.get("fingerprint") == fingerprint and meta.get("backend") == backend:
            return root / name
    return None


def _writable_root(model_dir: str | os.PathLike[str] | None) -> Path:
    for root in roots(model_dir):
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(root, os.W_OK):
            return root
    raise OSError(
        f"no writable directory for backend artefacts among {', '.join(map(str, roots(model_dir)))}"
    )


def build(
    backend: str,
    fingerprint: str,
    model_dir: str | os.PathLike[str] | None,
    write: Callable[[Path], dict[str, Any]],
) -> Path:
    """Run ``write(tmp_dir)`` (returns metadata), mark the result complete and rename it into place.

    If another process finished the same artefact first, its copy is kept and ours discarded.
    """
    root = _writable_root(model_dir)
    final = root / artefact_name(backend, fingerprint)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=root))
    try:
        meta = dict(write(tmp))
        meta.update({"backend": backend, "fingerprint": fingerprint, "format": FORMAT_VERSION})
        (tmp / MARKER).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        try:
            os.rename(tmp, final)
        except OSError:
            if find(backend, fingerprint, model_dir) is None:
                raise
        return final
    finally:
        with contextlib.suppress(OSError):
            if tmp.exists():
                shutil.rmtree(tmp)
