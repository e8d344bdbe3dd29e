"""bench/serve_load.py at tiny sizes against a real `tase-search serve` child: it reports what it
promises (no timing asserts) and its write phase loses nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_helpers import load_bench

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

pytestmark = [pytest.mark.integrations, pytest.mark.slow, pytest.mark.bench]  # starts a server child process


def test_serve_load_quick(tiny_model_dir: Path, tmp_path: Path) -> None:
    mod = load_bench("serve_load")
    out = tmp_path / "serve.json"
    res = mod.run(["--quick", "--model", str(tiny_model_dir), "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))
    phases = {(p["phase"], p["concurrency"]) for p in res["phases"]}
    assert phases == {("search", 1), ("search", 2), ("search_during_writes", 2)}
    for p in res["phases"]:
        assert p["errors"] == 0 and p["requests"] > 0 and {"p50_ms", "p99_ms"} <= set(p["latency"])
    writes = res["phases"][-1]
    assert writes["documents_written"] > 0 and writes["nothing_lost"] is True
