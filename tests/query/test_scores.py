"""Hit scores (mode, raw parts, calibrated probability, min_score) and highlights, on the fake encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tase_search.errors import InputError
from tase_search.query import calibration as C
from tase_search.retriever import Retriever
from tase_search.testing import FakeEncoder
from tase_search.text.highlight import best_sentences
from tase_search.text.normalize import sentence_spans

PARAGRAPHS = [
    "Osmanlı Devleti 1299 yılında Osman Gazi tarafından kuruldu. İlk başkenti Söğüt oldu. "
    "Daha sonra Bursa ve Edirne başkent oldu.",
    "İbrahim Müteferrika 1727 yılında İstanbul'da ilk Türk matbaasını kurdu. Matbaada basılan ilk "
    "kitap Vankulu Lügati idi. Matbaa 1742 yılına kadar çalıştı.",
    "Cebir matematiğin bir dalıdır. Denklemler ve bilinmeyenler cebirin konusudur. Harezmi cebirin "
    "kurucusu sayılır.",
    "Fotosentez bitkilerin güneş ışığını kullanarak besin üretmesidir. Yapraklardaki klorofil ışığı "
    "emer. Bu süreçte oksijen açığa çıkar.",
    "Pîrî Reis 1513 yılında bir dünya haritası çizdi. Harita Amerika kıyılarını gösterir. Harita bugün "
    "Topkapı Sarayı'nda saklanır.",
]
QUESTIONS = [
    ("Osmanlı Devleti hangi yılda kuruldu", "0"),
    ("ilk Türk matbaasını kim kurdu", "1"),
    ("fotosentez nedir", "3"),
]


@pytest.fixture
def index(tmp_path: Path) -> Retriever:
    docs = [{"id": str(i), "text": t} for i, t in enumerate(PARAGRAPHS)]
    return Retriever.build(docs, model=FakeEncoder(), path=tmp_path / "ix", factory="Flat")


def _calibrated(r: Retriever) -> C.Calibration:
    """A calibration on the fake encoder's scale, set on the opened index."""
    cal = C.Calibration(
        {
            "dense": C.Logistic(-4.0, dense=8.0),
            "sparse": C.Logistic(-3.0, keyword=5.0),
            "hybrid": C.Logistic(-5.0, dense=6.0, keyword=5.0),
        }
    )
    searcher = r._open()
    searcher.calibration = cal
    searcher.keyword_calibration = cal.modes["sparse"]
    return cal


@pytest.mark.parametrize("calibrated", [False, True])
@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid", "auto"])
def test_every_hit_says_its_mode_and_parts_and_scores_fall(
    index: Retriever, mode: str, calibrated: bool
) -> None:
    if calibrated:
        _calibrated(index)
    for q, _ in QUESTIONS:
        hits = index.search(q, k=5, mode=mode)
        assert hits
        ran = "hybrid" if mode == "auto" else mode  # a Turkish query over a Turkish corpus
        for h in hits:
            assert h.mode == ran
            assert (h.dense_score is None) == (ran == "sparse")
            assert (h.keyword_score is None) == (ran == "dense")
            d = h.to_dict()
            assert {"mode", "dense_score", "keyword_score", "score_kind", "highlight"} <= set(d)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        kinds = {h.score_kind for h in hits}
        if calibrated:
            assert kinds == {"probability"} and all(0 <= s <= 1 for s in scores)
        else:
            assert (
                kinds == {{"dense": "cosine", "sparse": "probability"}.get(ran, "fused")} or ran == "sparse"
            )


def test_calibrated_scores_keep_the_ranking(index: Retriever) -> None:
    """Calibration changes what scores mean, not the order: dense and sparse by their part, hybrid by
    the fused ranking (a hit's score capped at the one above it)."""
    q = "ilk Türk matbaasını kim kurdu"
    before = {m: [h.id for h in index.search(q, k=5, mode=m)] for m in ("dense", "sparse", "hybrid")}
    cal = _calibrated(index)
    for mode, ids in before.items():
        hits = index.search(q, k=5, mode=mode)
        assert [h.id for h in hits] == ids
        assert {h.score_kind for h in hits} == {"probability"}
    dense = index.search(q, k=5, mode="dense")
    for h in dense[1:]:  # not the leader: no lead
        assert h.score == pytest.approx(cal.modes["dense"].of({"dense": h.dense_score}))
    assert dense[0].score >= cal.modes["dense"].of({"dense": dense[0].dense_score})
    hybrid = index.search(q, k=5, mode="hybrid")
    assert hybrid[0].id == "1"


def test_min_score_filters_after_scoring(index: Retriever) -> None:
    _calibrated(index)
    everything = index.search("Osmanlı Devleti hangi yılda kuruldu", k=5, mode="hybrid")
    cut = sorted(h.score for h in everything)[len(everything) // 2]
    kept = index.search("Osmanlı Devleti hangi yılda kuruldu", k=5, mode="hybrid", min_score=cut)
    assert kept and all(h.score >= cut for h in kept)
    assert [h.id for h in kept] == [h.id for h in everything if h.score >= cut]
    assert [h.rank for h in kept] == list(range(1, len(kept) + 1))
    assert index.search("Osmanlı Devleti", k=5, min_score=1.01) == []
    with pytest.raises(InputError, match="min_score"):
        index.search("Osmanlı", min_score="high")  # type: ignore[arg-type]


def test_keyword_score_is_normalised_by_the_query(index: Retriever) -> None:
    """An off-topic query's words are not in the corpus: its keyword scores stay far below a matching
    query's, whatever the raw BM25 scale."""
    on = index.search("Pîrî Reis dünya haritası", k=1, mode="sparse")[0]
    off = index.search("pizza hamuru nasıl yapılır", k=3, mode="sparse")
    assert on.id == "4" and on.keyword_score > 0.5
    assert all(h.keyword_score < 0.3 for h in off)


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_highlight_is_a_sentence_of_the_passage(index: Retriever, mode: str) -> None:
    hits = index.search("ilk kitap hangisiydi matbaada", k=5, mode=mode, highlight=True)
    assert hits
    for h in hits:
        hl = h.highlight
        assert hl is not None
        assert 0 <= hl.start < hl.end <= len(h.passage.text)
        assert hl.text == h.passage.text[hl.start : hl.end]
        assert h.to_dict()["highlight"] == {"start": hl.start, "end": hl.end, "text": hl.text}
    top = next(h for h in hits if h.id == "1")
    assert top.highlight is not None and "Vankulu" in top.highlight.text
    assert all(h.highlight is None for h in index.search("matbaa", k=2, mode=mode))


def test_best_sentence_by_words_and_by_encoder() -> None:
    passage = PARAGRAPHS[3]
    ((s, e),) = best_sentences("oksijen açığa çıkar mı", [passage], None)
    assert "oksijen" in passage[s:e]
    ((s, e),) = best_sentences("klorofil ışığı emer", [passage], FakeEncoder().encode_query)
    assert "klorofil" in passage[s:e]
    assert best_sentences("x", [""], None) == [None]


def test_sentence_spans_keep_turkish_ordinals_abbreviations_and_initials() -> None:
    text = (
        "19. yüzyılda II. Mahmud reform yaptı. Dr. Ahmet geldi mi? M. Kemal 1881'de doğdu!\n"
        "Sayı 3.5 olarak yazılır. Son"
    )
    got = [text[s:e] for s, e in sentence_spans(text)]
    assert got == [
        "19. yüzyılda II. Mahmud reform yaptı.",
        "Dr. Ahmet geldi mi?",
        "M. Kemal 1881'de doğdu!",
        "Sayı 3.5 olarak yazılır.",
        "Son",
    ]
    assert sentence_spans("   ") == []
    assert sentence_spans("tek cümle") == [(0, 9)]


def test_calibration_file_round_trip_and_fingerprint(tmp_path: Path) -> None:
    cal = C.Calibration({"dense": C.Logistic(-10.0, dense=14.0)}, fingerprint="abc", meta={"fitted_on": {}})
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / C.FILE).write_text(cal.to_json(), encoding="utf-8")
    back = C.for_model(str(model_dir), "abc")
    assert back is not None and back.modes["dense"] == cal.modes["dense"]
    assert C.for_model(str(model_dir), "other weights") is None  # fitted on other weights: not used
    (model_dir / C.FILE).write_text(json.dumps({"format": 1, "modes": {"dense": {"bias": "x"}}}))
    assert C.for_model(str(model_dir), "abc") is None
    assert C.for_model("some/hub-id", None) is None
    assert C.Logistic(0.0).of({}) == 0.5


def test_fit_logistic_and_reliability() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(4000, 1))
    p = 1 / (1 + np.exp(-(12 * x[:, 0] - 8)))
    y = (rng.uniform(size=len(p)) < p).astype(int)
    w, b = C.fit_logistic(x, y)
    assert w[0] == pytest.approx(12, rel=0.15) and b == pytest.approx(-8, rel=0.15)
    fitted = 1 / (1 + np.exp(-(w[0] * x[:, 0] + b)))
    table, ece = C.reliability(fitted, y)
    assert ece < 0.03
    assert sum(row["n"] for row in table) == len(y)
    assert C.PROBABLY_NOT_RELEVANT < C.PROBABLY_RELEVANT


def test_http_search_says_the_mode_and_takes_min_score_and_highlight(index: Retriever) -> None:
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    from tase_search.server.app import ServerThread, create_app

    app = create_app({"ix": Retriever.load(index.path, model=FakeEncoder())})
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        body = client.post(
            "/indexes/ix/search", json={"query": "matbaada basılan ilk kitap", "k": 3, "highlight": True}
        ).json()
        assert body["mode"] == "auto"
        hits = body["results"][0]["hits"]
        assert hits and all(h["mode"] == "hybrid" and h["score_kind"] for h in hits)
        assert all(h["dense_score"] is not None and h["keyword_score"] is not None for h in hits)
        top = hits[0]
        assert (
            top["passage"]["text"][top["highlight"]["start"] : top["highlight"]["end"]]
            == top["highlight"]["text"]
        )
        got = client.get(
            "/indexes/ix/search", params={"query": "matbaa", "mode": "dense", "min_score": 2}
        ).json()
        assert got["mode"] == "dense" and got["results"][0]["hits"] == []


def test_bundled_model_has_a_calibration_of_its_weights() -> None:
    """After new weights: `tase-search eval calibrate --data DIR -m default` writes a new one."""
    golden = json.loads(
        (Path(__file__).resolve().parents[1] / "golden" / "default-model.json").read_text(encoding="utf-8")
    )
    cal = C.for_model("default", golden["fingerprint"])
    assert cal is not None, "calibration.json is missing or was fitted on other weights"
    assert set(cal.modes) == {"dense", "sparse", "hybrid"}
    assert C.keyword_only() == cal.modes["sparse"]
