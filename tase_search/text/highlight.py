"""The sentence of each hit's passage that best answers the query.

By the query's words first: the sentence holding the largest share of them (their analyses, as the
keyword search matches them). Measured on TQuAD dev (bench/highlight.py), that names the answer's
sentence as often as the encoder does, for about a hundredth of the time. The encoder decides where the
words do not: between sentences holding equally many of them, and where none holds any (a paraphrase,
an English query over Turkish text). Those sentences are encoded on the query side (the torch-free
ONNX query path, as symmetric texts are) in one batch with the query, and the closest wins. Sparse
searches, which load no model, take the first of the tied sentences.

Bounded cost: the encoder sees the sentences of the first :data:`ENCODED_HITS` hits at most, at most
:data:`MAX_SENTENCES` of a passage; the other hits take the first of their tied sentences.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from ..results import Highlight, Hit
from .analysis import analyze, query_term_groups
from .language import detect_language
from .normalize import sentence_spans

__all__ = ["ENCODED_HITS", "MAX_SENTENCES", "best_sentences", "highlight_hits"]

#: Hits per query whose tied sentences may go through the encoder.
ENCODED_HITS = 3
#: Sentences per passage scored (the first ones; a passage is at most one encoder window long).
MAX_SENTENCES = 24


def _word_share(groups: list[list[str]], sentence: str, language: str) -> float:
    """The share of the query's words (groups of analyses) found in ``sentence``."""
    if not groups:
        return 0.0
    terms = set(analyze(sentence, language))
    return sum(1 for g in groups if terms.intersection(g)) / len(groups)


def best_sentences(
    query: str,
    passages: Sequence[str],
    encode: Callable[[list[str]], np.ndarray] | None,
    *,
    encoded_hits: int = ENCODED_HITS,
    words: bool = True,
) -> list[tuple[int, int] | None]:
    """For each passage, the span of its sentence that best answers ``query`` (None: empty passage).

    The sentences holding most query words; among several (or none holding any), the one closest to
    the query by ``encode`` (a query encoder's ``encode_query``) for the first ``encoded_hits``
    passages, else the first. ``words=False`` leaves every choice to the encoder (for measuring)."""
    groups = query_term_groups(query) if words else []
    spans = [sentence_spans(p)[:MAX_SENTENCES] for p in passages]
    tied: list[list[int]] = []
    for text, sp in zip(passages, spans):
        language = detect_language(text) or "tr"
        shares = [_word_share(groups, text[s:e], language) for s, e in sp]
        top = max(shares, default=0.0)
        tied.append([j for j, v in enumerate(shares) if v == top])
    chosen = [t[0] if t else None for t in tied]
    if encode is not None:
        todo = [(i, j) for i, t in enumerate(tied[:encoded_hits]) if len(t) > 1 for j in t]
        if todo:
            texts = [query] + [passages[i][spans[i][j][0] : spans[i][j][1]] for i, j in todo]
            vecs = np.asarray(encode(texts), dtype=np.float32)
            best: dict[int, tuple[float, int]] = {}
            for (i, j), c in zip(todo, vecs[1:] @ vecs[0]):
                if i not in best or float(c) > best[i][0]:
                    best[i] = (float(c), j)
            for i, (_, j) in best.items():
                chosen[i] = j
    return [None if j is None else sp[j] for sp, j in zip(spans, chosen)]


def highlight_hits(
    query: str, hits: Sequence[Hit], encode: Callable[[list[str]], np.ndarray] | None
) -> list[Hit]:
    """``hits`` with :attr:`Hit.highlight` set (offsets within ``hit.passage.text``)."""
    if not hits:
        return list(hits)
    spans = best_sentences(query, [h.passage.text for h in hits], encode)
    out = []
    for h, span in zip(hits, spans):
        light = None if span is None else Highlight(span[0], span[1], h.passage.text[span[0] : span[1]])
        out.append(dataclasses.replace(h, highlight=light))
    return out
