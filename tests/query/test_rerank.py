"""The reranker: probabilities equal to a pair-by-pair forward pass, order, errors, and a tiny trained one."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from tase_search.errors import InputError, ModelError
from tase_search.query.calibration import PROBABLY_NOT_RELEVANT, PROBABLY_RELEVANT
from tase_search.query.rerank import Reranker, check_rerank
from tase_search.results import Hit, PassageRef
from tase_search.testing.tiny_models import build_tiny_reranker

PASSAGES = [
    "galatasaray fenerbahçe maçı yarın istanbul",
    "yarın ankara hava yağmur",
    "kedi ve köpek okul",
    "bilgisayar yazılım müzik şarkı çok güzel bir bu da de ile için çok güzel yarın bugün kahve",
    "çay",
]


@pytest.fixture(scope="module")
def tiny_reranker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_reranker(tmp_path_factory.mktemp("reranker") / "model")


def _hit(i: int, text: str) -> Hit:
    return Hit(
        id=f"d{i}",
        score=1.0 - i / 10,
        text=text,
        metadata={},
        passage=PassageRef(0, 1, 0, len(text), text),
        rank=i + 1,
        mode="dense",
        dense_score=0.5,
    )


def test_scores_are_the_pairwise_probabilities_in_input_order(tiny_reranker_dir: Path) -> None:
    import torch

    rr = Reranker.load(str(tiny_reranker_dir), precision="fp32", batch_size=2)
    got = rr.score("futbol maçı", PASSAGES)
    assert got.shape == (len(PASSAGES),) and ((got > 0) & (got < 1)).all()
    want = []
    with torch.inference_mode():
        for p in PASSAGES:  # brute force: one pair at a time, no sorting, no padding
            enc = rr.tokenizer(
                "futbol maçı", p, truncation="only_second", max_length=rr.max_length, return_tensors="pt"
            )
            want.append(float(torch.sigmoid(rr.model(**enc).logits.reshape(-1))[0]))
    assert np.allclose(got, want, atol=1e-5)
    assert rr.score("futbol maçı", []).shape == (0,)


def test_bf16_weights_stay_close_to_fp32(tiny_reranker_dir: Path) -> None:
    fp32 = Reranker.load(str(tiny_reranker_dir), precision="fp32").score("hava", PASSAGES)
    bf16 = Reranker.load(str(tiny_reranker_dir), precision="bf16").score("hava", PASSAGES)
    assert np.abs(fp32 - bf16).max() < 0.02


def test_int8_weights_stay_close_to_fp32(tiny_reranker_dir: Path) -> None:
    import torch

    fp32 = Reranker.load(str(tiny_reranker_dir), precision="fp32").score("hava", PASSAGES)
    rr = Reranker.load(str(tiny_reranker_dir), precision="int8")
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in rr.model.modules())
    assert np.abs(fp32 - rr.score("hava", PASSAGES)).max() < 0.05


def test_rerank_orders_by_probability_and_says_so(tiny_reranker_dir: Path) -> None:
    rr = Reranker.load(str(tiny_reranker_dir), precision="fp32")
    hits = [_hit(i, t) for i, t in enumerate(PASSAGES)]
    probs = rr.score("kedi", PASSAGES)
    out = rr.rerank("kedi", hits, limit=3)
    assert [h.id for h in out] == [f"d{i}" for i in np.argsort(-probs, kind="stable")[:3]]
    assert [h.rank for h in out] == [1, 2, 3]
    assert all(h.score_kind == "probability" and h.score == h.rerank_score for h in out)
    assert out[0].dense_score == 0.5 and out[0].mode == "dense"  # the search's own parts are kept
    assert rr.rerank("kedi", []) == []


def test_blend_ranks_by_the_mean_of_both_probabilities(tiny_reranker_dir: Path) -> None:
    import dataclasses

    rr = Reranker.load(str(tiny_reranker_dir), precision="fp32", blend=True)
    first = [0.9, 0.1, 0.6, 0.3, 0.75, 0.45, 0.2, 0.05][: len(PASSAGES)]
    hits = [
        dataclasses.replace(_hit(i, t), score=first[i], score_kind="probability")
        for i, t in enumerate(PASSAGES)
    ]
    probs = rr.score("kedi", PASSAGES)
    mean = (probs + np.asarray(first)) / 2
    out = rr.rerank("kedi", hits)
    assert [h.id for h in out] == [f"d{i}" for i in np.argsort(-mean, kind="stable")]
    assert [h.score for h in out] == pytest.approx(sorted(mean, reverse=True))
    assert all(h.rerank_score == pytest.approx(probs[int(h.id[1:])]) for h in out)
    raw = [dataclasses.replace(h, score_kind="cosine") for h in hits]  # not a probability: reranker alone
    assert [h.score for h in rr.rerank("kedi", raw)] == pytest.approx(sorted(probs, reverse=True))


def test_a_model_with_several_outputs_is_refused(tmp_path: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    out = build_tiny_reranker(tmp_path / "m")
    cfg = BertConfig.from_pretrained(out)
    cfg.num_labels = 3
    BertForSequenceClassification(cfg).save_pretrained(out)
    with pytest.raises(ModelError, match="not a reranker: it has 3 outputs"):
        Reranker.load(str(out))


@pytest.mark.parametrize("bad", [-1, 1001, 2.5, "20", True, None])
def test_rerank_count_is_checked(bad: object) -> None:
    with pytest.raises(InputError, match="rerank="):
        check_rerank(bad)
    assert check_rerank(0) == 0 and check_rerank(20) == 20


@pytest.mark.slow
def test_a_trained_tiny_reranker_puts_the_matching_passage_first(tiny_reranker_dir: Path) -> None:
    """Trained for a few steps on "is the passage about the query's topic", it must rank and score by it:
    a query-passage interaction that only a cross-encoder (not a passage prior) can learn."""
    import torch
    from transformers import BertForSequenceClassification

    topics = {
        "futbol": "maç galatasaray fenerbahçe futbol".split(),
        "yağmur": "hava yağmur deprem şehir".split(),
    }
    filler = "kedi köpek okul çay kahve müzik bilgisayar".split()
    rng = random.Random(0)
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(tiny_reranker_dir)
    tokenizer = Reranker.load(str(tiny_reranker_dir), precision="fp32").tokenizer
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(200):
        qs, ps, ys = [], [], []
        for _ in range(32):
            q = rng.choice(list(topics))
            label = rng.random() < 0.5
            body = rng.sample(filler, 2) + rng.sample(topics[q if label else ({*topics} - {q}).pop()], 2)
            rng.shuffle(body)
            qs.append(q)
            ps.append(" ".join(body))
            ys.append(float(label))
        enc = tokenizer(qs, ps, padding=True, return_tensors="pt")
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            model(**enc).logits.reshape(-1), torch.tensor(ys)
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    trained = Reranker(model, tokenizer, "tiny-trained", blend=False)  # its own probability
    hits = [
        _hit(0, "okul maç kedi galatasaray"),
        _hit(1, "hava çay deprem müzik"),
    ]
    for query, want in (("futbol", "d0"), ("yağmur", "d1")):
        out = trained.rerank(query, hits)
        assert out[0].id == want, (query, [(h.id, round(h.score, 3)) for h in out])
        assert out[0].score > PROBABLY_RELEVANT and out[-1].score < PROBABLY_NOT_RELEVANT


DOCS = [{"id": f"d{i}", "text": t, "metadata": {"n": i}} for i, t in enumerate(PASSAGES)]


def test_retriever_rerank_equals_search_then_rerank(tmp_path: Path, tiny_reranker_dir: Path) -> None:
    from tase_search import Retriever
    from tase_search.testing import FakeEncoder

    rr = Reranker.load(str(tiny_reranker_dir), precision="fp32")
    Retriever.build(DOCS, model=FakeEncoder(), path=tmp_path / "ix")
    r2 = Retriever.load(tmp_path / "ix", model=FakeEncoder(), reranker=rr)
    for mode in ("dense", "sparse", "hybrid", "auto"):
        plain = r2.search("yarın hava", k=4, mode=mode)
        got = r2.search("yarın hava", k=2, mode=mode, rerank=4)
        want = rr.rerank("yarın hava", plain, limit=2)
        assert [(h.id, h.score) for h in got] == [(h.id, h.score) for h in want]
        assert all(h.mode == plain[0].mode and h.score_kind == "probability" for h in got)
    # k above rerank: every candidate is reranked; min_score applies to the reranker's probability
    both = r2.search("yarın hava", k=5, rerank=2, mode="dense")
    assert sorted(h.score for h in both) == sorted(rr.score("yarın hava", [h.passage.text for h in both]))
    line = sorted(h.score for h in both)[2]
    kept = r2.search("yarın hava", k=5, rerank=2, mode="dense", min_score=line)
    assert [h.id for h in kept] == [h.id for h in both if h.score >= line] and [h.rank for h in kept] == [
        1,
        2,
        3,
    ]
    assert r2.search(["yarın hava", "kedi"], k=2, rerank=3)[1][0].rerank_score is not None


def test_rerank_setting_and_reranker_spec(
    tmp_path: Path, tiny_reranker_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tase_search import Retriever
    from tase_search.testing import FakeEncoder

    Retriever.build(DOCS, model=FakeEncoder(), path=tmp_path / "ix")
    monkeypatch.setenv("TASE_SEARCH_RERANKER", str(tiny_reranker_dir))
    monkeypatch.setenv("TASE_SEARCH_RERANK", "3")
    r = Retriever.load(tmp_path / "ix", model=FakeEncoder())
    hits = r.search("kedi", k=2, mode="dense")
    assert all(h.rerank_score is not None for h in hits)
    assert r.search("kedi", k=2, mode="dense", rerank=0)[0].rerank_score is None
    monkeypatch.setenv("TASE_SEARCH_RERANK", "5000")
    with pytest.raises(InputError, match="rerank 5000 is out of range"):
        Retriever.load(tmp_path / "ix", model=FakeEncoder()).search("kedi")
    monkeypatch.delenv("TASE_SEARCH_RERANK")
    with pytest.raises(InputError, match="has no rerank"):
        Retriever.load(tmp_path / "ix", model=FakeEncoder(), reranker=object()).search("kedi", rerank=2)
    with pytest.raises(ModelError):
        Retriever.load(tmp_path / "ix", model=FakeEncoder(), reranker=str(tmp_path / "nothing")).search(
            "kedi", rerank=2
        )


def test_a_questions_only_reranker_leaves_other_queries_to_the_search(
    tmp_path: Path, tiny_reranker_dir: Path
) -> None:
    """A reranker trained on questions (its directory's rerank.json) reads questions; a bare name or
    title keeps the search's own order and scores."""
    import json
    import shutil

    from tase_search import Retriever
    from tase_search.testing import FakeEncoder

    rr_dir = tmp_path / "rr"
    shutil.copytree(tiny_reranker_dir, rr_dir)
    (rr_dir / "rerank.json").write_text(json.dumps({"queries": "questions"}))
    rr = Reranker.load(str(rr_dir), precision="fp32")
    assert rr.questions_only and not Reranker.load(str(tiny_reranker_dir)).questions_only
    Retriever.build(DOCS, model=FakeEncoder(), path=tmp_path / "ix")
    r = Retriever.load(tmp_path / "ix", model=FakeEncoder(), reranker=rr)
    plain = r.search("yarın hava", k=3, mode="dense")
    assert [(h.id, h.score, h.rerank_score) for h in r.search("yarın hava", k=3, mode="dense", rerank=5)] == [
        (h.id, h.score, None) for h in plain
    ]
    asked = r.search("yarın hava nasıl olacak?", k=3, mode="dense", rerank=5)
    assert all(h.rerank_score is not None for h in asked)
    (rr_dir / "rerank.json").write_text("[1, 2]")
    with pytest.raises(ModelError, match="rerank.json"):
        Reranker.load(str(rr_dir))
