"""Corpus formats: one registry that the local readers and the Ray shards read through.

A format is a :class:`CorpusFormat`: its name, the file extensions that imply it, and a parser taking
the decoded ``(line number, text)`` pairs of one file and yielding :class:`~tase_search.documents.Document`
objects (counting into :class:`~tase_search.documents.document.ReadStats`, bounded by
:class:`~tase_search.documents.limits.ReaderLimits`). Opening, gzip, decoding and ``file:line`` errors
are the readers' (:mod:`tase_search.documents.readers`), the same for every format.

Adding a format is one module in this folder that defines ``FORMATS`` (as :mod:`.txt` does) and its
name in :data:`BUILTIN`; or, from outside the package, one :func:`register` call. The CLI's
``--format`` choices and :func:`tase_search.documents.readers.detect_format` read this registry.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import InputError

if TYPE_CHECKING:
    from ..document import Document, ReadStats
    from ..limits import ReaderLimits

#: The modules of this folder whose ``FORMATS`` are registered on first use.
BUILTIN: tuple[str, ...] = ("txt", "jsonl", "delimited")


@dataclass(frozen=True)
class ParseContext:
    """What a parser gets besides the lines: where they come from, the chosen columns, the counters
    and the limits."""

    source: str
    text_column: str | None
    id_column: str | None
    stats: ReadStats
    limits: ReaderLimits


@dataclass(frozen=True)
class CorpusFormat:
    """One corpus format. ``columns``: whether ``text_column``/``id_column`` apply (a record has named
    fields); ``aliases``: other names ``--format`` accepts; ``summary``: what one record is."""

    name: str
    extensions: tuple[str, ...]
    parse: Callable[[Iterable[tuple[int, str]], ParseContext], Iterator[Document]]
    columns: bool = True
    aliases: tuple[str, ...] = ()
    summary: str = ""


_REGISTRY: dict[str, CorpusFormat] = {}
_loaded = False


def register(fmt: CorpusFormat) -> CorpusFormat:
    """Add ``fmt`` (or replace the format of that name); returned, so a module can keep it."""
    _load_builtin()
    _REGISTRY[fmt.name] = fmt
    return fmt


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in BUILTIN:
        for fmt in importlib.import_module(f"{__name__}.{name}").FORMATS:
            _REGISTRY.setdefault(fmt.name, fmt)


def formats() -> dict[str, CorpusFormat]:
    """Every registered format by name, in registration order."""
    _load_builtin()
    return dict(_REGISTRY)


def format_names() -> tuple[str, ...]:
    """The names ``fmt`` / ``--format`` accepts (aliases not included)."""
    return tuple(formats())


def get_format(name: str) -> CorpusFormat:
    """The format called ``name`` (case and spaces ignored, aliases accepted); :class:`InputError` if none."""
    key = name.strip().lower()
    for fmt in formats().values():
        if key == fmt.name or key in fmt.aliases:
            return fmt
    raise InputError(f"unknown format {name!r}: valid formats are {', '.join(format_names())}")


def by_extension(ext: str) -> CorpusFormat | None:
    """The format a file extension (``.jsonl``, lower case, with the dot) implies, if any."""
    for fmt in formats().values():
        if ext in fmt.extensions:
            return fmt
    return None


def formats_help() -> str:
    """``txt (.txt), jsonl (.jsonl, .ndjson), ...``: the formats and their extensions, for messages."""
    return ", ".join(f"{f.name} ({', '.join(f.extensions)})" for f in formats().values()) + (
        ", each optionally gzipped (.gz)"
    )
