"""bench/latency.py at tiny sizes: cold queries, warm queries and HTTP adds reported beside their
references, with the CPU class and the targets (no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_helpers import load_bench

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("onnxruntime")

pytestmark = [pytest.mark.integrations, pytest.mark.slow, pytest.mark.bench]  # child processes, a server


def test_latency_quick(tiny_model_dir: Path, tmp_path: Path) -> None:
    mod = load_bench("latency")
    out = tmp_path / "latency.json"
    res = mod.run(["--quick", "--model", str(tiny_model_dir), "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))
    assert res["machine"]["cpu_class"] and set(res["meets_targets"]) == set(res["targets"])
    cold = res["cold_query"]
    assert cold["tase_search_query"]["median_s"] > 0 and cold["sentence_transformers_faiss"]["median_s"] > 0
    for w in res["warm_query"].values():
        assert w["query_backend"] == "onnx-bundle" and w["retriever_search"]["p50_ms"] > 0
    adds = res["add_one_document"]
    assert len(adds["http_add"]["runs_s"]) == 2 and adds["cli_index_one_line"]["median_s"] > 0
