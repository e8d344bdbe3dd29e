"""Passages: a document cut on token boundaries into windows the model sees whole.

Why here and not in the ingest: the window is the model's (its ``max_seq_length``, its tokenizer's
offsets, the passage prompt's tokens), so the encoder owns the split and the index records passages.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..text.normalize import normalize_for_model


@dataclass(frozen=True)
class Passage:
    """A slice of a document: ``text[start:end]`` (character offsets), number ``index`` of ``count``."""

    start: int
    end: int
    index: int
    count: int


def tokenizer_lowercases(tok: Any) -> bool:
    """Whether a tokenizer lowercases its input (training and search must normalise alike)."""
    if getattr(tok, "do_lower_case", False):
        return True
    try:
        return tok("A")["input_ids"] == tok("a")["input_ids"]
    except Exception:  # noqa: BLE001 - an odd tokenizer: assume it keeps case
        return False


def prompt_tokens(tokenizer: Any, prompt: str | None) -> int:
    """How many tokens ``prompt`` takes (a window must leave room for it)."""
    if not prompt:
        return 0
    return len(tokenizer(prompt, add_special_tokens=False, verbose=False)["input_ids"])


def iter_passages(
    tokenizer: Any, text: str, *, max_seq_length: int, reserved: int, lowercase: bool, overlap: int
) -> Iterator[Passage]:
    """The passages of ``text``: windows of ``max_seq_length`` tokens less the special tokens and the
    ``reserved`` prompt tokens, ``overlap`` tokens shared; a text that fits is one passage."""
    # room for the special tokens ([CLS]/[SEP] or <s>/</s>) and the passage prompt
    limit = max(8, max_seq_length - 2 - reserved)
    if len(text) <= limit:  # fewer characters than the limit: fewer tokens too
        yield Passage(0, len(text), 0, 1)
        return
    enc = tokenizer(
        normalize_for_model(text, lowercase=lowercase),
        add_special_tokens=False,
        return_offsets_mapping=True,
        truncation=False,
        verbose=False,
    )
    offsets = enc["offset_mapping"]
    if len(offsets) <= limit:
        yield Passage(0, len(text), 0, 1)
        return
    overlap = min(overlap, limit // 2)
    step = limit - overlap
    starts = list(range(0, len(offsets), step))
    while len(starts) > 1 and starts[-1] + overlap >= len(offsets):  # last window adds nothing new
        starts.pop()
    for i, s in enumerate(starts):
        e = min(s + limit, len(offsets)) - 1
        cstart = offsets[s][0] if i else 0
        cend = offsets[e][1] if i < len(starts) - 1 else len(text)
        yield Passage(int(cstart), int(cend), i, len(starts))
