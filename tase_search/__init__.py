"""tase-search: Turkish and English<->Turkish semantic search.

    from tase_search import Retriever
    r = Retriever.build(["Maç 2-1 bitti.", "Yarın yağmur yağacak."], path="indexes/demo")
    r.search("football match", k=1)

Nothing heavy (torch, faiss, sentence-transformers) is imported here, so ``import tase_search``
and ``tase-search --help`` stay fast; the names below load on first use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ._version import __version__


def _torch_cache_in_user_cache() -> None:
    """torch creates its compiler cache folder (``$TMPDIR/torchinductor_<user>``) as soon as
    sentence-transformers imports it, even when nothing is compiled; reads must write nothing outside
    the index and the user's own cache, so the folder goes under ours unless the user chose one."""
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        from .cache import cache_dir

        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir() / "torchinductor")


_torch_cache_in_user_cache()

if TYPE_CHECKING:  # pragma: no cover
    from .encoder import Encoder
    from .readers import Document
    from .retriever import AddResult, Hit, PassageRef, Retriever

__all__ = ["AddResult", "Document", "Encoder", "Hit", "PassageRef", "Retriever", "__version__"]

_LAZY = {
    "Retriever": "retriever",
    "Hit": "retriever",
    "PassageRef": "retriever",
    "AddResult": "retriever",
    "Encoder": "encoder",
    "Document": "readers",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(mod, name)
    raise AttributeError(f"module 'tase_search' has no attribute {name!r}")
