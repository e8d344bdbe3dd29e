"""Search options shared by every front end (toolkit integrations, the HTTP server): the ``mode`` and
the metadata ``filter``.

The search ``mode`` (auto, dense, sparse, hybrid; see :mod:`tase_search.modes`) is passed on to :meth:`Retriever.search`, which refuses
sparse and hybrid on an index without a keyword part (saying how to add one); with a retriever-like
object whose ``search`` takes no mode, ``"dense"`` is accepted and the others are refused.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InputError
from .modes import SEARCH_MODES
from .retriever import Retriever

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
) -> Any:
    """``retriever.search`` with ``mode`` passed on when it takes one (see the module docstring)."""
    kwargs: dict[str, Any] = {"k": k, "filter": as_native_filter(filter)}
    if check_mode(mode) is not None:
        if "mode" in inspect.signature(retriever.search).parameters:
            kwargs["mode"] = mode
        elif mode not in ("dense", "auto"):
            raise InputError(
                f"mode {mode!r} is not available: this retriever searches dense vectors only; "
                "use mode 'dense' or leave it out"
            )
    return retriever.search(query, **kwargs)


def as_native_filter(filter: Mapping[str, Any] | None) -> dict[str, str] | None:  # noqa: A002
    """A ``{field: value}`` equality filter as the Retriever takes it (values compared as text)."""
    if not filter:
        return None
    if not isinstance(filter, Mapping):
        raise InputError(
            f"filter is {type(filter).__name__}: give a dict of metadata field -> value, e.g. {{'topic': 'spor'}}"
        )
    out = {}
    for key, value in filter.items():
        if isinstance(value, (dict, list, tuple, set)) or value is None:
            raise InputError(
                f"filter value for {key!r} is {value!r}: tase-search filters match one plain value per field"
            )
        # SQLite reads a JSON true/false as 1/0
        out[str(key)] = str(int(value)) if isinstance(value, bool) else str(value)
    return out


__all__ = ["MODES", "as_native_filter", "check_mode", "run_search"]
