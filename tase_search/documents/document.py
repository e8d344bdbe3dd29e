"""The document: one text with its id, metadata and where it was read; and the counters of a read.

Every way in makes these: the corpus readers (:mod:`.readers`, :mod:`.formats`), the Ray shards, and
what users hand to ``Retriever.add`` (:mod:`.inputs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """One document read from a corpus.

    ``id`` of a txt line is made from its text (16 hex digits, the same in every run); it is None when
    a jsonl/tsv/csv record has none (no id field/column, or an empty one): the index store assigns
    ids then. ``text`` is cleaned (NFC, no control characters, trimmed,
    never empty). ``metadata`` holds the other jsonl fields / csv columns (JSON-serialisable).
    ``source`` is the path as given (``<stdin>`` for ``-``) and ``line`` the 1-based line the
    record starts on, so later errors can point back at the input.
    """

    id: str | None
    text: str
    metadata: dict[str, Any]
    source: str
    line: int


@dataclass
class ReadStats:
    """Counters filled in while a corpus is read, for the CLI's end-of-run summary.

    One instance may be passed to several :func:`read_corpus` calls; the counters add up.
    ``read``: documents yielded. ``skipped_empty``: records skipped because their text (after
    cleaning) was empty, blank lines included. ``replaced_encoding``: lines in which invalid
    UTF-8 was replaced by U+FFFD (``encoding_errors="replace"``). ``per_source``: documents
    yielded per source.
    """

    read: int = 0
    skipped_empty: int = 0
    replaced_encoding: int = 0
    per_source: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One human-readable line, e.g. ``1200 documents read, 3 empty skipped``."""
        parts = [f"{self.read} document{'s' if self.read != 1 else ''} read"]
        if self.skipped_empty:
            parts.append(f"{self.skipped_empty} empty skipped")
        if self.replaced_encoding:
            parts.append(f"{self.replaced_encoding} line(s) with invalid UTF-8 replaced")
        return ", ".join(parts)
