"""Scoring the rows a selective filter keeps where a flat index stores them (exact), instead of scanning
every row through an id selector: the rows found by id, then the products read in place.

A filter that comes back (a tenant, a language: the filter cache of :mod:`.filter_cache` keeps its ids)
keeps a copy of its rows side by side (:data:`BLOCKS`), so the next query reads 15 MB in order instead
of 10,000 rows scattered over 1.5 GB (at a million vectors, 1%): the same products, exact, from a
contiguous block. The copy is keyed by the index object and a digest of the ids, and bounded by
:data:`BLOCK_BYTES` per process, least recently used first out.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from typing import Any

import numpy as np


def strictly_increasing(ids: np.ndarray) -> bool:
    """Sorted and unique already (as the filter cache gives them): no sort needed."""
    a = np.asarray(ids)
    return a.dtype == np.int64 and a.ndim == 1 and bool(np.all(a[1:] > a[:-1]))


def rows_of(owner: Any, stored: np.ndarray, order: np.ndarray, ids: np.ndarray) -> np.ndarray | None:
    """The storage rows of ``ids`` (sorted, unique), None when one is not stored. Ids that fill their
    range densely (a segment's are one or a few runs) are looked up in a table from id to row, built
    once per view: a binary search per id over a million stored ids cost more than the products."""
    if not len(stored):
        return None
    lo, hi = int(stored[0]), int(stored[-1])
    if ids[0] < lo or ids[-1] > hi:
        return None
    table = getattr(owner, "_row_table", None)
    if table is None or table[0] is not stored:
        dense = hi - lo + 1 <= 2 * len(stored) + 1024
        row_of = None
        if dense:
            row_of = np.full(hi - lo + 1, -1, np.int64)
            row_of[stored - lo] = order
        table = (stored, row_of)
        owner._row_table = table
    row_of = table[1]
    if row_of is not None:
        rows = row_of[ids - lo]
        return None if (rows < 0).any() else rows
    at = np.searchsorted(stored, ids)
    if not (at < len(stored)).all() or not (stored[np.minimum(at, len(stored) - 1)] == ids).all():
        return None
    return order[at]


def inner_products_by_row(q: np.ndarray, xb: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``q @ xb[rows].T`` without gathering the rows into a copy first (FAISS reads them in place: at
    10,000 rows of a million the copy alone cost more than the products)."""
    import faiss

    rows = np.ascontiguousarray(rows, dtype=np.int64)
    out = np.empty((len(q), len(rows)), np.float32)
    for i in range(len(q)):
        qi = np.ascontiguousarray(q[i], dtype=np.float32)
        faiss.fvec_inner_products_by_idx(
            faiss.swig_ptr(out[i]),
            faiss.swig_ptr(qi),
            faiss.swig_ptr(xb),
            faiss.swig_ptr(rows),
            xb.shape[1],
            1,
            len(rows),
        )
    return out


#: The most memory the copied blocks of every index in the process take together.
BLOCK_BYTES = 256 << 20


class BlockCache:
    """(index, ids) -> the rows' vectors copied side by side (see the module doc)."""

    def __init__(self) -> None:
        self._table: OrderedDict[tuple[int, bytes], tuple[weakref.ref, np.ndarray]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def scores(
        self, owner: Any, view: tuple[np.ndarray, np.ndarray, np.ndarray], q: np.ndarray, ids: np.ndarray
    ) -> np.ndarray | None:
        """``q`` against the stored vectors of ``ids`` (sorted, unique), shape ``(len(q), len(ids))``;
        None when an id is not stored in ``owner``'s view."""
        stored, order, xb = view
        key = (
            id(owner),
            len(ids).to_bytes(8, "little") + hashlib.blake2b(ids.tobytes(), digest_size=16).digest(),
        )
        with self._lock:
            found = self._table.get(key)
            if found is not None and found[0]() is owner:
                self._table.move_to_end(key)
                self.hits += 1
                return _products(q, found[1])
        rows = rows_of(owner, stored, order, ids)
        if rows is None:
            return None
        size = len(rows) * xb.shape[1] * 4
        if size > BLOCK_BYTES // 4:  # too big to keep: scored in place
            return inner_products_by_row(q, xb, rows)
        block = np.take(xb, rows, axis=0)
        with self._lock:
            self.misses += 1
            old = self._table.pop(key, None)
            if old is not None:
                self._bytes -= old[1].nbytes
            self._table[key] = (weakref.ref(owner), block)
            self._bytes += block.nbytes
            for k in [k for k, (ref, _) in self._table.items() if ref() is None]:  # indexes closed since
                self._bytes -= self._table.pop(k)[1].nbytes
            while self._bytes > BLOCK_BYTES:
                _, (_, gone) = self._table.popitem(last=False)
                self._bytes -= gone.nbytes
        return _products(q, block)


def _products(q: np.ndarray, block: np.ndarray) -> np.ndarray:
    """``q @ block.T`` by FAISS's single-threaded kernel: BLAS's threads cost more than they save on a
    matrix-vector product this size, and far more on a busy machine."""
    import faiss

    out = np.empty((len(q), len(block)), np.float32)
    for i in range(len(q)):
        qi = np.ascontiguousarray(q[i], dtype=np.float32)
        faiss.fvec_inner_products_ny(
            faiss.swig_ptr(out[i]), faiss.swig_ptr(qi), faiss.swig_ptr(block), block.shape[1], len(block)
        )
    return out


#: The process's copied blocks.
BLOCKS = BlockCache()
