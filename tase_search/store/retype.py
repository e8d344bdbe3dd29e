"""The index-type policy: which vector index type an ``auto`` index should be, and moving to it.

Why a policy at all: exact Flat search is best for small corpora, HNSW for large ones and IVF with 8-bit
codes beyond (:func:`~.vectors.choose_factory`). An ``auto`` index changes type as it grows, without
re-embedding: rows are read back from the old index and added to the new one. The same move compacts
away tombstones (deleted rows an index type cannot remove) once they exceed a fifth of the rows. An
index built with an explicit factory (``custom``) keeps its type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from . import vectors as _vec
from .docs import DocStore
from .faiss_errors import faiss_message
from .manifest import Manifest
from .vectors import choose_factory, get_backend
from .writing import VectorSlot


def maybe_retype(m: Manifest, slot: VectorSlot, store: DocStore) -> None:
    """Under ``auto``, move to the index type the corpus size calls for (without re-embedding).

    Also compacts away tombstones once they exceed a fifth of the rows. A build or a large add
    has usually changed type already, while it ingested (:func:`grow_if_due`).
    """
    n = slot.vectors.ntotal
    tomb = store.tombstones()
    wanted = (
        choose_factory(n - len(tomb)) if m.index_type == "auto" and m.backend == "faiss" else slot.factory
    )
    grow = size_class(wanted) > size_class(slot.factory)
    compact = len(tomb) > 0 and len(tomb) * 5 > n
    if not grow and not compact:
        return
    retype(m, slot, store, wanted if grow else slot.factory, tomb)


def grow_if_due(m: Manifest, slot: VectorSlot, store: DocStore) -> None:
    """During an ingest into an ``auto`` index: change type as soon as the size calls for it, so a
    large build fills its final type (HNSW) instead of a Flat copy of everything re-typed at the end."""
    live = slot.vectors.ntotal - store.tombstone_count()
    if growth_due(m, slot, live):
        retype(m, slot, store, choose_factory(live), store.tombstones())


def growth_due(m: Manifest, slot: VectorSlot, live_rows: int) -> bool:
    """Whether an ``auto`` index of ``live_rows`` rows calls for a bigger type than ``slot``'s."""
    if m.index_type != "auto" or m.backend != "faiss":
        return False
    return size_class(choose_factory(live_rows)) > size_class(slot.factory)


def retype(m: Manifest, slot: VectorSlot, store: DocStore, factory: str, tomb: Sequence[int]) -> None:
    """Replace ``slot``'s index by a ``factory`` one holding the same rows minus tombstones.

    Rows move in slices of ``MOVE_BATCH`` (reconstructed from the old index, added to the new one),
    so the peak is the two indexes, never a third full copy of the vectors; a type that needs
    training is trained first on a random sample of ``TRAIN_SAMPLE`` rows.
    """
    old = slot.vectors
    drop = np.asarray(tomb, dtype=np.int64)
    batch = _vec.MOVE_BATCH
    new = get_backend(m.backend).create(factory, m.model.dimension, "")
    if new.needs_training:
        new.train(training_sample(old, drop, _vec.TRAIN_SAMPLE, batch))
    for ids, vecs in old.iter_rows(batch):
        if len(drop):
            keep = ~np.isin(ids, drop)
            ids, vecs = ids[keep], vecs[keep]
        new.add(vecs, ids)
    if len(drop):
        store.clear_tombstones()
    slot.vectors, slot.factory = new, factory
    del old


def train_and_add(slot: VectorSlot, held: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """Train ``slot``'s index once on the held-back vectors, then add them. Empties ``held`` as it
    copies, so the vectors are in memory once (plus one chunk)."""
    n = sum(len(i) for _, i in held)
    allv = np.empty((n, held[0][0].shape[1]), dtype=np.float32)
    alli = np.empty(n, dtype=np.int64)
    pos = 0
    while held:
        e, i = held.pop(0)
        allv[pos : pos + len(i)], alli[pos : pos + len(i)] = e, i
        pos += len(i)
        del e, i
    try:
        slot.vectors.train(allv)
    except RuntimeError as exc:
        raise InputError(
            f"index type {slot.factory!r} could not be trained on {n} vectors ({faiss_message(exc)}); "
            "use a smaller IVF list count or the automatic index type"
        ) from exc
    slot.vectors.add(allv, alli)


def training_sample(vectors: Any, drop: np.ndarray, size: int, batch: int) -> np.ndarray:
    """Up to ``size`` rows of ``vectors`` drawn at random (seed 0), leaving out ids in ``drop``, read in
    one pass of ``batch``-row slices."""
    n = vectors.ntotal
    take = np.sort(np.random.default_rng(0).permutation(n)[:size]) if n > size else None
    parts = []
    for start, (ids, vecs) in zip(range(0, n, batch), vectors.iter_rows(batch)):
        if take is not None:
            lo, hi = np.searchsorted(take, [start, start + len(ids)])
            ids, vecs = ids[take[lo:hi] - start], vecs[take[lo:hi] - start]
        if len(drop):
            keep = ~np.isin(ids, drop)
            vecs = vecs[keep]
        parts.append(vecs)
    return np.concatenate(parts) if parts else np.zeros((0, getattr(vectors, "dimension", 0)), np.float32)


def size_class(factory: str) -> int:
    if factory.startswith("IVF") or ",IVF" in factory:
        return 2
    if "HNSW" in factory:
        return 1
    return 0
