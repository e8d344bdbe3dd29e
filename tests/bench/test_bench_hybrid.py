"""bench/hybrid.py, bench/sparse_cost.py and bench/sparse_engines.py at tiny sizes: they run and report
what they promise (no timing asserts; the tiny random model, so no quality asserts on dense either)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_helpers import load_bench

pytestmark = pytest.mark.bench  # each test runs a benchmark script


@pytest.fixture(scope="module")
def tquad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    articles = [
        ("Turkcell", ["Turkcell'in abone sayısı arttı.", "Turkcell yeni bir kampanya başlattı."]),
        ("Türksat", ["Türksat uydusu uzaya fırlatıldı."]),
        ("Piri Reis Haritası", ["Piri Reis haritası 1513 yılında çizildi."]),
    ]
    data = {
        "data": [
            {
                "title": title,
                "paragraphs": [
                    {
                        "context": text,
                        "qas": [{"id": f"{title}{i}", "question": f"{text.split()[0]} ne yaptı?"}],
                    }
                    for i, text in enumerate(paras)
                ],
            }
            for title, paras in articles
        ]
    }
    p = tmp_path_factory.mktemp("tquad") / "dev.json"
    p.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return p


def test_hybrid_bench_reports_every_task_and_mode(
    tquad: Path, tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bitext = tmp_path / "dev-tur-eng.tsv"
    bitext.write_text("tr\ten\nkedi ve köpek\tcat and dog\nyarın yağmur\train tomorrow\n", encoding="utf-8")
    out = load_bench("hybrid").run(
        [
            "--model",
            str(tiny_model_dir),
            "--tquad",
            str(tquad),
            "--bitext",
            str(bitext),
            "--variants",
            "--out",
            str(tmp_path / "r.json"),
        ]
    )
    assert set(out["results"]) == {"tquad", "titles", "titles-en", "dev.tr-en", "dev.en-tr"}
    assert out["results"]["titles-en"]["queries"] == 2  # the English titles of Turkcell and Türksat
    modes = {"dense", "sparse", "hybrid", "auto", "rrf", "w-d0.5"}
    for res in out["results"].values():
        assert modes <= set(res)
        assert all(0 <= res[m]["mrr@10"] <= 1 and res[m]["hit@1"] <= res[m]["hit@5"] for m in modes)
    titles = out["results"]["titles"]
    assert titles["sparse"]["top1"] == "3/3"  # every title is a word of its own paragraphs
    assert "| titles (tr) | 3 |" in out["table_markdown"] and "| tquad (tr) | 4 |" in out["table_markdown"]
    assert json.loads((tmp_path / "r.json").read_text())["results"] == out["results"]


def test_sparse_cost_bench(tquad: Path, tmp_path: Path) -> None:
    out = load_bench("sparse_cost").run(
        ["--quick", "--add", "20", "--tquad", str(tquad), "--out", str(tmp_path / "c.json")]
    )
    (size,) = out["sizes"].values()
    assert size["docs"] > 0
    assert size["docs_sqlite_bytes"]["with_sparse"] > size["docs_sqlite_bytes"]["without_sparse"]
    assert set(size["query"]) == {"questions", "questions+filter", "titles", "titles+filter"}
    assert size["append_seconds"]["docs"] == 20 and size["sparse_build_passages"] == size["docs"] + 20


def test_sparse_engines_bench(tquad: Path, tmp_path: Path) -> None:
    out = load_bench("sparse_engines").run(["--tquad", str(tquad), "--out", str(tmp_path / "e.json")])
    fts = out["tquad"]["fts5"]
    assert fts["docs"] == 4 and fts["bytes"] > 0 and fts["quality"]["hit@5"] == 1.0
    if "bm25s" in out["tquad"]:  # only where bm25s is installed
        assert out["tquad"]["bm25s"]["quality"]["hit@5"] == 1.0
