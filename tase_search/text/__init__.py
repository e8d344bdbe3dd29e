"""Text: Turkish-aware normalisation and casing (:mod:`.normalize`), keyword terms for BM25
(:mod:`.analysis`), the Turkish/English guess (:mod:`.language`) and the sentence that best answers a
query (:mod:`.highlight`). Only the standard library and PyStemmer are imported here."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """The names of :mod:`.normalize` (``from tase_search.text import turkish_lower``), loaded on use."""
    import importlib

    module = importlib.import_module(".normalize", __name__)
    try:
        return getattr(module, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
