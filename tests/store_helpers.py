"""Reading an index's layout in tests without knowing its format: the segment a test damages, the ids
it holds, the directories a write must leave; and writing one with the version before segments."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
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


#: The last commit whose store writes format 1 (one generation directory, before segments).
OLDER_COMMIT = "0173d0a75ed53136479badc7ea139a881912d445"


def _older_checkout() -> Path:
    """That commit's package, taken from this repository's history once per machine (``git archive``;
    the bundled weights left out: the older version runs with the fake encoder), or
    ``$TASE_SEARCH_OLDER_CHECKOUT``. A path without the package when git or the history is missing:
    the tests that need it skip."""
    given = os.environ.get("TASE_SEARCH_OLDER_CHECKOUT")
    if given:
        return Path(given)
    out = Path(tempfile.gettempdir()) / f"tase-search-format1-{OLDER_COMMIT[:12]}"
    if (out / "tase_search" / "store" / "commit.py").is_file():
        return out
    repo = Path(__file__).resolve().parents[1]
    try:
        tar = subprocess.run(
            [
                "git",
                "-C",
                str(repo),
                "archive",
                OLDER_COMMIT,
                "tase_search",
                ":(exclude)tase_search/models/tase-e5-tr",
            ],
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return out
    tmp = out.with_name(f"{out.name}.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(tmp, filter="data")  # this repository's own files
    try:
        tmp.rename(out)
    except OSError:  # another test process got there first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


#: The format-1 writer, for what an older version does.
MAIN = _older_checkout()
needs_older = pytest.mark.skipif(
    not (MAIN / "tase_search" / "store" / "commit.py").is_file(), reason="no older version checked out"
)


def older_version(code: str, *args: object) -> subprocess.CompletedProcess[str]:
    """Run ``code`` under the tase-search at :data:`MAIN` (``sys.argv[1:]``: ``args``)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    prelude = f"import sys; sys.path.insert(0, {str(MAIN)!r}); "
    argv = [sys.executable, "-c", prelude + code, *map(str, args)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
