"""bench/store_writes.py at its tiny size: it runs and reports what it promises (no timing asserts)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_helpers import load_bench


@pytest.mark.bench
def test_store_writes_quick(tmp_path: Path) -> None:
    mod = load_bench("store_writes")
    res = mod.run(["--quick", "--dim", "16", "--out", str(tmp_path / "w.json")])
    assert set(res["by_size"]) == {"300", "1000"}
    for row in res["by_size"].values():
        assert row["add_one"]["median_ms"] > 0 and row["delete_one"]["median_ms"] > 0
    small = res["small_adds"]
    assert small["count"] == 20 and small["ratio"] > 0 and small["segments_after_small_adds"] >= 1
    assert "cpu_flags" in res["machine"]
