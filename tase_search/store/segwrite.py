"""A write to a segmented index: the documents it adds become one new segment, the ones it deletes from
older segments a new deletions file each; nothing else is read in full or copied.

The caller's ``mutate(store, slot, base)`` is the same as for :func:`.commit.commit`: ``store`` is the new
segment's document store (a :class:`SegmentStore`, which also sees the older segments: an id already
stored there is a duplicate, a delete of one becomes a deletion), ``slot`` the new segment's empty
vector index. Its cost is what it adds and deletes, plus opening each segment (a few SQLite pages).

The steps and :data:`~.lock.FAULT_POINTS` are those of every write: ``copied`` (older segments opened
and their deletions read through their checksums), ``ingested`` / ``sqlite`` (the new segment's
SQLite transaction), ``faiss`` (its vectors saved and read back), ``synced`` (deletions files written,
everything fsynced), ``renamed`` (the temporary directory renamed to ``seg-NNNNNN``), ``manifest-tmp``
and ``committed`` (the manifest replaced: the commit point). A format-1 index is first copied into a
segment in the same write (:func:`upgrade`), through the checks a format-1 write made.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..errors import IndexCorrupt
from . import generation as _gen
from . import layout
from . import lock as _lock
from . import segment as _seg
from . import stamps as _stamps
from .docs import DocStore
from .layout import DOCS_FILE
from .lock import fsync_dir
from .manifest import Manifest
from .segment import Deletes, Segment
from .vectors import get_backend
from .writing import Opened

T = TypeVar("T")


def open_segments(index_dir: Path, m: Manifest, *, checksum: bool = False) -> list[Opened]:
    """Open every segment of ``m`` read-only: files present, regular, of the listed sizes (``checksum``:
    and SHA-256), the weights fingerprint, deletions read through their checksums. IndexCorrupt
    (naming the first problem) when one is damaged."""
    out: list[Opened] = []
    try:
        for s in _seg.segments_of(m):
            path = _seg.segment_path(index_dir, s)
            view = s.view(m)
            _gen.check_files(path, view, checksum=checksum)
            store = DocStore(path / DOCS_FILE, readonly=True)
            try:
                sha = view.files.get(DOCS_FILE, {}).get("sha256")
                store.cache_key = (sha, *_stamps.identity(path / DOCS_FILE)) if sha else None
                problem = _gen.fingerprint_problem(store, view)
                if problem:
                    raise IndexCorrupt(f"{path}: {problem}; {_gen.DAMAGED}")
                keys, pids = (
                    _seg.read_deletes(path / s.deletes.name, _seg.deletes_digest(s))
                    if s.deletes
                    else (np.zeros(0, np.int64), np.zeros(0, np.int64))
                )
                if s.deletes and (len(keys), len(pids)) != (s.deletes.documents, s.deletes.rows):
                    raise IndexCorrupt(f"deletions file of {s.name}: its counts differ from the manifest")
            except BaseException:
                store.close()
                raise
            out.append(Opened(s, store, keys, pids))
    except BaseException:
        for o in out:
            o.close()
        raise
    return out


class SegmentStore(DocStore):
    """The new segment's document store, aware of the older segments: ids stored there count as taken,
    and deleting one records a deletion of its segment (:attr:`deleted`) instead of a row change."""

    # the file is new and unpublished: SQLite's own journal and syncs are not needed (a failed write is
    # rolled back in memory or removed; the file is fsynced and read back before it is published)
    journal_mode, synchronous = "MEMORY", "OFF"

    def __init__(self, path: Path, older: list[Opened], counters: dict[str, int]) -> None:
        super().__init__(path)
        self.older = older
        self.first_pid = int(counters.get("next_pid", 0))
        self.doc_key_next = int(counters.get("next_doc_key", 1))
        self._set_state("next_pid", self.first_pid)
        self._set_state("next_auto_id", int(counters.get("next_auto_id", 1)))
        #: segment name -> (document keys, passage ids) this write deleted from it
        self.deleted: dict[str, tuple[list[int], list[int]]] = {}
        self._refresh_others()

    def _refresh_others(self) -> None:
        self.conn.others = [
            (o.store, frozenset(o.gone_keys.tolist()) | frozenset(self.deleted.get(o.seg.name, ([], []))[0]))
            for o in self.older
        ]

    def _older_live(self, ids: Sequence[str]) -> dict[str, tuple[Opened, int]]:
        found: dict[str, tuple[Opened, int]] = {}
        for o, (_, gone) in zip(self.older, self.conn.others):
            for doc_id, key in o.store.live_keys(list(ids)).items():
                if key not in gone:
                    found[doc_id] = (o, key)
        return found

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        return super().existing_ids(ids) | set(self._older_live(ids))

    def delete(self, ids: Iterable[str]) -> tuple[list[str], list[int]]:
        ids = list(ids)
        here, pids = super().delete(ids)
        rest = [i for i in ids if i not in set(here)]
        older = self._older_live(rest) if rest else {}
        for o, key in older.values():
            keys, gone = self.deleted.setdefault(o.seg.name, ([], []))
            keys.append(key)
            found = o.store.conn.execute("SELECT pid FROM passages WHERE doc_key = ?", (key,)).fetchall()
            gone.extend(int(r[0]) for r in found)
            pids.extend(int(r[0]) for r in found)
        if older:
            self._refresh_others()
        kept = set(here) | set(older)
        return [i for i in dict.fromkeys(ids) if i in kept], pids

    def build_sparse(self) -> int:
        """Give the whole index a keyword part: this segment's now, the older segments' by a merge of
        every segment right after this write publishes (:attr:`sparse_older`; they are immutable)."""
        n = super().build_sparse()
        self.sparse_older = bool(self.older)
        self.sparse_built = n + sum(o.seg.live_rows for o in self.older)
        return self.sparse_built

    sparse_older = False

    def add_tombstones(self, pids: Sequence[int]) -> None:
        """Only this segment's own passages: older ones are deleted by their deletions file."""
        super().add_tombstones([p for p in pids if int(p) >= self.first_pid])


def write_segment(
    index_dir: Path,
    base: Manifest,
    old: Manifest | None,
    mutate: Callable[[DocStore, Any, Manifest], T],
    slot_factory: Callable[[str], Any],
    made: list[Path],
    made_sparse: list[bool],
) -> tuple[Manifest, T, list[Path]]:
    """Steps up to the commit point: the new segment built in a temporary directory and renamed, the
    deletions files written; returns the next manifest (not yet published), ``mutate``'s result and
    what to remove if the write is abandoned. ``made_sparse`` hears whether the older segments need a
    keyword part (or a current one): a merge of every segment gives it to them."""
    from .writing import VectorSlot

    gen = base.generation + 1
    counters = dict(base.counters)
    segments: list[Segment] = [] if old is None else _seg.segments_of(old)
    upgraded = old is not None and _seg.is_legacy(old)
    if upgraded:
        converted, counters = upgrade(index_dir, old, made)
        segments = [converted]
        old = _with_segments(old, segments, counters)
    number = int(counters.get("next_segment", 1))
    from .segcache import open_checked

    older = open_checked(index_dir, old) if old is not None else []
    _lock.fault_point("copied")
    tmp = layout.temporary_segment(index_dir, number)
    made.append(tmp)
    try:
        tmp.mkdir()
        store = SegmentStore(tmp / DOCS_FILE, older, counters)
        factory = _new_factory(base, old)
        slot = VectorSlot(slot_factory(factory), factory)
        try:
            store.begin()
            if any(o.store.sparse for o in older) and not store.sparse:
                store.build_sparse()  # an empty keyword part, filled as documents go in
                store.sparse_older = not all(o.store.sparse for o in older)
            if any(o.store.sparse and o.store.sparse_stale_reason(o.seg.rows) for o in older):
                store.build_sparse()  # an older version wrote around a keyword part: rebuilt by a merge
            result = mutate(store, slot, base)
            tomb = len(store.tombstones())
            store.record_sparse()
            docs, rows = store.counts()
            store.set_model_fingerprint(base.model.fingerprint)
            _lock.fault_point("ingested")
            next_pid, auto = store.next_pid(), store.next_auto_id()
            store.commit()
            sqlite_bytes = store.file_bytes()
        finally:
            store.rollback()
            store.close()
        deleted = store.deleted
        _lock.fault_point("sqlite")
        new_seg = None
        if docs or rows or tomb or old is None:  # a first build keeps its (empty) store: its keyword part
            vec_name = layout.vectors_file(get_backend(base.backend).suffix)
            files = {vec_name: slot.vectors.save(tmp / vec_name).as_manifest()}
            _lock.fault_point("faiss")
            from .writing import checked_sqlite as _checked_sqlite

            files[DOCS_FILE] = _checked_sqlite(tmp / DOCS_FILE, sqlite_bytes).as_manifest()
            new_seg = Segment(
                name=layout.segment_name(number),
                factory=slot.factory,
                search_params=getattr(slot.vectors, "search_params", ""),
                documents=docs,
                rows=rows,
                tombstones=tomb,
                files=files,
                ranges=[[store.first_pid, next_pid]] if next_pid > store.first_pid else [],
            )
        else:
            _lock.fault_point("faiss")
        segments = [_with_deletes(index_dir, o, deleted.get(o.seg.name), gen, made) for o in older]
    finally:
        for o in older:
            o.close()
    if new_seg is not None:
        fsync_dir(tmp)
    _lock.fault_point("synced")
    counters.update(next_pid=next_pid, next_auto_id=auto, next_doc_key=store.doc_key_next)
    if new_seg is not None:
        target = index_dir / new_seg.name
        _clear(target)
        os.rename(tmp, target)
        made.append(target)
        segments.append(new_seg)
        counters["next_segment"] = number + 1
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if new_seg is not None or upgraded:  # a new entry of the index directory (deletions files: synced)
        fsync_dir(index_dir)
    _lock.fault_point("renamed")
    made_sparse.append(store.sparse_older)
    return published(base, gen, segments, counters), result, made


def published(base: Manifest, gen: int, segments: list[Segment], counters: dict[str, int]) -> Manifest:
    """The format-2 manifest of ``segments``: totals over live documents and passages."""
    biggest = max(segments, key=lambda s: s.live_rows, default=None)
    factory = biggest.factory if base.index_type == "auto" and biggest is not None else base.factory
    return base.bumped(
        format_version=2,
        generation=gen,
        rows=sum(s.live_rows for s in segments),
        documents=sum(s.live_documents for s in segments),
        tombstones=sum(s.dead_vectors for s in segments),
        factory=factory,
        search_params=biggest.search_params if biggest is not None and factory == biggest.factory else "",
        files={},
        segments=[s.to_json() for s in segments],
        counters=counters,
    )


def _with_segments(m: Manifest, segments: list[Segment], counters: dict[str, int]) -> Manifest:
    from dataclasses import replace

    return replace(m, format_version=2, segments=[s.to_json() for s in segments], counters=counters, files={})


def _new_factory(base: Manifest, old: Manifest | None) -> str:
    """The index type of a new segment: a first build's own; added to an index, Flat under ``auto`` (the
    ingest moves it on as it grows), the fixed type unless that needs training (IVF: Flat until a merge
    makes the segment big enough)."""
    if old is None or base.index_type == "auto":
        return base.factory if old is None else "Flat"
    return "Flat" if "IVF" in base.factory else base.factory


def _with_deletes(
    index_dir: Path, o: Opened, new: tuple[list[int], list[int]] | None, gen: int, made: list[Path]
) -> Segment:
    """``o``'s entry, with a new deletions file (its old deletions and ``new``) when this write deleted."""
    if not new:
        return o.seg
    keys = np.union1d(o.gone_keys, np.asarray(new[0], np.int64))
    pids = np.union1d(o.gone_pids, np.asarray(new[1], np.int64))
    name = layout.deletes_name(gen)
    path = Path(index_dir) / o.seg.name / name
    _clear(path)
    made.append(path)
    digest = _seg.write_deletes(path, keys, pids)
    fsync_dir(path.parent)
    from dataclasses import replace

    return replace(o.seg, deletes=Deletes(name, len(keys), len(pids), digest.bytes, digest.sha256))


def _clear(path: Path) -> None:
    """Remove what a killed writer left at ``path`` (never published): a link itself, never its target."""
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.lexists(path):
        shutil.rmtree(path)


def upgrade(index_dir: Path, old: Manifest, made: list[Path]) -> tuple[Segment, dict[str, int]]:
    """Copy a format-1 generation into segment ``seg-000000``, through the format-1 write's checks (its
    files against the manifest, SQLite's check, the rows), with the payload index, keyword part and
    content hashes brought up to date; the counters the next segments continue from."""
    from . import content as _content
    from .writing import checked_sqlite as _checked_sqlite
    from .writing import fill as _fill

    tmp = layout.temporary_segment(index_dir, 0)
    made.append(tmp)
    _clear(tmp)
    tmp.mkdir()
    counters: dict[str, int] = {}

    def convert(store: DocStore, slot: Any, m: Manifest) -> None:
        _content.ensure_column(store.conn)
        top = store.conn.execute("SELECT COALESCE(MAX(doc_key), 0) FROM documents").fetchone()[0]
        counters.update(
            next_pid=store.next_pid(), next_auto_id=store.next_auto_id(), next_doc_key=int(top) + 1
        )

    with _no_faults():
        _, counts, slot = _fill(index_dir, old, old, tmp, convert)
        vec_name = _gen.vectors_file(old)
        files = {vec_name: slot.vectors.save(tmp / vec_name).as_manifest()}
        files[DOCS_FILE] = _checked_sqlite(tmp / DOCS_FILE, counts["bytes"]).as_manifest()
    fsync_dir(tmp)
    name = layout.segment_name(0)
    target = index_dir / name
    _clear(target)
    os.rename(tmp, target)
    made.append(target)
    counters["next_segment"] = 1
    seg = Segment(
        name=name,
        factory=slot.factory,
        search_params=getattr(slot.vectors, "search_params", ""),
        documents=counts["documents"],
        rows=counts["passages"],
        tombstones=counts["tombstones"],
        files=files,
        ranges=[[0, counters["next_pid"]]],
    )
    return seg, counters


class _no_faults:  # noqa: N801 - a context manager named for what it does
    """The upgrade's copy reuses the format-1 steps, whose fault points name this write's own steps: they
    are silenced there, so each point is reached once per write."""

    def __enter__(self) -> None:
        self.saved = os.environ.pop("TASE_SEARCH_FAULT", None)

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            os.environ["TASE_SEARCH_FAULT"] = self.saved


def cleanup(index_dir: Path, keep: Iterable[Manifest | None]) -> None:
    """Remove segments, deletions files and format-1 generations no kept manifest names (readers of the
    previous manifest may still be opening its files, so it is kept too)."""
    wanted: dict[str, set[str]] = {}
    for m in keep:
        for name, files in _seg.referenced(m).items():
            wanted.setdefault(name, set()).update(files)
    for d in [*layout.segment_dirs(index_dir), *layout.generation_dirs(index_dir)]:
        if d.name not in wanted:
            shutil.rmtree(d, ignore_errors=True)
            continue
        for f in d.glob(layout.DELETES_PREFIX + "*"):
            if f.name not in wanted[d.name]:
                f.unlink(missing_ok=True)
