"""Corpus readers: turn txt / jsonl / tsv / csv files (optionally gzip) into :class:`Document` objects.

The formats are one bounded, streaming read path (the same opening, decoding, limits and ``file:line``
errors), which the Ray shard reader reuses piece by piece; each format's parser is in :mod:`.formats`.

Everything streams: files are read line by line from a binary stream and decoded one line at a
time, so a many-gigabyte corpus never sits in memory and every decoding or parsing error can
name ``file:line``. Texts go through :func:`tase_search.text.clean_document` (NFC, control
characters removed, trimmed); empty texts are skipped and counted in :class:`ReadStats`.

Hostile input fails fast: :class:`ReaderLimits` bounds a line's length, a header's columns, JSON
nesting and integer digits, and how far a gzip file may expand, each with a clear error and a
way to raise the limit; special files (devices, FIFOs, sockets) are refused before they are opened.

Only the standard library is imported, so ``tase-search`` can validate input before loading torch.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import stat
import sys
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import InputError
from .document import Document, ReadStats
from .formats import ParseContext, by_extension, format_names, formats, formats_help, get_format
from .limits import LIMIT_HINT, ReaderLimits
from .sniff import SAMPLE_BYTES, describe_binary

__all__ = [
    "ENCODING_ERRORS",
    "FORMATS",
    "check_encoding",
    "Document",
    "ReadStats",
    "ReaderLimits",
    "detect_format",
    "read_corpus",
]

FORMATS: tuple[str, ...] = format_names()
"""The built-in corpus formats, as accepted by ``fmt`` / ``--format`` (:mod:`.formats` holds the registry,
:func:`.formats.format_names` every registered one)."""

ENCODING_ERRORS: tuple[str, ...] = ("strict", "replace")
"""Accepted ``encoding_errors`` values: fail on bad UTF-8, or replace bad bytes with U+FFFD."""

ENCODINGS_HINT = "--encoding cp1254 (Turkish Windows) or --encoding iso-8859-9 (Latin-5)"
"""What the invalid-UTF-8 error suggests: the legacy encodings Turkish text comes in."""

STDIN = "-"
STDIN_NAME = "<stdin>"

_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"


def detect_format(path: str) -> str:
    """The corpus format implied by ``path``'s extension (``.gz`` looked through); ``-`` is txt.

    Raises :class:`InputError` naming the file and the valid formats for an unknown extension,
    since guessing (e.g. treating a .json array as lines) would silently index garbage.
    """
    if path == STDIN:
        return "txt"
    name = os.path.basename(path).lower()
    if name.endswith(".gz"):
        name = name[: -len(".gz")]
    ext = os.path.splitext(name)[1]
    found = by_extension(ext)
    if found is not None:
        return found.name
    hint = ""
    if ext == ".json":
        hint = " A .json file must be converted to JSON Lines (one object per line)."
    shown = repr(ext) if ext else "no extension"
    raise InputError(
        f"cannot tell the format of {path} from its extension ({shown}): valid formats are "
        f"{formats_help()}.{hint} Use --format to force one."
    )


def _check_format(fmt: str) -> str:
    return get_format(fmt).name


def check_encoding(encoding: str) -> str:
    """The codec name for ``encoding`` (``utf-8``, ``cp1254``, ``iso8859-9``, ...), refusing unknown names and
    encodings that do not keep ASCII (and so newlines) as single bytes (UTF-16, UTF-32): lines are split
    on the newline byte before they are decoded."""
    import codecs

    try:
        name = codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise InputError(
            f"unknown encoding {encoding!r}: give utf-8 (the default), cp1254 (Turkish Windows), iso-8859-9 "
            "(Latin-5) or another Python codec name"
        ) from None
    if name == "utf-8-sig":
        name = "utf-8"  # a leading byte-order mark is dropped anyway
    try:
        ascii_safe = '\n\t az,"'.encode(name) == b'\n\t az,"'
    except (UnicodeError, LookupError, TypeError):
        ascii_safe = False
    if not ascii_safe:
        raise InputError(
            f"encoding {encoding!r} cannot be read line by line (it does not keep ASCII as single bytes); "
            "convert the file to UTF-8 first (e.g. iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8.txt)"
        )
    return name


def read_corpus(
    path: str,
    *,
    fmt: str | None = None,
    text_column: str | None = None,
    id_column: str | None = None,
    encoding: str = "utf-8",
    encoding_errors: str = "strict",
    stats: ReadStats | None = None,
    limits: ReaderLimits | None = None,
) -> Iterator[Document]:
    """Stream the documents of one corpus file (``-`` for stdin) as :class:`Document` objects.

    ``fmt`` forces a format (one of :data:`FORMATS`); otherwise it comes from the extension,
    and stdin defaults to txt. Gzip is recognised by its magic bytes (a ``.gz`` file that is not
    gzip is an error). ``text_column`` / ``id_column`` name the jsonl field or csv/tsv column
    holding the text (default ``text``) and id (default ``id``, optional unless given). They
    make no sense for txt and are rejected there, which catches a tsv saved as .txt.

    Arguments, the path and the format are checked now (raising :class:`InputError`); the file
    is opened and read lazily as the iterator is consumed, and closed when it is exhausted or
    closed. ``encoding`` is the files' text encoding (``utf-8``; ``cp1254`` or ``iso-8859-9`` for legacy
    Turkish text); ``encoding_errors="replace"`` turns undecodable bytes into U+FFFD instead of failing.
    ``limits`` bounds what one record may be (:class:`ReaderLimits`; the defaults when None).
    """
    if encoding_errors not in ENCODING_ERRORS:
        raise InputError(
            f"encoding errors mode {encoding_errors!r} is not one of {', '.join(ENCODING_ERRORS)}"
        )
    encoding = check_encoding(encoding)
    if path != STDIN:
        _check_path(path)  # first: a folder has no extension, and "no extension" would be the wrong fix
    fmt = _check_format(fmt) if fmt else detect_format(path)
    chosen = get_format(fmt)
    if not chosen.columns and (text_column or id_column):
        named = [f.name for f in formats().values() if f.columns]
        raise InputError(
            f"{_display(path)}: --text-column/--id-column apply to {', '.join(named[:-1])} and {named[-1]}, "
            f"not to {fmt} ({chosen.summary}); use --format if the file is really {' or '.join(named)}"
        )
    for name, value in (("text column", text_column), ("id column", id_column)):
        if value is not None and not value.strip():
            raise InputError(f"the {name} name is empty")
    if text_column and id_column and text_column == id_column:
        raise InputError(f"the text column and the id column are both {text_column!r}")
    return _read(
        path,
        fmt,
        text_column,
        id_column,
        encoding_errors,
        stats if stats is not None else ReadStats(),
        limits or ReaderLimits(),
        encoding,
    )


def _display(path: str) -> str:
    return STDIN_NAME if path == STDIN else path


def _check_path(path: str) -> None:
    if not os.path.exists(path):
        raise InputError(f"corpus file not found: {path}")
    if os.path.isdir(path):
        glob = os.path.join(path, "*.txt")
        raise InputError(f"{path} is a directory: pass the files inside it or a glob (e.g. {glob})")
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise InputError(
            f"{path} is {kind}, not a regular file: tase-search reads corpus files; to index a stream, pipe "
            "it to stdin and pass '-' (e.g. producer | tase-search index -)"
        )
    if not os.access(path, os.R_OK):
        raise InputError(f"{path} is not readable (permission denied)")


def _read(
    path: str,
    fmt: str,
    text_column: str | None,
    id_column: str | None,
    encoding_errors: str,
    stats: ReadStats,
    limits: ReaderLimits,
    encoding: str = "utf-8",
) -> Iterator[Document]:
    source = _display(path)
    with _raw_lines(path, limits, encoding) as raw:
        lines = _decoded_lines(raw, source, encoding_errors, stats, encoding=encoding)
        docs = get_format(fmt).parse(lines, ParseContext(source, text_column, id_column, stats, limits))
        for doc in docs:
            stats.read += 1
            stats.per_source[source] = stats.per_source.get(source, 0) + 1
            yield doc


# --------------------------------------------------------------------- opening and decoding
class _Borrowed(io.BufferedReader):
    """A buffered (peekable) view of stdin's bytes that leaves stdin open when closed."""

    def close(self) -> None:
        pass


class _Counted:
    """A binary stream that counts the bytes read from it: the compressed side of a gzip ratio."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.bytes = 0

    def read(self, n: int = -1) -> bytes:
        out = self._stream.read(n)
        self.bytes += len(out)
        return out

    def readable(self) -> bool:
        return True


@contextlib.contextmanager
def _raw_lines(path: str, limits: ReaderLimits, encoding: str = "utf-8") -> Iterator[Iterator[bytes]]:
    """Binary lines of ``path`` (or stdin), ``\\n`` kept; gzip detected by magic bytes.

    Everything opened here is closed on exit; stdin is left open. Decompression and I/O errors
    during reading become :class:`InputError` naming the file and line.
    """
    source = _display(path)
    with contextlib.ExitStack() as stack:
        if path == STDIN:
            buf = getattr(sys.stdin, "buffer", None)
            if buf is None:  # a text-only stdin stand-in (StringIO in an embedding application)
                yield (line.encode("utf-8", "surrogateescape") for line in sys.stdin)
                return
            stream: Any = stack.enter_context(_Borrowed(buf))
        else:
            try:
                stream = stack.enter_context(open(path, "rb"))
            except OSError as exc:
                raise InputError(f"cannot open {path}: {exc.strerror or exc}") from exc
        try:
            magic = stream.peek(2)[:2]
        except OSError as exc:
            raise InputError(f"cannot read {source}: {exc.strerror or exc}") from exc
        compressed = None
        if magic == _GZIP_MAGIC:
            compressed = _Counted(stream)
            stream = stack.enter_context(gzip.GzipFile(fileobj=compressed, mode="rb"))
        elif path != STDIN and path.lower().endswith(".gz"):
            raise InputError(
                f"{path} is not a valid gzip file (its name ends in .gz but it is not gzip data)"
            )
        _refuse_binary(stream, source, encoding)
        yield _checked_lines(stream, source, limits, compressed)


def _refuse_binary(stream: Any, source: str, encoding: str = "utf-8") -> None:
    """Stop at once on a binary (or UTF-16) file: its "documents" would be garbage (:mod:`.sniff`)."""
    try:
        sample = stream.peek(SAMPLE_BYTES)[:SAMPLE_BYTES]
    except (OSError, EOFError, zlib.error) as exc:
        what = "corrupt or truncated gzip data" if isinstance(stream, gzip.GzipFile) else "read error"
        raise InputError(f"{source}:1: {what} ({exc})") from exc
    why = describe_binary(sample, encoding)
    if why is not None:
        raise InputError(
            f"{source}: {why}; tase-search indexes text (.txt, .jsonl, .tsv, .csv): check that this "
            "is the corpus file"
            + (f" and, for text in a legacy encoding, pass {ENCODINGS_HINT}" if encoding == "utf-8" else "")
        )


def _checked_lines(
    stream: Any, source: str, limits: ReaderLimits, compressed: _Counted | None = None, first: int = 1
) -> Iterator[bytes]:
    """Lines of at most ``max_line_bytes`` (a newline-free device or file stops there, not in the OOM
    killer); for gzip, the decompressed size is held to ``max_gzip_ratio`` times the compressed size.
    ``first``: the number of the stream's first line (a byte range of a file starts further down)."""
    lineno = first - 1
    cap = limits.max_line_bytes
    out = 0
    while True:
        try:
            line = stream.readline(cap + 1)
        except (OSError, EOFError, zlib.error) as exc:
            what = "corrupt or truncated gzip data" if isinstance(stream, gzip.GzipFile) else "read error"
            raise InputError(f"{source}:{lineno + 1}: {what} ({exc})") from exc
        if not line:
            return
        lineno += 1
        if len(line) > cap and not (len(line) == cap + 1 and line.endswith(b"\n")):
            raise InputError(
                f"{source}:{lineno}: a line longer than {cap} bytes (max_line_bytes); is this the corpus file? "
                + LIMIT_HINT.format(name="max_line_bytes")
            )
        if compressed is not None:
            out += len(line)
            if out > limits.gzip_ratio_after_bytes and out > limits.max_gzip_ratio * max(compressed.bytes, 1):
                raise InputError(
                    f"{source}:{lineno}: gzip data expands more than {limits.max_gzip_ratio} times "
                    f"({compressed.bytes} compressed bytes gave {out}; max_gzip_ratio), like a "
                    "decompression bomb; " + LIMIT_HINT.format(name="max_gzip_ratio")
                )
        yield line


def _decoded_lines(
    lines: Iterable[bytes],
    source: str,
    encoding_errors: str,
    stats: ReadStats,
    first: int = 1,
    *,
    encoding: str = "utf-8",
) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` pairs, numbered from ``first``, line endings kept; a leading UTF-8 BOM
    (on line 1 of UTF-8 input) dropped."""
    utf8 = encoding == "utf-8"
    for lineno, raw in enumerate(lines, start=first):
        if utf8 and lineno == 1 and raw.startswith(_UTF8_BOM):
            raw = raw[len(_UTF8_BOM) :]
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            byte = raw[exc.start : exc.start + 1].hex()
            if encoding_errors == "strict" and describe_binary(raw[:SAMPLE_BYTES], encoding) is not None:
                raise InputError(
                    f"{source}:{lineno}: binary data, not text (byte {byte} at column {exc.start + 1} and many "
                    f"more like it); check that this is the corpus file and that it is "
                    f"{'UTF-8' if utf8 else encoding} text"
                ) from None
            if encoding_errors == "strict" and utf8:
                raise InputError(
                    f"{source}:{lineno}: invalid UTF-8 (byte {byte} at column {exc.start + 1}); Turkish text "
                    f"from Windows or older systems reads with {ENCODINGS_HINT}; else convert the file to "
                    "UTF-8, or pass --encoding-errors replace to replace bad bytes with U+FFFD"
                ) from None
            if encoding_errors == "strict":
                raise InputError(
                    f"{source}:{lineno}: byte {byte} at column {exc.start + 1} is not valid {encoding}; check "
                    "--encoding (utf-8 is the default), or pass --encoding-errors replace to replace bad "
                    "bytes with U+FFFD"
                ) from None
            text = raw.decode(encoding, "replace")
            stats.replaced_encoding += 1
        yield lineno, text
