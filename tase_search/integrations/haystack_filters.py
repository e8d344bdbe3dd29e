"""Haystack filters in tase-search's filter language (docs/filters.md): one translation, used by the
document store and the retrievers of :mod:`tase_search.integrations.haystack`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InputError


def _field(name: str) -> str:
    """``meta.FIELD`` -> ``FIELD``; ``id`` stays."""
    return name[5:] if name.startswith("meta.") else name


_COMPARISONS = {
    "==": "$eq",
    "!=": "$ne",
    ">": "$gt",
    ">=": "$gte",
    "<": "$lt",
    "<=": "$lte",
    "in": "$in",
    "not in": "$nin",
}


def store_filter(filters: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Haystack filters in the store's filter language (``docs/filters.md``): comparisons on ``id`` or
    ``meta.FIELD`` with ``==, !=, >, >=, <, <=, in, not in``, joined by AND, OR and NOT. ``== None`` is
    "absent or null", ``!= None`` "present and not null", as Haystack's own matcher has them."""
    if not filters:
        return None
    return _translate(filters)


def _translate(f: Any) -> dict[str, Any]:
    if not isinstance(f, Mapping):
        raise InputError(f"filter {f!r} is not a dict: give Haystack's {{'field', 'operator', 'value'}} form")
    op = f.get("operator")
    if "field" not in f:
        conditions = f.get("conditions")
        if op not in ("AND", "OR", "NOT") or not isinstance(conditions, list) or not conditions:
            raise InputError(
                f"filter {f!r}: a logical filter is {{'operator': 'AND' | 'OR' | 'NOT', 'conditions': [...]}}"
            )
        parts = [_translate(c) for c in conditions]
        joined = {"$and": parts} if op != "OR" else {"$or": parts}
        if op == "NOT":
            return {"$not": parts[0] if len(parts) == 1 else joined}
        return parts[0] if len(parts) == 1 else joined
    field = f.get("field")
    if op not in _COMPARISONS or "value" not in f:
        raise InputError(
            f"filter {f!r}: a comparison is {{'field', 'operator', 'value'}} with operator one of "
            f"{', '.join(_COMPARISONS)}"
        )
    if not isinstance(field, str) or not (field == "id" or (field.startswith("meta.") and len(field) > 5)):
        raise InputError(f"filter {f!r}: compare 'id' or a 'meta.NAME' field")
    key, value = _field(field), f["value"]
    if value is None and op == "==":  # Haystack: absent or null
        return {"$or": [{key: {"$exists": False}}, {key: {"$eq": None}}]}
    if value is None and op == "!=":
        return {key: {"$exists": True, "$ne": None}}
    if op in ("in", "not in") and not isinstance(value, list):
        raise InputError(f"filter {f!r}: '{op}' takes a list of values")
    if isinstance(value, (dict, list)) and op not in ("in", "not in"):
        raise InputError(f"filter {f!r}: '{op}' takes one value")
    return {key: {_COMPARISONS[op]: value}}


#: The name this module exported before the filter language: the same translation.
native_filter = store_filter


__all__ = ["native_filter", "store_filter"]
