"""Is a text Turkish, English, or too short to tell? A word-list guess, no model.

Why: keyword analysis needs the right casing and stemmer (Turkish ``I`` lowers to ``ı``, English ``I``
to ``i``; Snowball Turkish and English strip different suffixes), and the search mode that measures
best differs by query language. Names and one- or two-word queries ("Turkcell", "Piri Reis") carry
no signal either way and get ``None``: callers then treat them as both.

The signal: common words of each language (words that exist in both, such as ``on`` "ten",
``at`` "horse", ``her`` "every", ``a``/``in`` after an apostrophe, are left out), letters only one of
them has (ç, ğ, ı, ş, ö, ü for Turkish; q, w, x, which the Turkish alphabet lacks, for English), Turkish
endings (``-iyor``, ``-abilir``, ``-acak``, ``-dı``, ``-dır``, the back-vowel locative and ablative
``-da``/``-ta``/``-dan``/``-tan``; the front-vowel ``-de`` ends too many English words, such as
*decide*), case suffixes after an apostrophe (``Tom'un``, ``Boston'a``), English endings (``-ed``,
``-ly``, ``-ing``, ``-tion``; half as strong) and English contractions (``n't``, ``'s``, ``'re``, ``'ll``, ...:
Turkish puts case suffixes after an apostrophe, never these). On the dev sets it names the language of
99% of Tatoeba's short sentences, 99% of news sentences and all TQuAD questions (nearly all the rest
get None; 6 of 6,000 news sentences, English ones full of Turkish names, are called Turkish).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

__all__ = ["ENGLISH_FUNCTION_WORDS", "TURKISH_FUNCTION_WORDS", "corpus_language", "detect_language"]

_WORD = re.compile(r"[^\W\d_]+")
# words with a letter only Turkish has; words with one Turkish lacks (and none of the former)
_TR_LETTER_WORD = re.compile(r"[^\W\d_]*[çğışöüâîû][^\W\d_]*")
_EN_LETTER_WORD = re.compile(r"[^\W\d_çğışöüâîû]*[qwx][^\W\d_çğışöüâîû]*(?![^\W\d_])")
_TR_ENDING = re.compile(
    r"(?:[ıiuü]yor\w*|[ae]bil(?:ir|di)\w*|[ae]ca[kğ]\w*|[ae]ce[kğ]\w*|m[ae][zk]|s[ıi]n[ıi]z|[mn][ıiuü]z|[dt][ıiuü]r?|[dt]an?)$"
)
_EN_ENDING = re.compile(r"(?:ed|ly|ing|tion|ness)$")
# a case suffix after an apostrophe (Tom'un, Boston'a, 2015'te), not an English contraction
_TR_APOSTROPHE = re.compile(r"\w['’](?!(?:s|re|ve|ll|m|d|t)\b)[a-zçğıöşü]+\b")
_EN_CONTRACTION = re.compile(r"(?:n['’]t|['’](?:s|re|ve|ll|m|d))\b", re.IGNORECASE)

#: Function words that tell English (those that are Turkish words too are left out).
ENGLISH_FUNCTION_WORDS = frozenset(
    """the of and to is are was were be been being that this these those it its for with as by from or
    not have has had what which who whom whose where when why how there their they them he she his him
    we our you your my will would can could should shall may might must do does did if than then into
    about after before also only more most some such all any each other many much very just but no yes
    up out over under between because while during against through same both few own again further
    once here off above below until nor too me us got get kept left went said told made saw like know
    think want need everybody everyone nobody something nothing anything still never always often
    already soon now well really please thank thanks tonight today tomorrow yesterday let go come so one
    two three year years later time day days week month january february march april june july august
    september october november december monday tuesday wednesday thursday friday saturday sunday""".split()
)
#: Function words that tell Turkish.
TURKISH_FUNCTION_WORDS = frozenset(
    """ve bir bu da de ile için gibi çok daha en ne mi mı mu mü ki şu olan olarak ama fakat veya ya hem
    kadar sonra önce göre değil var yok ise diye ben sen biz siz onlar bunu şunu onu bunun onun şey nasıl
    neden niçin hangi kim kimin nerede nereye nedir kaç midir mıdır hangisi olup ancak yani ayrıca
    tarafından arasında üzerine üzerinde içinde bile yine artık hiç hep o ona onu bana sana beni seni bize
    size iyi kötü etti etmek olur oldu şimdi burada orada evet hayır lütfen bugün yarın dün gece sabah
    akşam geldi gitti""".split()
)


def detect_language(text: str) -> str | None:
    """``"tr"``, ``"en"`` or ``None`` (no signal, or as much for one as for the other).

    Lowercases without Turkish rules on purpose: the guess must not assume its own answer. A text
    with a dotted capital İ counts it as a Turkish letter. Whole-text regular expressions do most of
    the counting (it runs once per indexed document).
    """
    tr = float(len(_TR_APOSTROPHE.findall(text))) + ("İ" in text)
    en = float(len(_EN_CONTRACTION.findall(text)))
    lowered = _EN_CONTRACTION.sub(" ", text).lower()
    tr += len(_TR_LETTER_WORD.findall(lowered))
    en += 0.5 * len(_EN_LETTER_WORD.findall(lowered))
    for word in _WORD.findall(lowered):
        if word in TURKISH_FUNCTION_WORDS:
            tr += 1
        elif word in ENGLISH_FUNCTION_WORDS:
            en += 1
        elif len(word) > 3:
            if len(word) > 4 and _TR_ENDING.search(word):
                tr += 1
            elif _EN_ENDING.search(word):
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
