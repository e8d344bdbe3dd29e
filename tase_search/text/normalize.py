"""Turkish-aware text handling: Unicode normalisation, casing and document cleaning.

Turkish has two letters i: dotted (i / İ) and dotless (ı / I). Python's default casing is the
English one (``"I".lower() == "i"``) and, worse, ``"İ".lower()`` is ``"i" + U+0307`` (a combining
dot above), two code points that tokenizers split into a stray token and that shift every
character offset after it. Everything here keeps text in NFC and never strips accents: ç, ğ, ö,
ş, ü are distinct letters in Turkish, not decorated c, g, o, s, u.

Only the standard library is imported: readers and the CLI use this module without torch.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "casefold_tr",
    "clean_document",
    "is_blank",
    "nfc",
    "normalize_for_model",
    "sentence_spans",
    "turkish_lower",
    "turkish_upper",
]

_COMBINING_DOT = "\u0307"
_BOM = "\ufeff"

# Turkish-specific pairs, applied before Python's casing handles every other letter.
_TR_LOWER = str.maketrans({"İ": "i", "I": "ı"})
_TR_UPPER = str.maketrans({"i": "İ", "ı": "I"})

# C0 controls except \t and \n, DEL, and C1 controls become a space; lone surrogates (which
# json.loads lets through from "\ud800" escapes and which cannot be written as UTF-8) become U+FFFD.
_CLEAN_TABLE: dict[int, str] = {c: " " for c in range(0x20) if c not in (0x09, 0x0A)}
_CLEAN_TABLE[0x7F] = " "
_CLEAN_TABLE.update({c: " " for c in range(0x80, 0xA0)})
_CLEAN_TABLE.update({c: "\ufffd" for c in range(0xD800, 0xE000)})
_NEEDS_CLEAN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")  # the keys above, for a fast path


_DOTTED_I = re.compile("i\u0307+")


def nfc(text: str) -> str:
    """Unicode NFC (composed form).

    Stored text, queries and model input are all NFC so that "ş" typed on a phone (often
    ``s`` + U+0327) and "ş" from a web page match. Composition never removes accents, unlike
    NFD + dropping combining marks, which would merge distinct Turkish letters.
    """
    return unicodedata.normalize("NFC", text)


def _fold_dotted_i(text: str) -> str:
    """Undo a previous non-Turkish lowercasing of İ: ``i`` + U+0307 is just ``i`` (and so is ``i`` with
    several dots, else each casing pass would fold one more of them)."""
    if _COMBINING_DOT in text:
        text = _DOTTED_I.sub("i", text)
    return text


def turkish_lower(text: str) -> str:
    """Lowercase with Turkish rules: İ→i, I→ı, everything else as :meth:`str.lower`.

    The result is NFC and holds no U+0307 that the casing introduced (``i`` + U+0307 already in
    the input, the trace of an earlier English lowercasing of İ, is folded to ``i`` too).
    """
    text = _fold_dotted_i(nfc(text))  # NFC first: "I" + U+0307 composes to "İ"
    # fold again after mapping: "İ" + U+0307 lowers to "i" + U+0307, which must not survive either
    return nfc(_fold_dotted_i(text.translate(_TR_LOWER).lower()))


def turkish_upper(text: str) -> str:
    """Uppercase with Turkish rules: i→İ, ı→I, everything else as :meth:`str.upper` (ß→SS etc.).

    The result is NFC; ``i`` + U+0307 in the input becomes a single İ, not İ + a second dot.
    """
    text = _fold_dotted_i(nfc(text))
    return nfc(text.translate(_TR_UPPER).upper())


def casefold_tr(text: str) -> str:
    """Caseless form for matching metadata filters (``--filter topic=SPOR`` finds ``spor``).

    Turkish lowercasing, then :meth:`str.casefold` for the non-Turkish rest (ß→ss, final
    sigma), then NFC. Apply it to both sides of a comparison; it is not for display.
    """
    text = _fold_dotted_i(nfc(text))
    return nfc(_fold_dotted_i(text.translate(_TR_LOWER).casefold()))


def normalize_for_model(text: str, *, lowercase: bool) -> str:
    """What the encoder applies before tokenising: NFC, plus İ→i when the tokenizer lowercases.

    A lowercasing tokenizer would turn İ into ``i`` + U+0307 (two characters, an extra token
    and shifted offsets); mapping it to ``i`` first avoids that. Nothing else is changed - in
    particular I is left to the tokenizer (English queries need I→i, not the Turkish I→ı).

    Length-preserving on NFC input: character ``k`` of the result comes from character ``k``
    of the input, so tokenizer offsets computed on the result slice the stored (NFC) text.
    """
    text = nfc(text)
    if lowercase and "İ" in text:
        text = text.replace("İ", "i")
    return text


def is_blank(text: str) -> bool:
    """Nothing to search for: only whitespace, control characters and invisible format characters
    (zero-width spaces and joiners, bidi marks and isolates, BOMs, soft hyphens: Unicode ``Cf``)."""
    cleaned = clean_document(text)
    return all(c.isspace() or unicodedata.category(c) == "Cf" for c in cleaned)


def clean_document(text: str) -> str:
    """Prepare a document for storage: NFC, control characters to spaces, edges trimmed.

    NUL and other C0/C1 control characters (and DEL) other than tab and newline become a space:
    they are invisible, break terminals and some tokenizers, and arrive from binary junk or
    bad exports. Tab and newline are kept because paragraph structure matters for passages.
    Lone surrogates become U+FFFD so the text can always be written as UTF-8. Leading and
    trailing whitespace and byte-order marks are removed (a BOM mid-file, from concatenated
    files, would otherwise start a document).
    """
    if _NEEDS_CLEAN.search(text):
        text = text.translate(_CLEAN_TABLE)
    text = nfc(text).strip()
    while text[:1] == _BOM or text[-1:] == _BOM:
        text = text.strip(_BOM).strip()
    return text


# A sentence ends at . ! ? or … (closing quotes and brackets kept with it) before a space and a capital,
# a digit or an opening quote; a line break ends one too.
_SENTENCE_END = re.compile(r"""[.!?…]+["'”’»)\]]*(?=\s+["'“‘«(\[]?[0-9A-ZÇĞİÖŞÜÂÎÛ])|\n+""")
#: Words whose trailing period is not a sentence end (Turkish and English abbreviations).
_ABBREVIATIONS = frozenset(
    """dr prof doç doc av alb gen yrd uzm op cad sok mah no vb vs vd örn bkz yy çev ed haz sn st mr mrs ms
    jr sr ltd şti inc co mö ms ör yun lat ing fr alm ar far arp osm tbmm sf""".split()
)
_ROMAN = re.compile(r"[IVXLCDM]+")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of the sentences of ``text``, whitespace trimmed, in order.

    Rule-based, for Turkish and English prose: a period after a number or a Roman numeral is an
    ordinal (``19. yüzyıl``, ``II. Mehmed``, ``1. Dünya Savaşı``), after a single capital an initial
    (``M. Kemal``), after a known abbreviation (``Dr.``, ``vb.``, ``örn.``) part of it; none of these
    ends a sentence. Text with no sentence end is one sentence."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        end = m.end()
        if m.group(0)[0] == ".":
            word = text[start : m.start()].rsplit(None, 1)[-1:] or [""]
            last = word[0].rsplit(".", 1)[-1] if "." in word[0] and not word[0].endswith(".") else word[0]
            last = last.strip("\"'“‘«(")
            if (
                last.isdigit()
                or _ROMAN.fullmatch(last)
                or (len(last) == 1 and last.isupper())
                or turkish_lower(last) in _ABBREVIATIONS
            ):
                continue
        _add_span(text, start, end, spans)
        start = end
    _add_span(text, start, len(text), spans)
    return spans


def _add_span(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
