"""Is a text Turkish, English, or too short to tell? A word-list guess, no model.

Why: keyword analysis needs the right casing and stemmer (Turkish ``I`` lowers to ``ı``, English ``I``
to ``i``; Snowball Turkish and English strip different suffixes), and the search mode that measures
best differs by query language. Names and one- or two-word queries ("Turkcell", "Piri Reis") carry
no signal either way and get ``None``: callers then treat them as both.

The signal: function words of each language (words that exist in both, such as ``on`` "ten",
``at`` "horse", ``her`` "every", ``a``/``in`` after an apostrophe, are left out) and letters only one
of them has: ç, ğ, ı, ş, ö, ü for Turkish; q, w, x, which the Turkish alphabet lacks, for English.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

__all__ = ["ENGLISH_FUNCTION_WORDS", "TURKISH_FUNCTION_WORDS", "corpus_language", "detect_language"]

_WORD = re.compile(r"[^\W\d_]+")
_TR_LETTERS = frozenset("çğışöüâîû")
_EN_LETTERS = frozenset("qwx")

#: Function words that tell English (those that are Turkish words too are left out).
ENGLISH_FUNCTION_WORDS = frozenset(
    """the of and to is are was were be been being that this these those it its for with as by from or
    not have has had what which who whom whose where when why how there their they them he she his him
    we our you your my will would can could should shall may might must do does did if than then into
    about after before also only more most some such all any each other many much very just but no yes
    up out over under between because while during against through same both few own again further
    once here off above below until nor too""".split()
)
#: Function words that tell Turkish.
TURKISH_FUNCTION_WORDS = frozenset(
    """ve bir bu da de ile için gibi çok daha en ne mi mı mu mü ki şu olan olarak ama fakat veya ya hem
    kadar sonra önce göre değil var yok ise diye ben sen biz siz onlar bunu şunu onu bunun onun şey nasıl
    neden niçin hangi kim kimin nerede nereye nedir kaç midir mıdır hangisi olan olup ancak yani ayrıca
    tarafından arasında üzerine üzerinde içinde bile yine artık hiç hep""".split()
)


def detect_language(text: str) -> str | None:
    """``"tr"``, ``"en"`` or ``None`` (no signal, or as much for one as for the other).

    Lowercases without Turkish rules on purpose: the guess must not assume its own answer. A text
    with a dotted capital İ counts it as a Turkish letter.
    """
    tr = en = 0.0
    if "İ" in text:
        tr += 1
    for word in _WORD.findall(text.lower()):
        if word in TURKISH_FUNCTION_WORDS:
            tr += 1
        elif word in ENGLISH_FUNCTION_WORDS:
            en += 1
        letters = set(word)
        if letters & _TR_LETTERS:
            tr += 1
        elif letters & _EN_LETTERS:
            en += 0.5
    if tr == en:
        return None
    return "tr" if tr > en else "en"


def corpus_language(texts: Iterable[str]) -> str | None:
    """The language of most of ``texts`` (a sample of a corpus): the one guessed for at least two thirds
    of those with a signal; None for a mixed corpus or no signal."""
    counts = Counter(lang for lang in map(detect_language, texts) if lang is not None)
    total = sum(counts.values())
    if not total:
        return None
    lang, n = counts.most_common(1)[0]
    return lang if 3 * n >= 2 * total else None
