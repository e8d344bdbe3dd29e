"""Is a query a question? What a reranker trained on questions should read, and what it should leave.

Why: the bundled reranker learnt from questions (TQuAD) and sentences (translations, paraphrases). On
those it reorders the first hits well; on a bare name or title ("Oksijen", "İbrahim Müteferrika") it
has nothing to go on and reorders worse than the search did (bench/hybrid.py: titles MRR@10 0.906 →
0.871). A reranker that says so (:attr:`Reranker.questions_only`) reads only queries this module
calls questions; the others keep the search's own order and scores.

A question: it ends with ``?``; or it has a Turkish question word or particle as a word of its own
(ne, neden, nasıl, nerede, kim, hangi, kaç, mı/mi/mu/mü and their personal forms); or it starts with
an English wh-word, or with an auxiliary followed by at least two words ("is oxygen a metal").
"""

from __future__ import annotations

import re

_V = "[ıiuü]"
_TR = re.compile(
    rf"^(ne(yi|ye|yin|den|dir|ler|lerdir|reye|rede|reden|resi|residir|reli)?|niçin|niye|nasıl\w*"
    rf"|kim(i|e|in|den|le|ler|lerdir|dir)?|hangi\w*|kaç(ta|ıncı\w*|ar|tır|tı)?"
    rf"|m{_V}(y{_V}m|s{_V}n|d{_V}r|y{_V}z|s{_V}n{_V}z|yd{_V}|ym{_V}ş)?)$"
)
_EN_WH = frozenset({"what", "who", "whom", "whose", "which", "when", "where", "why", "how"})
_EN_AUX = frozenset(
    {
        "is",
        "are",
        "was",
        "were",
        "do",
        "does",
        "did",
        "can",
        "could",
        "should",
        "would",
        "will",
        "has",
        "have",
    }
)
_WORD = re.compile(r"\w+")


def is_question(query: str) -> bool:
    """Whether ``query`` asks something (see the module doc)."""
    text = query.strip()
    if text.endswith(("?", "？", "؟")):
        return True
    words = _WORD.findall(text.casefold())
    if not words:
        return False
    if words[0] in _EN_WH or (words[0] in _EN_AUX and len(words) > 2):
        return True
    return any(_TR.match(w) for w in words)


__all__ = ["is_question"]
