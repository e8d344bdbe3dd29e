"""The index-directory layout: every file and directory name an index holds, and nothing else.

Why one module: the writer, the loader, ``verify``, the CLI and ``list`` all need to know what an
index directory looks like, and a name spelled in two places drifts. An index is::

    <index>/
      manifest.json            the commit point: names the current generation and its checksums
      .lock                    the writer lock (flock; holds the writer's PID)
      .verified.json           stamps of files a writer read back (a cache: see stamps.py)
      seg-NNNNNN/              one immutable segment (format 2): the manifest lists the current ones
        docs.sqlite            its documents, passages, keyword (FTS5) part, payload index
        vectors.faiss          its vector index (vectors.npz for the numpy backend)
        del-GGGGGG.npz         the segment's deletions as of generation GGGGGG (written beside it later)
      gen-NNNNNN/              format 1: the one generation (docs.sqlite, vectors.faiss) an index
                               written by an older tase-search holds; read as one segment
      .tmp-seg-NNNNNN-PID/     a segment being written (removed by the next writer if left)
      .tmp-gen-NNNNNN-PID/     a format-1 generation being written by an older version
      .manifest.json.tmp-PID   the next manifest before its atomic rename
      .verified.json.tmp-PID   the next stamp file before its rename
      query-bundle/            the torch-free query path for the index's model (encoding/query_bundle.py)

This module only names things and lists them; it opens no file and imports nothing heavy.
"""

from __future__ import annotations

import os
from pathlib import Path

MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".lock"
STAMP_NAME = ".verified.json"
DOCS_FILE = "docs.sqlite"
VECTORS_STEM = "vectors"
#: Every file name a generation directory may hold: plain names, never paths.
INDEX_FILES = (DOCS_FILE, VECTORS_STEM + ".faiss", VECTORS_STEM + ".npz")
GEN_PREFIX = "gen-"
SEG_PREFIX = "seg-"
TMP_SEG_PREFIX = ".tmp-seg-"
DELETES_PREFIX = "del-"
#: Derived from the model, outside the generations: written by writes, only read by queries.
QUERY_BUNDLE_DIR = "query-bundle"
TMP_PREFIX = ".tmp-gen-"
#: What a killed writer may leave besides a temporary generation: a manifest or stamp file not yet renamed.
MANIFEST_TMP_PREFIX = f".{MANIFEST_NAME}.tmp-"
STAMP_TMP_PREFIX = f"{STAMP_NAME}.tmp-"
#: Names (prefixes) an index directory may hold; anything else means the directory is not an index.
OWN_PREFIXES = (
    MANIFEST_NAME,
    LOCK_NAME,
    GEN_PREFIX,
    SEG_PREFIX,
    TMP_PREFIX,
    TMP_SEG_PREFIX,
    MANIFEST_TMP_PREFIX,
    STAMP_NAME,
    QUERY_BUNDLE_DIR,
)


def generation_name(generation: int) -> str:
    """``gen-NNNNNN``: the directory of one generation."""
    return f"{GEN_PREFIX}{generation:06d}"


def segment_name(number: int) -> str:
    """``seg-NNNNNN``: the directory of one segment."""
    return f"{SEG_PREFIX}{number:06d}"


def deletes_name(generation: int) -> str:
    """``del-GGGGGG.npz``: a segment's deletions file, as written by generation ``generation``."""
    return f"{DELETES_PREFIX}{generation:06d}.npz"


def temporary_segment(index_dir: Path, number: int) -> Path:
    """Where this process builds segment ``number`` before publishing it."""
    return Path(index_dir) / f"{TMP_SEG_PREFIX}{number:06d}-{os.getpid()}"


def segment_dirs(index_dir: Path) -> list[Path]:
    """The segment directories present (published, superseded, or left by a killed writer)."""
    return sorted(p for p in Path(index_dir).glob(SEG_PREFIX + "*") if p.is_dir())


def temporary_generation(index_dir: Path, generation: int) -> Path:
    """Where this process builds ``generation`` before publishing it (the PID keeps writers apart)."""
    return Path(index_dir) / f"{TMP_PREFIX}{generation:06d}-{os.getpid()}"


def temporary_file(path: Path) -> Path:
    """The temporary an atomic replacement of ``path`` is written to first."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def stamp_temporary(index_dir: Path) -> Path:
    return Path(index_dir) / f"{STAMP_TMP_PREFIX}{os.getpid()}"


def vectors_file(suffix: str) -> str:
    """The vector file's name for a backend whose files end in ``suffix`` (``.faiss``)."""
    return VECTORS_STEM + suffix


def manifest_path(index_dir: Path) -> Path:
    return Path(index_dir) / MANIFEST_NAME


def has_manifest(index_dir: Path) -> bool:
    """Whether ``index_dir`` holds an index (a manifest file; whether it is valid is not looked at)."""
    return manifest_path(index_dir).is_file()


def generation_dirs(index_dir: Path) -> list[Path]:
    """The generation directories present, oldest first (published or left by a killed writer)."""
    return sorted(p for p in Path(index_dir).glob(GEN_PREFIX + "*") if p.is_dir())


def temporaries(index_dir: Path) -> list[Path]:
    """What killed writers left: temporary generations, manifests and stamp files."""
    index_dir = Path(index_dir)
    return [
        p
        for prefix in (TMP_PREFIX, TMP_SEG_PREFIX, MANIFEST_TMP_PREFIX, STAMP_TMP_PREFIX)
        for p in index_dir.glob(prefix + "*")
    ]


def foreign_entries(index_dir: Path) -> list[str]:
    """Names in ``index_dir`` that no index holds, sorted (a typo'd ``--index ~/Documents`` has many)."""
    return sorted(p.name for p in Path(index_dir).iterdir() if not p.name.startswith(OWN_PREFIXES))
