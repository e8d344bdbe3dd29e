"""``tase-search verify``: check an index's files against its manifest, deeply.

Loading an index checks sizes and row counts (cheap); verify also recomputes every file's
SHA-256, runs SQLite's integrity check, loads the vector index and compares row counts across
FAISS, SQLite and the manifest, and the model fingerprint the manifest names with the one the
documents were written with, so corruption is reported, never searched silently. Only the
index's own files are read: a link in their place is reported, never followed.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import IndexError_, IndexNotFound
from . import segment as _seg
from . import sparse as _sparse
from .docs import DocStore
from .generation import (
    file_problem,
    generation_path,
    listing_problem,
    store_problems,
    vector_count_problem,
    vectors_file,
)
from .layout import DOCS_FILE, MANIFEST_NAME
from .manifest import Manifest, read_manifest
from .safeio import not_regular
from .vectors import get_backend


@dataclass
class VerifyReport:
    path: str
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    def fail(self, msg: str) -> None:
        self.ok = False
        self.problems.append(msg)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "problems": self.problems, "checked": self.checked}


def verify_index(index_dir: Path, *, model_fingerprint: str | None = None) -> VerifyReport:
    index_dir = Path(index_dir)
    rep = VerifyReport(str(index_dir))
    if not os.path.lexists(index_dir / MANIFEST_NAME):
        raise IndexNotFound(f"no index at {index_dir} (no {MANIFEST_NAME})")
    try:
        m = read_manifest(index_dir)
    except IndexError_ as exc:
        rep.fail(f"manifest: {exc}")
        return rep
    rep.checked.append("manifest")
    rep.manifest = {"generation": m.generation, "rows": m.rows, "documents": m.documents, "model": m.model.id}
    if model_fingerprint is not None and model_fingerprint != m.model.fingerprint:
        rep.fail(
            f"manifest: built with model {m.model.id!r} (weights {m.model.fingerprint[:12]}), "
            f"not the given model (weights {model_fingerprint[:12]})"
        )
    if _seg.is_legacy(m):
        _verify_part(index_dir, m, None, rep)
    else:
        for s in _seg.segments_of(m):
            _verify_part(index_dir, m, s, rep)
        totals = (
            sum(s.live_rows for s in _seg.segments_of(m)),
            sum(s.live_documents for s in _seg.segments_of(m)),
        )
        if totals != (m.rows, m.documents):
            rep.fail(f"manifest: its totals {m.rows, m.documents} differ from its segments' {totals}")
    _verify_bundle(index_dir, m, rep)
    return rep


def _verify_part(index_dir: Path, m: Manifest, s: _seg.Segment | None, rep: VerifyReport) -> None:
    """One segment (``s``; None: a format-1 index's generation): its files, documents, keyword part,
    payload index, vectors and deletions, each problem prefixed with the segment's name."""
    where = "" if s is None else f"{s.name}: "
    part = VerifyReport(rep.path)
    try:
        gen = generation_path(index_dir, m) if s is None else _seg.segment_path(index_dir, s)
    except FileNotFoundError:
        name = m.generation_dir if s is None else s.name
        rep.fail(
            f"{'generation' if s is None else 'segment'} directory {name} named by the manifest is missing"
        )
        return
    except IndexError_ as exc:
        rep.fail(str(exc))
        return
    view = m if s is None else s.view(m)
    listing = listing_problem(view)
    if listing:
        part.fail(listing)
    for name in sorted(view.files):
        problem = file_problem(gen, view, name, checksum=True)
        if problem:
            part.fail(problem)
        else:
            part.checked.append(f"{name} sha256")
    _verify_docs(gen / DOCS_FILE, view, part)
    _verify_vectors(gen, view, part)
    if s is not None and s.deletes is not None:
        try:
            keys, pids = _seg.read_deletes(gen / s.deletes.name, _seg.deletes_digest(s))
            if (len(keys), len(pids)) != (s.deletes.documents, s.deletes.rows):
                part.fail(f"{s.deletes.name}: its counts differ from the manifest")
            else:
                part.checked.append(f"{s.deletes.name} sha256 and counts")
        except (OSError, IndexError_) as exc:
            part.fail(f"{s.deletes.name}: {exc}")
    rep.problems.extend(where + p for p in part.problems)
    rep.checked.extend(where + c for c in part.checked)
    rep.ok = rep.ok and part.ok


def _verify_bundle(index_dir: Path, m: Manifest, rep: VerifyReport) -> None:
    """The query bundle, opened as a query would open it (its files, names, dimension, prompts and probe
    vectors). One that is absent or made for other weights is only noted (queries load the model and
    the next write replaces it); one that is damaged or hostile (a link, a FIFO, names outside the
    folder, wrong vectors) is a problem."""
    from ..encoding import query_bundle as qb

    folder = qb.bundle_dir(index_dir)
    if not os.path.lexists(folder):
        rep.checked.append("query bundle: none (queries load the model)")
        return
    light, why = qb.open_bundle(
        index_dir,
        fingerprint=m.model.fingerprint,
        query_prompt=m.model.query_prompt,
        passage_prompt=m.model.passage_prompt,
        dimension=int(m.model.dimension),
        deep=True,
    )
    if light is not None:
        rep.checked.append("query bundle: files, manifest agreement and probe vectors")
    elif why in ("onnxruntime is not installed", "the index has no query bundle", qb.NO_GRAPH_HERE) or (
        "another format" in why
    ):
        rep.checked.append(f"query bundle: not used ({why}); the next write replaces it")
    else:
        rep.fail(f"query bundle: {why}; queries load the model instead (remove {folder} and write once)")


def _verify_docs(path: Path, m: Manifest, rep: VerifyReport) -> None:
    try:
        if not_regular(path):
            return  # reported with the files
    except FileNotFoundError:
        return
    try:
        store = DocStore(path, readonly=True)
    except IndexError_ as exc:
        rep.fail(f"{DOCS_FILE}: {exc}")
        return
    try:
        problems = store_problems(store, m, integrity="integrity_check")
        try:
            orphans = store.conn.execute(
                "SELECT COUNT(*) FROM passages p LEFT JOIN documents d ON d.doc_key=p.doc_key WHERE d.doc_key IS NULL"
            ).fetchone()[0]
            if orphans:
                problems.append(f"{DOCS_FILE}: {orphans} passages without a document")
        except sqlite3.DatabaseError as exc:
            problems.append(f"{DOCS_FILE}: not a readable SQLite database ({exc})")
        if store.model_fingerprint() is not None:
            rep.checked.append("model fingerprint matches the documents")
        if store.sparse and not problems:
            _verify_sparse(store, m, rep, problems)
        if not problems:
            checked, found = store.payload_report()
            problems.extend(found)
            if not found:
                rep.checked.append(checked)
    except IndexError_ as exc:
        problems = [f"{DOCS_FILE}: {exc}"]
    except sqlite3.DatabaseError as exc:
        problems = [f"{DOCS_FILE}: not a readable SQLite database ({exc})"]
    finally:
        store.close()
    for p in problems:
        rep.fail(p)
    if not problems:
        rep.checked.append(f"{DOCS_FILE} integrity")
        rep.checked.append("documents/passages/tombstones match the manifest")


def _verify_sparse(store: DocStore, m: Manifest, rep: VerifyReport, problems: list[str]) -> None:
    """The keyword part: one row per passage and FTS5's own check, when it is current; a stale one
    (written around by an older version) is not searched and is rebuilt by the next write."""
    stale = store.sparse_stale_reason(m.rows)
    if stale is not None:
        rep.checked.append(
            f"sparse: out of date ({stale}); searched dense only until `tase-search sparse build`"
        )
        return
    found = _sparse.problems(store.conn, m.rows)
    problems.extend(found)
    if not found:
        rep.checked.append("sparse: FTS5 integrity, one keyword row per passage")


def _verify_vectors(gen: Path, m: Manifest, rep: VerifyReport) -> None:
    try:
        vec_path = gen / vectors_file(m)
        if not_regular(vec_path):
            return  # reported with the files
        vectors = get_backend(m.backend).load(vec_path, m.factory, m.model.dimension, m.search_params)
        problem = vector_count_problem(vectors.ntotal, m)
        if problem:
            rep.fail(f"vectors: {problem}")
        else:
            rep.checked.append("vectors load + row count")
    except FileNotFoundError:
        return
    except IndexError_ as exc:
        rep.fail(f"vectors: {exc}")
    except Exception as exc:  # noqa: BLE001 - any load failure is corruption from the user's view
        rep.fail(f"vectors: could not be loaded ({exc})")
