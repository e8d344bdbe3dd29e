"""Build or append: the one rule every write that creates an index or adds to one follows.

A write appends to the index at its path when one exists there, unless it overwrites
(:func:`will_append`); otherwise it builds a new one, and when another process created the index
since the look (``IndexExists``), it appends to that one instead. :func:`build_or_append` applies
the rule and names what happened; the caller says how to build and how to append (documents embedded
by an encoder, vectors made elsewhere, shards embedded on Ray). The CLI (``tase-search index``, local
and on Ray), :func:`tase_search.distributed.index_corpus` and the toolkits' document store
(:mod:`tase_search.integrations._store`) all write through it; the Retriever re-exports it.

Locking stays with the caller: a caller that must hold the writer lock across the whole write (the CLI
holds a shared :class:`~tase_search.store.lock.WriterLock` from before the model loads) takes it
before calling, and the commit inside ``build`` or ``append`` joins it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from .errors import IndexExists
from .results import AddResult
from .runtime.paths import api_index_path
from .store import layout

#: What :func:`build_or_append` did: a new index, documents added or replaced, or nothing changed.
BUILT, APPENDED, UNCHANGED = "built", "appended to", "unchanged"


@dataclasses.dataclass(frozen=True)
class Written:
    """The outcome of :func:`build_or_append`: the index written (None where ``build`` or ``append``
    returned none), what the ingest did, and :data:`BUILT`, :data:`APPENDED` or :data:`UNCHANGED`."""

    retriever: Any
    result: AddResult
    action: str


def will_append(path: str | os.PathLike[str] | None, overwrite: bool = False) -> bool:
    """Whether a write to ``path`` appends: an index exists there and ``overwrite`` is off."""
    return layout.has_manifest(api_index_path(path)) and not overwrite


def build_or_append(
    path: str | os.PathLike[str] | None,
    *,
    build: Callable[[], tuple[Any, AddResult]],
    append: Callable[[], tuple[Any, AddResult]],
    overwrite: bool = False,
    appending: bool | None = None,
) -> Written:
    """Build the index at ``path`` or append to it, by the rule of :func:`will_append`.

    ``build()`` makes a new index (replacing one only with ``overwrite``) and ``append()`` adds to the
    existing one; each returns ``(retriever or None, AddResult)`` and raises what the write raises.
    ``appending``: the decision when the caller made it already (it chose the model by it), else it is
    made now. A build that meets an index another process created since (``IndexExists``) appends to
    that one; with ``overwrite`` there is no such race and the error stands.
    """
    if appending is None:
        appending = will_append(path, overwrite)
    if not appending:
        try:
            retriever, result = build()
            return Written(retriever, result, BUILT)
        except IndexExists:
            if overwrite:
                raise
    retriever, result = append()
    return Written(retriever, result, APPENDED if result.added or result.replaced else UNCHANGED)
