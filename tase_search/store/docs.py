"""The SQLite document store: ids, text, metadata JSON, source, passage offsets.

One row per document and one row per passage; a passage's rowid is its vector id in FAISS,
so a search hit maps back to its document with a primary-key lookup.

A file that is not what tase-search wrote (a view or trigger in place of a table, a NULL or
binary text, metadata that is not a JSON object or is nested absurdly deep, a damaged page)
raises :class:`IndexCorrupt` as it is opened or read, never a traceback or a hang.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import IndexCorrupt, InputError
from . import sparse as _sparse
from .safeio import not_regular

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
TABLES = ("documents", "passages", "tombstones", "state")
#: Deepest metadata nesting stored or read back (the corpus readers refuse deeper input).
MAX_METADATA_DEPTH = 64
_FIX = "the index is damaged (run `tase-search verify`)"


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
            try:
                odd = not_regular(self.path)
            except FileNotFoundError:
                raise IndexCorrupt(f"document store {self.path} is missing; the index is damaged") from None
            if odd:  # never opened through a link, nor a FIFO (which would hang)
                raise IndexCorrupt(f"document store {self.path} is {odd}, not a regular file; {_FIX}")
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
            self._check_schema()
            self.conn.execute("SELECT 1 FROM documents LIMIT 1").fetchall()
            #: whether the store has a keyword (sparse) part, kept in step by insert and delete
            self.sparse = _sparse.present(self.conn)
            #: passages indexed by :meth:`build_sparse` on this connection (None: not called)
            self.sparse_built: int | None = None
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise IndexCorrupt(f"document store {self.path} is damaged: {exc}") from exc
        except IndexCorrupt:
            self.conn.close()
            raise

    def _check_schema(self) -> None:
        """Only the tables and indexes of :data:`SCHEMA`: a view (which may recurse without end) or a
        trigger in their place is not a file tase-search wrote."""
        kinds = dict(self.conn.execute("SELECT name, type FROM sqlite_master").fetchall())
        odd = sorted(f"{t} {n!r}" for n, t in kinds.items() if t not in ("table", "index"))
        missing = [t for t in TABLES if kinds.get(t) != "table"]
        if odd or missing:
            what = ", ".join(odd[:3]) if odd else f"no table {missing[0]!r}"
            raise IndexCorrupt(f"document store {self.path} is not one tase-search wrote ({what}); {_FIX}")
        bad = _sparse.definition_problem(self.conn)
        if bad:
            raise IndexCorrupt(f"document store {self.path} is not one tase-search wrote ({bad}); {_FIX}")

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """SQLite errors while reading (a damaged page) become IndexCorrupt."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise IndexCorrupt(f"document store {self.path} could not be read ({exc}); {_FIX}") from exc

    def _row(self, doc_id: object, text: object, meta: object, where: str) -> dict[str, Any]:
        """Check a stored document row as it is read; returns its metadata."""
        if not isinstance(doc_id, str) or not isinstance(text, str):
            bad = "id" if not isinstance(doc_id, str) else "text"
            raise IndexCorrupt(
                f"document store {self.path}: {where} has a {bad} that is not a string "
                f"({type(text if bad == 'text' else doc_id).__name__}); {_FIX}"
            )
        return parse_metadata(meta, f"document store {self.path}: {where}")

    def close(self) -> None:
        self.conn.close()

    # --------------------------------------------------------------- counters
    def _state(self, key: str, default: int) -> int:
        with self._reading():
            row = self.conn.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        if row is None:
            return default
        if not (isinstance(row[0], str) and row[0].isdigit() and len(row[0]) <= 18):
            raise IndexCorrupt(f"document store {self.path}: state {key!r} is {str(row[0])[:40]!r}; {_FIX}")
        return int(row[0])

    def model_fingerprint(self) -> str | None:
        """The weights fingerprint recorded by the write that made this file (None before it was recorded):
        the checksummed copy that ``verify`` compares the manifest's with."""
        with self._reading():
            row = self.conn.execute("SELECT value FROM state WHERE key='model_fingerprint'").fetchone()
        return row[0] if row and isinstance(row[0], str) else None

    def set_model_fingerprint(self, fingerprint: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO state(key, value) VALUES ('model_fingerprint', ?)", (fingerprint,)
        )

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

    def file_bytes(self) -> int:
        """The file's size as SQLite wrote it (pages x page size): what the disk must hold after a commit."""
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        return int(pages) * int(self.conn.execute("PRAGMA page_size").fetchone()[0])

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
        keyword_rows: list[tuple[int, str]] = []
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
            if self.sparse:
                keyword_rows += _sparse.passage_rows(text, [(r[4], r[5]) for r in rows], [r[0] for r in rows])
        if keyword_rows:
            _sparse.insert(self.conn, keyword_rows)
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
        if self.sparse:
            _sparse.delete(self.conn, pids)
        return deleted, pids

    # ------------------------------------------------------------ keyword part
    def build_sparse(self) -> int:
        """Give the store a keyword part built from its stored text (replacing a stale one), inside the
        open transaction; returns the passages indexed."""
        n = _sparse.rebuild(self.conn)
        self.sparse, self.sparse_built = True, n
        return n

    def sparse_stale_reason(self, passages: int | None = None) -> str | None:
        """Why the keyword part does not match the documents (None: it does, or there is none).
        ``passages``: the passage count when the caller knows it (the manifest's), saving a count."""
        if not self.sparse:
            return None
        with self._reading():
            if passages is None:
                passages = int(self.conn.execute("SELECT COUNT(*) FROM passages").fetchone()[0])
            return _sparse.stale_reason(self.conn, passages, self.next_pid())

    def record_sparse(self) -> None:
        """Before a write commits: note what the keyword part now indexes (see :mod:`.sparse`)."""
        if self.sparse:
            passages = int(self.conn.execute("SELECT COUNT(*) FROM passages").fetchone()[0])
            _sparse.record(self.conn, passages, self.next_pid())

    def search_sparse(
        self, query: str, limit: int, filters: dict[str, str] | None = None
    ) -> list[tuple[int, float]]:
        """Best ``limit`` passages by BM25 as ``(pid, score)``, among documents matching ``filters``."""
        where, params = _filter_sql(filters or {})
        with self._reading():
            return _sparse.search(self.conn, query, limit, where, params)

    def add_tombstones(self, pids: Sequence[int]) -> None:
        """Vectors of deleted passages that the index type could not remove: excluded at search."""
        self.conn.executemany("INSERT OR IGNORE INTO tombstones(pid) VALUES (?)", [(int(p),) for p in pids])

    def clear_tombstones(self) -> None:
        self.conn.execute("DELETE FROM tombstones")

    def tombstones(self) -> list[int]:
        with self._reading():
            return [int(r[0]) for r in self.conn.execute("SELECT pid FROM tombstones ORDER BY pid")]

    def tombstone_count(self) -> int:
        with self._reading():
            return int(self.conn.execute("SELECT COUNT(*) FROM tombstones").fetchone()[0])

    # ------------------------------------------------------------------ reads
    def counts(self) -> tuple[int, int]:
        with self._reading():
            docs = self.conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            passages = self.conn.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
        return int(docs), int(passages)

    def all_pids(self) -> list[int]:
        with self._reading():
            return [r[0] for r in self.conn.execute("SELECT pid FROM passages ORDER BY pid")]

    def doc_keys(self, pids: Sequence[int]) -> dict[int, int]:
        """Passage id -> document key, to keep one hit per document without fetching texts."""
        out: dict[int, int] = {}
        for i in range(0, len(pids), 500):
            chunk = [int(p) for p in pids[i : i + 500]]
            q = "SELECT pid, doc_key FROM passages WHERE pid IN (%s)" % ",".join("?" * len(chunk))
            with self._reading():
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
            with self._reading():
                rows = self.conn.execute(q, chunk).fetchall()
            for pid, doc_id, text, meta, source, idx, count, start, end in rows:
                where = f"passage {pid}"
                metadata = self._row(doc_id, text, meta, where)
                if not all(type(v) is int for v in (idx, count, start, end)) or not 0 <= start <= end:
                    raise IndexCorrupt(f"document store {self.path}: {where} has invalid offsets; {_FIX}")
                if source is not None and not isinstance(source, str):
                    source = str(source)
                out[pid] = StoredPassage(pid, doc_id, text, metadata, source, idx, count, start, end)
        return out

    def pids_matching(self, filters: dict[str, str]) -> list[int]:
        """Passage ids of documents whose metadata (or ``id`` / ``source``) equals every filter value."""
        where, params = _filter_sql(filters)
        q = "SELECT p.pid FROM passages p JOIN documents d ON d.doc_key = p.doc_key"
        if where:
            q += " WHERE " + where
        with self._reading():
            return [r[0] for r in self.conn.execute(q, params)]

    def get_documents(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        out = []
        for doc_id in ids:
            with self._reading():
                row = self.conn.execute(
                    "SELECT id, text, metadata, source, line FROM documents WHERE id=?", (doc_id,)
                ).fetchone()
            if row:
                metadata = self._row(row[0], row[1], row[2], f"document {str(row[0])[:60]!r}")
                out.append(
                    {"id": row[0], "text": row[1], "metadata": metadata, "source": row[3], "line": row[4]}
                )
        return out

    def sample_texts(self, n: int, chars: int = 1000) -> list[str]:
        """The beginnings of up to ``n`` documents spread evenly over the store (by key): a cheap look
        at what the corpus is (``n`` primary-key lookups, whatever its size)."""
        with self._reading():
            lo, hi = self.conn.execute("SELECT MIN(doc_key), MAX(doc_key) FROM documents").fetchone()
            if lo is None:
                return []
            keys = sorted({lo + (hi - lo) * i // max(1, n - 1) for i in range(n)})
            out = []
            for key in keys:
                row = self.conn.execute(
                    "SELECT substr(text, 1, ?) FROM documents WHERE doc_key >= ? ORDER BY doc_key LIMIT 1",
                    (chars, key),
                ).fetchone()
                if row and isinstance(row[0], str):
                    out.append(row[0])
            return out

    def sources(self) -> list[tuple[str, int]]:
        with self._reading():
            return [
                (str(r[0]), int(r[1]))
                for r in self.conn.execute(
                    "SELECT COALESCE(source, ''), COUNT(*) FROM documents GROUP BY source ORDER BY 2 DESC LIMIT 20"
                )
            ]


def parse_metadata(raw: object, where: str) -> dict[str, Any]:
    """Stored metadata as a dict: it must be a JSON object nested at most :data:`MAX_METADATA_DEPTH` deep."""
    if not isinstance(raw, str):
        raise IndexCorrupt(f"{where} has metadata that is not JSON text ({type(raw).__name__}); {_FIX}")
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, absurd nesting, or an integer past the digit limit
        raise IndexCorrupt(f"{where} has metadata that is not valid JSON; {_FIX}") from None
    if not isinstance(meta, dict):
        raise IndexCorrupt(f"{where} has metadata that is not a JSON object; {_FIX}")
    if json_depth(meta) > MAX_METADATA_DEPTH:
        raise IndexCorrupt(f"{where} has metadata nested deeper than {MAX_METADATA_DEPTH} levels; {_FIX}")
    return meta


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, ``{}`` is 1), without recursion."""
    depth, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        elif not isinstance(v, list):
            continue
        depth = max(depth, d)
        stack.extend((x, d + 1) for x in v if isinstance(x, (dict, list)))
    return depth


def _filter_sql(filters: dict[str, str]) -> tuple[str, list[str]]:
    """A filter as SQL conditions on document ``d`` (every value must match) and their parameters."""
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
    return " AND ".join(clauses), params


def _json_path(key: str) -> str:
    if not key or any(c in key for c in '."[]$'):
        raise InputError(
            f"filter key {key!r} must be a plain metadata field name (no dots, quotes or brackets)"
        )
    return f'$."{key}"'
