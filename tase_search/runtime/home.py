"""Where named indexes live, and what is there.

Why a user data directory: named indexes used to live in ``./indexes`` relative to wherever a
command ran, so ``tase-search query … --index demo`` found nothing from any other directory. The
default root is now the platform's user data directory (``~/.local/share/tase-search/indexes`` on
Linux, ``~/Library/Application Support/tase-search/indexes`` on macOS, ``%LOCALAPPDATA%`` on Windows);
``--root`` / ``TASE_SEARCH_INDEX_ROOT`` / ``index_root`` in the config file move it, and a path with
a ``/`` is used as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TaseSearchError
from ..store.layout import has_manifest
from ..store.manifest import read_manifest
from .disk import tree_bytes

APP_NAME = "tase-search"
#: Where named indexes lived before the user data directory (relative to the working directory).
LEGACY_ROOT = Path("indexes")


def default_index_root() -> str:
    """The platform's user data directory for tase-search, ``/indexes`` below it."""
    from platformdirs import user_data_path

    return str(user_data_path(APP_NAME, appauthor=False) / "indexes")


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
