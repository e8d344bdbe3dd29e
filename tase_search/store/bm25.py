"""Keyword (BM25) search over several segments, scored with the statistics of the whole index.

Why not each segment's own ``bm25()``: FTS5 scores a passage with its table's row count, average
length and the number of rows holding each term. Those differ from segment to segment, so per-segment
scores would rank differently from one index holding the same passages. Here the statistics are summed
over segments (deleted passages left out) and each candidate is scored in Python with FTS5's own
formula (``fts5_aux.c``: ``k1`` = 1.2, ``b`` = 0.75, IDF ``log((N - n + 0.5) / (n + 0.5))``, at least
1e-6, phrases summed in query order), so the ranking and scores equal those of a single-segment index
of the live passages. Candidates are the rows FTS5 finds for the query (their stored terms give each
term's frequency, ``sparse_docsize`` the length).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..text.analysis import query_term_groups, query_terms
from . import sparse as _sparse

K1, B = 1.2, 0.75
_T = _sparse.TABLE


def _varints(blob: bytes) -> list[int]:
    """SQLite's variable-length integers (as FTS5 stores its sizes) in ``blob``."""
    out, i = [], 0
    while i < len(blob):
        v = 0
        for n in range(9):
            byte = blob[i]
            i += 1
            if n == 8:
                v = (v << 8) | byte
                break
            v = (v << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        out.append(v)
    return out


class SegmentTerms:
    """One segment's keyword part as the global scorer reads it: live rows, their tokens, term counts."""

    def __init__(self, conn: Any, gone: np.ndarray) -> None:
        self.conn = conn
        self.gone = set(int(p) for p in gone)
        self._stats: tuple[int, int] | None = None
        self._df: dict[str, int] = {}
        if self.gone:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS gone (p INTEGER PRIMARY KEY)")
            conn.execute("DELETE FROM temp.gone")
            conn.executemany("INSERT INTO temp.gone VALUES (?)", [(p,) for p in self.gone])

    def stats(self) -> tuple[int, int]:
        """(live rows, their tokens)."""
        if self._stats is None:
            row = self.conn.execute(f"SELECT block FROM {_T}_data WHERE id = 1").fetchone()
            nums = _varints(bytes(row[0])) if row and row[0] else [0, 0]
            rows, tokens = nums[0], (nums[1] if len(nums) > 1 else 0)
            if self.gone:
                rows -= len(self.gone)
                for (sz,) in self.conn.execute(
                    f"SELECT sz FROM {_T}_docsize WHERE id IN (SELECT p FROM temp.gone)"
                ):
                    tokens -= sum(_varints(bytes(sz)))
            self._stats = (rows, tokens)
        return self._stats

    def df(self, term: str) -> int:
        """Live rows holding ``term``."""
        if term not in self._df:
            expr = _sparse.match_expression([term])
            n = self.conn.execute(f"SELECT COUNT(*) FROM {_T} WHERE {_T} MATCH ?", (expr,)).fetchone()[0]
            if self.gone:
                n -= self.conn.execute(
                    f"SELECT COUNT(*) FROM {_T} WHERE {_T} MATCH ? AND rowid IN (SELECT p FROM temp.gone)",
                    (expr,),
                ).fetchone()[0]
            self._df[term] = int(n)
        return self._df[term]

    def rows(self, terms: Sequence[str], pids: Sequence[int] | None) -> list[tuple[int, str, int]]:
        """``(pid, terms, length)`` of the live rows matching any of ``terms`` (among ``pids`` if given)."""
        expr = _sparse.match_expression(terms)
        if pids is None:
            found = self.conn.execute(
                f"SELECT s.rowid, s.terms, d.sz FROM {_T} s JOIN {_T}_docsize d ON d.id = s.rowid "
                f"WHERE {_T} MATCH ?",
                (expr,),
            ).fetchall()
        else:
            found = []
            for i in range(0, len(pids), 500):
                chunk = [int(p) for p in pids[i : i + 500]]
                found += self.conn.execute(
                    f"SELECT s.rowid, s.terms, d.sz FROM {_T} s JOIN {_T}_docsize d ON d.id = s.rowid "
                    f"WHERE {_T} MATCH ? AND s.rowid IN ({','.join('?' * len(chunk))})",
                    (expr, *chunk),
                ).fetchall()
        return [(int(p), t, sum(_varints(bytes(sz)))) for p, t, sz in found if int(p) not in self.gone]


def _globals(parts: Sequence[SegmentTerms], terms: Sequence[str]) -> tuple[list[float], float]:
    n_rows = sum(p.stats()[0] for p in parts)
    tokens = sum(p.stats()[1] for p in parts)
    avgdl = tokens / n_rows if n_rows else 1.0
    idf = []
    for t in terms:
        n = sum(p.df(t) for p in parts)
        v = math.log((n_rows - n + 0.5) / (n + 0.5))
        idf.append(v if v > 0.0 else 1e-6)
    return idf, avgdl


def _score(text: str, length: int, terms: Sequence[str], idf: Sequence[float], avgdl: float) -> float:
    tf = Counter(text.split())
    score = 0.0
    for t, w in zip(terms, idf):
        f = float(tf.get(t, 0))
        score += w * ((f * (K1 + 1.0)) / (f + K1 * (1 - B + B * length / avgdl)))
    return score


def search(
    parts: Sequence[SegmentTerms], query: str, limit: int, allowed: Sequence[set[int] | None] | None = None
) -> list[tuple[int, float]]:
    """Best ``limit`` passages over all segments as ``(pid, score)``; ``allowed``: per segment, the
    passage ids a filter keeps (None: all)."""
    terms = query_terms(query)
    if not terms or not parts:
        return []
    idf, avgdl = _globals(parts, terms)
    scored: list[tuple[float, int]] = []
    for n, p in enumerate(parts):
        keep = None if allowed is None else allowed[n]
        if keep is not None and not keep:
            continue
        for pid, text, length in p.rows(terms, None if keep is None else sorted(keep)):
            scored.append((_score(text, length, terms, idf, avgdl), pid))
    scored.sort(key=lambda x: (-x[0], x[1]))
    return [(pid, s) for s, pid in scored[: int(limit)]]


def scores_of(parts: Sequence[SegmentTerms], routed: Sequence[list[int]], query: str) -> dict[int, float]:
    """BM25 of ``query`` for given passages (``routed[n]``: those of segment ``n``); passages matching
    no query term are left out."""
    terms = query_terms(query)
    if not terms:
        return {}
    idf, avgdl = _globals(parts, terms)
    out: dict[int, float] = {}
    for p, pids in zip(parts, routed):
        if pids:
            for pid, text, length in p.rows(terms, pids):
                out[pid] = _score(text, length, terms, idf, avgdl)
    return out


def group_weights(parts: Sequence[SegmentTerms], query: str) -> list[tuple[list[str], float]]:
    """:func:`.sparse.group_weights` with the whole index's statistics."""
    groups = query_term_groups(query)
    rows = sum(p.stats()[0] for p in parts) if groups else 0
    return [(g, _sparse.idf(rows, max(sum(p.df(t) for p in parts) for t in g))) for g in groups]


def coverage(
    parts: Sequence[SegmentTerms], routed: Sequence[list[int]], weights: Sequence[tuple[list[str], float]]
) -> dict[int, float]:
    """:func:`.sparse.coverage` over segments (``routed[n]``: the passages of segment ``n``)."""
    if not weights:
        return {}
    found = [
        (pid, text)
        for p, pids in zip(parts, routed)
        if pids
        for pid, text in _sparse.stored_terms(p.conn, pids)
        if pid not in p.gone
    ]
    return _sparse.coverage_of(weights, found)
