"""Staged shard results: what a shard's documents, passages and vectors are, kept until the commit.

Why: a cluster build of millions of documents runs for hours; a killed job (preempted nodes, Ctrl-C)
should lose only the shards in flight. Each finished shard is written to one file named by its key
(:meth:`~tase_search.distributed.shards.Shard.key`), atomically and read back, in a staging directory
beside the index (``.<name>.shards/``, hidden from ``tase-search list``). A re-run finds the shards
already staged and encodes only the rest; the index itself is changed only by the one commit at the end,
after which the staging directory is removed. A staged file that does not load is encoded again.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..store.lock import atomic_write_bytes

SUFFIX = ".npz"


@dataclass
class StagedShard:
    """One shard's result: documents ``(id, text, metadata, source, line)``, per document its passages
    ``(start, end, index, count)``, one vector per passage (in that order), the model that made them
    and what reading skipped."""

    docs: list[tuple[str | None, str, dict[str, Any], str, int]]
    passages: list[list[tuple[int, int, int, int]]]
    vectors: np.ndarray
    model: dict[str, Any]
    skipped_empty: int = 0
    replaced_encoding: int = 0

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        spans = np.asarray([p for ps in self.passages for p in ps], dtype=np.int64).reshape(-1, 4)
        meta = {
            "model": self.model,
            "skipped_empty": self.skipped_empty,
            "replaced_encoding": self.replaced_encoding,
        }
        np.savez(
            buf,
            vectors=np.ascontiguousarray(self.vectors, dtype=np.float32),
            spans=spans,
            counts=np.asarray([len(ps) for ps in self.passages], dtype=np.int64),
            docs=_json_array(self.docs),
            meta=_json_array(meta),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, raw: bytes) -> StagedShard:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            vectors, spans, counts = data["vectors"], data["spans"], data["counts"]
            docs = json.loads(data["docs"].tobytes().decode("utf-8"))
            meta = json.loads(data["meta"].tobytes().decode("utf-8"))
        if len(counts) != len(docs) or int(counts.sum()) != len(spans) or len(spans) != len(vectors):
            raise ValueError("inconsistent staged shard")
        passages, at = [], 0
        for n in counts.tolist():
            passages.append([tuple(int(x) for x in row) for row in spans[at : at + n]])
            at += n
        return cls(
            [tuple(d) for d in docs],  # type: ignore[misc]
            passages,  # type: ignore[arg-type]
            vectors,
            meta["model"],
            int(meta["skipped_empty"]),
            int(meta["replaced_encoding"]),
        )


def _json_array(value: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(value, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)


def staging_dir(index_dir: Path, job: str) -> Path:
    """Where shards of ``job`` (a key of the model and passage settings) for ``index_dir`` are staged."""
    index_dir = Path(index_dir).absolute()
    return index_dir.parent / f".{index_dir.name}.shards" / job


class Staging:
    """The staged shards of one job: write, find and read them, and remove them after the commit."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}{SUFFIX}"

    def write(self, key: str, shard: StagedShard) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path(key), shard.to_bytes())

    def read(self, key: str) -> StagedShard | None:
        """The staged shard, or None when it is missing or does not load (it is then encoded again)."""
        try:
            return StagedShard.from_bytes(self.path(key).read_bytes())
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None

    def record(self, key: str) -> dict[str, Any] | None:
        """A staged shard's small record (model, read statistics, ``documents``), without its vectors."""
        try:
            with np.load(self.path(key), allow_pickle=False) as data:
                meta = json.loads(data["meta"].tobytes().decode("utf-8"))
                meta["documents"] = len(data["counts"])
                return meta
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None

    def vectors(self, key: str) -> np.ndarray:
        """A staged shard's vectors alone (an IVF training sample reads only these)."""
        with np.load(self.path(key), allow_pickle=False) as data:
            return data["vectors"]

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def remove(self) -> None:
        """Remove the job's directory, and the staging root when no other job is left in it."""
        shutil.rmtree(self.root, ignore_errors=True)
        try:
            self.root.parent.rmdir()
        except OSError:
            pass
