"""The SQLite document store: ids, text, metadata JSON, source, passage offsets.

One row per document and one row per passage; a passage's rowid is its vector id in FAISS,
so a search hit maps back to its document with a primary-key lookup.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import IndexCorrupt, InputError

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_key  INTEGER PRIMARY KEY,
    id       TEXT NOT NULL UNIQUE,
    text     TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    source   TEXT,
    line     INTEGER
);
CREATE TABLE IF NOT EXISTS passages (
    pid      INTEGER PRIMARY KEY,
    doc_key  INTEGER NOT NULL REFERENCES documents(doc_key) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    start    INTEGER NOT NULL,
    "end"    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_doc ON passages(doc_key);
CREATE TABLE IF NOT EXISTS tombstones (pid INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class StoredPassage:
    pid: int
    doc_id: str
    text: str  # the whole document's text
    metadata: dict[str, Any]
    source: str | None
    index: int
    count: int
    start: int
    end: int


class DocStore:
    """A SQLite file of documents and passages. Opened read-only for search, read-write for writes."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            if not self.path.is_file():
                raise IndexCorrupt(f"document store {self.path} is missing; the index is damaged")
            uri = f"file:{self.path}?mode=ro"
            try:
                self.conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            except sqlite3.OperationalError as exc:  # vanished since the check (a writer's cleanup)
                raise IndexCorrupt(f"document store {self.path} could not be opened ({exc})") from exc
        else:
            self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=DELETE")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.executescript(SCHEMA)
        self.conn.execute("PRAGMA foreign_keys=ON")
        try:
            self.conn.execute("SELECT 1 FROM documents LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise IndexCorrupt(f"document store {self.path} is damaged: {exc}") from exc

    def close(self) -> None:
        self.conn.close()

    # --------------------------------------------------------------- counters
    def _state(self, key: str, default: int) -> int:
        row = self.conn.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return int(row[0]) if row else default

    def _set_state(self, key: str, value: int) -> None:
        self.conn.execute("INSERT OR REPLACE INTO state(key, value) VALUES (?, ?)", (key, str(value)))

    def next_pid(self) -> int:
        """Passage ids are never reused, so a vector id always names one passage."""
        return self._state("next_pid", 0)

    def next_auto_id(self) -> int:
        return self._state("next_auto_id", 1)

    # ----------------------------------------------------------------- writes
    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = list(ids[i : i + 500])
            q = "SELECT id FROM documents WHERE id IN (%s)" % ",".join("?" * len(chunk))
            found.update(r[0] for r in self.conn.execute(q, chunk))
        return found

    def insert(
        self,
        docs: Sequence[tuple[str, str, dict[str, Any], str | None, int | None]],
        passages: Sequence[Sequence[tuple[int, int, int, int]]],
        first_pid: int,
        next_auto_id: int | None = None,
    ) -> list[int]:
        """Insert documents (id, text, metadata, source, line) and their passages (idx, count, start, end).

        Returns the passage ids assigned, in order, starting at ``first_pid``.
        """
        pid = first_pid
        pids: list[int] = []
        for (doc_id, text, meta, source, line), parts in zip(docs, passages):
            try:
                cur = self.conn.execute(
                    "INSERT INTO documents(id, text, metadata, source, line) VALUES (?, ?, ?, ?, ?)",
                    (doc_id, text, json.dumps(meta, ensure_ascii=False), source, line),
                )
            except sqlite3.IntegrityError as exc:
                raise InputError(f"document id {doc_id!r} is already in the index") from exc
            doc_key = cur.lastrowid
            rows = []
            for idx, count, start, end in parts:
                rows.append((pid, doc_key, idx, count, start, end))
                pids.append(pid)
                pid += 1
            self.conn.executemany(
                'INSERT INTO passages(pid, doc_key, idx, count, start, "end") VALUES (?, ?, ?, ?, ?, ?)', rows
            )
        self._set_state("next_pid", pid)
        if next_auto_id is not None:
            self._set_state("next_auto_id", next_auto_id)
        return pids

    def delete(self, ids: Iterable[str]) -> tuple[list[str], list[int]]:
        """Delete documents by id; returns (ids deleted, passage ids removed)."""
        deleted: list[str] = []
        pids: list[int] = []
        for doc_id in ids:
            row = self.conn.execute("SELECT doc_key FROM documents WHERE id=?", (doc_id,)).fetchone()
            if row is None:
                continue
            pids.extend(r[0] for r in self.conn.execute("SELECT pid FROM passages WHERE doc_key=?", row))
            self.conn.execute("DELETE FROM passages WHERE doc_key=?", row)
            self.conn.execute("DELETE FROM documents WHERE doc_key=?", row)
            deleted.append(doc_id)
        return deleted, pids

    def add_tombstones(self, pids: Sequence[int]) -> None:
        """Vectors of deleted passages that the index type could not remove: excluded at search."""
        self.conn.executemany("INSERT OR IGNORE INTO tombstones(pid) VALUES (?)", [(int(p),) for p in pids])

    def clear_tombstones(self) -> None:
        self.conn.execute("DELETE FROM tombstones")

    def tombstones(self) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT pid FROM tombstones ORDER BY pid")]

    def tombstone_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM tombstones").fetchone()[0])

    # ------------------------------------------------------------------ reads
    def counts(self) -> tuple[int, int]:
        docs = self.conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        passages = self.conn.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
        return int(docs), int(passages)

    def all_pids(self) -> list[int]:
        return [r[0] for r in self.conn.execute("SELECT pid FROM passages ORDER BY pid")]

    def doc_keys(self, pids: Sequence[int]) -> dict[int, int]:
        """Passage id -> document key, to keep one hit per document without fetching texts."""
        out: dict[int, int] = {}
        for i in range(0, len(pids), 500):
            chunk = [int(p) for p in pids[i : i + 500]]
            q = "SELECT pid, doc_key FROM passages WHERE pid IN (%s)" % ",".join("?" * len(chunk))
            out.update(self.conn.execute(q, chunk).fetchall())
        return out

    def fetch(self, pids: Sequence[int]) -> dict[int, StoredPassage]:
        out: dict[int, StoredPassage] = {}
        for i in range(0, len(pids), 500):
            chunk = [int(p) for p in pids[i : i + 500]]
            q = (
                'SELECT p.pid, d.id, d.text, d.metadata, d.source, p.idx, p.count, p.start, p."end" '
                "FROM passages p JOIN documents d ON d.doc_key = p.doc_key WHERE p.pid IN (%s)"
                % ",".join("?" * len(chunk))
            )
            for pid, doc_id, text, meta, source, idx, count, start, end in self.conn.execute(q, chunk):
                out[pid] = StoredPassage(pid, doc_id, text, json.loads(meta), source, idx, count, start, end)
        return out

    def pids_matching(self, filters: dict[str, str]) -> list[int]:
        """Passage ids of documents whose metadata (or ``id`` / ``source``) equals every filter value."""
        clauses, params = [], []
        for key, value in filters.items():
            if key in ("id", "source"):
                clauses.append(f"d.{key} = ?")
            else:
                # json_valid: rows written before NaN was scrubbed hold non-JSON (NaN) and just do not match
                clauses.append(
                    "CAST(CASE WHEN json_valid(d.metadata) THEN json_extract(d.metadata, ?) END AS TEXT) = ?"
                )
                params.append(_json_path(key))
            params.append(value)
        q = "SELECT p.pid FROM passages p JOIN documents d ON d.doc_key = p.doc_key"
        if clauses:
            q += " WHERE " + " AND ".join(clauses)
        return [r[0] for r in self.conn.execute(q, params)]

    def get_documents(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        out = []
        for doc_id in ids:
            row = self.conn.execute(
                "SELECT id, text, metadata, source, line FROM documents WHERE id=?", (doc_id,)
            ).fetchone()
            if row:
                out.append(
                    {
                        "id": row[0],
                        "text": row[1],
                        "metadata": json.loads(row[2]),
                        "source": row[3],
                        "line": row[4],
                    }
                )
        return out

    def sources(self) -> list[tuple[str, int]]:
        return [
            (r[0], r[1])
            for r in self.conn.execute(
                "SELECT COALESCE(source, ''), COUNT(*) FROM documents GROUP BY source ORDER BY 2 DESC LIMIT 20"
            )
        ]


def _json_path(key: str) -> str:
    if not key or any(c in key for c in '."[]$'):
        raise InputError(
            f"filter key {key!r} must be a plain metadata field name (no dots, quotes or brackets)"
        )
    return f'$."{key}"'
