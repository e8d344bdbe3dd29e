"""Loading an index makes verify's checks and names the same problem verify reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tase_search.errors import IndexCorrupt
from tase_search.retriever import Retriever
from tase_search.store import snapshot
from tase_search.store.manifest import read_manifest
from tase_search.store.verify import verify_index
from tase_search.testing import FakeEncoder


def _overstate(ix: Path, field: str) -> None:
    """Claim one more ``field`` in the manifest's segment entry (and in its totals, which add up the
    segments': a load refuses totals that do not) than the segment's files hold."""
    raw = json.loads((ix / "manifest.json").read_text())
    raw["segments"][0][field] += 1
    raw[field] += 1
    (ix / "manifest.json").write_text(json.dumps(raw))


@pytest.mark.parametrize(
    ("field", "problem"),
    [
        ("documents", "documents: SQLite has 3, the manifest says 4"),
        ("tombstones", "the vector index holds 3 rows, the manifest says 4"),
    ],
)
def test_load_and_verify_name_the_same_problem(tmp_path: Path, field: str, problem: str) -> None:
    ix = tmp_path / "ix"
    Retriever.build(["futbol maçı", "yağmur yağdı", "kedi uyudu"], model=FakeEncoder(), path=ix).close()
    _overstate(ix, field)
    assert any(problem in p for p in verify_index(ix).problems)
    with pytest.raises(IndexCorrupt, match=f"{problem}; the index is damaged"):
        snapshot.open_generation(ix, read_manifest(ix))


def test_a_large_index_skips_only_the_costly_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ix = tmp_path / "ix"
    Retriever.build(["futbol maçı", "yağmur yağdı"], model=FakeEncoder(), path=ix).close()
    _overstate(ix, "documents")
    monkeypatch.setattr(snapshot, "VERIFY_ON_LOAD_BYTES", -1)  # every index is "large"
    snap = snapshot.open_generation(ix, read_manifest(ix))  # counts against SQLite: left to verify
    snap.close()
    _overstate(ix, "tombstones")  # the vector count is always checked
    with pytest.raises(IndexCorrupt, match="the vector index holds 2 rows"):
        snapshot.open_generation(ix, read_manifest(ix))
