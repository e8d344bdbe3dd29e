"""Where named indexes live, and what is there.

Why a user data directory: named indexes used to live in ``./indexes`` relative to wherever a
command ran, so ``tase-search query … --index demo`` found nothing from any other directory. The
default root is now the platform's user data directory (``~/.local/share/tase-search/indexes`` on
Linux, ``~/Library/Application Support/tase-search/indexes`` on macOS, ``%LOCALAPPDATA%`` on Windows);
``--root`` / ``TASE_SEARCH_INDEX_ROOT`` / ``index_root`` in the config file move it, and a path with
a ``/`` is used as written.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import TaseSearchError
from .store.layout import has_manifest
from .store.manifest import read_manifest

APP_NAME = "tase-search"
#: Where named indexes lived before the user data directory (relative to the working directory).
LEGACY_ROOT = Path("indexes")


def default_index_root() -> str:
    """The platform's user data directory for tase-search, ``/indexes`` below it."""
    from platformdirs import user_data_path

    return str(user_data_path(APP_NAME, appauthor=False) / "indexes")


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (0 when it does not exist), links neither counted nor
    followed. The one size of an index: ``info`` and ``list`` both show it, and it counts everything the
    directory holds (generations, the query bundle, the lock file)."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    total = 0
    for folder, _dirs, files in os.walk(path):  # does not descend into linked folders
        for name in files:
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:  # removed meanwhile
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


@dataclass(frozen=True)
class IndexSummary:
    """One index under a root, read from its manifest alone (no model, no FAISS)."""

    name: str
    path: str
    documents: int | None
    passages: int | None
    model: str | None
    factory: str | None
    bytes_on_disk: int
    updated: str | None
    problem: str | None = None  # why the manifest could not be read

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def list_indexes(root: Path) -> list[IndexSummary]:
    """The indexes directly under ``root`` (directories with a manifest), by name; a manifest that cannot be
    read (:func:`~tase_search.store.manifest.read_manifest` checks every field) is listed with the problem."""
    if not root.is_dir():
        return []
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not has_manifest(d):
            continue
        size = tree_bytes(d)
        try:
            m = read_manifest(d)
        except (OSError, TaseSearchError) as exc:
            out.append(
                IndexSummary(
                    d.name, str(d), None, None, None, None, size, None, problem=f"unreadable manifest ({exc})"
                )
            )
            continue
        out.append(IndexSummary(d.name, str(d), m.documents, m.rows, m.model.id, m.factory, size, m.updated))
    return out
