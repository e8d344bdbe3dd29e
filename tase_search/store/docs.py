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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorrupt, InputError
from ..query.filters import Filter, parse_filter
from . import filter_cache as _filter_cache
from . import filter_sql as _filter_sql
from . import payload as _payload
from . import sparse as _sparse
from .metadata_json import MAX_METADATA_DEPTH, json_depth, parse_metadata  # noqa: F401 - re-exports
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
#: How far the candidates of each conjunct of an AND are counted to pick the smallest.
_COUNT_CAP = 20_000
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


class SegmentConnection(sqlite3.Connection):
    """A document store's connection that knows the index's other segments (:mod:`.segment`):
    ``others`` holds ``(DocStore, deleted document keys)`` of each, so lookups that must see the whole
    index (:mod:`.content`'s duplicate checks, :mod:`.fields`) ask them too."""

    others: list[tuple[DocStore, frozenset[int]]] = []


class DocStore:
    """A SQLite file of documents and passages. Opened read-only for search, read-write for writes."""

    #: the document key the next inserted document gets (None: SQLite picks the next rowid); a segment
    #: of a format-2 index hands out keys unique across its segments
    doc_key_next: int | None = None
    journal_mode, synchronous = "DELETE", "FULL"  #: a writable store's (see SegmentStore)

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        #: The segment file's identity when opened to be searched (:mod:`.filter_cache`), else None.
        self.cache_key: tuple[object, ...] | None = None
        if readonly:
            try:
                odd = not_regular(self.path)
            except FileNotFoundError:
                raise IndexCorrupt(f"document store {self.path} is missing; the index is damaged") from None
            if odd:  # never opened through a link, nor a FIFO (which would hang)
                raise IndexCorrupt(f"document store {self.path} is {odd}, not a regular file; {_FIX}")
            uri = f"file:{self.path}?mode=ro"
            try:
                self.conn = sqlite3.connect(uri, uri=True, check_same_thread=False, factory=SegmentConnection)
            except sqlite3.OperationalError as exc:  # vanished since the check (a writer's cleanup)
                raise IndexCorrupt(f"document store {self.path} could not be opened ({exc})") from exc
        else:
            self.conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, factory=SegmentConnection
            )
            self.conn.execute(f"PRAGMA journal_mode={self.journal_mode}")
            self.conn.execute(f"PRAGMA synchronous={self.synchronous}")
            self.conn.executescript(f"BEGIN;{SCHEMA}COMMIT;")  # one transaction: one write of the pages
        self.conn.execute("PRAGMA foreign_keys=ON")
        try:
            self._check_schema()
            self.conn.execute("SELECT 1 FROM documents LIMIT 1").fetchall()
            #: whether the store has a keyword (sparse) part, kept in step by insert and delete
            self.sparse = _sparse.present(self.conn)
            #: passages indexed by :meth:`build_sparse` on this connection (None: not called)
            self.sparse_built: int | None = None
            #: whether writes keep the payload index (:mod:`.payload`) in step: set by :meth:`begin`
            self._payload_live = False
            self._payload_docs = 0  # documents, as the payload index's record counts them
            self._payload_usable: bool | None = None  # a read-only file's answer, once asked
            self._counts: dict[tuple[str, tuple[object, ...], int], int] = {}  # candidates by query
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # a damaged page, or text not UTF-8
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
        bad = _sparse.definition_problem(self.conn) or _payload.definition_problem(self.conn)
        if bad:
            raise IndexCorrupt(f"document store {self.path} is not one tase-search wrote ({bad}); {_FIX}")

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """SQLite errors while reading (a damaged page) become IndexCorrupt."""
        try:
            yield
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
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
        """Start the write transaction; first the payload index is made current (built in this
        transaction where it is missing or a version without it wrote since), so every write keeps it."""
        self.conn.execute("BEGIN IMMEDIATE")
        if not self.readonly:
            self._payload_docs = int(self.conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
            if not _payload.current(self.conn, self.next_pid(), self._payload_docs):
                _payload.rebuild(self.conn)
                _payload.record(self.conn, self.next_pid(), self._payload_docs)
            self._payload_live = True

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
        payload_rows: list[_payload.Row] = []
        for (doc_id, text, meta, source, line), parts in zip(docs, passages):
            stored = json.dumps(meta, ensure_ascii=False)
            try:
                if self.doc_key_next is None:
                    cur = self.conn.execute(
                        "INSERT INTO documents(id, text, metadata, source, line) VALUES (?, ?, ?, ?, ?)",
                        (doc_id, text, stored, source, line),
                    )
                else:
                    cur = self.conn.execute(
                        "INSERT INTO documents(doc_key, id, text, metadata, source, line) VALUES (?, ?, ?, ?, ?, ?)",
                        (self.doc_key_next, doc_id, text, stored, source, line),
                    )
                    self.doc_key_next += 1
            except sqlite3.IntegrityError as exc:
                raise InputError(f"document id {doc_id!r} is already in the index") from exc
            doc_key = cur.lastrowid
            if self._payload_live:  # from the stored text: the rows are what SQL will read
                payload_rows += _payload.stored_rows(stored, doc_key)
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
        if self._payload_live:
            _payload.insert(self.conn, payload_rows)
            self._payload_docs += len(docs)
            _payload.record(self.conn, pid, self._payload_docs)
        if next_auto_id is not None:
            self._set_state("next_auto_id", next_auto_id)
        return pids

    def delete(self, ids: Iterable[str]) -> tuple[list[str], list[int]]:
        """Delete documents by id; returns (ids deleted, passage ids removed)."""
        deleted: list[str] = []
        pids: list[int] = []
        for doc_id in ids:
            found = self.conn.execute(
                "SELECT doc_key, metadata FROM documents WHERE id=?", (doc_id,)
            ).fetchone()
            if found is None:
                continue
            row = found[:1]
            if self._payload_live:
                _payload.delete(self.conn, _payload.stored_rows(found[1], found[0]))
            pids.extend(r[0] for r in self.conn.execute("SELECT pid FROM passages WHERE doc_key=?", row))
            self.conn.execute("DELETE FROM passages WHERE doc_key=?", row)
            self.conn.execute("DELETE FROM documents WHERE doc_key=?", row)
            deleted.append(doc_id)
        if self.sparse:
            _sparse.delete(self.conn, pids)
        if self._payload_live and deleted:
            self._payload_docs -= len(deleted)
            _payload.record(self.conn, self.next_pid(), self._payload_docs)
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
        self, query: str, limit: int, filters: Filter | Mapping[str, Any] | None = None
    ) -> list[tuple[int, float]]:
        """Best ``limit`` passages by BM25 as ``(pid, score)``, among documents matching ``filters``
        (the filter language of :mod:`tase_search.query.filters`)."""
        flt = parse_filter(filters)
        with self._reading():
            where, params = self._filter_where(flt) if flt is not None else ("", [])
            return _sparse.search(self.conn, query, limit, where, params)

    def sparse_scores_of(self, query: str, pids: Sequence[int]) -> dict[int, float]:
        """BM25 of ``query`` for the given passages (:func:`tase_search.store.sparse.scores_of`)."""
        with self._reading():
            return _sparse.scores_of(self.conn, query, pids)

    def sparse_query_weights(self, query: str) -> list[tuple[list[str], float]]:
        """:func:`tase_search.store.sparse.group_weights` of ``query``: each word's terms and IDF (their
        sum is the query's typical score)."""
        with self._reading():
            return _sparse.group_weights(self.conn, query, self._sparse_row_count())

    def sparse_coverage(
        self, weights: Sequence[tuple[list[str], float]], pids: Sequence[int]
    ) -> dict[int, float]:
        """:func:`tase_search.store.sparse.coverage`: each passage's share of the query's words, by IDF
        (``weights``: :meth:`sparse_query_weights`)."""
        with self._reading():
            return _sparse.coverage(self.conn, weights, pids)

    def _sparse_row_count(self) -> int:
        """The keyword rows (read once on a read-only store, whose contents do not change)."""
        rows = getattr(self, "_sparse_rows", None)
        if rows is None:
            rows = _sparse.row_count(self.conn)
            if self.readonly:
                self._sparse_rows = rows
        return rows

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

    def pids_matching(self, filters: Filter | Mapping[str, Any] | None) -> list[int]:
        """Passage ids of the documents ``filters`` keeps (the filter language of
        :mod:`tase_search.query.filters`; None or ``{}``: every passage), sorted."""
        return self.pid_array(filters).tolist()

    def pid_array(self, filters: Filter | Mapping[str, Any] | None) -> np.ndarray:
        """:meth:`pids_matching` as an array, kept per segment file and filter (:mod:`.filter_cache`)."""
        flt = parse_filter(filters)
        if not self.readonly or self.cache_key is None:
            return np.sort(np.asarray(self._pids_sql(flt), dtype=np.int64))
        return _filter_cache.CACHE.pids(self.cache_key, flt, lambda: self._pids_sql(flt))

    def _pids_sql(self, flt: Filter | None) -> list[int]:
        """The ids, in one SQL query (from the payload index alone where it answers exactly)."""
        q = "SELECT p.pid FROM passages p JOIN documents d ON d.doc_key = p.doc_key"
        params: list[object] = []
        with self._reading():
            if flt is not None:
                by_index = self._exact(flt)
                if by_index is not None:
                    q, params = f"SELECT pid FROM passages WHERE doc_key IN ({by_index[0]})", by_index[1]
                else:
                    where, params = self._filter_where(flt)
                    q += " WHERE " + where
            return [r[0] for r in self.conn.execute(q, params)]

    def candidate_count(self, flt: Filter, cap: int = _COUNT_CAP) -> int | None:
        """How many documents the payload index narrows ``flt`` to, counted up to ``cap`` (an upper
        bound on its matches); None when the index cannot narrow it (a negation, no index)."""
        best = self._anchor(flt, cap)
        return None if best is None else best[2]

    def pids_among(self, flt: Filter, pids: Sequence[int]) -> set[int]:
        """Those of ``pids`` whose documents ``flt`` keeps (the exact check on just these rows)."""
        where, params = _filter_sql.where(flt)
        out: set[int] = set()
        for i in range(0, len(pids), 500):
            chunk = [int(p) for p in pids[i : i + 500]]
            q = (
                "SELECT p.pid FROM passages p JOIN documents d ON d.doc_key = p.doc_key "
                f"WHERE p.pid IN ({','.join('?' * len(chunk))}) AND {where}"
            )
            with self._reading():
                out.update(int(r[0]) for r in self.conn.execute(q, [*chunk, *params]))
        return out

    def _filter_where(self, flt: Filter) -> tuple[str, list[object]]:
        """``flt`` as a condition on ``documents d``: its exact JSON1 form, narrowed first to the
        candidates the payload index gives where they are fewer than :data:`_COUNT_CAP` (more are
        read as fast by a pass over the documents)."""
        by_index = self._exact(flt)
        if by_index is not None:
            return f"d.doc_key IN ({by_index[0]})", by_index[1]
        where, params = _filter_sql.where(flt)
        best = self._anchor(flt, _COUNT_CAP)
        if best is None or best[2] >= _COUNT_CAP:
            return where, params
        sql, cparams, _ = best
        return f"d.doc_key IN ({sql}) AND {where}", [*cparams, *params]

    def _exact(self, flt: Filter) -> tuple[str, list[object]] | None:
        """The payload index's own answer to ``flt`` (:func:`.payload.exact`) where it has one and it
        keeps fewer than :data:`_COUNT_CAP` documents (more are read as fast by a pass)."""
        found = _payload.exact(flt) if self._payload_current() else None
        if found is None or self._count(found, _COUNT_CAP) >= _COUNT_CAP:
            return None
        return found

    def _anchor(self, flt: Filter, cap: int) -> tuple[str, list[object], int] | None:
        """The payload index query with the fewest candidates for ``flt`` and their count (up to
        ``cap``); None when there is none. An AND has one per conjunct: each is counted."""
        if not self._payload_current():
            return None
        best: tuple[str, list[object], int] | None = None
        for sql, params in _payload.candidates(flt):
            n = self._count((sql, params), cap)
            if best is None or n < best[2]:
                best = (sql, params, n)
        return best

    def _count(self, query: tuple[str, list[object]], cap: int) -> int:
        """Rows of ``query``, counted up to ``cap`` (remembered by a read-only store: it never changes)."""
        sql, params = query
        key = (sql, tuple(params), cap)
        n = self._counts.get(key)
        if n is None:
            row = self.conn.execute(f"SELECT COUNT(*) FROM ({sql} LIMIT ?)", [*params, cap]).fetchone()
            n = int(row[0])
            if self.readonly:
                if len(self._counts) > 256:
                    self._counts.clear()
                self._counts[key] = n
        return n

    def payload_report(self) -> tuple[str, list[str]]:
        """For ``verify``: what was checked of the payload index, and what is wrong with it."""
        with self._reading():
            if not self._payload_current():
                return (
                    "payload index: absent or out of date; filters read the documents until the next write",
                    [],
                )
            return "payload index: one row per metadata value", _payload.problems(self.conn)

    def _payload_current(self) -> bool:
        """Whether the payload index covers every document (a read-only file is asked once)."""
        if not self.readonly:
            return self._payload_live or _payload.current(self.conn, self.next_pid())
        if self._payload_usable is None:
            self._payload_usable = _payload.current(self.conn, self.next_pid())
        return self._payload_usable

    def passage_pid(self, doc_id: str, idx: int) -> int | None:
        """The passage id of passage ``idx`` of document ``doc_id`` (None when there is none)."""
        q = "SELECT p.pid FROM passages p JOIN documents d ON d.doc_key = p.doc_key WHERE d.id = ? AND p.idx = ?"
        with self._reading():
            row = self.conn.execute(q, (doc_id, idx)).fetchone()
        return None if row is None else int(row[0])

    def live_keys(self, ids: Sequence[str]) -> dict[str, int]:
        """Document id -> document key, for those of ``ids`` this store holds."""
        out: dict[str, int] = {}
        for i in range(0, len(ids), 500):
            chunk = list(ids[i : i + 500])
            q = "SELECT id, doc_key FROM documents WHERE id IN (%s)" % ",".join("?" * len(chunk))
            with self._reading():
                out.update((str(a), int(b)) for a, b in self.conn.execute(q, chunk))
        return out

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
