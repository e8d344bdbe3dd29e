"""The passage ids a filter keeps in one segment, cached: Lucene's query cache for filters.

Why: listing the ids a filter keeps is an SQL query whose rows Python reads one at a time (about a
microsecond each: 10 ms for a filter keeping 10,000 passages), while services send the same few
filters again and again (a tenant, a language, a date range). A segment's document store never changes
once published (deletions live in separate files, applied after the lookup), so what a filter keeps in
it holds for as long as its file is the same one, across the generations that keep the segment: a
write adds a segment without emptying what the others' filters found.

One least-recently-used table per process (:data:`CACHE`), keyed by the segment file's identity (its
SHA-256 in the manifest and its device, inode, size and times as opened: a replaced or rewritten file
is another key) and the filter's canonical JSON (so ``true`` and ``1`` stay apart); bounded by
:data:`MAX_IDS` ids in all (8 bytes each) and :data:`MAX_FILTERS` entries; a filter keeping more than
:data:`MAX_IDS_PER_FILTER` ids is not kept (a broad filter is searched by post-filtering anyway). Only
stores opened read-only for searching carry a key (:attr:`DocStore.cache_key`); a writer's working copy,
which changes, never does.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from ..query.filters import Filter

MAX_IDS = 4_000_000
MAX_IDS_PER_FILTER = 1_000_000
MAX_FILTERS = 1024


class FilterCache:
    """(segment file, filter) -> sorted passage ids (see the module doc)."""

    def __init__(self) -> None:
        self._table: OrderedDict[tuple[object, str], np.ndarray] = OrderedDict()
        self._ids = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def pids(
        self, segment: tuple[object, ...], flt: Filter | None, compute: Callable[[], list[int]]
    ) -> np.ndarray:
        """The ids ``flt`` keeps in ``segment``, sorted, read-only: from the table, or ``compute()``."""
        key = (
            segment,
            json.dumps(None if flt is None else flt.to_json(), sort_keys=True, ensure_ascii=False),
        )
        with self._lock:
            found = self._table.get(key)
            if found is not None:
                self._table.move_to_end(key)
                self.hits += 1
                return found
        arr = np.sort(np.asarray(compute(), dtype=np.int64))
        arr.setflags(write=False)
        with self._lock:
            self.misses += 1
            if len(arr) <= MAX_IDS_PER_FILTER and key not in self._table:
                self._table[key] = arr
                self._ids += len(arr)
                while self._ids > MAX_IDS or len(self._table) > MAX_FILTERS:
                    _, old = self._table.popitem(last=False)
                    self._ids -= len(old)
        return arr


#: The process's cache.
CACHE = FilterCache()
