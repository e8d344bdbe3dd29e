"""IVF-family indexes from staged shards: the coarse quantizer trained once on a sample, shards added in
parallel to copies of it, merged into one index.

Why: adding to an IVF index means finding each vector's nearest of ``nlist`` centroids and encoding it,
which at 100M vectors is hours on one thread. FAISS's way to build large IVF indexes is to train once,
fill several indexes that share the trained quantizer (each an *index shard*) and merge their inverted
lists (``merge_from``; ``faiss.contrib.ondisk.merge_ondisk`` does the same into on-disk lists).

:func:`training_sample` draws the sample at random across the staged shards, so the centroids see the
whole corpus rather than its first files; :class:`ParallelIVFAdds` stands in for the index during the
ingest, sending each batch of vectors to one of ``parts`` copies on a thread pool (FAISS releases the GIL)
and :meth:`ParallelIVFAdds.merged` folds the copies into the index. Rows keep the order the ingest added
them in, so the result is the index a serial add makes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from ..store.vectors import TRAIN_SAMPLE, FaissIndex
from .staging import Staging


def is_ivf(factory: str | None) -> bool:
    return bool(factory) and (factory.startswith("IVF") or ",IVF" in factory)  # type: ignore[union-attr]


#: FAISS warns below 39 training points per list; more than this many points adds little to k-means.
MAX_SAMPLE = 2_000_000


def sample_size(factory: str) -> int:
    """Training points for ``factory``: the store's usual sample, or 39 per inverted list when that is
    more (IVF32768 wants 1.28M), at most :data:`MAX_SAMPLE`."""
    nlist = re.search(r"IVF(\d+)", factory)
    return min(MAX_SAMPLE, max(TRAIN_SAMPLE, 39 * int(nlist.group(1)) if nlist else 0))


def training_sample(
    staging: Staging, keys: Sequence[str], size: int = TRAIN_SAMPLE, seed: int = 0
) -> np.ndarray:
    """Up to ``size`` staged vectors drawn at random: about ``size / len(keys)`` from each shard, the
    shards visited in a random order (seeded), so a large corpus is sampled without reading all of it."""
    rng = np.random.default_rng(seed)
    quota = max(1, math.ceil(size / max(1, len(keys))))
    parts: list[np.ndarray] = []
    have = 0
    for i in rng.permutation(len(keys)):
        vectors = staging.vectors(keys[int(i)])
        take = min(quota, len(vectors), size - have)
        if take > 0:
            parts.append(vectors[np.sort(rng.choice(len(vectors), take, replace=False))])
            have += take
        if have >= size:
            break
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


class ParallelIVFAdds:
    """The vector index of a write while it is filled: adds go to ``parts`` copies of ``index``'s trained
    (empty) IVF part, each on its own worker, in turn; :meth:`merged` waits for them and merges."""

    def __init__(self, index: FaissIndex, parts: int) -> None:
        import faiss

        self.index, self.factory, self.dimension = index, index.factory, index.dimension
        self.search_params = index.search_params
        self._inner = faiss.downcast_index(index.index.index)
        self._copies = []
        for _ in range(max(1, parts)):
            copy = faiss.clone_index(self._inner)
            copy.reset()  # the trained quantizer, no rows
            self._copies.append(copy)
        self._pool = ThreadPoolExecutor(len(self._copies), thread_name_prefix="tase-search-ivf-add")
        self._pending: list[Future[Any] | None] = [None] * len(self._copies)
        self._ids: list[np.ndarray] = []
        self._rows = int(index.index.ntotal)
        self._turn = 0

    @property
    def ntotal(self) -> int:
        return self._rows

    @property
    def needs_training(self) -> bool:
        return False

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add to the next copy, under the row numbers the index will give them (its own ``IDMap2``
        numbering), after that copy's previous add."""
        if len(ids) == 0:
            return
        k = self._turn % len(self._copies)
        self._turn += 1
        rows = np.arange(self._rows, self._rows + len(ids), dtype=np.int64)
        self._rows += len(ids)
        self._ids.append(np.ascontiguousarray(ids, dtype=np.int64))
        previous = self._pending[k]
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        self._pending[k] = self._pool.submit(_add_after, previous, self._copies[k], vecs, rows)

    def merged(self) -> FaissIndex:
        """Wait for every add, merge the copies' inverted lists into the index and extend its id map."""
        import faiss

        try:
            for f in self._pending:
                if f is not None:
                    f.result()
        finally:
            self._pool.shutdown(wait=True)
        for copy in self._copies:
            if copy.ntotal:
                self._inner.merge_from(copy, 0)
        idmap = self.index.index
        if self._ids:
            ids = np.concatenate([faiss.vector_to_array(idmap.id_map).astype(np.int64), *self._ids])
            faiss.copy_array_to_vector(ids, idmap.id_map)
            idmap.ntotal = self._inner.ntotal
            idmap.construct_rev_map()
        self._ids, self._copies = [], []
        return self.index

    def remove(self, ids: np.ndarray) -> bool:
        raise NotImplementedError("rows are not removed while an IVF index is filled in parallel")


def _add_after(previous: Future[Any] | None, copy: Any, vectors: np.ndarray, rows: np.ndarray) -> None:
    import faiss

    if previous is not None:
        previous.result()
    faiss.omp_set_num_threads(1)  # one thread per copy: the copies are the parallelism
    copy.add_with_ids(vectors, rows)
