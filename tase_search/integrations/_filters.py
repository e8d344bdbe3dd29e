"""The store's filter language (:mod:`tase_search.query.filters`, ``docs/filters.md``) as the
integrations use it.

Each toolkit's own filter objects are translated into the language's JSON form in its module
(LangChain dicts already are it; LlamaIndex ``MetadataFilters``; Haystack's ``{"operator",
"conditions"}``) and handed to the index, which evaluates them in SQL. The helpers here check a
filter, join translated parts, and evaluate one on a document already read (the language's own
reference evaluation).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..query.filters import Filter, parse_filter
from ..query.filters import matches as _matches


def check(flt: Any) -> Filter | None:
    """``flt`` parsed (None or ``{}``: no filter); InputError names a bad operator or value."""
    return parse_filter(flt)


def matches(flt: Filter | Mapping[str, Any] | None, doc: Mapping[str, Any]) -> bool:
    """Whether a stored document (``id``, ``metadata``, ``source``) passes ``flt``."""
    return _matches(flt, doc.get("metadata") or {}, doc_id=doc.get("id"), source=doc.get("source"))


def all_of(parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The JSON filters ``parts`` (empty ones left out) joined by AND: one object when their keys do
    not overlap and none is an operator, else ``$and``; None when there are none."""
    parts = [p for p in parts if p]
    if not parts:
        return None
    keys = [k for p in parts for k in p]
    if len(keys) == len(set(keys)) and not any(k.startswith("$") for k in keys):
        return {k: v for p in parts for k, v in p.items()}
    return parts[0] if len(parts) == 1 else {"$and": parts}


__all__ = ["all_of", "check", "matches"]
