"""txt: one document per line, its id made from its text."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ...store.content import content_id
from ...text.normalize import clean_document
from ..document import Document
from . import CorpusFormat, ParseContext
from .values import strip_eol


def read_txt(lines: Iterable[tuple[int, str]], ctx: ParseContext) -> Iterator[Document]:
    """One document per line, its id made from its text (:func:`~tase_search.store.content.content_id`):
    the same line gets the same id in every run, also after it was deleted."""
    for lineno, line in lines:
        text = clean_document(strip_eol(line))
        if not text:
            ctx.stats.skipped_empty += 1
            continue
        yield Document(content_id(text), text, {}, ctx.source, lineno)


FORMATS = (
    CorpusFormat(
        "txt", (".txt",), read_txt, columns=False, aliases=("text",), summary="one document per line"
    ),
)
