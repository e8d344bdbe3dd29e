"""Content hashes of stored documents: how a document that is already indexed is recognised.

Why: documents without an id (every ``.txt`` line) get automatic ids that count up, so an id can never
tell that ``tase-search index notes.txt`` was run twice, and each run doubled the index. Each document
row now carries a 64-bit hash of its text and metadata (``documents.content_hash``, indexed); a new
document whose hash matches is compared in full with the stored one (so a hash collision can never
drop a document) and, if equal, left out as *unchanged*. Indexes written before the column existed get
it on their next write (:func:`ensure_column` fills it in once).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

COLUMN = "content_hash"
_BATCH = 500


def content_key(text: str, metadata: Mapping[str, Any]) -> str:
    """The canonical form of a document's content: its text and metadata (keys sorted), as JSON."""
    return json.dumps([text, metadata], ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def content_hash(text: str, metadata: Mapping[str, Any]) -> int:
    """A signed 64-bit hash of :func:`content_key` (fits an SQLite INTEGER)."""
    digest = hashlib.blake2b(content_key(text, metadata).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def content_id(text: str) -> str:
    """The id of a document that has no id of its own in its file (a ``.txt`` line): 16 hex digits of
    its text's :func:`content_hash`, so indexing the same line again, also after it was deleted, gives
    it the same id. Two copies of a line are one document (the second is unchanged)."""
    return f"{content_hash(text, {}) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


def has_column(conn: sqlite3.Connection) -> bool:
    """Whether the store has the hash column (an index written before it existed gets it at its next write)."""
    return COLUMN in {row[1] for row in conn.execute("PRAGMA table_info(documents)")}


def _stored_key(text: str, metadata_json: str) -> str | None:
    try:
        return content_key(text, json.loads(metadata_json))
    except (TypeError, ValueError):  # a row that predates NaN scrubbing: it matches nothing
        return None


def ensure_column(conn: sqlite3.Connection) -> None:
    """Add the hash column and its index if missing, and fill it in where it is NULL (old rows)."""
    if not has_column(conn):
        conn.execute(f"ALTER TABLE documents ADD COLUMN {COLUMN} INTEGER")
    conn.execute(f"CREATE INDEX IF NOT EXISTS documents_{COLUMN} ON documents({COLUMN})")
    while True:
        rows = conn.execute(
            f"SELECT doc_key, text, metadata FROM documents WHERE {COLUMN} IS NULL LIMIT 10000"
        ).fetchall()
        if not rows:
            return
        updates = []
        for doc_key, text, meta in rows:
            try:
                h = content_hash(text, json.loads(meta))
            except (TypeError, ValueError):
                h = 0  # unparsable metadata: a hash no real document compares equal to (see _stored_key)
            updates.append((h, doc_key))
        conn.executemany(f"UPDATE documents SET {COLUMN} = ? WHERE doc_key = ?", updates)


def _stores(conn: sqlite3.Connection) -> list[tuple[sqlite3.Connection, frozenset[int]]]:
    """``conn`` and the other segments of its index (:class:`~.docs.SegmentConnection`), each with
    the document keys deleted from it: every lookup here must see the whole index's live documents."""
    return [(conn, frozenset()), *((s.conn, gone) for s, gone in getattr(conn, "others", ()))]


def known_keys(conn: sqlite3.Connection, hashes: Iterable[int]) -> set[str]:
    """The :func:`content_key` of every stored document whose hash is among ``hashes``."""
    wanted = sorted(set(hashes))
    out: set[str] = set()
    for c, gone in _stores(conn):
        for i in range(0, len(wanted), _BATCH):
            chunk = wanted[i : i + _BATCH]
            q = f"SELECT doc_key, text, metadata FROM documents WHERE {COLUMN} IN (%s)" % ",".join(
                "?" * len(chunk)
            )
            for doc_key, text, meta in c.execute(q, chunk):
                key = None if doc_key in gone else _stored_key(text, meta)
                if key is not None:
                    out.add(key)
    return out


def keys_by_id(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, str | None]:
    """Stored document id -> its :func:`content_key`, for those of ``ids`` that are in the store."""
    out: dict[str, str | None] = {}
    for c, gone in _stores(conn):
        for i in range(0, len(ids), _BATCH):
            chunk = list(ids[i : i + _BATCH])
            q = "SELECT doc_key, id, text, metadata FROM documents WHERE id IN (%s)" % ",".join(
                "?" * len(chunk)
            )
            for doc_key, doc_id, text, meta in c.execute(q, chunk):
                if doc_key not in gone:
                    out[doc_id] = _stored_key(text, meta)
    return out


def set_hashes(conn: sqlite3.Connection, pairs: Sequence[tuple[int, str]]) -> None:
    """Record ``(hash, document id)`` pairs for rows just inserted."""
    conn.executemany(f"UPDATE documents SET {COLUMN} = ? WHERE id = ?", pairs)
