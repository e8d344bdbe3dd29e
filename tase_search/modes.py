"""Search modes (dense, sparse, hybrid), which one ``auto`` picks for a query, and how hybrid fuses.

Why by language: keyword matching helps most where the query and the documents share a language
(names, numbers, rare words the vectors blur), while a query in the other language shares only names
and numbers with them, so its keyword list is mostly noise and the dense side must weigh more.
Every default here is what ``bench/hybrid.py --variants`` measured best on the dev sets (the table and
command are in bench/README.md; re-run it when the default model changes): hybrid with weighted
scores beat dense on every task for queries in both languages once a query in the other language
than the corpus gets a dense weight of 0.8 (at 0.5 it loses 0.09 MRR on Tatoeba), and weighted
scores beat reciprocal rank fusion on all seven tasks. A query too short to tell (a name) counts as
being in the corpus's language, since that is where keyword search helps most.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InputError
from .language import detect_language

__all__ = [
    "AUTO",
    "FUSION",
    "HYBRID_DEPTH",
    "MODES",
    "SEARCH_MODES",
    "auto_mode",
    "check_search_mode",
    "dense_weight",
]

MODES = ("dense", "sparse", "hybrid")
#: What a ``search_mode`` setting or ``mode=`` may be: a mode, or ``auto`` (by query language).
SEARCH_MODES = ("auto", *MODES)
#: The mode ``auto`` searches a query in, by its language (None: no signal, e.g. a name).
AUTO: dict[str | None, str] = {"tr": "hybrid", "en": "hybrid", None: "hybrid"}
#: How hybrid fuses by default: weighted scores beat RRF on every dev task (bench/README.md).
FUSION = "weighted"
#: The dense share of a hybrid query in the corpus's language (or of one with no language signal) ...
DENSE_WEIGHT_SAME = 0.5
#: ... and of one in another language, whose keywords rarely match (only names and numbers do).
DENSE_WEIGHT_CROSS = 0.8
#: Documents taken from each side before fusing (or k, when larger).
HYBRID_DEPTH = 50
#: Documents sampled to tell the corpus's language.
CORPUS_SAMPLE = 64


def check_search_mode(mode: object) -> str:
    if mode not in SEARCH_MODES:
        raise InputError(f"search mode {mode!r} is not one of {', '.join(SEARCH_MODES)}")
    return str(mode)


def auto_mode(query: str) -> str:
    """The mode :data:`AUTO` gives ``query``'s language."""
    return AUTO[detect_language(query)]


def dense_weight(query_language: str | None, corpus_language: str | None) -> float:
    """The dense share of a hybrid query: :data:`DENSE_WEIGHT_CROSS` when the query and the corpus are
    known to be in different languages, else :data:`DENSE_WEIGHT_SAME`."""
    cross = query_language is not None and corpus_language is not None and query_language != corpus_language
    return DENSE_WEIGHT_CROSS if cross else DENSE_WEIGHT_SAME


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
