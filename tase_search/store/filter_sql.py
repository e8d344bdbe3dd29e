"""A parsed metadata filter (:mod:`tase_search.query.filters`) as one SQL condition on a document row.

The condition reads the row's ``metadata`` JSON with SQLite's JSON1 functions and its ``id`` and
``source`` columns; every value is a bound parameter, never SQL text. It is 0 or 1 for every row (never
NULL), so ``NOT`` is an exact complement and the answers equal :func:`~tase_search.query.filters.matches`.

How a comparison reads a field: ``json_type`` / ``json_extract`` for a scalar (SQLite caches the parsed
JSON across these calls on one row, so each row is parsed once), ``json_each`` over the elements for a
list (any element may match). A key is addressed by the JSON path ``$."key"``; a key that path syntax
cannot quote (one with ``"``, ``\\`` or a control character) is found by scanning the object's members
with ``json_each`` instead, slower but exact. Metadata that is not valid JSON (rows written before NaN
was scrubbed) reads as ``{}``: no field is present.

An ``id`` comparison is a plain condition on the unique ``documents.id`` column, so SQLite answers
``{"id": {"$in": [...]}}`` from that column's index; a metadata comparison reads every row's JSON.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..query.filters import COLUMNS, And, Compare, Filter, Not, Or

#: The document row's columns as the search queries name them (``documents d``).
ROW = {"metadata": "d.metadata", "id": "d.id", "source": "d.source"}
_NUMBER = "('integer', 'real')"
_Sql = tuple[str, list[object]]


def where(flt: Filter, row: Mapping[str, str] = ROW) -> _Sql:
    """``flt`` as an SQL expression on the row named by ``row`` (0 or 1) and its parameters, in order."""
    return _node(flt, row)


def json_path(key: str) -> str | None:
    """The JSON path of top-level ``key`` (``$."key"``), or None when path syntax cannot quote it."""
    if '"' in key or "\\" in key or any(ord(c) < 0x20 for c in key):
        return None
    return f'$."{key}"'


def _node(node: Filter, row: Mapping[str, str]) -> _Sql:
    if isinstance(node, (And, Or)):
        parts = [_node(c, row) for c in node.clauses]
        joiner = " AND " if isinstance(node, And) else " OR "
        return "(" + joiner.join(s for s, _ in parts) + ")", [p for _, ps in parts for p in ps]
    if isinstance(node, Not):
        sql, params = _node(node.clause, row)
        return f"(NOT {sql})", params
    if node.op in ("$ne", "$nin"):  # negations: they hold where the field is absent too
        opposite = Compare(node.field, "$eq" if node.op == "$ne" else "$in", node.value)
    elif node.op == "$exists" and not node.value:
        opposite = Compare(node.field, "$exists", True)
    else:
        return _positive(node, row)
    sql, params = _positive(opposite, row)
    return f"(NOT {sql})", params


def _positive(c: Compare, row: Mapping[str, str]) -> _Sql:
    """A comparison that holds only where the field is present: ``$eq``, ``$in``, the orderings,
    ``$prefix`` and ``$exists: true``."""
    if c.field in COLUMNS:  # a string column, NULL where absent (a source)
        col = row[c.field]
        if c.op == "$exists":
            return f"({col} IS NOT NULL)", []
        sql, params = _test(c, ("", []), (col, []))
        return f"({col} IS NOT NULL AND {sql})", params
    meta = row["metadata"]
    path = json_path(c.field)
    if path is None:
        return _by_key(c, meta)
    if c.op == "$exists":
        return f"(CASE WHEN json_valid({meta}) THEN json_type({meta}, ?) IS NOT NULL ELSE 0 END)", [path]
    element, eparams = _test(c, ("j.type", []), ("j.atom", []))
    scalar, sparams = _test(c, (f"json_type({meta}, ?)", [path]), (f"json_extract({meta}, ?)", [path]))
    sql = (
        f"(CASE WHEN json_valid({meta}) THEN (CASE json_type({meta}, ?) "
        f"WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each({meta}, ?) j WHERE {element}) "
        f"ELSE IFNULL({scalar}, 0) END) ELSE 0 END)"
    )
    return sql, [path, path, *eparams, *sparams]


def _by_key(c: Compare, meta: str) -> _Sql:
    """A comparison on a key that JSON path syntax cannot quote: its member found by ``json_each``."""
    if c.op == "$exists":
        member = f"EXISTS (SELECT 1 FROM json_each({meta}) t WHERE t.key = ?)"
        return f"(CASE WHEN json_valid({meta}) THEN {member} ELSE 0 END)", [c.field]
    element, eparams = _test(c, ("j.type", []), ("j.atom", []))
    member, mparams = _test(c, ("t.type", []), ("t.atom", []))
    sql = (
        f"(CASE WHEN json_valid({meta}) THEN EXISTS (SELECT 1 FROM json_each({meta}) t WHERE t.key = ? AND "
        f"(CASE WHEN t.type = 'array' THEN EXISTS (SELECT 1 FROM json_each(t.value) j WHERE {element}) "
        f"ELSE IFNULL({member}, 0) END)) ELSE 0 END)"
    )
    return sql, [c.field, *eparams, *mparams]


def _test(c: Compare, kind: _Sql, value: _Sql) -> _Sql:
    """The test of one scalar against ``c``, given SQL for its JSON type (``kind``; empty for a string
    column) and its value (``value``). May be NULL where the type is NULL; callers wrap it."""
    if c.op == "$in":
        groups = [_equal(v, kind, value) for v in _grouped(c.value)]
        if not groups:
            return "0", []
        return "(" + " OR ".join(s for s, _ in groups) + ")", [p for _, ps in groups for p in ps]
    if c.op == "$eq":
        return _equal(c.value, kind, value)
    if c.op == "$prefix":
        sql = f"substr({value[0]}, 1, ?) = ?"
        return _typed("'text'", kind, sql, [*value[1], len(c.value), c.value])
    sign = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[c.op]
    types = "'text'" if isinstance(c.value, str) else _NUMBER
    return _typed(types, kind, f"{value[0]} {sign} ?", [*value[1], c.value])


def _grouped(values: tuple[object, ...]) -> list[object]:
    """``$in`` values as scalars and lists of like scalars (strings together, numbers together), so
    each group is one ``IN (...)``."""
    strings = [v for v in values if isinstance(v, str)]
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    others = list(dict.fromkeys(v for v in values if v is None or isinstance(v, bool)))
    return [g for g in (strings, nums) if g] + others


def _equal(v: object, kind: _Sql, value: _Sql) -> _Sql:
    """Equality with ``v``: a scalar, or a list of strings or of numbers (any of them)."""
    if v is None or isinstance(v, bool):
        name = "null" if v is None else ("true" if v else "false")
        if not kind[0]:
            return "0", []  # a string column is never null or a boolean
        return f"{kind[0]} = '{name}'", list(kind[1])
    many = v if isinstance(v, list) else [v]
    types = "'text'" if isinstance(many[0], str) else _NUMBER
    test = f"{value[0]} = ?" if len(many) == 1 else f"{value[0]} IN ({', '.join('?' * len(many))})"
    return _typed(types, kind, test, [*value[1], *many])


def _typed(types: str, kind: _Sql, test: str, params: list[object]) -> _Sql:
    """``test`` where the JSON type is one of ``types`` (just ``test`` for a string column)."""
    if not kind[0]:
        return test, params
    op = "=" if types.startswith("'") else "IN"
    return f"({kind[0]} {op} {types} AND {test})", [*kind[1], *params]
