"""The sparse (keyword) part of an index: an FTS5 table inside ``docs.sqlite``, ranked by BM25.

Why here: rows of this table are written in the same SQLite transaction as the documents and
passages they index, so an add, a delete, a crash or a full disk can never leave the keyword index
and the vectors from different generations, and the manifest's checksum of ``docs.sqlite`` covers it.

One row per passage, ``rowid`` = the passage id (= its vector id), so a keyword hit maps to its
document exactly as a vector hit does. The column ``terms`` holds the passage's analysed terms
(:mod:`tase_search.analysis`) and FTS5's ``unicode61 remove_diacritics 0`` tokenizer only splits them
on spaces. The table keeps its terms (it is not contentless): a delete is a plain ``DELETE`` by rowid on
any SQLite version (contentless deletes need 3.43), and FTS5's ``integrity-check`` can compare the
inverted index with the terms it was built from. The cost is the terms' copy: 5 MB per 100k short
documents.

``state`` row ``sparse`` records the analyser the terms were made with and, as of the write that made
it, the passage count and next passage id. A keyword part whose record does not match the file (an
older tase-search wrote documents without indexing them, or the analyser changed) is *stale*: searches
do not use it and the next write rebuilds it.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterable, Sequence

from ..text.analysis import ANALYZER, document_terms, query_term_groups, query_terms
from ..text.language import detect_language

TABLE = "sparse"
CREATE = f"CREATE VIRTUAL TABLE {TABLE} USING fts5(terms, tokenize='unicode61 remove_diacritics 0')"
#: FTS5's own tables behind the virtual table (``sparse_data``, ...): part of a store that has one.
SHADOW = tuple(f"{TABLE}_{s}" for s in ("data", "idx", "content", "docsize", "config"))
STATE_KEY = "sparse"
#: The language of a document is guessed from this many characters of its text.
DETECT_CHARS = 2000
_BATCH = 2000


def present(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE name=? AND type='table'", (TABLE,)).fetchone()
        is not None
    )


def definition_problem(conn: sqlite3.Connection) -> str | None:
    """Why the table named ``sparse`` is not the one tase-search creates (None when it is, or absent)."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE name=?", (TABLE,)).fetchone()
    if row is None:
        return None
    if not isinstance(row[0], str) or " ".join(row[0].split()) != CREATE:
        return f"table {TABLE!r} is not the keyword index tase-search creates"
    return None


def create(conn: sqlite3.Connection) -> None:
    conn.execute(CREATE)


def insert(conn: sqlite3.Connection, rows: Iterable[tuple[int, str]]) -> None:
    """Index ``(passage id, analysed terms)`` rows."""
    conn.executemany(f"INSERT INTO {TABLE}(rowid, terms) VALUES (?, ?)", rows)


def passage_rows(text: str, spans: Sequence[tuple[int, int]], pids: Sequence[int]) -> list[tuple[int, str]]:
    """The rows of one document's passages (``(start, end)`` spans of ``text``); the document's language
    is guessed once, from its beginning."""
    language = detect_language(text[:DETECT_CHARS]) or "tr"
    return [(pid, document_terms(text[s:e], language)) for pid, (s, e) in zip(pids, spans)]


def delete(conn: sqlite3.Connection, pids: Sequence[int]) -> None:
    for i in range(0, len(pids), 500):
        chunk = [int(p) for p in pids[i : i + 500]]
        conn.execute(f"DELETE FROM {TABLE} WHERE rowid IN (%s)" % ",".join("?" * len(chunk)), chunk)


def rebuild(conn: sqlite3.Connection) -> int:
    """(Re)create the table from the stored documents (no model needed); returns the rows indexed."""
    conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    create(conn)
    cur = conn.execute('SELECT p.doc_key, p.pid, p.start, p."end" FROM passages p ORDER BY p.doc_key, p.pid')
    n = 0
    while True:
        batch = cur.fetchmany(_BATCH)
        if not batch:
            break
        by_doc: dict[int, list[tuple[int, int, int]]] = {}
        for doc_key, pid, start, end in batch:
            by_doc.setdefault(doc_key, []).append((pid, start, end))
        keys = list(by_doc)
        texts = dict(
            conn.execute(
                "SELECT doc_key, text FROM documents WHERE doc_key IN (%s)" % ",".join("?" * len(keys)), keys
            ).fetchall()
        )
        rows: list[tuple[int, str]] = []
        for doc_key, parts in by_doc.items():
            text = texts.get(doc_key)
            if isinstance(text, str):
                rows += passage_rows(text, [(s, e) for _, s, e in parts], [p for p, _, _ in parts])
        insert(conn, rows)
        n += len(rows)
    return n


# ------------------------------------------------------------------ the record in ``state``
def record(conn: sqlite3.Connection, rows: int, next_pid: int) -> None:
    """Note that the keyword part indexes ``rows`` passages, up to ``next_pid``, with :data:`ANALYZER`."""
    value = json.dumps({"analyzer": ANALYZER, "rows": rows, "next_pid": next_pid}, sort_keys=True)
    conn.execute("INSERT OR REPLACE INTO state(key, value) VALUES (?, ?)", (STATE_KEY, value))


def stale_reason(conn: sqlite3.Connection, rows: int, next_pid: int) -> str | None:
    """Why the keyword part does not index exactly ``rows`` passages up to ``next_pid`` with this
    analyser (None: it does). Reads one ``state`` row."""
    row = conn.execute("SELECT value FROM state WHERE key=?", (STATE_KEY,)).fetchone()
    try:
        rec = json.loads(row[0]) if row and isinstance(row[0], str) else None
    except ValueError:
        rec = None
    if not isinstance(rec, dict):
        return "it has no record of what it indexes"
    if rec.get("analyzer") != ANALYZER:
        made = str(rec.get("analyzer"))[:40]
        return f"its terms were made by analyser {made!r}, this version uses {ANALYZER!r}"
    if rec.get("rows") != rows or rec.get("next_pid") != next_pid:
        return "documents were added or deleted without it (by an older tase-search)"
    return None


# ------------------------------------------------------------------ search
def match_expression(terms: Sequence[str]) -> str:
    """An FTS5 query matching any of ``terms`` (each quoted: a term is never FTS5 syntax)."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def search(
    conn: sqlite3.Connection, query: str, limit: int, where: str = "", params: Sequence[object] = ()
) -> list[tuple[int, float]]:
    """Best ``limit`` passages for ``query`` as ``(pid, score)``, score = BM25 (higher is better).

    ``where`` / ``params``: extra conditions on the passage ``p`` and its document ``d`` (a filter).
    """
    terms = query_terms(query)
    if not terms:
        return []
    join = " JOIN passages p ON p.pid = s.rowid JOIN documents d ON d.doc_key = p.doc_key" if where else ""
    sql = (
        f"SELECT s.rowid, -bm25({TABLE}) FROM {TABLE} s{join} WHERE {TABLE} MATCH ?"
        + (f" AND {where}" if where else "")
        + f" ORDER BY bm25({TABLE}) LIMIT ?"
    )
    return [(int(p), float(s)) for p, s in conn.execute(sql, (match_expression(terms), *params, int(limit)))]


# ------------------------------------------------------------------ verify
def problems(conn: sqlite3.Connection, passages: int) -> list[str]:
    """What is wrong with the keyword part: its rows against the passages, and FTS5's integrity check
    (run on a copy in memory: the check is an INSERT, which a read-only connection cannot run, and a
    verify writes nothing to disk)."""
    out: list[str] = []
    rows = int(conn.execute(f"SELECT COUNT(*) FROM {TABLE}_content").fetchone()[0])
    if rows != passages:
        out.append(f"sparse: the keyword index holds {rows} passages, the document store {passages}")
    orphans = conn.execute(
        f"SELECT COUNT(*) FROM {TABLE}_content c LEFT JOIN passages p ON p.pid = c.id WHERE p.pid IS NULL"
    ).fetchone()[0]
    if orphans:
        out.append(f"sparse: {orphans} keyword rows belong to no passage")
    copy = sqlite3.connect(":memory:", isolation_level=None)
    try:
        conn.backup(copy)
        copy.execute(f"INSERT INTO {TABLE}({TABLE}, rank) VALUES ('integrity-check', 1)")
    except sqlite3.DatabaseError as exc:
        out.append(f"sparse: FTS5 integrity check failed ({exc})")
    finally:
        copy.close()
    return out


# ------------------------------------------------------------------ normalised scores
#: FTS5's vocabulary view of the keyword table, in the connection's temporary schema (nothing is
#: written to the index file, so it works on a read-only connection).
VOCAB = f"temp.{TABLE}_vocab"


def scores_of(conn: sqlite3.Connection, query: str, pids: Sequence[int]) -> dict[int, float]:
    """BM25 of ``query`` for the passages ``pids`` (those matching no query term are left out): the
    keyword side of a passage that the keyword search did not rank high enough to return."""
    terms = query_terms(query)
    out: dict[int, float] = {}
    if not terms:
        return out
    for i in range(0, len(pids), 500):
        chunk = [int(p) for p in pids[i : i + 500]]
        sql = f"SELECT rowid, -bm25({TABLE}) FROM {TABLE} WHERE {TABLE} MATCH ? AND rowid IN (%s)" % ",".join(
            "?" * len(chunk)
        )
        out.update((int(p), float(s)) for p, s in conn.execute(sql, (match_expression(terms), *chunk)))
    return out


def row_count(conn: sqlite3.Connection) -> int:
    """Passages in the keyword table (FTS5's N in BM25's IDF)."""
    return int(conn.execute(f"SELECT COUNT(*) FROM {TABLE}_docsize").fetchone()[0])


def group_weights(conn: sqlite3.Connection, query: str, rows: int) -> list[tuple[list[str], float]]:
    """Each query word's group of terms (:func:`query_term_groups`) with FTS5's IDF
    (``log((N - n + 0.5) / (n + 0.5))``, at least 1e-6) of the analysis the corpus holds most.

    Their sum is the query's *typical score*: what it scores by BM25 on a passage of average length
    holding each of its words once. Dividing a BM25 score by it gives a keyword score that does not
    grow with the query's length or the corpus's size (0: no word found, about 1: each word once); a
    query word the corpus never holds still counts, so a query about something the corpus does not
    contain scores low everywhere. The weights also give a passage's coverage (:func:`coverage_of`)."""
    groups = query_term_groups(query)
    if not groups:
        return []
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS {VOCAB} USING fts5vocab(main, '{TABLE}', 'row')")
    terms = sorted({t for g in groups for t in g})
    counts: dict[str, int] = {}
    for i in range(0, len(terms), 500):
        chunk = terms[i : i + 500]
        sql = f"SELECT term, doc FROM {VOCAB} WHERE term IN (%s)" % ",".join("?" * len(chunk))
        counts.update((str(t), int(n)) for t, n in conn.execute(sql, chunk))
    return [(g, idf(rows, max(counts.get(t, 0) for t in g))) for g in groups]


def idf(rows: int, n: int) -> float:
    """FTS5's IDF of a term held by ``n`` of ``rows`` rows (at least 1e-6)."""
    return max(math.log((rows - n + 0.5) / (n + 0.5)), 1e-6)


def coverage_of(
    weights: Sequence[tuple[list[str], float]], found: Iterable[tuple[int, str]]
) -> dict[int, float]:
    """Each passage's share of the query's IDF mass that it holds (a word counts once, whatever its
    frequency); ``found``: ``(pid, stored terms)`` of the passages matching any query term."""
    total = sum(w for _, w in weights)
    out: dict[int, float] = {}
    if total <= 0:
        return out
    for pid, text in found:
        have = set(text.split())
        share = sum(w for g, w in weights if any(t in have for t in g)) / total
        if share > 0:
            out[int(pid)] = share
    return out


def coverage(
    conn: sqlite3.Connection, weights: Sequence[tuple[list[str], float]], pids: Sequence[int]
) -> dict[int, float]:
    """:func:`coverage_of` for the passages ``pids`` (those holding no query word are left out);
    ``weights``: the query's :func:`group_weights`."""
    return coverage_of(weights, stored_terms(conn, pids)) if weights else {}


def stored_terms(conn: sqlite3.Connection, pids: Sequence[int]) -> list[tuple[int, str]]:
    """``(pid, analysed terms)`` of the passages ``pids`` that have a keyword row (read by rowid: no
    posting list is walked)."""
    found: list[tuple[int, str]] = []
    for i in range(0, len(pids), 500):
        chunk = [int(p) for p in pids[i : i + 500]]
        sql = f"SELECT rowid, terms FROM {TABLE} WHERE rowid IN (%s)" % ",".join("?" * len(chunk))
        found += conn.execute(sql, chunk).fetchall()
    return found
