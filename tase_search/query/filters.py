"""The metadata filter language: parsed, validated and evaluated in this one module.

Every front end hands its filter here: ``Retriever.search(filter=...)`` and the HTTP API take the JSON
form, ``tase-search query --where`` too, and ``--filter KEY=VALUE`` (and the HTTP GET ``filter=``) is the
shorthand :func:`parse_shorthand` reads. The toolkit integrations translate their own filter objects
into the JSON form. The store compiles a parsed filter to SQL (:mod:`tase_search.store.filter_sql`);
:func:`matches` is the same filter evaluated in Python, the reference the SQL is tested against.

The JSON form (docs/filters.md is the full reference)::

    {"topic": "spor"}                                   # equality ($eq)
    {"topic": "spor", "year": {"$gte": 2020}}           # several entries: all must hold
    {"$or": [{"topic": "spor"}, {"tags": {"$in": ["derbi", "maç"]}}]}
    {"$not": {"draft": true}}
    {"id": {"$in": ["a1", "b7"]}}                       # the document id; "source" its source

Semantics, in short: values are JSON scalars compared by type (a string never equals a number, a
boolean is not a number); a list-valued field matches when any of its elements does; ``$ne``, ``$nin``
and ``$not`` are exact negations, so they match documents without the field; keys are literal
top-level field names (a dot is part of the name).
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

#: Operators comparing one field with a value, as written inside ``{"field": {...}}``.
COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$prefix", "$exists")
#: Everything that may appear inside ``{"field": {...}}``: the comparisons and ``$not``.
FIELD_OPERATORS = (*COMPARISONS, "$not")
#: Operators combining whole filters, as keys of a filter object.
LOGICAL_OPERATORS = ("$and", "$or", "$not")
#: Fields read from the document's own columns, not its metadata: its id and its source.
COLUMNS = ("id", "source")
_ORDER = ("$gt", "$gte", "$lt", "$lte")

#: Bounds on a filter (it may come from an untrusted HTTP client): nesting of filter objects,
#: comparisons, values in total (``$in`` lists included), characters of a field name and of a string.
MAX_DEPTH = 16
MAX_CLAUSES = 256
MAX_VALUES = 10_000
MAX_FIELD_CHARS = 256
MAX_STRING_CHARS = 4096
_INT64 = (-(2**63), 2**63 - 1)  # what SQLite stores as an integer
_SURROGATES = re.compile("[\ud800-\udfff]")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_VALID = (
    f"operators on a field: {', '.join(FIELD_OPERATORS)}; combining filters: {', '.join(LOGICAL_OPERATORS)}"
)

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Compare:
    """``field`` compared by ``op`` (one of :data:`COMPARISONS`) with ``value``: a scalar, a tuple of
    scalars for ``$in``/``$nin``, a bool for ``$exists``."""

    field: str
    op: str
    value: Any

    def to_json(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {self.field: {self.op: value}}


@dataclass(frozen=True)
class And:
    """Every clause holds."""

    clauses: tuple[Filter, ...]

    def to_json(self) -> dict[str, Any]:
        return {"$and": [c.to_json() for c in self.clauses]}


@dataclass(frozen=True)
class Or:
    """At least one clause holds."""

    clauses: tuple[Filter, ...]

    def to_json(self) -> dict[str, Any]:
        return {"$or": [c.to_json() for c in self.clauses]}


@dataclass(frozen=True)
class Not:
    """The clause does not hold (documents without its fields included)."""

    clause: Filter

    def to_json(self) -> dict[str, Any]:
        return {"$not": self.clause.to_json()}


Filter = Compare | And | Or | Not
_NODES = (Compare, And, Or, Not)


# ----------------------------------------------------------------------------- parsing
def parse_filter(spec: object) -> Filter | None:
    """The filter ``spec`` (a JSON object as a dict, or an already parsed :data:`Filter`) as a tree;
    None for no filter (None or ``{}``). InputError names the bad operator or value."""
    if spec is None or isinstance(spec, _NODES):
        return spec  # type: ignore[return-value]
    if not isinstance(spec, Mapping):
        raise InputError(
            f"filter is {type(spec).__name__}: give a dict (a JSON object) such as {{'topic': 'spor'}} "
            "or {'year': {'$gte': 2020}} (docs/filters.md)"
        )
    if not spec:
        return None
    return _Parser().filter(spec, 1)


def parse_filter_argument(filter: object) -> Filter | None:  # noqa: A002
    """The ``filter=`` a Python caller passes (``Retriever.search``): None, a JSON filter as a dict
    (docs/filters.md) or a parsed one; a string gets a hint to write it as a dict."""
    if filter is None or (isinstance(filter, Mapping) and not filter):
        return None
    if isinstance(filter, (And, Compare, Not, Or)):
        return filter
    if isinstance(filter, str):
        key, sep, value = filter.partition("=")
        example = f"{{{key.strip()!r}: {value.strip()!r}}}" if sep and key.strip() else "{'topic': 'spor'}"
        raise InputError(
            f"filter={filter!r} is a string; give a dict of metadata field -> value, e.g. filter={example}"
        )
    if not isinstance(filter, Mapping):
        raise InputError(
            f"filter is {type(filter).__name__}; give a dict of metadata field -> value, "
            "e.g. filter={'topic': 'spor'}"
        )
    return parse_filter(filter)


def parse_where(text: str, *, label: str = "where=", hint: str = "") -> Filter | None:
    """A JSON filter given as text (the CLI's ``--where``, HTTP GET's ``where=``), parsed; ``label``
    prefixes the text in the error, ``hint`` ends it (an example of the front end's syntax)."""
    try:
        spec = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{label}{text[:80]!r} is not JSON ({exc}); give a JSON object{hint}") from None
    return parse_filter(spec)


def parse_query_filter(items: Iterable[str], where: str | None) -> Filter | None:
    """``KEY=VALUE`` items (:func:`parse_shorthand`) and a ``where`` JSON text (:func:`parse_where`) as
    one filter, both of which must hold; None for neither."""
    short = parse_shorthand(items)
    return short if where is None else combine(short, parse_where(where))


def parse_shorthand(items: Iterable[str]) -> Filter | None:
    """``KEY=VALUE`` items (``--filter`` on the command line, ``filter=`` on HTTP GET) as a filter.

    Different keys must all match; several values for one key match any of them (``$in``). A value
    cannot say its type, so it matches the string VALUE and also the number or boolean it spells:
    ``year=2024`` matches ``2024`` and ``"2024"``, ``draft=true`` matches ``true`` and ``"true"``.
    ``id`` and ``source`` are strings and match as written.
    """
    by_key: dict[str, list[Scalar]] = {}
    for item in items:
        if not isinstance(item, str) or "=" not in item:
            raise InputError(f"{item!r} is not key=value (e.g. topic=spor)")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key:
            raise InputError(f"{item!r} has an empty key: give key=value (e.g. topic=spor)")
        if key.startswith("$"):
            raise InputError(f"{item!r}: a field name cannot start with '$' (operators need the JSON form)")
        values = by_key.setdefault(key, [])
        for v in [value] if key in COLUMNS else _spellings(value):
            if not any(_same_value(v, w) for w in values):
                values.append(v)
    if not by_key:
        return None
    spec = {k: vs[0] if len(vs) == 1 else {"$in": vs} for k, vs in by_key.items()}
    return parse_filter(spec)


def combine(*filters: Filter | None) -> Filter | None:
    """All of ``filters`` (None ones left out) as one filter."""
    parts = [f for f in filters if f is not None]
    return _all(parts) if parts else None


def _all(parts: list[Filter]) -> Filter:
    """``parts`` joined by AND (nested ANDs flattened); one part as itself."""
    flat = tuple(c for p in parts for c in (p.clauses if isinstance(p, And) else (p,)))
    return flat[0] if len(flat) == 1 else And(flat)


def fields(flt: Filter | None) -> list[str]:
    """The field names ``flt`` reads, each once, in order of appearance."""
    out: dict[str, None] = {}
    stack = [flt] if flt is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, Compare):
            out[node.field] = None
        elif isinstance(node, Not):
            stack.append(node.clause)
        else:
            stack.extend(reversed(node.clauses))
    return list(out)


def _spellings(text: str) -> list[Scalar]:
    """What a shorthand value may stand for: the string, and the number or boolean it spells."""
    out: list[Scalar] = [text]
    number = _JSON_NUMBER.fullmatch(text) if len(text) <= 400 else None
    if text in ("true", "false"):
        out.append(text == "true")
    elif number and any(number.groups()):  # a fraction or an exponent: a float
        if math.isfinite(float(text)):
            out.append(float(text))
    elif number and _INT64[0] <= int(text) <= _INT64[1]:
        out.append(int(text))
    return out


class _Parser:
    """One parse: counts comparisons and values against the bounds."""

    def __init__(self) -> None:
        self.clauses = 0
        self.values = 0

    def filter(self, spec: object, depth: int) -> Filter:
        if depth > MAX_DEPTH:
            raise InputError(f"filter is nested more than {MAX_DEPTH} levels deep, the limit")
        if not isinstance(spec, Mapping):
            raise InputError(f"filter part {_show(spec)} is not a JSON object; give e.g. {{'topic': 'spor'}}")
        if not spec:
            raise InputError("filter part {} is empty: give at least one field or operator")
        parts: list[Filter] = []
        for key, value in spec.items():
            if not isinstance(key, str):
                raise InputError(f"filter key {key!r} is not a string")
            if key in ("$and", "$or"):
                if not isinstance(value, (list, tuple)) or not value:
                    raise InputError(f"filter {key} takes a non-empty list of filters, not {_show(value)}")
                subs = [self.filter(v, depth + 1) for v in value]
                parts.append(_all(subs) if key == "$and" else subs[0] if len(subs) == 1 else Or(tuple(subs)))
            elif key == "$not":
                parts.append(Not(self.filter(value, depth + 1)))
            elif key.startswith("$"):
                hint = (
                    f" ({key} goes inside a field: {{'year': {{'{key}': ...}}}})"
                    if key in COMPARISONS
                    else ""
                )
                raise InputError(f"filter operator {key!r} is not valid here{hint}; {_VALID}")
            else:
                parts.append(self.field(self.name(key), value, depth))
        return _all(parts)

    def name(self, key: str) -> str:
        if not key:
            raise InputError("filter key '' is empty: give a metadata field name")
        if len(key) > MAX_FIELD_CHARS:
            raise InputError(f"filter key {key[:40]!r}... is over {MAX_FIELD_CHARS} characters, the limit")
        return _SURROGATES.sub("\ufffd", key)

    def field(self, name: str, value: object, depth: int) -> Filter:
        if depth > MAX_DEPTH:
            raise InputError(f"filter is nested more than {MAX_DEPTH} levels deep, the limit")
        if isinstance(value, Mapping):
            if not value:
                raise InputError(
                    f"filter on {name!r} is {{}}: give an operator, e.g. {{'$eq': ...}}; {_VALID}"
                )
            ops: list[Filter] = []
            for op, operand in value.items():
                if op == "$not":
                    ops.append(Not(self.field(name, operand, depth + 1)))
                elif op in COMPARISONS:
                    ops.append(self.compare(name, op, operand))
                elif isinstance(op, str) and op.startswith("$"):
                    raise InputError(f"filter operator {op!r} on {name!r} is not valid; {_VALID}")
                else:
                    raise InputError(
                        f"filter on {name!r}: {op!r} is not an operator (a field is compared with a value, "
                        f"not matched key by key); {_VALID}"
                    )
            return _all(ops)
        if isinstance(value, (list, tuple)):
            raise InputError(
                f"filter value for {name!r} is a list: a field is compared with one value; for any of "
                f"several give {{{name!r}: {{'$in': {_show(value)}}}}}"
            )
        return self.compare(name, "$eq", value)

    def compare(self, name: str, op: str, operand: object) -> Compare:
        self.clauses += 1
        if self.clauses > MAX_CLAUSES:
            raise InputError(f"filter has more than {MAX_CLAUSES} comparisons, the limit")
        if op == "$exists":
            if not isinstance(operand, bool):
                raise InputError(f"filter $exists on {name!r} takes true or false, not {_show(operand)}")
            return Compare(name, op, operand)
        if op in ("$in", "$nin"):
            if not isinstance(operand, (list, tuple)):
                raise InputError(f"filter {op} on {name!r} takes a list of values, not {_show(operand)}")
            return Compare(name, op, tuple(self.scalar(name, op, v) for v in operand))
        value = self.scalar(name, op, operand)
        if op in _ORDER and (value is None or isinstance(value, bool)):
            raise InputError(
                f"filter {op} on {name!r} compares with a number or a string, not {_show(operand)}"
            )
        if op == "$prefix" and not isinstance(value, str):
            raise InputError(f"filter $prefix on {name!r} takes a string, not {_show(operand)}")
        return Compare(name, op, value)

    def scalar(self, name: str, op: str, v: object) -> Scalar:
        self.values += 1
        if self.values > MAX_VALUES:
            raise InputError(f"filter has more than {MAX_VALUES} values, the limit")
        where = f"filter {op} on {name!r}"
        if name in COLUMNS and not isinstance(v, str):
            raise InputError(f"{where}: a document's {name} is a string; give a string, not {_show(v)}")
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, numbers.Integral):
            if not _INT64[0] <= int(v) <= _INT64[1]:
                raise InputError(f"{where}: the integer {_show(v)} is outside the 64-bit range")
            return int(v)
        if isinstance(v, numbers.Real):
            if not math.isfinite(float(v)):
                raise InputError(f"{where}: {v!r} is not a finite number")
            return float(v)
        if isinstance(v, str):
            if len(v) > MAX_STRING_CHARS:
                raise InputError(f"{where}: the string is over {MAX_STRING_CHARS} characters, the limit")
            return _SURROGATES.sub("\ufffd", v)
        raise InputError(
            f"{where}: {_show(v)} is {type(v).__name__}; give a string, a number, true/false or null"
        )


def _show(value: object, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


# ----------------------------------------------------------------------------- evaluation
def matches(
    flt: Filter | Mapping[str, Any] | None,
    metadata: Mapping[str, Any],
    *,
    doc_id: str | None = None,
    source: str | None = None,
) -> bool:
    """Whether a document with this ``metadata`` (and ``doc_id``, ``source``) passes ``flt``: the
    language's reference semantics, which the store's SQL returns the same answers as. A column not
    given (None) counts as a missing field."""
    parsed = parse_filter(flt)
    return True if parsed is None else _holds(parsed, metadata, {"id": doc_id, "source": source})


def _holds(node: Filter, meta: Mapping[str, Any], cols: Mapping[str, str | None]) -> bool:
    if isinstance(node, And):
        return all(_holds(c, meta, cols) for c in node.clauses)
    if isinstance(node, Or):
        return any(_holds(c, meta, cols) for c in node.clauses)
    if isinstance(node, Not):
        return not _holds(node.clause, meta, cols)
    if node.field in COLUMNS:
        present, value = cols[node.field] is not None, cols[node.field]
    else:
        present, value = node.field in meta, meta.get(node.field)
    op, want = node.op, node.value
    if op == "$exists":
        return present == want
    if op in ("$ne", "$nin"):
        return not _holds(Compare(node.field, "$eq" if op == "$ne" else "$in", want), meta, cols)
    if not present:
        return False
    elements = [value] if not isinstance(value, list) else value
    elements = [e for e in elements if e is None or isinstance(e, (str, int, float))]  # not lists, objects
    if op == "$eq":
        return any(_same_value(e, want) for e in elements)
    if op == "$in":
        return any(_same_value(e, w) for e in elements for w in want)
    if op == "$prefix":
        return any(isinstance(e, str) and e.startswith(want) for e in elements)
    return any(_ordered(e, op, want) for e in elements)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same_value(a: object, b: object) -> bool:
    """JSON equality of two scalars: same kind (string, number, boolean, null), equal value."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return _is_number(a) and _is_number(b) and a == b


def _ordered(e: object, op: str, want: object) -> bool:
    """``e op want`` for two numbers or two strings (code point order); anything else is False."""
    if isinstance(want, str):
        if not isinstance(e, str):
            return False
    elif not _is_number(e):
        return False
    if op == "$gt":
        return e > want  # type: ignore[operator]
    if op == "$gte":
        return e >= want  # type: ignore[operator]
    if op == "$lt":
        return e < want  # type: ignore[operator]
    return e <= want  # type: ignore[operator]


__all__ = [
    "COLUMNS",
    "COMPARISONS",
    "FIELD_OPERATORS",
    "LOGICAL_OPERATORS",
    "MAX_CLAUSES",
    "MAX_DEPTH",
    "MAX_FIELD_CHARS",
    "MAX_STRING_CHARS",
    "MAX_VALUES",
    "And",
    "Compare",
    "Filter",
    "Not",
    "Or",
    "combine",
    "fields",
    "matches",
    "parse_filter",
    "parse_filter_argument",
    "parse_query_filter",
    "parse_where",
    "parse_shorthand",
]
