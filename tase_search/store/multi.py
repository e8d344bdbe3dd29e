"""The read side of a segmented index: its segments searched as one document store and one vector index.

Why a facade: searching (``search.py``), the toolkits and the HTTP API read an opened index through the
methods of :class:`~.docs.DocStore` and of a vector index. :class:`MultiDocs` and :class:`MultiVectors`
offer the same methods over every segment, with deleted documents left out, so nothing above the store
knows how many segments there are. Passage ids and document keys are unique across segments
(:mod:`.segment`), so a hit is routed to its segment by its id.

Vector search is exact per segment (flat segments give exact results): each segment returns its best
``k`` among the ids a filter allows minus its deletions, and the best ``k`` of those are the answer.
Keyword search uses the statistics of the whole index (:mod:`.bm25`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import IndexCorrupt
from ..query.filters import Filter, parse_filter
from . import bm25 as _bm25
from .docs import StoredPassage
from .segment import owner, route
from .writing import Opened


class MultiDocs:
    """The document stores of several segments, answering as one (read-only)."""

    readonly = True

    def __init__(self, parts: list[Opened]) -> None:
        self.parts = parts
        self.table = owner([o.seg for o in parts])
        self.sparse = all(o.store.sparse for o in parts)
        self._terms: list[_bm25.SegmentTerms] | None = None
        self.conn = parts[0].store.conn
        self.conn.others = [(o.store, frozenset(o.gone_keys.tolist())) for o in parts[1:]]
        self._gone = [set(o.gone_pids.tolist()) for o in parts]
        self._gone_keys = [frozenset(o.gone_keys.tolist()) for o in parts]

    @property
    def path(self) -> Any:
        return self.parts[0].store.path

    def close(self) -> None:
        for o in self.parts:
            o.close()

    def _split(self, pids: Sequence[int]) -> list[list[int]]:
        at = route(self.table, pids)
        out: list[list[int]] = [[] for _ in self.parts]
        for p, n in zip(pids, at.tolist()):
            if n >= 0 and int(p) not in self._gone[n]:
                out[n].append(int(p))
        return out

    # --------------------------------------------------------------- keyword part
    def _keyword(self) -> list[_bm25.SegmentTerms]:
        if self._terms is None:
            self._terms = [_bm25.SegmentTerms(o.store.conn, o.gone_pids) for o in self.parts]
        return self._terms

    def sparse_stale_reason(self, passages: int | None = None) -> str | None:
        for o in self.parts:
            why = o.store.sparse_stale_reason(o.seg.rows)
            if why is not None:
                return why
        return None

    def search_sparse(
        self, query: str, limit: int, filters: Filter | Mapping[str, Any] | None = None
    ) -> list[tuple[int, float]]:
        flt = parse_filter(filters)
        allowed = None if flt is None else [set(o.store.pid_array(flt).tolist()) for o in self.parts]
        with self._reading():
            return _bm25.search(self._keyword(), query, limit, allowed)

    def sparse_scores_of(self, query: str, pids: Sequence[int]) -> dict[int, float]:
        with self._reading():
            return _bm25.scores_of(self._keyword(), self._split(pids), query)

    def sparse_query_weights(self, query: str) -> list[tuple[list[str], float]]:
        with self._reading():
            return _bm25.group_weights(self._keyword(), query)

    def sparse_coverage(
        self, weights: Sequence[tuple[list[str], float]], pids: Sequence[int]
    ) -> dict[int, float]:
        with self._reading():
            return _bm25.coverage(self._keyword(), self._split(pids), weights)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """SQLite errors while reading the segments' keyword rows (a damaged page) become IndexCorrupt."""
        try:
            yield
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            where = ", ".join(str(o.store.path) for o in self.parts)
            raise IndexCorrupt(
                f"the keyword part of {where} could not be read ({exc}); the index is damaged "
                "(run `tase-search verify`)"
            ) from exc

    # --------------------------------------------------------------- reads
    def counts(self) -> tuple[int, int]:
        return (
            sum(o.seg.live_documents for o in self.parts),
            sum(o.seg.live_rows for o in self.parts),
        )

    def tombstones(self) -> list[int]:
        return sorted(p for o in self.parts for p in o.store.tombstones())

    def doc_keys(self, pids: Sequence[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for o, part in zip(self.parts, self._split(pids)):
            if part:
                out.update(o.store.doc_keys(part))
        return out

    def fetch(self, pids: Sequence[int]) -> dict[int, StoredPassage]:
        out: dict[int, StoredPassage] = {}
        for o, part in zip(self.parts, self._split(pids)):
            if part:
                out.update(o.store.fetch(part))
        return out

    def _holder(self, doc_id: str) -> Opened | None:
        return self._holders([doc_id]).get(doc_id)

    def _holders(self, ids: Sequence[str]) -> dict[str, Opened]:
        """The part whose live rows hold each of ``ids`` (an id is live in one part at most): one
        batched lookup per part, not one per id."""
        out: dict[str, Opened] = {}
        left = list(dict.fromkeys(ids))
        for o, gone in zip(self.parts, self._gone_keys):
            if not left:
                break
            for doc_id, key in o.store.live_keys(left).items():
                if key not in gone:
                    out[doc_id] = o
            left = [i for i in left if i not in out]
        return out

    def get_documents(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        holders = self._holders(ids)
        found: dict[str, dict[str, Any]] = {}
        for o in {id(o): o for o in holders.values()}.values():
            mine = [i for i, h in holders.items() if h is o]
            found.update((d["id"], d) for d in o.store.get_documents(mine))
        return [found[i] for i in ids if i in found]

    def passage_pid(self, doc_id: str, idx: int) -> int | None:
        o = self._holder(doc_id)
        return None if o is None else o.store.passage_pid(doc_id, idx)

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        return set(self._holders(ids))

    def sample_texts(self, n: int, chars: int = 1000) -> list[str]:
        biggest = max(self.parts, key=lambda o: o.seg.live_rows)
        return biggest.store.sample_texts(n, chars)

    def sources(self) -> list[tuple[str, int]]:
        total: dict[str, int] = {}
        for o in self.parts:
            for name, n in o.store.sources():
                total[name] = total.get(name, 0) + n
        return sorted(total.items(), key=lambda kv: -kv[1])[:20]

    # --------------------------------------------------------------- filters
    def pids_matching(self, filters: Filter | Mapping[str, Any] | None) -> list[int]:
        return self.pid_array(filters).tolist()

    def pid_array(self, filters: Filter | Mapping[str, Any] | None) -> np.ndarray:
        """Every segment's ids the filter keeps (each segment's cached, :mod:`.filter_cache`), less
        the deleted ones; sorted within a segment, segment after segment."""
        flt = parse_filter(filters)
        out = []
        for o in self.parts:
            found = o.store.pid_array(flt)
            out.append(found[~np.isin(found, o.gone_pids, assume_unique=True)] if len(o.gone_pids) else found)
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def candidate_count(self, flt: Filter, cap: int = 20_000) -> int | None:
        total = 0
        for o in self.parts:
            n = o.store.candidate_count(flt, cap)
            if n is None:
                return None
            total += n
        return total

    def pids_among(self, flt: Filter, pids: Sequence[int]) -> set[int]:
        out: set[int] = set()
        for o, part in zip(self.parts, self._split(pids)):
            if part:
                out |= o.store.pids_among(flt, part)
        return out


class MultiVectors:
    """The vector indexes of several segments, searched as one: exact merge of per-segment top ``k``."""

    def __init__(self, parts: list[Opened], indexes: list[Any], dimension: int, factory: str) -> None:
        self.parts = parts
        self.indexes = indexes
        self.dimension = dimension
        self.factory = factory
        self.search_params = ""
        self.table = owner([o.seg for o in parts])
        self.deny = []
        for o in parts:
            dead = np.union1d(o.gone_pids, np.asarray(o.store.tombstones(), np.int64))
            self.deny.append(dead if len(dead) else None)

    @property
    def ntotal(self) -> int:
        return sum(int(v.ntotal) for v in self.indexes)

    def search(
        self, queries: np.ndarray, k: int, *, allow: np.ndarray | None = None, deny: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, int(k))
        at = None if allow is None else route(self.table, allow)
        scores, ids = [], []
        for n, v in enumerate(self.indexes):
            if v.ntotal == 0:
                continue
            part = None if allow is None else np.asarray(allow, np.int64)[at == n]
            if part is not None and not len(part):
                continue
            dead = self.deny[n]
            if deny is not None and len(deny):
                dead = deny if dead is None else np.union1d(dead, deny)
            s, i = v.search(q, min(k, int(v.ntotal)), allow=part, deny=dead)
            scores.append(s)
            ids.append(i)
        out_s = np.full((len(q), k), -np.inf, np.float32)
        out_i = np.full((len(q), k), -1, np.int64)
        if not scores:
            return out_s, out_i
        s_all = np.concatenate(scores, axis=1)
        i_all = np.concatenate(ids, axis=1)
        s_all = np.where(i_all >= 0, s_all, -np.inf)
        order = np.argsort(-s_all, axis=1, kind="stable")[:, :k]
        n = order.shape[1]
        out_s[:, :n] = np.take_along_axis(s_all, order, axis=1)
        out_i[:, :n] = np.take_along_axis(i_all, order, axis=1)
        out_i[~np.isfinite(out_s)] = -1
        return out_s, out_i

    def index_of(self, pid: int) -> Any:
        """The segment index holding passage ``pid`` (KeyError when none)."""
        n = int(route(self.table, [pid])[0])
        if n < 0:
            raise KeyError(pid)
        return self.indexes[n]
