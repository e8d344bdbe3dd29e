"""The payload index: every document's metadata values in one SQLite B-tree, so a selective filter
finds its documents with index seeks instead of reading every document's JSON.

Why: a filter compiled to JSON1 (:mod:`.filter_sql`) is exact but reads each document's metadata, a
scan whose cost grows with the corpus (about a second at a million documents). Lucene's inverted
fields and Qdrant's payload indexes answer the same question from an index over (field, value).

Table ``meta``, ``WITHOUT ROWID``, primary key ``(key, kind, value, doc_key)``: one row per document,
top-level metadata key and scalar value; a list gives one row per scalar element, and a key whose value
has no scalar (an object, an empty list, a list of lists) one row of kind ``OTHER``, so every present
key has a row. ``kind``: :data:`NULL`, :data:`BOOLEAN` (value 0/1), :data:`NUMBER`, :data:`TEXT`
(strings end at a NUL, as SQLite's JSON functions read them), :data:`OTHER` (value 0).

How a search uses it: :func:`candidates` turns a filter into a query over ``meta`` (or the ``id``
column's index) whose documents are a superset of the matches: one conjunct of an AND, the union of an
OR's branches; negations give none. The exact JSON1 condition then runs on those candidates only.
Where the rows say exactly what a filter asks (:func:`exact`: a positive comparison, or an OR of
them) the index alone answers. So the index is used only while its record in ``state`` (the next
passage id and the document count as of the write that kept it) matches the file: a file another
version wrote to is searched without it until the next write rebuilds it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..query.filters import And, Compare, Filter, Not, Or

TABLE = "meta"
CREATE = (
    f"CREATE TABLE {TABLE} (key TEXT NOT NULL, kind INTEGER NOT NULL, value NOT NULL, "
    "doc_key INTEGER NOT NULL, PRIMARY KEY (key, kind, value, doc_key)) WITHOUT ROWID"
)
STATE_KEY = "payload"
VERSION = 1
NULL, BOOLEAN, NUMBER, TEXT, OTHER = 0, 1, 2, 3, 4
_INT64 = (-(2**63), 2**63 - 1)
_BATCH = 5000
_MASK = (1 << 64) - 1
Row = tuple[str, int, object, int]
_Sql = tuple[str, list[object]]


def present(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE name=? AND type='table'", (TABLE,)).fetchone()
        is not None
    )


def definition_problem(conn: sqlite3.Connection) -> str | None:
    """Why the table named ``meta`` is not the one tase-search creates (None when it is, or absent)."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE name=? AND type='table'", (TABLE,)).fetchone()
    if row is None:
        return None
    if not isinstance(row[0], str) or " ".join(row[0].split()) != CREATE:
        return f"table {TABLE!r} is not the payload index tase-search creates"
    return None


def create(conn: sqlite3.Connection) -> None:
    conn.execute(CREATE)


# ------------------------------------------------------------------ rows
def rows(metadata: Mapping[str, Any], doc_key: int) -> list[Row]:
    """The index rows of one document's (parsed) metadata."""
    out: list[Row] = []
    for key, value in metadata.items():
        elements = value if isinstance(value, list) else [value]
        found = False
        for e in elements:
            kv = _scalar(e)
            if kv is not None:
                out.append((str(key), kv[0], kv[1], doc_key))
                found = True
        if not found:
            out.append((str(key), OTHER, 0, doc_key))
    return out


def _scalar(v: object) -> tuple[int, object] | None:
    if v is None:
        return NULL, 0
    if isinstance(v, bool):
        return BOOLEAN, int(v)
    if isinstance(v, int):
        return NUMBER, v if _INT64[0] <= v <= _INT64[1] else float(v)  # SQLite reads a huge one as a double
    if isinstance(v, float):
        return NUMBER, v
    if isinstance(v, str):
        return TEXT, v.split("\x00", 1)[0]
    return None


def stored_rows(raw: object, doc_key: int) -> list[Row]:
    """The index rows of a stored metadata text; none for text SQLite does not read as JSON (NaN)."""
    try:
        meta = json.loads(raw, parse_constant=_refuse) if isinstance(raw, str) else None
    except (ValueError, RecursionError):
        return []
    return rows(meta, doc_key) if isinstance(meta, dict) else []


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def insert(conn: sqlite3.Connection, new: Iterable[Row]) -> None:
    conn.executemany(f"INSERT OR IGNORE INTO {TABLE}(key, kind, value, doc_key) VALUES (?, ?, ?, ?)", new)


def delete(conn: sqlite3.Connection, old: Iterable[Row]) -> None:
    """Remove rows by their full primary key (recomputed from the deleted documents' metadata)."""
    conn.executemany(f"DELETE FROM {TABLE} WHERE key = ? AND kind = ? AND value = ? AND doc_key = ?", old)


def rebuild(conn: sqlite3.Connection) -> int:
    """Fill the table from the stored documents (creating it if missing); returns the rows written."""
    if not present(conn):
        create(conn)
    conn.execute(f"DELETE FROM {TABLE}")
    cur = conn.execute("SELECT doc_key, metadata FROM documents")
    n = 0
    while batch := cur.fetchmany(_BATCH):
        new = [r for doc_key, raw in batch for r in stored_rows(raw, doc_key)]
        insert(conn, new)
        n += len(new)
    return n


def problems(conn: sqlite3.Connection) -> list[str]:
    """What is wrong with the index against the stored documents: its rows must be exactly those the
    documents' metadata calls for (compared by count and an order-free hash of every row)."""
    want_n = want_h = have_n = have_h = 0
    cur = conn.execute("SELECT doc_key, metadata FROM documents")
    while batch := cur.fetchmany(_BATCH):
        for doc_key, raw in batch:
            for row in set(stored_rows(raw, doc_key)):
                want_n, want_h = want_n + 1, (want_h + hash(row)) & _MASK
    cur = conn.execute(f"SELECT key, kind, value, doc_key FROM {TABLE}")
    while batch := cur.fetchmany(_BATCH):
        for row in batch:
            have_n, have_h = have_n + 1, (have_h + hash(tuple(row))) & _MASK
    if (have_n, have_h) == (want_n, want_h):
        return []
    return [f"payload index: {have_n} rows that differ from the {want_n} the documents' metadata calls for"]


# ------------------------------------------------------------------ the record in ``state``
def record(conn: sqlite3.Connection, next_pid: int, documents: int) -> None:
    """Note that the index covers the ``documents`` documents added before passage id ``next_pid``.

    Together the two numbers catch any change by a version that does not keep the index: an insert
    moves ``next_pid`` on, a delete lowers ``documents``."""
    value = json.dumps({"version": VERSION, "next_pid": next_pid, "documents": documents}, sort_keys=True)
    conn.execute("INSERT OR REPLACE INTO state(key, value) VALUES (?, ?)", (STATE_KEY, value))


def current(conn: sqlite3.Connection, next_pid: int, documents: int | None = None) -> bool:
    """Whether the index is there and its record matches ``next_pid`` and the document count
    (counted here when not given)."""
    if not present(conn):
        return False
    row = conn.execute("SELECT value FROM state WHERE key=?", (STATE_KEY,)).fetchone()
    try:
        rec = json.loads(row[0]) if row and isinstance(row[0], str) else None
    except ValueError:
        return False
    if not (isinstance(rec, dict) and rec.get("version") == VERSION and rec.get("next_pid") == next_pid):
        return False
    if documents is None:
        documents = int(conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
    return rec.get("documents") == documents


# ------------------------------------------------------------------ candidates
def candidates(flt: Filter) -> list[_Sql]:
    """Ways to find a superset of ``flt``'s documents from indexes: each an SQL query of ``doc_key``s
    (duplicates possible) with its parameters. Several for an AND (any one will do: the caller picks the
    smallest); none when the filter needs every document looked at (a negation, a ``source`` test)."""
    if isinstance(flt, Compare):
        one = _leaf(flt)
        return [one] if one else []
    if isinstance(flt, And):
        return [c for clause in flt.clauses for c in candidates(clause)]
    if isinstance(flt, Or):
        branches = [candidates(c) for c in flt.clauses]
        if not all(branches):
            return []
        picked = [b[0] for b in branches]  # any conjunct of a branch is a superset of that branch
        return [(" UNION ALL ".join(s for s, _ in picked), [p for _, ps in picked for p in ps])]
    assert isinstance(flt, Not)
    return []


def exact(flt: Filter) -> _Sql | None:
    """The documents ``flt`` keeps, from indexes alone (no metadata read), where the index rows say
    exactly what the filter asks: a positive comparison (``$eq``, ``$in``, an ordering, ``$prefix``,
    ``$exists: true``) on a metadata key or the id, or an OR of such. None otherwise."""
    if isinstance(flt, Compare):
        return _leaf(flt)
    if isinstance(flt, Or):
        parts = [found for c in flt.clauses if (found := exact(c)) is not None]
        if len(parts) == len(flt.clauses):
            return " UNION ALL ".join(s for s, _ in parts), [p for _, ps in parts for p in ps]
    return None


def _leaf(c: Compare) -> _Sql | None:
    if c.field == "source":
        return None
    if c.field == "id":
        return _id_leaf(c)
    base = f"SELECT doc_key FROM {TABLE} WHERE key = ?"
    if c.op == "$exists":
        return (base, [c.field]) if c.value else None
    if c.op in ("$eq", "$in"):
        parts: list[_Sql] = []
        for kind, group in _by_kind([c.value] if c.op == "$eq" else list(c.value)).items():
            if kind == NULL:
                parts.append((f"{base} AND kind = ?", [c.field, NULL]))
            else:
                marks = ", ".join("?" * len(group))
                parts.append((f"{base} AND kind = ? AND value IN ({marks})", [c.field, kind, *group]))
        if not parts:  # $in []
            return f"{base} AND 0", [c.field]
        return " UNION ALL ".join(s for s, _ in parts), [p for _, ps in parts for p in ps]
    if c.op == "$prefix":
        low, high = prefix_range(c.value)
        if high is None:
            return f"{base} AND kind = ? AND value >= ?", [c.field, TEXT, low]
        return f"{base} AND kind = ? AND value >= ? AND value < ?", [c.field, TEXT, low, high]
    if c.op in ("$gt", "$gte", "$lt", "$lte"):
        sign = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[c.op]
        kind = TEXT if isinstance(c.value, str) else NUMBER
        return f"{base} AND kind = ? AND value {sign} ?", [c.field, kind, c.value]
    return None  # $ne, $nin: negations


def _id_leaf(c: Compare) -> _Sql | None:
    base = "SELECT doc_key FROM documents WHERE"
    if c.op == "$eq":
        return f"{base} id = ?", [c.value]
    if c.op == "$in":
        return (
            (f"{base} id IN ({', '.join('?' * len(c.value))})", list(c.value))
            if c.value
            else (f"{base} 0", [])
        )
    if c.op == "$prefix":
        low, high = prefix_range(c.value)
        return (f"{base} id >= ?", [low]) if high is None else (f"{base} id >= ? AND id < ?", [low, high])
    if c.op in ("$gt", "$gte", "$lt", "$lte"):
        sign = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[c.op]
        return f"{base} id {sign} ?", [c.value]
    return None


def _by_kind(values: Sequence[object]) -> dict[int, list[object]]:
    out: dict[int, list[object]] = {}
    for v in values:
        kv = _scalar(v)
        if kv is not None:
            out.setdefault(kv[0], []).append(kv[1])
    return out


def prefix_range(prefix: str) -> tuple[str, str | None]:
    """``[low, high)``: the strings that start with ``prefix``, in SQLite's (code point) order; ``high``
    None when there is no upper bound (an empty prefix, or one of only the last code point)."""
    chars = list(prefix)
    while chars and ord(chars[-1]) == 0x10FFFF:
        chars.pop()
    if not chars:
        return prefix, None
    nxt = ord(chars[-1]) + 1
    chars[-1] = chr(0xE000 if 0xD800 <= nxt <= 0xDFFF else nxt)
    return prefix, "".join(chars)
