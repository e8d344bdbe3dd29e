"""Which metadata fields the stored documents have: for the hint after a filter matched nothing.

Why: ``--filter nokey=1`` and ``--filter topic=nosuchvalue`` both answered ``(no results)``; only the
first is a typo the user can fix, and saying so needs to know whether any document has the field.
Both queries scan the documents table, so they run only after a filtered search came back empty.
"""

from __future__ import annotations

import sqlite3

from ..query.filters import Compare
from . import filter_sql

#: Fields the filter reads from document columns rather than metadata.
COLUMN_KEYS = ("id", "source")
#: Documents looked at when listing the fields that exist (the hint names some, not all).
SAMPLE_DOCS = 10_000


def has_field(conn: sqlite3.Connection, key: str) -> bool:
    """Whether any document's metadata has ``key`` (``id`` and ``source`` always exist)."""
    if key in COLUMN_KEYS:
        return True
    exists, params = filter_sql.where(Compare(key, "$exists", True))
    return any(
        c.execute(f"SELECT 1 FROM documents d WHERE {exists} LIMIT 1", params).fetchone() is not None
        for c in _connections(conn)
    )


def _connections(conn: sqlite3.Connection) -> list[sqlite3.Connection]:
    """``conn`` and those of the index's other segments (:class:`~.docs.SegmentConnection`)."""
    return [conn, *(s.conn for s, _ in getattr(conn, "others", ()))]


def some_fields(conn: sqlite3.Connection, limit: int = 12) -> list[str]:
    """Up to ``limit`` metadata field names, sorted, from the first :data:`SAMPLE_DOCS` documents."""
    found: set[str] = set()
    for c in _connections(conn):
        rows = c.execute(
            "SELECT DISTINCT j.key FROM (SELECT metadata FROM documents WHERE json_valid(metadata) LIMIT ?) d, "
            "json_each(d.metadata) j ORDER BY j.key LIMIT ?",
            (SAMPLE_DOCS, limit),
        ).fetchall()
        found.update(str(r[0]) for r in rows)
    return sorted(found)[:limit]
