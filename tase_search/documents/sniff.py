"""Telling a binary file (or text in another encoding) from a UTF-8 corpus, by looking at its first bytes.

Why: a PDF, an image or a zip renamed ``.txt`` used to fail on its first invalid byte with the advice
to pass ``--encoding-errors replace``, which then indexed a few "documents" of U+FFFD garbage. Text has
almost no NUL bytes or C0 control characters and, in UTF-8, no invalid sequences; binary formats are
full of them. A sample is *binary* when more than :data:`BINARY_SHARE` of its bytes are such, and
UTF-16 (every other byte NUL, or a UTF-16 byte-order mark) is named as such, with the conversion to
make. Only the standard library is used (the readers check input before torch is loaded).
"""

from __future__ import annotations

#: Bytes looked at from the start of a file.
SAMPLE_BYTES = 8192
#: Share of suspicious bytes (NUL, other C0 controls, invalid UTF-8) above which a sample is binary.
#: Text with a stray control character or a few bad bytes stays far below it; binary formats far above.
BINARY_SHARE = 0.30
#: Samples shorter than this are never called binary: too few bytes to tell.
MIN_SAMPLE = 16
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\v\x1b")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _invalid_utf8_bytes(sample: bytes, encoding: str = "utf-8") -> int:
    """About how many bytes of ``sample`` are not valid in ``encoding`` (one per invalid sequence)."""
    replaced = sample.decode(encoding, "replace").count("\ufffd")
    return max(0, replaced - sample.decode(encoding, "ignore").count("\ufffd"))


def _utf16_like(sample: bytes) -> bool:
    """NUL in (nearly) every other byte: ASCII-range text stored as UTF-16."""
    half = len(sample) // 2
    return max(sample[0::2].count(0), sample[1::2].count(0)) >= 0.8 * half


def describe_binary(sample: bytes, encoding: str = "utf-8") -> str | None:
    """Why ``sample`` (a file's first bytes) is not a text corpus in ``encoding`` (UTF-8 unless the user
    named another), or None if it looks like one."""
    utf16 = "convert it to UTF-8 first (e.g. iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8.txt)"
    if sample.startswith(_UTF16_BOMS):
        return f"it is UTF-16 text (it starts with a UTF-16 byte-order mark); {utf16}"
    if len(sample) < MIN_SAMPLE:
        return None
    if _utf16_like(sample):
        return f"it looks like UTF-16 text (every other byte is NUL); {utf16}"
    controls = sum(1 for b in sample if (b < 0x20 and b not in _TEXT_CONTROLS) or b == 0x7F)
    suspicious = controls + _invalid_utf8_bytes(sample, encoding)
    if suspicious > BINARY_SHARE * len(sample):
        share = round(100 * suspicious / len(sample))
        return (
            f"it looks like a binary file, not text ({share}% of its first {len(sample):,} bytes are NUL, "
            f"control or invalid {'UTF-8' if encoding == 'utf-8' else encoding} bytes)"
        )
    return None
