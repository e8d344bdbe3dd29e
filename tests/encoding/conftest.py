"""Fixtures of the encoding tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A graph store of the test's own (``TASE_SEARCH_QUERY_GRAPHS`` pointed at a temporary folder)."""
    from tase_search.encoding import graph_store

    d = tmp_path / "graphs"
    monkeypatch.setenv(graph_store.STORE_ENV, str(d))
    return d
