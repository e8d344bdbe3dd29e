"""The benchmark scripts in bench/ run at tiny sizes and report what they promise (no timing asserts).

Each script is imported from its path and its ``run(argv)`` called in-process (the index benchmark
still starts one worker process per index type, which is what it measures), with the tiny random
model of :mod:`tase_search.testing` so nothing needs the network or the real model.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from bench_helpers import load_bench

MACHINE_KEYS = {
    "date",
    "host_cpus",
    "usable_cpus",
    "cpu_model",
    "cpu_flags",
    "versions",
    "loadavg_before",
    "loadavg_after",
    "torch_threads",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bench-data")
    words = "futbol maç yağmur hava deprem ekonomi şehir kedi köpek okul çay müzik".split()
    lines = [
        f"{words[i % len(words)]} {words[(i * 7) % len(words)]} bir {words[(i * 3) % len(words)]} {i}"
        for i in range(120)
    ]
    p = d / "corpus.txt"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def bitext(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("bench-bitext") / "dev.tsv"
    rows = [
        ("kedi ve köpek", "cat and dog"),
        ("yarın yağmur", "rain tomorrow"),
        ("okul müzik", "school music"),
        ("futbol maçı", "football match"),
        ("şehir hava", "city weather"),
    ]
    p.write_text("tr\ten\n" + "".join(f"{a}\t{b}\n" for a, b in rows), encoding="utf-8")
    return p


@pytest.mark.bench
def test_encode_quick(
    tiny_model_dir: Path, corpus: Path, bitext: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "encode.json"
    res = load_bench("encode").run(
        [
            str(corpus),
            "--quick",
            "--n",
            "40",
            "--chunk",
            "20",
            "--model",
            str(tiny_model_dir),
            "--extra",
            "autocast,bf16-weights,onnx-fp32",
            "--bitext-dev",
            str(bitext),
            "--out",
            str(out),
        ]
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(res))
    assert MACHINE_KEYS <= set(res["machine"])
    assert res["config"]["n"] == 40
    assert set(res["paths"]) == {"st-fp32", "auto", "autocast", "bf16-weights", "onnx-fp32"}
    assert res["paths"]["onnx-fp32"]["cosine_vs_fp32"]["min"] > 0.9999  # the same fp32 graph
    for p in res["paths"].values():
        assert p["sentences_per_second"] > 0 and p["speedup_vs_baseline"] > 0
        assert 0.9 <= p["cosine_vs_fp32"]["min"] <= 1.0001
        assert 0 <= p["dev"]["tr_en_accuracy"] <= 100
    assert res["paths"]["st-fp32"]["cosine_vs_fp32"]["min"] > 0.9999  # the baseline against itself
    assert set(res["shipped_meets_targets"]) == {"speedup>=3", "cosine_min>=0.99", "metric_within_0.5_points"}
    assert "encode:" in capsys.readouterr().err


@pytest.mark.bench
@pytest.mark.skipif(
    importlib.util.find_spec("ctranslate2") is None or importlib.util.find_spec("nncf") is None,
    reason="needs the fast extra and nncf",
)
def test_encode_backends_quick(tiny_model_dir: Path, corpus: Path, bitext: Path, tmp_path: Path) -> None:
    """The backend paths, the calibrated int8 variants, passages joined from sentences."""
    res = load_bench("encode").run(
        [
            str(corpus),
            "--quick",
            "--n",
            "16",
            "--chunk",
            "8",
            "--model",
            str(tiny_model_dir),
            "--extra",
            "torch,ct2-int8-b16,openvino,ov-int8,ort-int8-static",
            "--join",
            "3",
            "--calibration",
            str(corpus),
            str(bitext),
            "--calibration-n",
            "16",
        ]
    )
    assert set(res["paths"]) == {
        "st-fp32",
        "auto",
        "torch",
        "ct2-int8-b16",
        "openvino",
        "ov-int8",
        "ort-int8-static",
    }
    assert res["config"]["mean_chars"] > 40  # three sentences a passage
    assert res["paths"]["openvino"]["cosine_vs_fp32"]["min"] > 0.9999
    assert res["paths"]["ct2-int8-b16"]["cosine_vs_fp32"]["mean"] > 0.98
    assert all(p["rss_added_mb"] is not None for p in res["paths"].values())


@pytest.mark.bench
@pytest.mark.skipif(importlib.util.find_spec("ctranslate2") is None, reason="needs the fast extra")
def test_backend_quality_quick(tiny_model_dir: Path, bitext: Path) -> None:
    res = load_bench("backend_quality").run(
        ["--quick", "--model", str(tiny_model_dir), "--bitext", str(bitext)]
    )
    assert set(res["scores_points"]) == {"torch", "ct2-int8"}
    assert res["delta_points_vs_torch"]["torch"]["dev.tr-en"]["accuracy@1"] == 0
    assert set(res["within_0.5_points"]) == {"torch", "ct2-int8"}


@pytest.mark.bench
def test_index_vs_script_quick(tiny_model_dir: Path, corpus: Path) -> None:
    res = load_bench("index_vs_script").run(
        [str(corpus), "--quick", "--rounds", "1", "--model", str(tiny_model_dir), "--backend", "torch"]
    )
    assert res["config"]["lines"] == 12
    assert res["ratio_script_over_cli"] > 0 and res["cli_summary"]["document_backend"] == "torch"
    assert set(res["wall_seconds"]) == {"tase-search index", "obvious script"}


@pytest.mark.bench
def test_index_quick(tiny_model_dir: Path, corpus: Path, tmp_path: Path) -> None:
    res = load_bench("index").run(
        [
            "--quick",
            "--n",
            "600",
            "--nq",
            "20",
            "--texts",
            str(corpus),
            "--model",
            str(tiny_model_dir),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--types",
            "flat,hnsw,ivf-sq8",
            "--out",
            str(tmp_path / "index.json"),
        ]
    )
    assert MACHINE_KEYS <= set(res["machine"])
    assert res["config"]["n"] == 600
    data = res["data"]
    assert data["real_vectors"] + data["synthetic_vectors"] == 600
    assert data["synthetic_vectors"] > 0 and data["synthetic_construction"]
    assert data["queries"] == 20
    by_type = {r["type"]: r for r in res["indexes"]}
    assert set(by_type) == {"flat", "hnsw", "ivf-sq8"}
    for r in by_type.values():
        assert "error" not in r, r.get("error")
        assert r["build_seconds"] >= 0 and r["bytes_on_disk"] > 0 and r["rss_mb"]["peak"] > 0
        for s in r["search"]:
            assert {"params", "latency", "latency_omp1", "batch_qps", "recall@10"} <= set(s)
            assert s["latency"]["p50_ms"] <= s["latency"]["p99_ms"]
    assert by_type["flat"]["search"][0]["recall@10"] == 1.0  # exact search is its own ground truth
    assert [s["params"] for s in by_type["hnsw"]["search"]] == ["efSearch=16", "efSearch=64"]
    assert (
        by_type["ivf-sq8"]["factory"].startswith("IVF")
        and by_type["ivf-sq8"]["bytes_per_vector"] < by_type["flat"]["bytes_per_vector"]
    )
    assert res["hnsw_efsearch_pick"]["shipped_default"] > 0
    assert "efSearch_one_thread" in res["hnsw_efsearch_pick"]
    # a second run reuses the cached embeddings
    again = load_bench("index").run(
        [
            "--quick",
            "--n",
            "600",
            "--nq",
            "20",
            "--texts",
            str(corpus),
            "--model",
            str(tiny_model_dir),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--types",
            "flat",
        ]
    )
    assert again["data"]["real_vectors"] == data["real_vectors"]
    assert len(list((tmp_path / "cache").glob("emb-*.npy"))) == 2  # one document block, one query block


@pytest.mark.slow  # a minute or more of CLI subprocesses; the benchmark's own run is what it checks
@pytest.mark.bench
def test_end_to_end_quick(tiny_model_dir: Path, corpus: Path, tmp_path: Path) -> None:
    res = load_bench("end_to_end").run(
        [
            str(corpus),
            "--quick",
            "--limit",
            "30",
            "--warm-queries",
            "5",
            "--model",
            str(tiny_model_dir),
            "--out",
            str(tmp_path / "e2e.json"),
        ]
    )
    assert MACHINE_KEYS <= set(res["machine"])
    ix = res["indexing"]
    assert ix["cli_index_runs"][0]["documents"] == 30
    assert ix["ratio_cli_vs_encode"] >= 0 and ix["ratio_build_vs_encode"] > 0
    assert ix["cli_index_runs"][0]["peak_rss_mb"] > 0
    assert {"tase-search --help", "tase-search info", "tase-search query"} <= set(res["cold_start"])
    mem = res["cold_start"]["tase-search query"]["memory_after_search_mb"]  # None only without /proc
    assert mem is None or (mem["RssAnon"] > 0 and mem["VmHWM"] >= mem["RssAnon"])
    assert res["help_imports"].get("torch") is False  # --help must stay light
    warm = res["warm"]
    assert warm["retriever_search"]["n"] == 5 and warm["retriever_search_torch"]["n"] == 5
    assert warm["cli_stdin"]["answers"] == 5 and warm["cli_stdin_torch"]["answers"] == 5
    assert warm["query_backend"] == "onnx"  # onnxruntime is a dependency: the default path uses it
    assert warm["speedup_p50_vs_torch"] > 0 and isinstance(warm["meets_target"], bool)


@pytest.mark.slow  # two to three minutes of CLI subprocesses
@pytest.mark.bench
def test_end_to_end_sampled_encode_then_reuse_index(
    tiny_model_dir: Path, corpus: Path, tmp_path: Path
) -> None:
    """The large-corpus options: encode a sample, skip the in-process build, then query the kept index."""
    e2e = load_bench("end_to_end")
    work = tmp_path / "work"
    common = [
        str(corpus),
        "--quick",
        "--limit",
        "40",
        "--warm-queries",
        "3",
        "--model",
        str(tiny_model_dir),
        "--workdir",
        str(work),
    ]
    res = e2e.run(common + ["--encode-sample", "10", "--no-inprocess-build"])
    ix = res["indexing"]
    assert ix["documents"] == 40 and ix["encode_sample_documents"] == 10
    assert ix["cli_index_runs"][0]["documents"] == 40 and ix["inprocess_build_runs"] == []
    assert ix["ratio_cli_vs_encode"] > 0 and ix["ratio_build_vs_encode"] is None
    assert ix["index_bytes_on_disk"] > 0 and ix["peak_rss_vs_index_bytes"] > 0
    assert (work / "index" / "manifest.json").is_file() and not (work / "index-inprocess").exists()
    manifest = (work / "index" / "manifest.json").read_bytes()
    again = e2e.run(common + ["--skip-build"])
    assert again["indexing"] == {"skipped": True, "index": str(work / "index"), "documents": 40}
    assert again["warm"]["retriever_search"]["n"] == 3
    assert (work / "index" / "manifest.json").read_bytes() == manifest  # not rebuilt
    with pytest.raises(SystemExit, match="--workdir"):
        e2e.run([str(corpus), "--skip-build"])


def test_single_query_search_uses_one_faiss_thread_and_restores(fake_encoder, tmp_path: Path) -> None:
    """The change bench/index.py motivated: a lone query runs FAISS single-threaded, same answers."""
    import faiss

    from tase_search import retriever as R

    docs = [f"futbol maç {i} yağmur hava {i % 7} şehir {i % 13}" for i in range(300)]
    r = R.Retriever.build(docs, model=fake_encoder, path=tmp_path / "idx", factory="HNSW32,Flat")
    seen: list[int] = []
    r._open()
    inner_search = r._vectors.search

    def spy(*a, **kw):  # noqa: ANN002, ANN003
        seen.append(faiss.omp_get_max_threads())
        return inner_search(*a, **kw)

    r._vectors.search = spy
    before = faiss.omp_get_max_threads()
    one = r.search("futbol maç 5 yağmur", k=5)
    both = r.search(["futbol maç 5 yağmur", "şehir hava"], k=5)
    assert [h.id for h in one] == [h.id for h in both[0]]
    assert seen[0] == 1 and faiss.omp_get_max_threads() == before
    assert seen[-1] == before  # a batch keeps every thread


def test_make_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """N distinct documents: the real sentences first (from .txt, a .tsv's tr column, TQuAD paragraphs),
    then combinations; the same arguments write the same file."""
    txt = tmp_path / "ud.txt"
    txt.write_text(
        "Kedi bahçede uyuyor.\nYarın İstanbul'da yağmur bekleniyor.\n\nKedi bahçede uyuyor.\n", "utf-8"
    )
    tsv = tmp_path / "bitext.tsv"
    tsv.write_text(
        'tr\ten\nOkul yarın açılıyor.\tSchool opens tomorrow.\n"Bir ""alıntı"" cümlesi."\tA quote.\n', "utf-8"
    )
    tquad = tmp_path / "tquad.json"
    para = "Dr. Ahmet Bey 1950 yılında doğdu. Ankara'da tıp okudu! Sonra İzmir'e taşındı."
    tquad.write_text(
        json.dumps({"data": [{"title": "t", "paragraphs": [{"context": para, "qas": []}]}]}), "utf-8"
    )
    real = {
        "Kedi bahçede uyuyor.",
        "Yarın İstanbul'da yağmur bekleniyor.",
        "Okul yarın açılıyor.",
        'Bir "alıntı" cümlesi.',
        "Dr. Ahmet Bey 1950 yılında doğdu.",
        "Ankara'da tıp okudu!",
        "Sonra İzmir'e taşındı.",
    }
    out = tmp_path / "corpus.txt"
    mc = load_bench("make_corpus")
    res = mc.run([str(txt), str(tsv), str(tquad), "--output", str(out), "--n", "40", "--seed", "3"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == res
    lines = out.read_text("utf-8").splitlines()
    assert len(lines) == res["count"] == res["unique"] == 40 and len(set(lines)) == 40
    assert set(lines[:7]) == real and not set(lines[7:]) & real
    assert res["kinds"]["real"] == 7 and res["kinds"]["pair"] + res["kinds"]["splice"] == 33
    assert res["mean_chars"] == round(sum(map(len, lines)) / 40, 1)
    assert [s["sentences"] for s in res["sources"]] == [2, 2, 3]
    again = tmp_path / "again.txt"
    mc.run([str(txt), str(tsv), str(tquad), "--output", str(again), "--n", "40", "--seed", "3"])
    assert again.read_bytes() == out.read_bytes()
    few = mc.run([str(txt), "--output", str(tmp_path / "few.txt"), "--n", "1"])
    assert few["count"] == 1 and (tmp_path / "few.txt").read_text("utf-8").strip() in real
    with pytest.raises(SystemExit, match="distinct"):  # 2 sentences cannot make 1,000 documents
        mc.run([str(txt), "--output", str(tmp_path / "x.txt"), "--n", "1000"])


@pytest.mark.slow
@pytest.mark.bench
def test_threads_quick(tiny_model_dir: Path, corpus: Path, tmp_path: Path) -> None:
    args = [str(corpus), "--quick", "--threads", "1", "--model", str(tiny_model_dir)]
    res = load_bench("threads").run([*args, "--out", str(tmp_path / "t.json")])
    assert res["lines"] == 20 and res["settings"]["1"]["threads"] == [1]
    assert {"seconds", "docs_per_second", "wall_seconds", "busy_cpus_before"} <= set(res["runs"][0])


@pytest.mark.bench
def test_filters_quick(tmp_path: Path) -> None:
    """Filtered search by selectivity: every filter's matches equal the Python evaluator's (checked inside
    the run), and the vector search restricted to them finds the exact filtered top k."""
    res = load_bench("filters").run(["--quick", "--dim", "16", "--out", str(tmp_path / "filters.json")])
    assert MACHINE_KEYS - {"torch_threads"} <= set(res["machine"])  # no model, so maybe no torch
    assert res["n"] == 2000 and res["factory"] == "Flat"
    assert set(res["filters"]) >= {
        "no filter",
        "50%: bucket < 5000",
        "1%: topic = k042",
        "0.01%: bucket = 4242",
    }
    for label, m in res["filters"].items():
        assert m["recall_at_k"] == 1.0, label
        assert m["search_p50_ms"] > 0 and m["search_p95_ms"] >= m["search_p50_ms"]
    assert res["filters"]["no filter"]["matched"] == 2000
    assert json.loads((tmp_path / "filters.json").read_text())["n"] == 2000
