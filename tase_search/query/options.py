"""Search options shared by every front end (toolkit integrations, the HTTP server): the ``mode`` and
the metadata ``filter`` (the language of :mod:`tase_search.query.filters`).

The search ``mode`` (auto, dense, sparse, hybrid; see :mod:`tase_search.query.modes`) is passed on to :meth:`Retriever.search`, which refuses
sparse and hybrid on an index without a keyword part (saying how to add one); with a retriever-like
object whose ``search`` takes no mode, ``"dense"`` is accepted and the others are refused.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InputError
from ..retriever import Retriever
from .filters import Filter, parse_filter
from .modes import SEARCH_MODES

#: What a front end's ``mode`` may be (None: the index's default).
MODES = SEARCH_MODES


def check_mode(mode: str | None) -> str | None:
    """``mode`` if it names a search mode (or is None, the index's default), else InputError."""
    if mode is not None and mode not in MODES:
        raise InputError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    return mode


def run_search(
    retriever: Retriever,
    query: str | Sequence[str],
    k: int,
    filter: Mapping[str, Any] | None = None,  # noqa: A002 - the Retriever's name
    mode: str | None = None,
    *,
    min_score: float | None = None,
    highlight: bool = False,
    rerank: int | None = None,
) -> Any:
    """``retriever.search`` with ``mode`` passed on when it takes one (see the module docstring), and
    ``min_score`` / ``highlight`` / ``rerank`` when set (a retriever-like object without them is refused)."""
    kwargs: dict[str, Any] = {"k": k, "filter": as_native_filter(filter)}
    params = inspect.signature(retriever.search).parameters
    options = (("min_score", min_score, None), ("highlight", highlight, False), ("rerank", rerank, None))
    for name, value, unset in options:
        if value is not unset:
            if name not in params:
                raise InputError(f"{name} is not available: this retriever's search does not take it")
            kwargs[name] = value
    if check_mode(mode) is not None:
        if "mode" in inspect.signature(retriever.search).parameters:
            kwargs["mode"] = mode
        elif mode not in ("dense", "auto"):
            raise InputError(
                f"mode {mode!r} is not available: this retriever searches dense vectors only; "
                "use mode 'dense' or leave it out"
            )
    return retriever.search(query, **kwargs)


def as_native_filter(filter: object) -> Filter | None:  # noqa: A002
    """A filter in the JSON filter language (docs/filters.md) as the Retriever takes it, parsed and
    checked here: None for no filter (None or ``{}``); InputError names a bad operator or value."""
    return parse_filter(filter)


__all__ = ["MODES", "as_native_filter", "check_mode", "run_search"]
