"""What a hit's probability is computed from (tase_search/query/calibration.py FEATURES), against
brute-force references: the dense gap and rank, the keyword coverage, one and several segments."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tase_search.query import calibration as C
from tase_search.retriever import Retriever
from tase_search.testing import FakeEncoder
from tase_search.text.analysis import document_terms, query_term_groups

DOCS = [
    "bebek arabası tavsiyesi için mağazaya gittik ve bir araba seçtik",
    "arabası arabası arabası yolda kaldı",
    "deniz kenarında güneş ve kum",
    "kitap okumak bebek için faydalıdır",
    "okul yolunda kuşlar ve ağaçlar",
    "elma ve armut ağacı bahçede",
]


def _index(tmp_path: Path, docs: list[str], name: str = "ix") -> Retriever:
    return Retriever.build(
        [{"id": str(i), "text": t} for i, t in enumerate(docs)],
        model=FakeEncoder(),
        path=tmp_path / name,
        factory="Flat",
    )


def _recorded(r: Retriever, query: str, mode: str, k: int = 10) -> list[tuple[str, dict[str, float]]]:
    with r._open().recording_features() as found:
        r.search(query, k=k, mode=mode)
    (per_query,) = found
    return per_query


def _brute_coverage(query: str, text: str, corpus: list[str]) -> float:
    """The share of the query's words (each: its group of analyses, weighted by FTS5's IDF of its most
    common analysis) whose terms the text's analysis holds, counted over ``corpus`` directly."""
    analysed = [set(document_terms(t).split()) for t in corpus]
    held = set(document_terms(text).split())
    groups = query_term_groups(query)
    weights = []
    for g in groups:
        n = max(sum(t in a for a in analysed) for t in g)
        weights.append(max(math.log((len(corpus) - n + 0.5) / (n + 0.5)), 1e-6))
    return sum(w for g, w in zip(groups, weights) if any(t in held for t in g)) / sum(weights)


def test_dense_gap_and_top_against_brute_force(tmp_path: Path) -> None:
    """The gap is the cosine minus the query's mean cosine to the background sentences."""
    r = _index(tmp_path, DOCS)
    enc = FakeEncoder()
    q = "bebek arabası"
    qv = np.asarray(enc.encode_query([q]))[0]
    cos = np.asarray(enc.encode_document(DOCS)) @ qv
    background = ["güneşli bir günde yürüyüşe çıktık", "toplantı yarın saat onda başlayacak"]
    bg_vectors = np.asarray(enc.encode_document(background))
    cal = C.Calibration(
        {"dense": C.Logistic(-1.0, dense=1.0)},
        background=tuple(float(v) for v in bg_vectors.mean(axis=0)),
    )
    r._open().calibration = cal
    got = _recorded(r, q, "dense")
    assert sorted(doc for doc, _ in got) == sorted(str(i) for i in range(len(DOCS)))  # ties: any order
    assert [f["dense"] for _, f in got] == pytest.approx(sorted(cos, reverse=True), abs=1e-5)
    second = sorted(cos, reverse=True)[1]
    for rank, (doc, f) in enumerate(got):
        c = cos[int(doc)]
        assert f["dense_gap"] == pytest.approx(c - float(np.mean(bg_vectors @ qv)), abs=1e-5)
        assert f["top"] == float(rank == 0)
        assert f["dense_lead"] == pytest.approx(max(0.0, c - second) if rank == 0 else 0.0, abs=1e-5)
    r._open().calibration = None
    assert all(f["dense_gap"] == 0.0 for _, f in _recorded(r, q, "dense"))  # no background: no gap


def test_coverage_counts_each_query_word_once_by_idf(tmp_path: Path) -> None:
    r = _index(tmp_path, DOCS)
    q = "bebek arabası tavsiyesi"
    got = dict(_recorded(r, q, "sparse"))
    assert got["0"]["coverage"] == pytest.approx(1.0)  # every word
    assert got["1"]["coverage"] < 0.5  # one word, however often
    for doc, f in got.items():
        assert f["coverage"] == pytest.approx(_brute_coverage(q, DOCS[int(doc)], DOCS), abs=1e-9)
    # BM25 ranks the repeated single word high; coverage tells the two apart
    assert got["1"]["keyword"] > 0 and got["0"]["coverage"] > got["1"]["coverage"]


def test_coverage_over_segments_equals_one_segment(tmp_path: Path) -> None:
    one = _index(tmp_path, DOCS, "one")
    seg = _index(tmp_path, DOCS[:3], "seg")
    seg.add([{"id": str(i), "text": t} for i, t in enumerate(DOCS) if i >= 3])
    seg.delete(["2"])
    seg.add([{"id": "2", "text": DOCS[2]}])
    for q in ("bebek arabası tavsiyesi", "elma ağacı", "okul yolunda kuşlar"):
        a, b = dict(_recorded(one, q, "sparse")), dict(_recorded(seg, q, "sparse"))
        assert a.keys() == b.keys()
        for doc in a:
            assert b[doc]["coverage"] == pytest.approx(a[doc]["coverage"], abs=1e-9)


def test_scores_are_the_regression_of_the_recorded_features(tmp_path: Path) -> None:
    """Each mode's probability is its regression of the features recorded for the hit; sparse keeps
    BM25's order, a score capped at the one above it."""
    r = _index(tmp_path, DOCS)
    cal = C.Calibration(
        {
            "dense": C.Logistic(-4.0, dense=8.0, dense_lead=2.0, dense_gap=3.0, top=1.0),
            "sparse": C.Logistic(-3.0, keyword=-1.0, keyword_lead=2.0, coverage=6.0),
            "hybrid": C.Logistic(-5.0, dense=6.0, keyword=5.0),
        }
    )
    s = r._open()
    s.calibration, s.keyword_calibration = cal, cal.modes["sparse"]
    q = "bebek arabası tavsiyesi"
    for mode in ("dense", "sparse"):
        with s.recording_features() as found:
            hits = r.search(q, k=10, mode=mode)
        probs = [cal.modes[mode].of(f) for _, f in found[0]]
        want = list(np.minimum.accumulate(probs)) if mode == "sparse" else probs
        assert [h.score for h in hits] == pytest.approx(want)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    raw = [h.id for h in r.search(q, k=10, mode="sparse")]
    s.calibration, s.keyword_calibration = None, None
    assert [h.id for h in r.search(q, k=10, mode="sparse")] == raw


def test_a_calibration_file_without_the_new_weights_still_reads(tmp_path: Path) -> None:
    text = '{"format": 1, "fingerprint": null, "modes": {"dense": {"bias": -1.0, "dense": 2.0}}}'
    cal = C.Calibration.from_json(text)
    assert cal.modes["dense"].dense_gap == 0.0 and cal.modes["dense"].of({"dense": 0.5}) == pytest.approx(0.5)
    assert cal.background is None
    back = C.Calibration.from_json(C.Calibration(cal.modes, background=(0.5, -0.25)).to_json())
    assert back.background == (0.5, -0.25) and "background" not in back.meta
    for bad in ('"x"', "[]", '[1, "a"]', "[true]", "[1e999]"):
        with pytest.raises(ValueError, match="background"):
            C.Calibration.from_json(text[:-1] + f', "background": {bad}}}')
