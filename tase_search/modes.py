"""Search modes (dense, sparse, hybrid) and which one ``auto`` picks for a query.

Why per query language: keyword matching helps a Turkish query over Turkish text (names, numbers,
rare words the vectors blur) but an English query shares few words with Turkish documents, so fused
in, its keyword list is mostly noise. :data:`AUTO` is what ``bench/hybrid.py`` measured best on the
dev sets for each query language (see bench/README.md); a query too short to tell (a name) counts as
Turkish-like, since that is where keyword search helps most.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InputError
from .language import detect_language

__all__ = ["AUTO", "HYBRID_DEPTH", "MODES", "SEARCH_MODES", "auto_mode", "check_search_mode"]

MODES = ("dense", "sparse", "hybrid")
#: What a ``search_mode`` setting or ``mode=`` may be: a mode, or ``auto`` (by query language).
SEARCH_MODES = ("auto", *MODES)
#: The mode ``auto`` searches a query in, by its language (None: no signal, e.g. a name).
AUTO: dict[str | None, str] = {"tr": "hybrid", "en": "dense", None: "hybrid"}
#: Documents taken from each side before fusing (or k, when larger).
HYBRID_DEPTH = 50


def check_search_mode(mode: object) -> str:
    if mode not in SEARCH_MODES:
        raise InputError(f"search mode {mode!r} is not one of {', '.join(SEARCH_MODES)}")
    return str(mode)


def auto_mode(query: str) -> str:
    """The mode :data:`AUTO` gives ``query``'s language."""
    return AUTO[detect_language(query)]


def unavailable_note(path: Path, reason: str) -> str:
    """The one-line note for an index whose keyword part cannot be searched."""
    return (
        f"note: {path} is searched by meaning only ({reason}); add keyword search with "
        f"`tase-search sparse build --index {path}` (from the stored text, no re-embedding)"
    )


def unavailable_error(mode: str, path: Path, reason: str) -> str:
    return (
        f"mode {mode!r} is not available: {path} cannot be searched by keywords ({reason}); add keyword "
        f"search with `tase-search sparse build --index {path}` (from the stored text, no re-embedding), "
        "or use mode 'dense'"
    )
