"""``tase-search verify``: check an index's files against its manifest, deeply.

Loading an index checks sizes and row counts (cheap); verify also recomputes every file's
SHA-256, runs SQLite's integrity check, loads the vector index and compares row counts across
FAISS, SQLite and the manifest, so corruption is reported, never searched silently.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import IndexError_, IndexNotFound
from .manifest import MANIFEST_NAME, read_manifest, sha256_file
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
    if not (index_dir / MANIFEST_NAME).is_file():
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
    gen = index_dir / m.generation_dir
    if not gen.is_dir():
        rep.fail(f"generation directory {gen.name} named by the manifest is missing")
        return rep
    if not m.files:
        rep.fail("manifest lists no files")
    for name, info in sorted(m.files.items()):
        p = gen / name
        if not p.is_file():
            rep.fail(f"{name}: missing")
            continue
        size = p.stat().st_size
        if size != info.get("bytes"):
            rep.fail(f"{name}: {size} bytes, manifest says {info.get('bytes')} (truncated or replaced)")
            continue
        if sha256_file(p) != info.get("sha256"):
            rep.fail(f"{name}: checksum differs from the manifest (the file is damaged)")
            continue
        rep.checked.append(f"{name} sha256")
    docs_path = gen / "docs.sqlite"
    n_passages = n_docs = n_tomb = None
    if docs_path.is_file():
        try:
            conn = sqlite3.connect(f"file:{docs_path}?mode=ro", uri=True)
            try:
                res = conn.execute("PRAGMA integrity_check").fetchall()
                if res != [("ok",)]:
                    rep.fail(f"docs.sqlite: integrity check failed: {res[:3]}")
                n_docs = conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
                n_passages = conn.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
                n_tomb = conn.execute("SELECT COUNT(*) FROM tombstones").fetchone()[0]
                orphans = conn.execute(
                    "SELECT COUNT(*) FROM passages p LEFT JOIN documents d ON d.doc_key=p.doc_key WHERE d.doc_key IS NULL"
                ).fetchone()[0]
                if orphans:
                    rep.fail(f"docs.sqlite: {orphans} passages without a document")
            finally:
                conn.close()
            rep.checked.append("docs.sqlite integrity")
        except sqlite3.DatabaseError as exc:
            rep.fail(f"docs.sqlite: not a readable SQLite database ({exc})")
    if n_docs is not None and n_docs != m.documents:
        rep.fail(f"documents: SQLite has {n_docs}, manifest says {m.documents}")
    if n_passages is not None and n_passages != m.rows:
        rep.fail(f"passages: SQLite has {n_passages}, manifest says {m.rows}")
    if n_tomb is not None and n_tomb != m.tombstones:
        rep.fail(f"tombstones: SQLite has {n_tomb}, manifest says {m.tombstones}")
    try:
        backend = get_backend(m.backend)
        vec_path = gen / ("vectors" + backend.suffix)
        vectors = backend.load(vec_path, m.factory, m.model.dimension, m.search_params)
        if vectors.ntotal != m.rows + m.tombstones:
            rep.fail(f"vectors: index holds {vectors.ntotal} rows, manifest says {m.rows + m.tombstones}")
        else:
            rep.checked.append("vectors load + row count")
    except IndexError_ as exc:
        rep.fail(f"vectors: {exc}")
    except Exception as exc:  # noqa: BLE001 - any load failure is corruption from the user's view
        rep.fail(f"vectors: could not be loaded ({exc})")
    return rep
