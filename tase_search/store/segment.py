"""A segment: one immutable slice of an index (documents, passages, keyword and payload rows, vectors),
and the deletions written beside it later.

Why segments: a write that copies the whole index costs what the index holds, not what it changes.
Like Lucene's segments and LanceDB's fragments, an index of format 2 is a list of immutable segments
named by ``manifest.json``; a write adds a segment (the documents it adds) and, for documents it
deletes from older segments, a new deletions file per touched segment (``del-GGGGGG.npz``: every
deleted document key and passage id of that segment so far, as of generation ``GGGGGG``). The manifest
replace is still the one commit point; files it does not name are invisible and are removed by a
later writer once no manifest it kept names them.

Ids are global: passage ids (= vector ids) and document keys are handed out by counters in the
manifest and never reused, so a hit's passage id names its segment (by the ``ranges`` of passage ids
each segment holds) and a document key is unique across segments.

A format-1 index (one ``gen-NNNNNN`` directory) reads as one segment of that directory; the first
write copies it into a segment (checked as a format-1 write checked what it carried).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import IndexCorrupt
from . import layout
from .safeio import Digest, write_file
from .vectors import CHUNK, read_hashed

if TYPE_CHECKING:
    from .manifest import Manifest

_MAX = (1 << 53) + 1
#: A deletions file lists at most this many ids (8 bytes each): far above any segment's size.
MAX_DELETES_BYTES = 1 << 31


@dataclass(frozen=True)
class Deletes:
    """A segment's deletions file: its name in the segment directory, what it removes, its digest."""

    name: str
    documents: int
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Segment:
    """One segment as the manifest lists it. ``documents``/``rows``/``tombstones`` are what its own
    files hold (its SQLite counts; vectors = rows + tombstones); ``deletes`` what later writes removed."""

    name: str
    factory: str
    search_params: str = ""
    documents: int = 0
    rows: int = 0
    tombstones: int = 0  # vectors of passages deleted inside the segment's own write (index cannot remove)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    ranges: list[list[int]] = field(default_factory=list)  # [lo, hi) passage-id ranges it holds
    deletes: Deletes | None = None

    @property
    def live_documents(self) -> int:
        return self.documents - (self.deletes.documents if self.deletes else 0)

    @property
    def live_rows(self) -> int:
        return self.rows - (self.deletes.rows if self.deletes else 0)

    @property
    def dead_vectors(self) -> int:
        """Vectors still stored that no search may return (tombstones and deleted passages)."""
        return self.tombstones + (self.deletes.rows if self.deletes else 0)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def view(self, m: Manifest) -> Manifest:
        """The manifest as if this segment were the whole index: what the format-1 checks
        (:mod:`.generation`) compare a generation's files and counts with."""
        return replace(
            m,
            rows=self.rows,
            documents=self.documents,
            tombstones=self.tombstones,
            factory=self.factory,
            search_params=self.search_params,
            files=self.files,
        )


def from_json(raw: dict[str, Any]) -> Segment:
    d = raw.get("deletes")
    return Segment(**{**raw, "deletes": Deletes(**d) if d else None})


def segments_of(m: Manifest) -> list[Segment]:
    """The segments ``m`` lists; a format-1 manifest's generation as one segment."""
    if m.format_version >= 2:
        return [from_json(s) for s in m.segments]
    return [
        Segment(
            name=m.generation_dir,
            factory=m.factory,
            search_params=m.search_params,
            documents=m.documents,
            rows=m.rows,
            tombstones=m.tombstones,
            files=m.files,
            ranges=[[0, _MAX]],
        )
    ]


def is_legacy(m: Manifest) -> bool:
    return m.format_version < 2


def referenced(m: Manifest | None) -> dict[str, set[str]]:
    """Segment directory -> the file names ``m`` needs in it (what a cleanup must keep)."""
    if m is None:
        return {}
    out: dict[str, set[str]] = {}
    for s in segments_of(m):
        names = set(s.files)
        if s.deletes:
            names.add(s.deletes.name)
        out.setdefault(s.name, set()).update(names)
    return out


def owner(segments: list[Segment]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted passage-id ranges ``(lo, hi, segment position)``, to route passage ids to segments."""
    rows = sorted((lo, hi, i) for i, s in enumerate(segments) for lo, hi in s.ranges)
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    a = np.asarray(rows, dtype=np.int64)
    return a[:, 0], a[:, 1], a[:, 2]


def route(table: tuple[np.ndarray, np.ndarray, np.ndarray], pids: Any) -> np.ndarray:
    """The segment position of each passage id (-1 where no segment holds it)."""
    lo, hi, pos = table
    p = np.asarray(pids, dtype=np.int64)
    if not len(lo) or not len(p):
        return np.full(len(p), -1, np.int64)
    at = np.searchsorted(lo, p, side="right") - 1
    ok = (at >= 0) & (p < hi[np.maximum(at, 0)])
    return np.where(ok, pos[np.maximum(at, 0)], -1)


def merge_ranges(ranges: list[list[int]]) -> list[list[int]]:
    """Sorted, with touching or overlapping ranges joined."""
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return out


# ------------------------------------------------------------------ deletions files
def write_deletes(path: Path, doc_keys: np.ndarray, pids: np.ndarray) -> Digest:
    """Write a deletions file (``.npz`` of two sorted int64 arrays, no pickles) through the checked
    writer: synced and read back like every index file."""
    buf = io.BytesIO()
    np.savez(buf, doc_keys=np.unique(doc_keys).astype(np.int64), pids=np.unique(pids).astype(np.int64))
    return write_file(path, lambda w: w.write(buf.getbuffer()))


def read_deletes(path: Path, expect: Digest | None) -> tuple[np.ndarray, np.ndarray]:
    """The ``(doc_keys, pids)`` of a deletions file, checked against ``expect`` (size and SHA-256) when
    given; IndexCorrupt for a file that is not one."""

    def read_capped(reader: Any) -> bytes:
        parts: list[bytes] = []
        while (chunk := reader.read(CHUNK)) and reader.bytes <= MAX_DELETES_BYTES:
            parts.append(chunk)
        return b"".join(parts)

    raw, _ = read_hashed(path, f"deletions file {path}", read_capped, expect)
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            keys, pids = data["doc_keys"], data["pids"]
    except (OSError, ValueError, KeyError, EOFError, MemoryError) as exc:
        raise IndexCorrupt(f"deletions file {path} could not be read ({exc}); the index is damaged") from exc
    if keys.ndim != 1 or pids.ndim != 1 or keys.dtype != np.int64 or pids.dtype != np.int64:
        raise IndexCorrupt(f"deletions file {path} holds arrays of the wrong shape; the index is damaged")
    return keys, pids


def deletes_digest(s: Segment) -> Digest | None:
    return Digest(s.deletes.bytes, s.deletes.sha256) if s.deletes else None


def segment_path(index_dir: Path, s: Segment) -> Path:
    """The directory of ``s``: FileNotFoundError when missing, IndexCorrupt when a link or not a dir."""
    import os
    import stat

    path = Path(index_dir) / s.name
    mode = os.lstat(path).st_mode
    if not stat.S_ISDIR(mode):
        kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a directory"
        raise IndexCorrupt(f"segment {path} is {kind}; the index is damaged (run `tase-search verify`)")
    return path


__all__ = [
    "Deletes",
    "Segment",
    "layout",
    "merge_ranges",
    "owner",
    "read_deletes",
    "referenced",
    "route",
    "segment_path",
    "segments_of",
    "write_deletes",
]
