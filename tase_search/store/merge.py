"""Merging segments: the tiered policy that keeps their number small, and the merge itself.

Why: every write adds a segment, and a search visits each, so small segments are combined as they
pile up, as Lucene's TieredMergePolicy does. A segment's *tier* is ``floor(log_F(live rows / FLOOR))``
(:data:`MERGE_FACTOR` ``F`` = 10, :data:`FLOOR` = 10 passages): segments of one tier are within a
factor ``F`` of each other in size. When a tier holds ``F`` segments, they are merged into one of
(about) the next tier, so each passage is copied about ``log_F(N / FLOOR)`` times over an index's life,
and a writer's cost stays proportional to what it writes (amortised). Merges of up to
:data:`INLINE_MERGE_ROWS` passages run right after a write, under its lock; bigger ones wait for
:func:`optimize`, which merges every segment into one (deleted rows dropped).

A merge is a write like any other (:mod:`.commit`'s steps and fault points): the merged segment is built
in a temporary directory from the sources' live rows (documents, passages, keyword rows, payload rows
and vectors; deleted ones left out), read back, renamed, and published by replacing the manifest, where
it takes the place of its sources. A kill before the commit point leaves the old segments, after it
the merged one. Sources are read through their checksums and SQLite's check: damage is refused, not
merged into a segment that then verifies as good.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexCorrupt, IndexWriteError
from . import generation as _gen
from . import layout
from . import lock as _lock
from . import segcache as _segcache
from . import segment as _seg
from . import segwrite as _sw
from . import writing as _writing
from .docs import DocStore
from .layout import DOCS_FILE
from .lock import WriterLock, fsync_dir
from .manifest import Manifest, read_existing, write_manifest
from .segment import Segment
from .vectors import FLAT_MAX, MOVE_BATCH, choose_factory, get_backend

log = logging.getLogger(__name__)

MERGE_FACTOR = 10
FLOOR = 10
#: The largest merge (live passages) run right after a write; bigger ones wait for :func:`optimize`.
INLINE_MERGE_ROWS = 200_000


def tier(rows: int) -> int:
    return int(math.floor(math.log(max(rows, FLOOR) / FLOOR, MERGE_FACTOR) + 1e-9))


def pick(segments: list[Segment], *, limit: int | None = INLINE_MERGE_ROWS) -> list[int] | None:
    """Positions of the segments to merge next (the lowest tier holding :data:`MERGE_FACTOR` of them,
    its smallest ones), or None. A segment that is mostly deletions counts one tier lower, so it is
    merged (and its deleted rows dropped) sooner. ``limit``: merges of more live rows are left out."""
    by_tier: dict[int, list[int]] = {}
    for i, s in enumerate(segments):
        t = tier(s.live_rows) - (1 if s.rows and s.live_rows * 2 < s.rows else 0)
        by_tier.setdefault(max(t, 0), []).append(i)
    for t in sorted(by_tier):
        members = sorted(by_tier[t], key=lambda i: segments[i].live_rows)
        if len(members) >= MERGE_FACTOR:
            chosen = sorted(members[:MERGE_FACTOR])
            if limit is None or sum(segments[i].live_rows for i in chosen) <= limit:
                return chosen
    return None


def after_write(
    index_dir: Path, m: Manifest, on_commit: Callable[[Manifest], None] | None, *, sparse: bool = False
) -> None:
    """Run the merges the policy calls for and :data:`INLINE_MERGE_ROWS` allows (the caller holds the
    writer lock). A merge that fails (a full disk) leaves the write in place and is tried again by the
    next write; it is logged, not raised: the write itself succeeded. ``sparse``: the write gave the
    index a keyword part (or rebuilt a stale one), so every segment is merged into one that has it; that
    merge's errors are raised, since the caller asked for it."""
    if sparse and not _seg.is_legacy(m):
        m = merge_segments(index_dir, m, list(range(len(m.segments))), sparse=True)
        if on_commit is not None:
            on_commit(m)
    for _ in range(8):
        chosen = pick(_seg.segments_of(m)) if not _seg.is_legacy(m) else None
        if chosen is None:
            return
        try:
            m = merge_segments(index_dir, m, chosen)
        except (OSError, IndexWriteError, IndexCorrupt) as exc:
            log.warning("merging segments of %s was left for later: %s", index_dir, exc)
            return
        if on_commit is not None:
            on_commit(m)


def optimize(index_dir: Path) -> dict[str, int]:
    """Merge every segment of the index into one, dropping deleted rows (``tase-search optimize``).

    Returns ``{"segments_before", "segments_after", "generation"}``; nothing is written when the index is
    already one segment without deletions."""
    index_dir = Path(index_dir)
    with WriterLock(index_dir):
        _writing.remove_stale_temporaries(index_dir)
        m = read_existing(index_dir)
        segs = _seg.segments_of(m)
        before = len(segs)
        if _seg.is_legacy(m) or len(segs) > 1 or any(s.deletes or s.tombstones for s in segs):
            m = merge_segments(index_dir, m, list(range(len(segs))))
        return {"segments_before": before, "segments_after": len(m.segments), "generation": m.generation}


def merge_segments(index_dir: Path, m: Manifest, chosen: list[int], *, sparse: bool = False) -> Manifest:
    """Merge the segments at ``chosen`` positions of ``m`` into one and publish it (the caller holds the
    writer lock); the new manifest. A format-1 index is upgraded by the same write."""
    index_dir = Path(index_dir)
    gen = m.generation + 1
    made: list[Path] = []
    published = False
    try:
        if _seg.is_legacy(m):
            seg0, counters = _sw.upgrade(index_dir, m, made)
            m = replace(m, format_version=2, segments=[seg0.to_json()], counters=counters, files={})
            chosen = [0]
        segs = _seg.segments_of(m)
        counters = dict(m.counters)
        number = int(counters.get("next_segment", 1))
        sources = _segcache.open_checked(index_dir, m)
        try:
            picked = [sources[i] for i in chosen]
            for o in picked:
                refuse = _gen.store_problems(o.store, o.seg.view(m), integrity="quick_check")
                _writing.refuse_damage(index_dir, refuse)
            _lock.fault_point("copied")
            tmp = layout.temporary_segment(index_dir, number)
            made.append(tmp)
            _sw._clear(tmp)
            tmp.mkdir()
            merged = _build(index_dir, m, picked, tmp, number, sparse)
        finally:
            for o in sources:
                o.close()
        fsync_dir(tmp)
        _lock.fault_point("synced")
        target = index_dir / merged.name
        _sw._clear(target)
        os.rename(tmp, target)
        made.append(target)
        fsync_dir(index_dir)
        _lock.fault_point("renamed")
        first = min(chosen)
        kept = [s for i, s in enumerate(segs) if i not in set(chosen)]
        at = sum(1 for i in range(first) if i not in set(chosen))
        out = kept[:at] + ([merged] if merged.rows or merged.tombstones else []) + kept[at:]
        counters["next_segment"] = number + 1
        new = _sw.published(m, gen, out, counters)
        published = True
        write_manifest(index_dir, new)  # the commit point
    except BaseException as exc:
        from .manifest import read_generation

        if published and read_generation(index_dir) == gen:
            raise
        left = _writing.remove_unpublished(made)
        why = _writing.write_failure(exc)
        if why is not None:
            raise IndexWriteError(
                f"could not merge the segments of {index_dir}: {why} (generation {m.generation} is still the "
                f"current one){left}"
            ) from exc
        raise
    _segcache.stamp_new(index_dir, new, [merged.name])
    _lock.fault_point("committed")
    _sw.cleanup(index_dir, [new, m])
    _lock.fault_point("cleaned")
    return new


def _build(
    index_dir: Path, m: Manifest, picked: list[_writing.Opened], tmp: Path, number: int, rebuild: bool = False
) -> Segment:
    """The merged segment's files in ``tmp``: SQLite rows copied table by table (attached one source at a
    time), vectors read from each source (through its checksum) and added; its manifest entry."""
    from . import content as _content
    from . import payload as _payload
    from . import sparse as _sparse

    store = DocStore(tmp / DOCS_FILE)
    rows_total = sum(o.seg.live_rows for o in picked)
    factory = _merged_factory(m, rows_total)
    vectors = get_backend(m.backend).create(factory, m.model.dimension, "")
    if vectors.needs_training:
        _train(index_dir, m, picked, vectors)
    try:
        conn = store.conn
        _content.ensure_column(conn)
        sparse = all(o.store.sparse for o in picked) and not rebuild  # else rebuilt from the text
        if sparse:
            store.build_sparse()
        _payload.create(conn)
        conn.execute("BEGIN IMMEDIATE")
        cols = ", ".join(f'"{r[1]}"' for r in conn.execute("PRAGMA table_info(documents)"))
        pcols = ", ".join(f'"{r[1]}"' for r in conn.execute("PRAGMA table_info(passages)"))
        next_pid = 0
        for o in picked:
            conn.execute("ATTACH DATABASE ? AS src", (f"file:{o.store.path}?mode=ro",))
            try:
                conn.execute("CREATE TEMP TABLE gone_keys (k INTEGER PRIMARY KEY)")
                conn.execute("CREATE TEMP TABLE gone_pids (p INTEGER PRIMARY KEY)")
                conn.executemany("INSERT INTO gone_keys VALUES (?)", [(int(k),) for k in o.gone_keys])
                conn.executemany("INSERT INTO gone_pids VALUES (?)", [(int(p),) for p in o.gone_pids])
                live = "NOT IN (SELECT k FROM temp.gone_keys)"
                conn.execute(
                    f"INSERT INTO main.documents({cols}) SELECT {cols} FROM src.documents WHERE doc_key {live}"
                )
                conn.execute(
                    f"INSERT INTO main.passages({pcols}) SELECT {pcols} FROM src.passages WHERE doc_key {live}"
                )
                conn.execute(f"INSERT INTO main.meta SELECT * FROM src.meta WHERE doc_key {live}")
                if sparse:
                    conn.execute(
                        f"INSERT INTO main.{_sparse.TABLE}(rowid, terms) SELECT rowid, terms FROM src.{_sparse.TABLE} "
                        "WHERE rowid NOT IN (SELECT p FROM temp.gone_pids)"
                    )
                row = conn.execute("SELECT value FROM src.state WHERE key = 'next_pid'").fetchone()
                next_pid = max(next_pid, int(row[0]) if row else 0)
            finally:
                conn.execute("DROP TABLE IF EXISTS temp.gone_keys")
                conn.execute("DROP TABLE IF EXISTS temp.gone_pids")
            conn.execute("COMMIT")
            conn.execute("DETACH DATABASE src")
            conn.execute("BEGIN IMMEDIATE")
            _add_vectors(index_dir, m, o, vectors)
        store._set_state("next_pid", next_pid)
        store.set_model_fingerprint(m.model.fingerprint)
        if rebuild:
            store.build_sparse()
        docs, rows = store.counts()
        _payload.record(conn, next_pid, docs)
        store.record_sparse()
        _lock.fault_point("ingested")
        conn.execute("COMMIT")
        sqlite_bytes = store.file_bytes()
    finally:
        store.rollback()
        store.close()
    _lock.fault_point("sqlite")
    if vectors.ntotal != rows:
        raise IndexCorrupt(f"merging segments: {vectors.ntotal} vectors for {rows} passages")
    vec_name = layout.vectors_file(get_backend(m.backend).suffix)
    files = {vec_name: vectors.save(tmp / vec_name).as_manifest()}
    _lock.fault_point("faiss")
    files[DOCS_FILE] = _writing.checked_sqlite(tmp / DOCS_FILE, sqlite_bytes).as_manifest()
    return Segment(
        name=layout.segment_name(number),
        factory=factory,
        search_params=getattr(vectors, "search_params", ""),
        documents=docs,
        rows=rows,
        tombstones=0,
        files=files,
        ranges=_seg.merge_ranges([list(r) for o in picked for r in o.seg.ranges]),
    )


def _source_vectors(index_dir: Path, m: Manifest, o: _writing.Opened) -> tuple[Any, np.ndarray]:
    """A source segment's vectors, read through their checksum, and the ids no merge may carry (its
    deleted passages and tombstones)."""
    view = o.seg.view(m)
    path = _seg.segment_path(index_dir, o.seg) / _gen.vectors_file(view)
    src = get_backend(m.backend).load(
        path,
        view.factory,
        m.model.dimension,
        view.search_params,
        expect=_gen.expected(view, _gen.vectors_file(view)),
    )
    problem = _gen.vector_count_problem(src.ntotal, view)
    if problem:
        raise IndexCorrupt(f"{o.seg.name}: {problem}; {_gen.DAMAGED}")
    return src, np.union1d(o.gone_pids, np.asarray(o.store.tombstones(), np.int64))


def _train(index_dir: Path, m: Manifest, picked: list[_writing.Opened], into: Any) -> None:
    """Train a merged IVF segment on a sample drawn from every source, each in proportion to its live
    rows (so the lists fit the whole merged segment, not its first source)."""
    from .retype import training_sample
    from .vectors import TRAIN_SAMPLE

    total = max(1, sum(o.seg.live_rows for o in picked))
    parts = []
    for o in picked:
        src, drop = _source_vectors(index_dir, m, o)
        share = max(1, math.ceil(TRAIN_SAMPLE * o.seg.live_rows / total))
        parts.append(training_sample(src, drop, share, MOVE_BATCH))
        del src
    into.train(np.concatenate(parts))


def _add_vectors(index_dir: Path, m: Manifest, o: _writing.Opened, into: Any) -> None:
    """Add a source segment's live vectors to the merged index, in id order."""
    src, drop = _source_vectors(index_dir, m, o)
    for ids, vecs in src.iter_rows(MOVE_BATCH):
        if len(drop):
            keep = ~np.isin(ids, drop)
            ids, vecs = ids[keep], vecs[keep]
        order = np.argsort(ids, kind="stable")
        into.add(vecs[order], ids[order])


def _merged_factory(m: Manifest, rows: int) -> str:
    """The merged segment's index type: what the corpus size calls for under ``auto``; the fixed type
    otherwise (Flat for an IVF type below the size its lists need to be trained)."""
    if m.backend != "faiss":
        return m.factory
    if m.index_type == "auto":
        return choose_factory(rows)
    if "IVF" in m.factory and rows < FLAT_MAX:
        return "Flat"
    return m.factory
