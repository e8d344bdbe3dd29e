"""Search modes (dense, sparse, hybrid), which one ``auto`` picks for a query, and how hybrid fuses.

Why by language: keyword matching helps where the query and the documents share a language (names,
numbers, rare words the vectors blur), while a query in the other language shares only names and
numbers with them, so its keyword list is mostly noise. So ``auto`` asks whether the query is in the
corpus's language (*same*; a query or corpus with no language signal, such as a name, counts as same,
since that is where keywords help most) or in the other one (*cross*).

The defaults are what ``bench/hybrid.py --variants`` measured on the dev sets (bench/README.md has the
table and the command; re-run it when the default model changes). With both models measured, hybrid
with weighted scores at dense weight 0.5 beat dense on every same-language task (TQuAD questions,
titles as names); on the translation tasks dense was best or tied at every weight (the shipped
tase-e5-tr model is at 0.99 there, so keywords can only cost), hence ``cross`` -> dense, and hybrid
asked for by name across languages gets dense weight 0.8, the least costly. Weighted scores beat
reciprocal rank fusion on 12 of the 14 task/model pairs.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError

__all__ = [
    "AUTO",
    "FUSION",
    "HYBRID_DEPTH",
    "MODES",
    "SEARCH_MODES",
    "auto_mode",
    "check_search_mode",
    "dense_weight",
    "relation",
]

MODES = ("dense", "sparse", "hybrid")
#: What a ``search_mode`` setting or ``mode=`` may be: a mode, or ``auto`` (by query language).
SEARCH_MODES = ("auto", *MODES)
#: The mode ``auto`` searches a query in, by :func:`relation` of its language to the corpus's.
AUTO: dict[str, str] = {"same": "hybrid", "cross": "dense"}
#: How hybrid fuses by default (``weighted`` or ``rrf``).
FUSION = "weighted"
#: The dense share of a hybrid query, by :func:`relation`.
DENSE_WEIGHT: dict[str, float] = {"same": 0.5, "cross": 0.8}
#: Documents taken from each side before fusing (or k, when larger).
HYBRID_DEPTH = 50
#: Documents sampled to tell the corpus's language.
CORPUS_SAMPLE = 64


def check_search_mode(mode: object) -> str:
    if mode not in SEARCH_MODES:
        raise InputError(f"search mode {mode!r} is not one of {', '.join(SEARCH_MODES)}")
    return str(mode)


def relation(query_language: str | None, corpus_language: str | None) -> str:
    """``cross`` when the query and the corpus are known to be in different languages, else ``same``."""
    cross = query_language is not None and corpus_language is not None and query_language != corpus_language
    return "cross" if cross else "same"


def auto_mode(query_language: str | None, corpus_language: str | None) -> str:
    """The mode :data:`AUTO` gives a query in ``query_language`` over a ``corpus_language`` corpus."""
    return AUTO[relation(query_language, corpus_language)]


def dense_weight(query_language: str | None, corpus_language: str | None) -> float:
    """The dense share of a hybrid query (:data:`DENSE_WEIGHT`)."""
    return DENSE_WEIGHT[relation(query_language, corpus_language)]


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
