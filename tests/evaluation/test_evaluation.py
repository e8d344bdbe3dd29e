"""The evaluation suite: metrics on hand-computed cases, adapters on tiny files, the CLI, errors.

Offline and fast: a hashed bag-of-words FakeEncoder stands in for the model.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tase_search.cli.eval import eval_group
from tase_search.errors import DataError, InputError, TaseSearchError
from tase_search.evaluation import (
    DEV_SUITE,
    average_ranks,
    bitext_tasks,
    english_check_task,
    evaluate_retrieval,
    evaluate_sts,
    evaluate_task,
    evaluate_tasviret,
    format_table,
    jsonable,
    load_qrels_files,
    pearson,
    retrieval_metrics,
    roc_auc,
    run_suite,
    spearman,
    squad_task,
)
from tase_search.evaluation import report as eval_report
from tase_search.evaluation.retrieval import search_topk
from tase_search.evaluation.sts import sts_metrics
from tase_search.evaluation.tasviret import tasviret_metrics
from tase_search.testing import FakeEncoder


# ------------------------------------------------------------------------------------ helpers
def write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(header)] + ["\t".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def squad_json(path: Path, articles: list[tuple[str, list[tuple[str, list[tuple[str, str]]]]]]) -> Path:
    """articles: [(title, [(context, [(id, question)])])]"""
    data = {
        "version": "1.1",
        "data": [
            {
                "title": title,
                "paragraphs": [
                    {
                        "context": ctx,
                        "qas": [
                            {"id": qid, "question": q, "answers": [{"answer_start": 0, "text": "x"}]}
                            for qid, q in qas
                        ],
                    }
                    for ctx, qas in paras
                ],
            }
            for title, paras in articles
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


BITEXT_ROWS = [
    ["elma armut kiraz", "apple pear cherry"],
    ["deniz kum güneş", "sea sand sun"],
    ["kitap kalem defter", "book pen notebook"],
    ["araba otobüs tren", "car bus train"],
]


def identity_bitext(path: Path) -> Path:
    """A bitext whose 'translations' are the same words: the fake encoder retrieves it perfectly."""
    return write_tsv(path, ["tr", "en"], [[a, a] for a, _ in BITEXT_ROWS])


def tasviret_file(path: Path) -> Path:
    rows = [
        ["1", "a.jpg", "kırmızı köpek çimde koşuyor"],
        ["1", "a.jpg", "kırmızı köpek çimde oynuyor"],
        ["2", "b.jpg", "çocuklar plajda top oynuyor"],
        ["2", "b.jpg", "çocuklar plajda kum kalesi yapıyor"],
        ["3", "c.jpg", "yaşlı adam bankta gazete okuyor"],
        ["3", "c.jpg", "yaşlı adam bankta oturuyor"],
    ]
    return write_tsv(path, ["image_id", "filename", "caption"], rows)


def sts_file(path: Path) -> Path:
    rows = [
        ["5.0", "kedi halıda uyuyor", "kedi halıda uyuyor"],
        ["3.0", "adam gitar çalıyor", "adam piyano çalıyor"],
        ["0.0", "güneş doğuyor", "tren istasyona girdi"],
    ]
    return write_tsv(path, ["score", "sentence1", "sentence2"], rows)


def make_data_root(root: Path) -> Path:
    """A tiny copy of the shared data layout, for run_suite and `eval report`."""
    identity_bitext(root / "bitext/dev/tatoeba-dev-tur-eng.tsv")
    write_tsv(
        root / "bitext/dev/newstest2018-tur-eng.tsv",
        ["tr", "en"],
        [
            ["bugün hava çok güzel", "the weather is very nice today"],
            ["borsa sert düştü", "the stock market fell sharply today"],
        ],
    )
    tasviret_file(root / "tasviret/tasviret-test-dev.tsv")
    sts_file(root / "stsb-tr/dev.tsv")
    squad_json(
        root / "tquad/dev-v0.1.json",
        [
            (
                "T",
                [
                    ("Ankara Türkiye'nin başkentidir.", [("1", "Türkiye'nin başkenti neresidir?")]),
                    ("İstanbul Boğazı iki kıtayı ayırır.", [("2", "Hangi boğaz iki kıtayı ayırır?")]),
                ],
            ),
        ],
    )
    return root


# ------------------------------------------------------------------------------------ metrics
def test_perfect_retrieval_scores_one():
    m = retrieval_metrics(np.eye(4), [{0}, {1}, {2}, {3}])
    for key in ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"):
        assert m[key] == pytest.approx(1.0)
    assert m["n_queries"] == 4 and m["n_docs"] == 4


def test_known_ndcg_mrr_recall_values():
    scores = np.array([[0.9, 0.8, 0.7, 0.1]])
    m = retrieval_metrics(scores, [{1}])  # relevant at rank 2
    assert m["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert m["mrr@10"] == pytest.approx(0.5)
    assert m["recall@1"] == 0.0 and m["recall@5"] == 1.0

    m2 = retrieval_metrics(scores, [{1, 2}])  # ranks 2 and 3 of two relevant
    dcg = 1 / math.log2(3) + 1 / math.log2(4)
    assert m2["ndcg@10"] == pytest.approx(dcg / (1 + 1 / math.log2(3)))
    assert m2["recall@1"] == 0.0 and m2["recall@5"] == 1.0
    assert m2["mrr@10"] == pytest.approx(0.5)

    # two queries average: one perfect, one at rank 2
    m3 = retrieval_metrics(np.array([[1.0, 0.0], [1.0, 0.5]]), [{0}, {1}])
    assert m3["recall@1"] == pytest.approx(0.5)
    assert m3["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 2)


def test_relevant_outside_top10_scores_zero():
    scores = np.linspace(1, 0, 12)[None, :]
    m = retrieval_metrics(scores, [{11}])
    assert m["recall@10"] == 0.0 and m["mrr@10"] == 0.0 and m["ndcg@10"] == 0.0


def test_recall_and_accuracy_with_many_relevant():
    scores = np.array([[0.9, 0.8, 0.1]])
    m = retrieval_metrics(scores, [{0, 1}])
    assert m["recall@1"] == 0.5 and m["recall@5"] == 1.0  # |relevant in top k| / |relevant|
    assert m["accuracy@1"] == 1.0  # the first result is relevant
    assert m["ndcg@10"] == pytest.approx(1.0)


def test_ties_break_by_lower_document_number():
    scores = np.zeros((2, 20))
    m = retrieval_metrics(scores, [{0}, {2}])
    assert m["recall@1"] == pytest.approx(0.5)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 3) / 2)
    # a tie straddling the top-k boundary is resolved exactly
    s = np.array([[0.5] * 15 + [0.9]])
    top = search_topk(np.ones((1, 16)), np.eye(16), 3)  # all-equal scores
    assert top.tolist() == [[0, 1, 2]]
    m4 = retrieval_metrics(s, [{15}])
    assert m4["recall@1"] == 1.0


def test_embeddings_and_chunking_match_score_matrix():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(7, 8)).astype(np.float32)
    d = rng.normal(size=(30, 8)).astype(np.float32)
    qrels = [{int(i)} for i in rng.integers(0, 30, size=7)]
    a = retrieval_metrics(q @ d.T, qrels)
    b = retrieval_metrics(q, qrels, d, chunk_size=2)
    for key in ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"):
        assert a[key] == pytest.approx(b[key])


def test_search_topk_groups_take_the_best_passage():
    docs = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)  # doc 0 = rows 0,1; doc 1 = row 2
    top = search_topk(np.array([[0.0, 1.0]], dtype=np.float32), docs, 2, doc_groups=np.array([0, 0, 1]))
    assert top.tolist() == [[0, 1]]


def test_retrieval_metrics_rejects_bad_qrels():
    with pytest.raises(InputError, match="no relevant"):
        retrieval_metrics(np.eye(2), [{0}, set()])
    with pytest.raises(InputError, match="out of range"):
        retrieval_metrics(np.eye(2), [{0}, {5}])
    with pytest.raises(InputError, match="qrel sets"):
        retrieval_metrics(np.eye(2), [{0}])


def test_average_ranks_and_spearman_with_ties():
    assert average_ranks([10, 20, 20, 30]).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert average_ranks([3, 1, 3, 3]).tolist() == [3.0, 1.0, 3.0, 3.0]
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 3, 2, 4]: rho = 4.5 / sqrt(4.5 * 5) = 3 / sqrt(10)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(3 / math.sqrt(10))
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_pearson_matches_numpy():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])


def test_roc_auc_separable_inseparable_and_ties():
    assert roc_auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert roc_auc([0.1, 0.2], [0.9, 0.8]) == 0.0
    assert roc_auc([0.5, 0.5], [0.5, 0.5]) == 0.5
    assert roc_auc([0.8, 0.4], [0.6, 0.2]) == pytest.approx(0.75)  # 3 of 4 pairs ordered
    assert roc_auc([0.5], [0.5, 0.1]) == pytest.approx(0.75)  # a tie counts half


# ----------------------------------------------------------------------------------- adapters
def test_bitext_tasks_dedupe_and_qrels(tmp_path):
    f = write_tsv(
        tmp_path / "toy-tur-eng.tsv",
        ["tr", "en"],
        [
            ["Merhaba", "Hello"],
            ["Merhaba", "Hi"],
            ["Kedi", "Cat"],
            ["Pisi", "Cat"],
            ["Kedi", "Cat"],
        ],
    )
    tr_en, en_tr = bitext_tasks(f)
    assert tr_en.name == "toy.tr-en" and en_tr.name == "toy.en-tr"
    assert tr_en.queries == ["Merhaba", "Kedi", "Pisi"]
    assert tr_en.corpus == ["Hello", "Hi", "Cat"]
    assert tr_en.qrels == [{0, 1}, {2}, {2}]
    assert en_tr.queries == ["Hello", "Hi", "Cat"]
    assert en_tr.qrels == [{0}, {0}, {1, 2}]
    assert bitext_tasks(f, "x", limit=2)[0].queries == ["Merhaba"]


def test_bitext_perfect_with_fake_encoder(tmp_path):
    enc = FakeEncoder(dim=256)
    for task in bitext_tasks(identity_bitext(tmp_path / "b.tsv")):
        m = evaluate_task(enc, task)
        assert m["accuracy"] == m["accuracy@1"] == m["recall@1"] == pytest.approx(1.0)
        assert m["n_queries"] == len(BITEXT_ROWS)


def test_evaluate_retrieval_uses_query_and_document_roles():
    enc = FakeEncoder()
    m = evaluate_retrieval(enc, ["kedi", "köpek"], ["köpek havlar", "kedi miyavlar", "kuş"], [{1}, {0}])
    assert m["recall@1"] == pytest.approx(1.0)
    assert enc.calls == {"query": 2, "document": 3}


def test_squad_task_monolingual_and_aligned(tmp_path):
    tr = squad_json(
        tmp_path / "tr.json",
        [
            (
                "A",
                [
                    ("Ankara başkenttir.", [("q1", "Başkent neresi?"), ("q2", "Ankara nedir?")]),
                    ("İzmir bir liman kentidir.", [("q3", "Liman kenti hangisi?")]),
                ],
            ),
            ("B", [("Ankara başkenttir.", [("q4", "Türkiye'nin başkenti?")])]),  # duplicate paragraph
            ("C", [("Soru sorulmamış bir paragraf.", [])]),  # no questions: still a distractor
        ],
    )
    t = squad_task(tr)
    assert t.corpus == ["Ankara başkenttir.", "İzmir bir liman kentidir.", "Soru sorulmamış bir paragraf."]
    assert t.queries == ["Başkent neresi?", "Ankara nedir?", "Liman kenti hangisi?", "Türkiye'nin başkenti?"]
    assert t.qrels == [{0}, {0}, {1}, {0}]
    assert t.split_passages
    assert squad_task(tr, limit=1).queries == ["Başkent neresi?"]

    en = squad_json(
        tmp_path / "en.json",
        [
            (
                "A",
                [
                    (
                        "Ankara is the capital.",
                        [("q1", "Where is the capital?"), ("q3", "Which is the port city?")],
                    )
                ],
            ),
        ],
    )
    x = squad_task(tr, en)
    assert x.queries == ["Where is the capital?", "Which is the port city?"]
    assert x.qrels == [{0}, {1}]
    assert x.corpus == t.corpus
    assert x.name == "tr.en"

    other = squad_json(tmp_path / "other.json", [("A", [("c", [("zz", "q?")])])])
    with pytest.raises(DataError, match="share question ids"):
        squad_task(tr, other)
    m = evaluate_task(FakeEncoder(dim=512), t)
    assert 0.0 <= m["ndcg@10"] <= 1.0 and m["n_docs"] == 3 and m["n_passages"] == 3


def test_squad_malformed(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [{"title": "x"}]}', encoding="utf-8")
    with pytest.raises(DataError, match="not SQuAD v1.1"):
        squad_task(bad)
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.json:1: invalid JSON"):
        squad_task(bad)


def test_english_check_construction(tmp_path):
    f = write_tsv(
        tmp_path / "a.tsv",
        ["tr", "en"],
        [
            ["x", "the quick brown fox jumps over the lazy dog"],
            ["y", "too short"],
            ["z", "one two three four five six seven eight nine ten"],
            ["w", "the quick brown fox jumps over the lazy dog"],  # duplicate: one document
        ],
    )
    t = english_check_task(f, seed=3)
    assert t.corpus == [
        "the quick brown fox jumps over the lazy dog",
        "too short",
        "one two three four five six seven eight nine ten",
    ]
    assert t.qrels == [{0}, {2}]
    assert [len(q.split()) for q in t.queries] == [9 - 3, 10 - 3]  # round(0.3 * n) words dropped
    for q, rel in zip(t.queries, t.qrels, strict=True):
        original = t.corpus[next(iter(rel))].split()
        it = iter(original)
        assert all(w in it for w in q.split())  # an order-preserving subsequence
    assert english_check_task(f, seed=3).queries == t.queries  # deterministic
    assert english_check_task([f, f], seed=3).corpus == t.corpus
    m = evaluate_task(FakeEncoder(dim=512), t)
    assert m["ndcg@10"] > 0.5
    with pytest.raises(InputError):
        english_check_task(f, drop=1.5)


def test_load_qrels_files(tmp_path):
    q = write_tsv(tmp_path / "q.tsv", ["id", "text"], [["a", "kedi"], ["b", "köpek"], ["c", "kuş"]])
    c = write_tsv(tmp_path / "c.tsv", ["id", "text"], [["d1", "kedi miyav"], ["d2", "köpek hav"]])
    r = write_tsv(
        tmp_path / "r.tsv",
        ["query-id", "corpus-id", "score"],
        [["a", "d1", "1"], ["b", "d2", "1"], ["b", "d1", "0"]],
    )
    t = load_qrels_files(q, c, r)
    assert t.queries == ["kedi", "köpek"] and t.qrels == [{0}, {1}]
    r2 = write_tsv(tmp_path / "r2.tsv", ["query_id", "doc_id"], [["a", "d9"]])
    with pytest.raises(DataError, match="d9"):
        load_qrels_files(q, c, r2)


# ------------------------------------------------------------------------------- tasviret, sts
def test_tasviret_with_fake_encoder(tmp_path):
    m = evaluate_tasviret(FakeEncoder(dim=1024), tasviret_file(tmp_path / "t.tsv"))
    assert m["n_images"] == 3 and m["n_captions"] == 6
    assert m["n_same_pairs"] == m["n_random_pairs"] == 3
    assert m["gap"] == pytest.approx(m["same_mean"] - m["random_mean"])
    assert m["gap"] > 0.3 and m["auc"] == 1.0 and m["caption_r@1"] == 1.0
    assert m["n_r1_queries"] == 6
    again = evaluate_tasviret(FakeEncoder(dim=1024), tmp_path / "t.tsv")
    assert again == m  # fixed seed


def test_tasviret_metrics_hand_case():
    emb = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.float32)
    m = tasviret_metrics(emb, ["a", "a", "b", "b"], seed=0)
    assert m["same_mean"] == 1.0 and m["random_mean"] == 0.0 and m["gap"] == 1.0 and m["auc"] == 1.0
    same = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=np.float32)  # captions disagree: inverted
    m2 = tasviret_metrics(same, ["a", "a", "b", "b"], seed=0)
    assert m2["same_mean"] == 0.0 and m2["caption_r@1"] == 0.0
    with pytest.raises(DataError, match="two captions"):
        tasviret_metrics(np.eye(2, dtype=np.float32), ["a", "b"])


def test_tasviret_plot(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "plots" / "h.png"
    m = evaluate_tasviret(FakeEncoder(), tasviret_file(tmp_path / "t.tsv"), plot=str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and m["plot"] == str(out)


def test_tasviret_plot_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(TaseSearchError, match=r"pip install 'tase-search\[train\]'"):
        evaluate_tasviret(FakeEncoder(), tasviret_file(tmp_path / "t.tsv"), plot=str(tmp_path / "h.png"))


def test_sts(tmp_path):
    m = evaluate_sts(FakeEncoder(dim=1024), sts_file(tmp_path / "s.tsv"))
    assert m["n"] == 3 and m["spearman"] == pytest.approx(1.0)
    e1 = np.array([[1, 0], [1, 0], [1, 0], [1, 0]], dtype=np.float64)
    e2 = np.array([[1, 0], [0.6, 0.8], [0.6, 0.8], [0, 1]], dtype=np.float64)  # cos 1, .6, .6, 0
    m2 = sts_metrics([4, 3, 2, 1], e1, e2)
    assert m2["spearman"] == pytest.approx(spearman([1, 0.6, 0.6, 0], [4, 3, 2, 1]))
    assert m2["spearman"] == pytest.approx(0.9486833, abs=1e-6)


# --------------------------------------------------------------------------------- data errors
def test_data_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="nope.tsv.*not found"):
        bitext_tasks(tmp_path / "nope.tsv")
    f = write_tsv(tmp_path / "cols.tsv", ["turkish", "english"], [["a", "b"]])
    with pytest.raises(DataError, match=r"cols\.tsv.*needs a header row with tr, en"):
        bitext_tasks(f)
    g = write_tsv(
        tmp_path / "short.tsv", ["score", "sentence1", "sentence2"], [["1", "a", "b"], ["2", "only"]]
    )
    with pytest.raises(DataError, match=r"short\.tsv:3: expected 3 TSV fields"):
        evaluate_sts(FakeEncoder(), g)
    h = write_tsv(
        tmp_path / "score.tsv", ["score", "sentence1", "sentence2"], [["high", "a", "b"], ["1", "c", "d"]]
    )
    with pytest.raises(DataError, match="not a number"):
        evaluate_sts(FakeEncoder(), h)
    empty = tmp_path / "empty.tsv"
    empty.write_text("tr\ten\n", encoding="utf-8")
    with pytest.raises(DataError, match="no data rows"):
        bitext_tasks(empty)


def test_run_suite_missing_data_explains_layout(tmp_path):
    with pytest.raises(DataError) as exc:
        run_suite([FakeEncoder()], tmp_path / "nowhere")
    msg = str(exc.value)
    assert "--data" in msg and "tatoeba-dev-tur-eng.tsv" in msg and "tquad/dev-v0.1.json" in msg
    assert "does not exist" in msg
    with pytest.raises(InputError, match="unknown task"):
        run_suite([FakeEncoder()], make_data_root(tmp_path / "d"), tasks=["nosuchtask"])


# ---------------------------------------------------------------------------------------- suite
def test_run_suite_and_table(tmp_path):
    root = make_data_root(tmp_path / "data")
    lines: list[str] = []
    fake = FakeEncoder(dim=256)
    res = run_suite([fake, FakeEncoder(dim=32, model_id="small")], root, progress=lines.append)
    assert list(res["models"]) == ["fake", "small"]
    assert list(res["tasks"]) == [t.name for t in DEV_SUITE]
    tasks = res["models"]["fake"]["tasks"]
    assert tasks["tatoeba-dev.tr-en"]["metrics"]["accuracy"] == pytest.approx(1.0)
    assert tasks["tasviret"]["metrics"]["auc"] == 1.0
    assert tasks["stsb-tr"]["metrics"]["n"] == 3
    assert all(t["seconds"] >= 0 for t in tasks.values())
    assert len(lines) == 2 * len(DEV_SUITE)
    # embeddings are shared between tasks: the toy tatoeba tr and en sides are the same strings (4 documents
    # in both directions), newstest adds 2 en + 2 tr, english-check re-uses the en documents, tquad adds 2
    assert fake.calls["document"] == len(BITEXT_ROWS) + 2 + 2 + 2
    json.dumps(jsonable(res), allow_nan=False)
    table = format_table(res)
    assert table.splitlines()[0] == "| task | metric | fake | small |"
    assert "| tatoeba-dev.tr-en | accuracy | 1.0000 |" in table
    assert "| tquad | recall@10 |" in table and "time (s)" in table
    assert "same_mean" in format_table(res, all_metrics=True)

    sub = run_suite([FakeEncoder()], root, tasks=["tatoeba-dev", "stsb-tr"], limit=2)
    assert list(sub["tasks"]) == ["tatoeba-dev.tr-en", "tatoeba-dev.en-tr", "stsb-tr"]
    assert sub["models"]["fake"]["tasks"]["stsb-tr"]["metrics"]["n"] == 2


def test_suite_shares_embeddings_between_roles_without_prompts(tmp_path):
    root = make_data_root(tmp_path / "data")
    plain, prompted = FakeEncoder(), FakeEncoder(model_id="prompted")
    plain._prompts = {"query": "", "document": ""}  # like Encoder on a model without prompts
    prompted._prompts = {"query": "query: ", "passage": "passage: "}
    run_suite([plain, prompted], root, tasks=["tatoeba-dev"])
    assert plain.calls == {"query": len(BITEXT_ROWS), "document": 0}  # tr == en strings in the toy file
    assert prompted.calls == {"query": len(BITEXT_ROWS), "document": len(BITEXT_ROWS)}


def test_jsonable_replaces_nan():
    assert jsonable({"a": float("nan"), "b": [np.float32(0.5), np.int64(3)]}) == {"a": None, "b": [0.5, 3]}


# ------------------------------------------------------------------------------------------ CLI
@pytest.fixture
def fake_loader(monkeypatch):
    loaded: list[tuple[str, str, int]] = []

    def load(spec, *, precision, batch_size, device="cpu"):
        loaded.append((spec, precision, batch_size))
        return FakeEncoder(dim=256, model_id=spec)

    monkeypatch.setattr(eval_report, "load_encoder", load)
    for var in ("TASE_SEARCH_MODEL", "TASE_SEARCH_PRECISION", "TASE_SEARCH_BATCH_SIZE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TASE_SEARCH_CONFIG", "/nonexistent/config.toml")
    return loaded


@pytest.mark.parametrize("args", [[], ["tasviret"], ["retrieval"], ["sts"], ["report"]])
def test_cli_help(args):
    for flag in ("-h", "--help"):
        r = CliRunner().invoke(eval_group, [*args, flag])
        assert r.exit_code == 0, r.output
        assert "Example" in r.output


def test_cli_help_does_not_import_heavy_modules():
    code = (
        "import sys; from click.testing import CliRunner; from tase_search.cli.eval import eval_group; "
        "r = CliRunner().invoke(eval_group, ['report', '-h']); assert r.exit_code == 0; "
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'faiss') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_tasviret_json_and_table(tmp_path, fake_loader):
    f = tasviret_file(tmp_path / "t.tsv")
    r = CliRunner().invoke(
        eval_group,
        ["tasviret", str(f), "--model", "m1", "--json", "--precision", "fp32", "--batch-size", "8"],
    )
    assert r.exit_code == 0, r.output
    obj = json.loads(r.output)
    assert obj["model"] == "m1" and obj["tasks"]["tasviret"]["auc"] == 1.0
    assert fake_loader == [("m1", "fp32", 8)]
    r = CliRunner().invoke(eval_group, ["tasviret", str(f)])
    assert r.exit_code == 0 and "gap" in r.output and "caption_r@1" in r.output


def test_cli_retrieval_sources(tmp_path, fake_loader):
    b = identity_bitext(tmp_path / "toy-tur-eng.tsv")
    r = CliRunner().invoke(eval_group, ["retrieval", "--bitext", str(b), "--json"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.output)
    assert set(obj["tasks"]) == {"toy.tr-en", "toy.en-tr"}
    assert obj["tasks"]["toy.tr-en"]["accuracy"] == pytest.approx(1.0)

    tr = squad_json(
        tmp_path / "tr.json",
        [
            (
                "A",
                [
                    ("Ankara başkenttir.", [("q1", "Başkent neresi?")]),
                    ("Kediler miyavlar.", [("q2", "Kediler ne yapar?")]),
                ],
            )
        ],
    )
    en = squad_json(
        tmp_path / "en.json", [("A", [("Ankara is the capital.", [("q1", "Where is the capital?")])])]
    )
    r = CliRunner().invoke(eval_group, ["retrieval", "--squad", str(tr), "--aligned", str(en)])
    assert r.exit_code == 0, r.output
    assert "ndcg@10" in r.output and "tr.en" in r.output

    q = write_tsv(tmp_path / "q.tsv", ["id", "text"], [["a", "kedi"]])
    c = write_tsv(tmp_path / "c.tsv", ["id", "text"], [["d1", "kedi miyav"], ["d2", "köpek"]])
    rel = write_tsv(tmp_path / "r.tsv", ["query_id", "doc_id"], [["a", "d1"]])
    r = CliRunner().invoke(
        eval_group, ["retrieval", "--queries", str(q), "--corpus", str(c), "--qrels", str(rel), "--json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["tasks"]["q"]["recall@1"] == 1.0


def test_cli_retrieval_usage_errors(tmp_path, fake_loader):
    b = identity_bitext(tmp_path / "b.tsv")
    runner = CliRunner()
    r = runner.invoke(eval_group, ["retrieval"])
    assert r.exit_code == 2 and "exactly one" in r.output
    r = runner.invoke(eval_group, ["retrieval", "--bitext", str(b), "--squad", str(b)])
    assert r.exit_code == 2
    r = runner.invoke(eval_group, ["retrieval", "--bitext", str(b), "--aligned", str(b)])
    assert r.exit_code == 2 and "--aligned" in r.output
    r = runner.invoke(eval_group, ["retrieval", "--queries", str(b)])
    assert r.exit_code == 2 and "all three" in r.output
    r = runner.invoke(eval_group, ["retrieval", "--bitext", str(b), "--precision", "fp8"])
    assert r.exit_code == 2
    r = runner.invoke(eval_group, ["retrieval", "--bitext", str(tmp_path / "missing.tsv")])
    assert r.exit_code == 1 and "missing.tsv" in r.output and "not found" in r.output
    assert "Traceback" not in r.output


def test_cli_sts(tmp_path, fake_loader):
    r = CliRunner().invoke(eval_group, ["sts", str(sts_file(tmp_path / "s.tsv")), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["tasks"]["sts"]["n"] == 3
    r = CliRunner().invoke(eval_group, ["sts", str(sts_file(tmp_path / "s.tsv"))])
    assert r.exit_code == 0 and "spearman" in r.output


def test_cli_report(tmp_path, fake_loader):
    root = make_data_root(tmp_path / "data")
    out, md = tmp_path / "res" / "r.json", tmp_path / "res" / "t.md"
    r = CliRunner().invoke(
        eval_group,
        [
            "report",
            "--data",
            str(root),
            "-m",
            "a",
            "-m",
            "b",
            "--out",
            str(out),
            "--markdown",
            str(md),
            "--limit",
            "3",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "| task | metric | a | b |" in r.output
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert list(saved["models"]) == ["a", "b"] and saved["limit"] == 3
    assert md.read_text(encoding="utf-8").startswith("| task | metric | a | b |")
    r = CliRunner().invoke(eval_group, ["report", "--data", str(root), "-m", "a", "-t", "stsb-tr", "--json"])
    assert r.exit_code == 0, r.output
    assert list(json.loads(r.stdout)["tasks"]) == ["stsb-tr"]


def test_cli_report_missing_data(tmp_path, fake_loader):
    r = CliRunner().invoke(eval_group, ["report", "--data", str(tmp_path / "nodata"), "-m", "a"])
    assert r.exit_code == 1
    assert "--data" in r.output and "stsb-tr/dev.tsv" in r.output
    assert fake_loader == []  # nothing loaded before the data check
    r = CliRunner().invoke(eval_group, ["report", "-m", "a"])  # no default data folder
    assert r.exit_code == 2 and "Missing option '--data'" in r.output
    with pytest.raises(InputError, match="pass --data DIR"):
        run_suite([FakeEncoder()], None)
