"""Keyword analysis for the sparse (BM25) index: text -> the terms it is indexed and searched by.

Why in Python, before SQLite: FTS5's own tokenizers know neither Turkish casing (``I`` -> ``ı``,
``İ`` -> ``i``) nor Turkish suffixes, so ``Turkcell'in``, ``Turkcell'e`` and ``TURKCELL`` would be three
different words. Each text becomes a space-separated string of terms that FTS5 (``unicode61
remove_diacritics 0``) only splits on the spaces again:

1. NFC; the language guessed (:func:`tase_search.text.language.detect_language`) once per document;
2. lowercasing by that language: Turkish rules for Turkish text and for text with no signal
   (a corpus is Turkish unless shown otherwise), English rules (``I`` -> ``i``) for English text;
3. circumflexes folded (â, î, û -> a, i, u: optional in modern Turkish spelling, so "Pîrî" is found
   by "Piri"); every other accent kept, since ç ğ ı ö ş ü are letters of their own;
4. words are runs of letters and digits, so apostrophe suffixes come apart: ``Turkcell'in`` ->
   ``turkcell`` + ``in`` (as do hyphens and underscores);
5. Snowball stemming (PyStemmer): Turkish, or English for English text.

A query is analysed the same way, except that a query with no language signal (a name, one or two
words) is analysed both ways and with ``I`` read as both ``ı`` and ``i`` (a name typed on an English
keyboard: "Istanbul"), the variants searched together.

:data:`ANALYZER` names this recipe; an index records the one its terms were made with, and a sparse
part made with another is rebuilt rather than searched with mismatched terms.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable

from .language import ENGLISH_FUNCTION_WORDS, TURKISH_FUNCTION_WORDS, detect_language
from .normalize import nfc

__all__ = ["ANALYZER", "MAX_QUERY_TERMS", "analyze", "document_terms", "query_term_groups", "query_terms"]

#: The recipe's name, recorded with the sparse part of an index.
ANALYZER = "tase-tr-en-1"
#: At most this many distinct terms of a query are searched (a pasted page must not become a
#: 10,000-term OR query).
MAX_QUERY_TERMS = 64
#: Longer runs of letters are cut to this many characters (a term is a word, not a blob).
MAX_TERM_CHARS = 64

_WORD = re.compile(r"[^\W_]+")
_CIRCUMFLEX = str.maketrans({"â": "a", "î": "i", "û": "u"})
_TR_LOWER = str.maketrans({"İ": "i", "I": "ı"})
_local = threading.local()  # PyStemmer objects are not shared between threads


def _stemmer(language: str):  # noqa: ANN202 - Stemmer.Stemmer, imported lazily
    stemmers = getattr(_local, "stemmers", None)
    if stemmers is None:
        stemmers = _local.stemmers = {}
    s = stemmers.get(language)
    if s is None:
        import Stemmer

        s = stemmers[language] = Stemmer.Stemmer("turkish" if language == "tr" else "english")
    return s


def _lower(text: str, language: str) -> str:
    """Lowercase by ``language`` (as :func:`tase_search.text.turkish_lower` for Turkish: İ→i, I→ı, and
    no stray U+0307 left), NFC; one pass for text that is NFC already, as stored text is."""
    if not unicodedata.is_normalized("NFC", text):
        text = nfc(text)
    text = text.translate(_TR_LOWER) if language == "tr" else text.replace("İ", "i")
    text = text.lower()
    if "\u0307" in text:
        text = text.replace("i\u0307", "i")
    return text if unicodedata.is_normalized("NFC", text) else nfc(text)


def analyze(text: str, language: str) -> list[str]:
    """The terms of ``text`` analysed as ``language`` (``"tr"`` or ``"en"``), in order."""
    words = _WORD.findall(_lower(text, language).translate(_CIRCUMFLEX))
    words = [w[:MAX_TERM_CHARS] for w in words]
    return _stemmer(language).stemWords(words) if words else []


def document_terms(text: str, language: str | None = None) -> str:
    """What a passage is indexed as: its terms, space-separated. ``language`` is the document's
    (guessed from ``text`` when None; no signal is Turkish)."""
    if language is None:
        language = detect_language(text) or "tr"
    return " ".join(analyze(text, language))


def query_terms(text: str) -> list[str]:
    """The distinct terms a query is searched by, at most :data:`MAX_QUERY_TERMS`, in order.

    Analysed as its language and as the other one: documents are analysed as theirs, and a name
    stems differently in each ("Boston'a" is ``bosto`` in Turkish, ``boston`` in English). Function
    words are left out unless the query has nothing else: they match most documents and add nothing
    to a BM25 ranking but time (half the query time at 100k documents).
    """
    language = detect_language(text)
    first = language or "tr"
    variants = [analyze(text, first), analyze(text, "en" if first == "tr" else "tr")]
    if language is None and "I" in text:
        variants.append(analyze(text.replace("I", "i"), "tr"))  # "Istanbul" typed for "İstanbul"
    terms = _distinct(variants)
    stop = _stop_terms()
    return [t for t in terms if t not in stop] or terms


def query_term_groups(text: str) -> list[list[str]]:
    """The query's words as groups of the terms :func:`query_terms` searches for them (one group per
    word: its analyses in both languages), function words left out as there.

    Why: a keyword score normalised by what the query could score at best must count each word once,
    not once per analysis (a passage matches ``bosto`` or ``boston``, rarely both)."""
    language = detect_language(text)
    first = language or "tr"
    variants = [analyze(text, first), analyze(text, "en" if first == "tr" else "tr")]
    if language is None and "I" in text:
        variants.append(analyze(text.replace("I", "i"), "tr"))
    searched = set(query_terms(text))
    groups: dict[tuple[str, ...], None] = {}
    for i in range(max((len(v) for v in variants), default=0)):
        group = tuple(dict.fromkeys(v[i] for v in variants if i < len(v) and v[i] in searched))
        if group:
            groups.setdefault(group, None)
    return [list(g) for g in groups]


#: Words the language guess counts that a search still needs: time words ("yarın hava", "bugünkü maç"),
#: numbers, months and weekdays, yes/no, good/bad and common verbs are what a query is about.
KEPT_IN_QUERIES = frozenset(
    """bugün yarın dün gece sabah akşam şimdi iyi kötü evet hayır geldi gitti etti etmek olur oldu
    today tomorrow yesterday tonight now soon later year years time day days week month one two three
    yes no got get kept left went said told made saw like know think want need january february march
    april june july august september october november december monday tuesday wednesday thursday friday
    saturday sunday""".split()
)


def _stop_terms() -> frozenset[str]:
    """The function words of both languages as terms (both analyses of each), less
    :data:`KEPT_IN_QUERIES`."""
    stop = getattr(_local, "stop", None)
    if stop is None:
        words = (TURKISH_FUNCTION_WORDS | ENGLISH_FUNCTION_WORDS) - KEPT_IN_QUERIES
        stop = _local.stop = frozenset(t for w in words for lang in ("tr", "en") for t in analyze(w, lang))
    return stop


def _distinct(lists: Iterable[list[str]]) -> list[str]:
    out: dict[str, None] = {}
    for term in _interleave(lists):
        out.setdefault(term, None)
        if len(out) == MAX_QUERY_TERMS:
            break
    return list(out)


def _interleave(lists: Iterable[list[str]]) -> Iterable[str]:
    """Terms of the variants word by word, so a long query cut at the limit keeps its first words."""
    lists = list(lists)
    for i in range(max((len(x) for x in lists), default=0)):
        for x in lists:
            if i < len(x):
                yield x[i]
