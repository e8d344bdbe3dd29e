"""The reranker's training pipeline on tiny data: mined rows, a trained fp16 model that the runtime loads,
the dev evaluation, resuming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tase_search.errors import DataError, InputError
from tase_search.query.rerank import Reranker
from tase_search.testing import FakeEncoder

pytest.importorskip("datasets")

from training import rerank as trerank  # noqa: E402
from training.rerank_data import Group, Source, build_rows, mine, read_pair_source, read_squad_source  # noqa: E402

PARAS = [
    ("Ankara Türkiye'nin başkentidir. Şehir iç bölgededir.", "Türkiye'nin başkenti neresidir?", "Ankara"),
    (
        "İstanbul en kalabalık şehirdir. Boğaz şehri ikiye böler.",
        "En kalabalık şehir hangisidir?",
        "İstanbul",
    ),
    ("Galatasaray futbol maçı yarın oynanacak.", "Maç ne zaman oynanacak?", "yarın"),
    ("Yarın Ankara'da yağmur yağacak.", "Yağmur nerede yağacak?", "Ankara'da"),
]


def _squad(path: Path) -> Path:
    data = {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": c,
                        "qas": [
                            {"id": str(i), "question": q, "answers": [{"text": a, "answer_start": c.find(a)}]}
                        ],
                    }
                    for i, (c, q, a) in enumerate(PARAS)
                ],
            }
        ]
    }
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_squad_source_keeps_answers_as_forbidden_negative_text(tmp_path: Path) -> None:
    src = read_squad_source(_squad(tmp_path / "s.json"))
    assert len(src.passages) == 4 and [g.positive for g in src.groups] == [0, 1, 2, 3]
    assert src.groups[0].forbidden == ("ankara",)
    (tmp_path / "empty.json").write_text('{"data": []}', encoding="utf-8")
    with pytest.raises(DataError, match="no questions"):
        read_squad_source(tmp_path / "empty.json")


def test_mined_negatives_never_hold_the_answer(tmp_path: Path) -> None:
    src = read_squad_source(_squad(tmp_path / "s.json"))
    rows = mine(src, FakeEncoder(), hard=3, random_count=1, candidates=10, seed=0)
    by_query: dict[str, list[dict]] = {}
    for r in rows:
        by_query.setdefault(r["query"], []).append(r)
    for g in src.groups:
        got = by_query[g.query]
        assert [r["label"] for r in got].count(1.0) == 1
        gold = src.passages[g.positive]
        for r in got:
            if r["label"] == 0.0:
                assert r["passage"] != gold and not any(a in r["passage"].lower() for a in g.forbidden)
    # question 0's answer "Ankara" is in paragraph 3 too: never its negative
    assert all(r["passage"] != PARAS[3][0] for r in by_query[PARAS[0][1]] if r["label"] == 0.0)


def test_pair_source_and_random_negatives(tmp_path: Path) -> None:
    tsv = tmp_path / "p.tsv"
    tsv.write_text("en\ttr\n" + "".join(f"sentence {i}\tcümle {i}\n" for i in range(20)), encoding="utf-8")
    src = read_pair_source([tsv], ["en", "tr"], limit=5, seed=0, name="bitext")
    assert len(src.groups) == 5 and len(src.passages) == 20
    rows = mine(src, FakeEncoder(), hard=0, random_count=2, candidates=10, seed=0)
    assert len(rows) == 15 and sum(r["label"] for r in rows) == 5
    assert Source("x", ["a"], [Group("q", 0)]).groups[0].forbidden == ()


def test_a_config_without_sources_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("name: x\n", encoding="utf-8")
    with pytest.raises(InputError, match="sources"):
        trerank.load_rerank_config(bad)
    with pytest.raises(InputError, match="not a file or a shipped config"):
        trerank.load_rerank_config(tmp_path / "missing.yaml")
    shipped = trerank.load_rerank_config("tase-rerank-tr", ["data_root=/data"])
    assert shipped["sources"][0]["path"] == "/data/tquad/train-v0.1.json" and shipped["layers"] == 12


@pytest.mark.slow
def test_the_pipeline_trains_exports_evaluates_and_resumes(tmp_path: Path, tiny_model_dir: Path) -> None:
    squad = _squad(tmp_path / "train.json")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"""
name: tiny-rerank
base_model: {tiny_model_dir}
layers: 1
max_length: 32
threads: 1
precision: fp32
freeze: [word_embeddings]
mining: {{model: {tiny_model_dir}, candidates: 3}}
sources:
  - {{name: tquad, type: squad, path: {squad}, hard_negatives: 1, random_negatives: 1}}
train: {{max_steps: 4, batch_size: 4, save_steps: 2, logging_steps: 1, bucket_batches: 2}}
eval: {{tquad_dev: {squad}, top_k: 3}}
""",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    assert trerank.main([str(cfg), "--output", str(out)]) == 0
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["rows"] == {"total": 12, "positives": 4}
    ev = run["eval"]["tquad_dev"]
    assert ev["queries"] == 4 and 0.0 <= ev["rerank_mrr@10"] <= 1.0 and ev["recall@3"] <= 1.0
    from safetensors import safe_open

    with safe_open(str(out / "model" / "model.safetensors"), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float16"}
    rr = Reranker.load(str(out / "model"), precision="fp32")
    assert rr.model.config.num_hidden_layers == 1
    assert len(rr.score("Türkiye'nin başkenti neresidir?", [p for p, _, _ in PARAS])) == 4
    # again: the mined rows and the last checkpoint are reused, not redone
    rows = (out / "rows.jsonl").read_text(encoding="utf-8")
    assert trerank.main([str(cfg), "--output", str(out), "--max-steps", "6"]) == 0
    assert (out / "rows.jsonl").read_text(encoding="utf-8") == rows
    assert (out / "checkpoints" / "checkpoint-6").is_dir()
    assert build_rows({"sources": []}, FakeEncoder(), out / "rows.jsonl") == [
        json.loads(x) for x in rows.splitlines()
    ]
