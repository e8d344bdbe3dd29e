"""bench/store_writes.py at its tiny size: it runs and reports what it promises (no timing asserts)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "store_writes.py"


@pytest.mark.bench
def test_store_writes_quick(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_store_writes", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.run(["--quick", "--dim", "16", "--out", str(tmp_path / "w.json")])
    assert set(res["by_size"]) == {"300", "1000"}
    for row in res["by_size"].values():
        assert row["add_one"]["median_ms"] > 0 and row["delete_one"]["median_ms"] > 0
    small = res["small_adds"]
    assert small["count"] == 20 and small["ratio"] > 0 and small["segments_after_small_adds"] >= 1
    assert "cpu_flags" in res["machine"]
