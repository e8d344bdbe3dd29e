"""bench/rerank.py at a tiny size: every path reported beside CrossEncoder.predict, with the CPU class
(no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_helpers import load_bench

from tase_search.testing.tiny_models import build_tiny_reranker

pytestmark = [pytest.mark.bench]


def test_rerank_quick(tmp_path: Path) -> None:
    rr = build_tiny_reranker(tmp_path / "rr")
    words = "yarın istanbul yağmur hava güzel kedi köpek okul maç futbol".split()
    paragraphs = [
        {"context": " ".join(words[i:] + words[:i]), "qas": [{"question": f"{words[i]} nerede?"}]}
        for i in range(6)
    ]
    squad = tmp_path / "dev.json"
    squad.write_text(json.dumps({"data": [{"title": "t", "paragraphs": paragraphs}]}), encoding="utf-8")
    mod = load_bench("rerank")
    out = tmp_path / "rerank.json"
    res = mod.run(["--tquad", str(squad), "--reranker", str(rr), "--quick", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))
    assert res["machine"]["cpu_class"] and res["passages"] == 4
    paths = res["paths"]
    assert {"fp32", "int8", "sentence-transformers CrossEncoder fp32"} <= set(paths)
    assert paths["fp32"]["max_abs_diff_vs_fp32"] == 0 and paths["fp32"]["p50_s"] > 0
    # the same weights through sentence-transformers give the same probabilities
    assert paths["sentence-transformers CrossEncoder fp32"]["max_abs_diff_vs_fp32"] < 1e-5


def test_rerank_titles_quick(tmp_path: Path, tiny_model_dir: Path) -> None:
    """bench/rerank_titles.py at a tiny size: every task, rendering and fusion reported; the
    search-only fusion keeps auto's own order."""
    rr = build_tiny_reranker(tmp_path / "rr")
    articles = [
        ("Turkcell", "Turkcell yeni bir kampanya başlattı."),
        ("Türksat", "Türksat uydusu fırlatıldı."),
    ]
    data = {
        "data": [
            {"title": t, "paragraphs": [{"context": c, "qas": [{"question": f"{t} ne yaptı?"}]}]}
            for t, c in articles
        ]
    }
    squad = tmp_path / "dev.json"
    squad.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    mod = load_bench("rerank_titles")
    out = tmp_path / "t.json"
    res = mod.run(
        [
            "--tquad",
            str(squad),
            "--model",
            str(tiny_model_dir),
            "--reranker",
            str(rr),
            "--rerank",
            "2",
            "--out",
            str(out),
        ]
    )
    assert set(res["results"]) == {"tquad", "titles", "titles-en"}
    for task in res["results"].values():
        for row in task["mrr@10"].values():
            assert set(row) == set(mod.FUSIONS) and all(0 <= v <= 1 for v in row.values())
        assert task["mrr@10"]["raw"]["search"] == task["mrr@10"]["question"]["search"]
    assert res["machine"]["cpu_class"] and json.loads(out.read_text())["results"] == res["results"]
    assert mod.render("Oxygen", "en", "question") == "What is Oxygen?"
    assert mod.render("Uluğ Bey", "tr", "question") == "Uluğ Bey nedir?"
    assert mod.render("Uluğ Bey kimdir?", "tr", "question") == "Uluğ Bey kimdir?"
    assert mod.render("Oxygen", "en", "raw") == "Oxygen"
