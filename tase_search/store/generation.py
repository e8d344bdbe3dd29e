"""What a generation directory must hold: the manifest's files, confined to it and intact.

One set of checks for the three places that trust a generation: loading (sizes always,
checksums and counts for small indexes), a write about to carry a generation's contents into
the next one (everything it carries), and ``tase-search verify`` (everything). A generation is
a real directory (not a link) directly in the index, its files are the plain names the
manifest lists, each a regular file (never followed through a link), so nothing outside the
index is opened or described in an error.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import IndexCorrupt
from . import layout
from .docs import DocStore
from .layout import DOCS_FILE
from .manifest import Manifest
from .safeio import Digest, digest_file
from .vectors import get_backend

DAMAGED = "the index is damaged (run `tase-search verify`)"


def vectors_file(m: Manifest) -> str:
    return layout.vectors_file(get_backend(m.backend).suffix)


def expected(m: Manifest, name: str) -> Digest:
    info = m.files[name]
    return Digest(int(info["bytes"]), str(info["sha256"]))


def generation_path(index_dir: Path, m: Manifest) -> Path:
    """The generation directory the manifest names. FileNotFoundError when it is missing (a writer may
    have just removed it); IndexCorrupt when it is a link or not a directory."""
    gen = Path(index_dir) / m.generation_dir
    mode = os.lstat(gen).st_mode
    if not stat.S_ISDIR(mode):
        kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a directory"
        raise IndexCorrupt(f"generation {gen} is {kind}; {DAMAGED}")
    return gen


def listing_problem(m: Manifest) -> str | None:
    """Why the manifest's file list cannot describe this index (None when it can): without its entries,
    no size or checksum of the files would be checked."""
    if not m.files:
        return "the manifest lists no files"
    wanted = (DOCS_FILE, vectors_file(m))
    missing = [n for n in wanted if n not in m.files]
    if missing:
        return f"the manifest does not list {missing[0]}"
    extra = sorted(set(m.files) - set(wanted))
    if extra:
        return f"the manifest lists {extra[0]}, which a {m.backend} index does not have"
    return None


def file_problem(gen: Path, m: Manifest, name: str, *, checksum: bool) -> str | None:
    """Why one listed file does not match the manifest (None when it does). Never follows a link, so
    what it reports is about the index's own entries only."""
    path = gen / name
    want = expected(m, name)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return f"{name}: missing"
    if not stat.S_ISREG(st.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        return f"{name}: is {kind}, not a file inside the index"
    if st.st_size != want.bytes:
        return f"{name}: {st.st_size} bytes, the manifest says {want.bytes} (truncated or replaced)"
    if checksum and digest_file(path, f"index file {path}").sha256 != want.sha256:
        return f"{name}: checksum differs from the manifest (the file is damaged)"
    return None


def check_files(gen: Path, m: Manifest, *, checksum: bool) -> None:
    """Raise IndexCorrupt for the first listed file that does not match the manifest."""
    why = listing_problem(m) or next(
        (p for n in sorted(m.files) if (p := file_problem(gen, m, n, checksum=checksum))), None
    )
    if why:
        raise IndexCorrupt(f"{gen}: {why}; {DAMAGED}")


def store_problems(store: DocStore, m: Manifest, *, integrity: str | None = "quick_check") -> list[str]:
    """What is wrong inside the document store: SQLite's own check (``quick_check``, the slower
    ``integrity_check``, or None for none) with the rows (:func:`row_problems`, not with None), counts
    against the manifest, and the weights fingerprint it records."""
    import sqlite3

    problems = []
    try:
        res = store.conn.execute(f"PRAGMA {integrity}").fetchall() if integrity else [("ok",)]
        if res != [("ok",)]:
            problems.append(
                f"{DOCS_FILE}: SQLite {str(integrity).replace('_', ' ')} failed: {str(res[:3])[:200]}"
            )
        problems.extend(count_problems(store, m))
        if integrity:  # a file not known to be this writer's own: its rows are checked too
            problems.extend(row_problems(store))
        fingerprint = fingerprint_problem(store, m)
        if fingerprint:
            problems.append(fingerprint)
    except (sqlite3.DatabaseError, IndexCorrupt) as exc:
        problems.append(f"{DOCS_FILE}: not a readable SQLite database ({str(exc)[:200]})")
    return problems


#: Row checks, each ``(what is wrong, SQL counting the rows it finds)``. Checksums cannot catch rows
#: that were wrong when the file was written (a hand-edited or hostile index): these can.
_ROW_CHECKS = (
    ("documents whose id is not text", "SELECT COUNT(*) FROM documents WHERE typeof(id) != 'text'"),
    (
        "documents whose text is missing, empty or not text",
        "SELECT COUNT(*) FROM documents WHERE typeof(text) != 'text' OR length(text) = 0",
    ),
    (
        "documents whose metadata is not a JSON object",
        "SELECT COUNT(*) FROM documents WHERE typeof(metadata) != 'text' OR NOT json_valid(metadata) "
        "OR json_type(metadata) != 'object'",
    ),
    (
        "passages whose numbers are not whole numbers",
        "SELECT COUNT(*) FROM passages WHERE typeof(idx) != 'integer' OR typeof(count) != 'integer' "
        "OR typeof(start) != 'integer' OR typeof(\"end\") != 'integer'",
    ),
    (
        "passages whose position or offsets lie outside their document",
        "SELECT COUNT(*) FROM passages p JOIN documents d ON d.doc_key = p.doc_key WHERE p.idx < 0 "
        'OR p.count < 1 OR p.idx >= p.count OR p.start < 0 OR p."end" < p.start '
        'OR p."end" > length(d.text)',
    ),
)
#: Metadata with more brackets than this may be nested too deeply: only those rows are parsed.
_DEEP_CANDIDATE = (
    "SELECT id, metadata FROM documents WHERE typeof(metadata) = 'text' AND json_valid(metadata) AND "
    "length(metadata) - length(replace(replace(metadata, '{', ''), '[', '')) > ?"
)


def row_problems(store: DocStore) -> list[str]:
    """Rows a search could not use (text missing, metadata not a JSON object or nested past the limit,
    passage offsets outside their text), each kind with its count and, for metadata, a document id."""
    from .docs import MAX_METADATA_DEPTH, parse_metadata

    conn = store.conn
    out = [
        f"{DOCS_FILE}: {n} {what}" for what, sql in _ROW_CHECKS if (n := int(conn.execute(sql).fetchone()[0]))
    ]
    deep = 0
    for doc_id, meta in conn.execute(_DEEP_CANDIDATE, (MAX_METADATA_DEPTH,)):
        try:
            parse_metadata(meta, "")
        except IndexCorrupt:
            deep += 1
            first = doc_id
    if deep:
        out.append(
            f"{DOCS_FILE}: {deep} documents whose metadata is nested deeper than {MAX_METADATA_DEPTH} "
            f"levels (the first: {str(first)[:80]!r})"
        )
    return out


def count_problems(store: DocStore, m: Manifest) -> list[str]:
    """Where the document store's documents, passages and tombstones differ from the manifest's counts."""
    n_docs, n_passages = store.counts()
    have = (n_docs, n_passages, store.tombstone_count())
    want = (m.documents, m.rows, m.tombstones)
    return [
        f"{what}: SQLite has {h}, the manifest says {w}"
        for what, h, w in zip(("documents", "passages", "tombstones"), have, want)
        if h != w
    ]


def fingerprint_problem(store: DocStore, m: Manifest) -> str | None:
    """Why the documents do not belong to the manifest's model weights (None: they do, or say nothing)."""
    recorded = store.model_fingerprint()
    if recorded is None or recorded == m.model.fingerprint:
        return None
    return (
        f"model fingerprint: the manifest says {m.model.fingerprint[:12]}, the documents were indexed with "
        f"{recorded[:12]}"
    )


def vector_count_problem(ntotal: int, m: Manifest) -> str | None:
    """Why a vector index of ``ntotal`` rows cannot be the manifest's (it must hold rows + tombstones)."""
    want = m.rows + m.tombstones
    return None if ntotal == want else f"the vector index holds {ntotal} rows, the manifest says {want}"
