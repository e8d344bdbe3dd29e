"""Reading an index's layout in tests without knowing its format: the segment a test damages, the ids
it holds, the directories a write must leave; and writing one with the version before segments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tase_search.store.manifest import read_manifest
from tase_search.store.snapshot import open_documents


def segment_names(ix: Path) -> list[str]:
    """The segments (or format-1 generation) the current manifest names, oldest first."""
    m = json.loads((Path(ix) / "manifest.json").read_text(encoding="utf-8"))
    if m.get("format_version", 1) >= 2:
        return [s["name"] for s in m["segments"]]
    return [f"gen-{m['generation']:06d}"]


def newest_segment(ix: Path) -> Path:
    """The directory of the newest segment: a freshly built index's only one."""
    return Path(ix) / segment_names(ix)[-1]


def docs_file(ix: Path) -> Path:
    return newest_segment(ix) / "docs.sqlite"


def data_dirs(ix: Path) -> list[str]:
    """Every segment or generation directory present, and temporary ones."""
    return sorted(p.name for p in Path(ix).iterdir() if p.name.startswith(("seg-", "gen-", ".tmp-")))


def live_ids(ix: Path) -> list[str]:
    """The ids of the documents the current manifest holds, sorted."""
    store = open_documents(Path(ix), read_manifest(Path(ix)))
    try:
        pids = store.pids_matching(None)
        return sorted({p.doc_id for p in store.fetch(list(pids)).values()})
    finally:
        store.close()


_LIVE = {
    "documents": ("SELECT doc_key, id, text, metadata FROM documents", "key"),
    "passages": ("SELECT pid, pid FROM passages", "pid"),
    "keywords": ("SELECT id, id FROM sparse_content", "pid"),
}


def live_rows(ix: Path, table: str) -> list[tuple]:
    """Rows of ``table`` (documents: ``(id, text, metadata)``; passages and keywords: ``(pid,)``) over
    every segment the manifest names, deleted ones left out, sorted."""
    import sqlite3

    import numpy as np

    m = json.loads((Path(ix) / "manifest.json").read_text(encoding="utf-8"))
    segs = (
        m["segments"]
        if m.get("format_version", 1) >= 2
        else [{"name": segment_names(ix)[0], "deletes": None}]
    )
    sql, by = _LIVE[table]
    out: list[tuple] = []
    for s in segs:
        gone: set[int] = set()
        if s.get("deletes"):
            with np.load(Path(ix) / s["name"] / s["deletes"]["name"]) as d:
                gone = set(d["doc_keys" if by == "key" else "pids"].tolist())
        con = sqlite3.connect(f"file:{Path(ix) / s['name'] / 'docs.sqlite'}?mode=ro", uri=True)
        try:
            out.extend(tuple(r[1:]) for r in con.execute(sql) if int(r[0]) not in gone)
        finally:
            con.close()
    return sorted(out)


#: A checkout of the format-1 writer (the version before segments), for what an older version does.
MAIN = Path(os.environ.get("TASE_SEARCH_OLDER_CHECKOUT", "/work/main"))
needs_older = pytest.mark.skipif(
    not (MAIN / "tase_search" / "store" / "commit.py").is_file(), reason="no older version checked out"
)


def older_version(code: str, *args: object) -> subprocess.CompletedProcess[str]:
    """Run ``code`` under the tase-search at :data:`MAIN` (``sys.argv[1:]``: ``args``)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    prelude = f"import sys; sys.path.insert(0, {str(MAIN)!r}); "
    argv = [sys.executable, "-c", prelude + code, *map(str, args)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
