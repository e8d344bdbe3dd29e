"""Tests for tase_search.text: NFC, Turkish casing, model normalisation, document cleaning."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tase_search.text.normalize import (
    casefold_tr,
    clean_document,
    nfc,
    normalize_for_model,
    turkish_lower,
    turkish_upper,
)

DOT = "\u0307"
TR_LOWER = "abcçdefgğhıijklmnoöprsştuüvyzqwx"
TR_UPPER = "ABCÇDEFGĞHIİJKLMNOÖPRSŞTUÜVYZQWX"

# Text biased towards the troublesome characters: both Turkish i's, combining marks, controls.
tricky_chars = st.sampled_from(list("İIıi" + DOT + "\u0327\u0308" + "çÇşŞğĞöÖüÜ ß\x00\t\n\r\x85ΣςŉǰﬁAz"))
tricky_text = st.lists(st.one_of(tricky_chars, st.characters()), max_size=40).map("".join)
PROFILE = settings(max_examples=200, deadline=None)


# ------------------------------------------------------------------------------------- nfc
def test_nfc_composes_decomposed_turkish_letters() -> None:
    decomposed = "s\u0327eker gu\u0308zel dag\u0306 I\u0307stanbul"
    assert nfc(decomposed) == "şeker güzel dağ İstanbul"


def test_nfc_keeps_accents() -> None:
    assert nfc("çğıöşü ÇĞİÖŞÜ") == "çğıöşü ÇĞİÖŞÜ"


@PROFILE
@given(tricky_text)
def test_nfc_is_nfc_and_idempotent(text: str) -> None:
    out = nfc(text)
    assert unicodedata.is_normalized("NFC", out)
    assert nfc(out) == out


# ---------------------------------------------------------------------------------- casing
@pytest.mark.parametrize(
    ("text", "lower"),
    [
        ("İSTANBUL", "istanbul"),
        ("IŞIK", "ışık"),
        ("Iğdır", "ığdır"),
        ("İzmir'in ILIK havası", "izmir'in ılık havası"),
        ("ÇĞÖŞÜ", "çğöşü"),
        ("I\u0307stanbul", "istanbul"),  # decomposed İ
        ("i\u0307stanbul", "istanbul"),  # what "İstanbul".lower() gives in plain Python
    ],
)
def test_turkish_lower(text: str, lower: str) -> None:
    assert turkish_lower(text) == lower
    assert DOT not in turkish_lower(text)


@pytest.mark.parametrize(
    ("text", "upper"),
    [
        ("istanbul", "İSTANBUL"),
        ("ışık", "IŞIK"),
        ("iğne ve ıhlamur", "İĞNE VE IHLAMUR"),
        ("çğöşü", "ÇĞÖŞÜ"),
        ("i\u0307", "İ"),
        ("straße", "STRASSE"),
    ],
)
def test_turkish_upper(text: str, upper: str) -> None:
    assert turkish_upper(text) == upper
    assert DOT not in turkish_upper(text)


def test_plain_python_lower_is_wrong_for_turkish() -> None:
    # The reason these helpers exist.
    assert "İ".lower() == "i" + DOT
    assert "I".lower() == "i"


@given(st.text(alphabet=TR_LOWER, max_size=30))
def test_lower_upper_round_trip_on_turkish_lowercase(text: str) -> None:
    assert turkish_lower(turkish_upper(text)) == text


@given(st.text(alphabet=TR_UPPER, max_size=30))
def test_upper_lower_round_trip_on_turkish_uppercase(text: str) -> None:
    assert turkish_upper(turkish_lower(text)) == text


@PROFILE
@given(tricky_text)
def test_casing_never_introduces_combining_dot(text: str) -> None:
    for fn in (turkish_lower, turkish_upper, casefold_tr):
        out = fn(text)
        assert out.count(DOT) <= text.count(DOT)
        assert unicodedata.is_normalized("NFC", out)
        assert "İ" not in turkish_lower(text)
        assert "i" not in turkish_upper(text)


@PROFILE
@given(tricky_text)
@example("İ\u0307")  # found by CI: İ + combining dot lowered to i + dot, which a second pass folded
@example("İ\u0307\u0307")  # each pass folded one more dot
def test_casing_is_idempotent(text: str) -> None:
    for fn in (turkish_lower, turkish_upper, casefold_tr):
        once = fn(text)
        assert fn(once) == once


@given(st.text(alphabet=TR_LOWER + TR_UPPER + " '", max_size=30))
def test_turkish_letters_case_insensitively_equal(text: str) -> None:
    assert turkish_lower(turkish_upper(text)) == turkish_lower(text)


# ------------------------------------------------------------------------------- casefold
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("SPOR", "spor"),
        ("İstanbul", "istanbul"),
        ("IŞIK", "ışık"),
        ("Straße", "STRASSE"),
        ("i\u0307zmir", "İZMİR"),
    ],
)
def test_casefold_tr_matches(a: str, b: str) -> None:
    assert casefold_tr(a) == casefold_tr(b)


def test_casefold_tr_keeps_dotted_and_dotless_apart() -> None:
    assert casefold_tr("ISIK") != casefold_tr("isik")  # ısık vs isik
    assert casefold_tr("sığ") != casefold_tr("sig")


# --------------------------------------------------------------------- normalize_for_model
def test_normalize_for_model_maps_only_dotted_capital_i() -> None:
    assert normalize_for_model("İstanbul IŞIK", lowercase=True) == "istanbul IŞIK"
    assert normalize_for_model("İstanbul IŞIK", lowercase=False) == "İstanbul IŞIK"


def test_normalize_for_model_composes() -> None:
    assert normalize_for_model("I\u0307zmir s\u0327", lowercase=False) == "İzmir ş"
    assert normalize_for_model("I\u0307zmir s\u0327", lowercase=True) == "izmir ş"


@PROFILE
@given(tricky_text, st.booleans())
def test_normalize_for_model_preserves_length_and_positions(text: str, lowercase: bool) -> None:
    stored = nfc(text)  # the encoder slices the stored NFC text with offsets into this output
    out = normalize_for_model(stored, lowercase=lowercase)
    assert len(out) == len(stored)
    for a, b in zip(stored, out, strict=True):
        assert a == b or (lowercase and a == "İ" and b == "i")
    assert normalize_for_model(text, lowercase=lowercase) == out


@PROFILE
@given(tricky_text)
def test_normalize_for_model_lowercase_leaves_no_dotted_capital(text: str) -> None:
    out = normalize_for_model(text, lowercase=True)
    assert "İ" not in out
    assert out.count(DOT) == nfc(text).count(DOT)


# -------------------------------------------------------------------------- clean_document
@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("  merhaba dünya \n", "merhaba dünya"),
        ("a\x00b", "a b"),
        ("a\x07b\x1bc", "a b c"),
        ("a\x7fb", "a b"),
        ("a\x85b\x9fc", "a b c"),  # C1 controls
        ("satır\tbir\nsatır iki", "satır\tbir\nsatır iki"),
        ("a\r\nb", "a \nb"),
        ("\ufeffbaşlık", "başlık"),
        (" \ufeff x \ufeff ", "x"),
        ("s\u0327", "ş"),
        ("\x00\x00 \n", ""),
        ("kırık \ud83d yüz", "kırık \ufffd yüz"),
        ("emoji 😀 kalır", "emoji 😀 kalır"),
    ],
)
def test_clean_document(text: str, clean: str) -> None:
    assert clean_document(text) == clean


@PROFILE
@given(tricky_text)
def test_clean_document_properties(text: str) -> None:
    out = clean_document(text)
    assert out == out.strip()
    assert unicodedata.is_normalized("NFC", out)
    for ch in out:
        code = ord(ch)
        assert ch in "\t\n" or not (code < 0x20 or 0x7F <= code < 0xA0)
        assert not 0xD800 <= code < 0xE000
    out.encode("utf-8")  # always storable
    assert clean_document(out) == out
