"""Keyword analysis (Turkish casing, apostrophes, stemming, accents), language guessing and rank fusion."""

from __future__ import annotations

import pytest

from tase_search.errors import InputError
from tase_search.query.fusion import fuse, rrf, weighted
from tase_search.query.modes import AUTO, DENSE_WEIGHT, auto_mode, check_search_mode, dense_weight, relation
from tase_search.text import analysis as A
from tase_search.text.language import corpus_language, detect_language


def terms(text: str) -> list[str]:
    return A.document_terms(text).split()


def test_turkish_casing_dotted_and_dotless_i() -> None:
    assert terms("İSTANBUL") == terms("istanbul") == ["istanbul"]
    assert terms("IŞIK") == terms("ışık")
    assert terms("IŞIK") != terms("işik")  # I is ı in Turkish text, not i
    assert "\u0307" not in A.document_terms("İSTANBUL'DAKİ İĞNE")  # no stray combining dot


def test_apostrophe_suffixes_split_off() -> None:
    for form in ("Turkcell'in", "Turkcell’in", "Turkcell`in", "TURKCELL'İN"):
        assert terms(form) == ["turkcell", "in"], form
    assert terms("Turkcell'e")[0] == terms("Turkcell")[0] == "turkcell"


def test_stemming_and_accents() -> None:
    assert terms("kitaplarımızdan") == terms("kitap") == ["kitap"]
    assert terms("çay") != terms("cay") and terms("şu") != terms("su")  # Turkish letters are kept
    assert terms("Pîrî Reis") == terms("Piri Reis")  # circumflexes are optional spelling: folded
    assert terms("s\u0327arkı") == terms("şarkı")  # NFC: a decomposed ş is the same letter


def test_english_text_is_analysed_as_english() -> None:
    assert detect_language("The meteors were running through our solar system.") == "en"
    assert terms("The meteors were running.") == ["the", "meteor", "were", "run"]
    assert terms("It is in Istanbul")[0] == "it"  # English casing: I is i


def test_query_without_language_signal_gets_both_readings() -> None:
    assert detect_language("Istanbul") is None
    q = A.query_terms("Istanbul")
    assert "ıstanbul" in q and "istanbul" in q  # an English keyboard's I may mean İ
    assert set(terms("İstanbul")) <= set(q)


def test_query_function_words_dropped_unless_nothing_else() -> None:
    assert "ve" not in A.query_terms("Turkcell ve Türksat")
    assert A.query_terms("ve bir") != []  # only function words: searched as they are
    long = " ".join(f"kelime{i}" for i in range(500))
    assert len(A.query_terms(long)) == A.MAX_QUERY_TERMS
    assert A.query_terms("!!! ???") == []
    # words that tell the language but carry the query's meaning stay: "yarın" (tomorrow) is the point
    assert A.analyze("yarın", "tr")[0] in A.query_terms("yarın yağmur yağacak mı")
    assert "mı" not in A.query_terms("yarın yağmur yağacak mı")
    assert A.analyze("tomorrow", "en")[0] in A.query_terms("will it rain tomorrow")


def test_detect_language() -> None:
    assert detect_language("Yarın İstanbul'da yağmur bekleniyor.") == "tr"
    assert detect_language("Bu bir deneme ve test için yazıldı") == "tr"
    assert detect_language("What is the weather like in Istanbul today?") == "en"
    assert detect_language("Turkcell") is None and detect_language("") is None
    # the back-vowel locative/ablative ending is Turkish; English words in -de are not taken for it
    assert detect_language("Tom binada.") == "tr" and detect_language("Tom arabadan indi") == "tr"
    assert detect_language("Tom decided to provide a guide") == "en"


def test_corpus_language_and_the_dense_weight_it_sets() -> None:
    tr = ["Yarın İstanbul'da yağmur var.", "Bu kitap çok güzel.", "Turkcell", "Maç bitti ve kazandık."]
    assert corpus_language(tr) == "tr"
    assert corpus_language(tr + ["The weather is fine.", "It is what it is."]) is None  # mixed
    assert corpus_language(["Turkcell", "2014"]) is None and corpus_language([]) is None
    assert relation("en", "tr") == relation("tr", "en") == "cross"
    assert (
        relation("tr", "tr") == relation(None, "tr") == relation("en", None) == "same"
    )  # names, mixed corpora
    assert (
        dense_weight("en", "tr") == DENSE_WEIGHT["cross"] > dense_weight(None, "tr") == DENSE_WEIGHT["same"]
    )


def test_rrf_is_scaled_so_first_in_both_is_one() -> None:
    fused = dict(rrf(["a", "b", "c"], ["a", "c"]))
    assert fused["a"] == pytest.approx(1.0)
    assert fused["c"] > fused["b"]  # in both lists beats second in one
    assert fused["b"] == pytest.approx(0.5 * 61 / 62)
    assert [k for k, _ in rrf(["x"], ["y"])] == ["x", "y"]  # a tie keeps dense first
    heavy = dict(rrf(["x"], ["y"], dense_weight=0.9))
    assert heavy["x"] == pytest.approx(0.9) and heavy["y"] == pytest.approx(0.1)


def test_weighted_fusion_min_max() -> None:
    fused = dict(weighted([("a", 0.9), ("b", 0.5)], [("b", 12.0), ("c", 2.0)], dense_weight=0.5))
    assert fused == pytest.approx({"a": 0.5, "b": 0.5, "c": 0.0})
    assert dict(weighted([("a", 0.3)], [])) == {"a": 0.5}
    assert [k for k, _ in fuse([("a", 1.0)], [("b", 5.0)], "weighted", 0.7)] == ["a", "b"]
    with pytest.raises(ValueError, match="not one of rrf, weighted"):
        fuse([], [], "max")


def test_auto_mode_by_query_and_corpus_language() -> None:
    assert auto_mode("tr", "tr") == AUTO["same"] == "hybrid"
    assert auto_mode("en", "tr") == AUTO["cross"] == "dense"  # the measured defaults
    assert auto_mode(None, "tr") == AUTO["same"]
    assert check_search_mode("hybrid") == "hybrid"
    with pytest.raises(InputError, match="search mode 'bm25' is not one of auto, dense, sparse, hybrid"):
        check_search_mode("bm25")
