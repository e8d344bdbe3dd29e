"""The user cache (:func:`cache_dir`): converted models (``models/``) and the ONNX query graphs that
earlier versions kept under ``onnx/`` (queries now use the graph inside each index directory); what is in
``onnx/``, and removing it.

Why a command for it: each set of model weights left a ~90 MB exported graph (plus its tokenizer and
query bundle) that nothing ever removed. Removing them is always safe: nothing reads them any more.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .disk import tree_bytes


def cache_dir() -> Path:
    """``$TASE_SEARCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/tase-search``, else ``~/.cache/tase-search``."""
    env = os.environ.get("TASE_SEARCH_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "tase-search"


def onnx_cache_dir() -> Path:
    return cache_dir() / "onnx"


@dataclass(frozen=True)
class CacheReport:
    """What :func:`clean_onnx_cache` found (and removed unless ``dry_run``)."""

    path: Path
    files: int
    bytes: int
    dry_run: bool


def clean_onnx_cache(*, dry_run: bool = False) -> CacheReport:
    """Remove every file under the ONNX cache directory; ``dry_run`` only counts them."""
    folder = onnx_cache_dir()
    if not folder.is_dir():
        return CacheReport(folder, 0, 0, dry_run)
    files = [p for p in folder.rglob("*") if p.is_file() or p.is_symlink()]
    size = tree_bytes(folder)
    if not dry_run:
        for p in sorted(folder.iterdir()):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
    return CacheReport(folder, len(files), size, dry_run)
