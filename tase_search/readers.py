"""Corpus readers: turn txt / jsonl / tsv / csv files (optionally gzip) into :class:`Document` objects.

One module over 500 lines on purpose: the four formats are one bounded, streaming read path (the
same opening, decoding, limits and ``file:line`` errors), which the Ray shard reader reuses piece by piece.

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
import csv
import gzip
import io
import json
import os
import stat
import sys
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import InputError
from .sniff import SAMPLE_BYTES, describe_binary
from .store.content import content_id
from .store.docs import MAX_METADATA_DEPTH, json_depth
from .text import clean_document, nfc

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

FORMATS: tuple[str, ...] = ("txt", "jsonl", "tsv", "csv")
"""Corpus formats, as accepted by ``fmt`` / ``--format``."""

ENCODING_ERRORS: tuple[str, ...] = ("strict", "replace")
"""Accepted ``encoding_errors`` values: fail on bad UTF-8, or replace bad bytes with U+FFFD."""

ENCODINGS_HINT = "--encoding cp1254 (Turkish Windows) or --encoding iso-8859-9 (Latin-5)"
"""What the invalid-UTF-8 error suggests: the legacy encodings Turkish text comes in."""

STDIN = "-"
STDIN_NAME = "<stdin>"

_EXTENSIONS: dict[str, str] = {
    ".txt": "txt",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".tsv": "tsv",
    ".csv": "csv",
}
_FORMAT_ALIASES: dict[str, str] = {"ndjson": "jsonl", "text": "txt"}
_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class ReaderLimits:
    """How big one record of a corpus may be. The defaults fit any real corpus and stop hostile input
    (a device, a gzip bomb, a line with no end) in seconds with a clear error; raise one for an unusual
    corpus: ``read_corpus(path, limits=ReaderLimits(max_line_bytes=1 << 30))``, or on the command line
    ``tase-search index --reader-limit max_line_bytes=1073741824``.

    ``max_line_bytes``: one line (and one csv field). ``max_columns``: columns of a csv/tsv header.
    ``max_json_depth``: nesting of a JSON Lines record (at most the store's ``MAX_METADATA_DEPTH``).
    ``max_int_digits``: digits of a JSON integer (at most Python's ``sys.get_int_max_str_digits()``).
    ``max_gzip_ratio``: decompressed / compressed size, checked once ``gzip_ratio_after_bytes`` have
    been decompressed (so small, very repetitive files are fine).
    """

    max_line_bytes: int = 64 << 20
    max_columns: int = 10_000
    max_json_depth: int = MAX_METADATA_DEPTH
    max_int_digits: int = 4300
    max_gzip_ratio: int = 100
    gzip_ratio_after_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InputError(f"reader limit {f.name}={v!r} is not valid: give a whole number >= 1")
        if self.max_json_depth > MAX_METADATA_DEPTH:
            raise InputError(
                f"reader limit max_json_depth={self.max_json_depth} is over {MAX_METADATA_DEPTH}, the deepest "
                "metadata an index stores"
            )
        interpreter = sys.get_int_max_str_digits() or self.max_int_digits
        if self.max_int_digits > interpreter:
            raise InputError(
                f"reader limit max_int_digits={self.max_int_digits} is over Python's own limit ({interpreter}); "
                "raise that first (sys.set_int_max_str_digits, or PYTHONINTMAXSTRDIGITS)"
            )

    @classmethod
    def parse(cls, items: Iterable[str]) -> ReaderLimits:
        """Limits from ``NAME=NUMBER`` strings (the CLI's ``--reader-limit``); unnamed ones keep their default."""
        names = {f.name for f in fields(cls)}
        changes: dict[str, int] = {}
        for item in items:
            name, sep, value = item.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in names or not value.strip().isdigit():
                raise InputError(
                    f"reader limit {item!r} is not NAME=NUMBER with NAME one of {', '.join(sorted(names))}"
                )
            changes[name] = int(value)
        return replace(cls(), **changes)


_LIMIT_HINT = (
    "raise it with --reader-limit {name}=N (ReaderLimits({name}=N) in Python) if the file is genuine"
)


@dataclass(frozen=True)
class Document:
    """One document read from a corpus.

    ``id`` of a txt line is made from its text (16 hex digits, the same in every run); it is None when
    a jsonl/tsv/csv record has none (no id field/column, or an empty one): the index store assigns
    ids then. ``text`` is cleaned (NFC, no control characters, trimmed,
    never empty). ``metadata`` holds the other jsonl fields / csv columns (JSON-serialisable).
    ``source`` is the path as given (``<stdin>`` for ``-``) and ``line`` the 1-based line the
    record starts on, so later errors can point back at the input.
    """

    id: str | None
    text: str
    metadata: dict[str, Any]
    source: str
    line: int


@dataclass
class ReadStats:
    """Counters filled in while a corpus is read, for the CLI's end-of-run summary.

    One instance may be passed to several :func:`read_corpus` calls; the counters add up.
    ``read``: documents yielded. ``skipped_empty``: records skipped because their text (after
    cleaning) was empty, blank lines included. ``replaced_encoding``: lines in which invalid
    UTF-8 was replaced by U+FFFD (``encoding_errors="replace"``). ``per_source``: documents
    yielded per source.
    """

    read: int = 0
    skipped_empty: int = 0
    replaced_encoding: int = 0
    per_source: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One human-readable line, e.g. ``1200 documents read, 3 empty skipped``."""
        parts = [f"{self.read} document{'s' if self.read != 1 else ''} read"]
        if self.skipped_empty:
            parts.append(f"{self.skipped_empty} empty skipped")
        if self.replaced_encoding:
            parts.append(f"{self.replaced_encoding} line(s) with invalid UTF-8 replaced")
        return ", ".join(parts)


def _formats_help() -> str:
    return "txt (.txt), jsonl (.jsonl, .ndjson), tsv (.tsv), csv (.csv), each optionally gzipped (.gz)"


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
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    hint = ""
    if ext == ".json":
        hint = " A .json file must be converted to JSON Lines (one object per line)."
    shown = repr(ext) if ext else "no extension"
    raise InputError(
        f"cannot tell the format of {path} from its extension ({shown}): valid formats are "
        f"{_formats_help()}.{hint} Use --format to force one."
    )


def _check_format(fmt: str) -> str:
    key = fmt.strip().lower()
    key = _FORMAT_ALIASES.get(key, key)
    if key not in FORMATS:
        raise InputError(f"unknown format {fmt!r}: valid formats are {', '.join(FORMATS)}")
    return key


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
    if fmt == "txt" and (text_column or id_column):
        raise InputError(
            f"{_display(path)}: --text-column/--id-column apply to jsonl, tsv and csv, not to txt "
            "(one document per line); use --format if the file is really tsv, csv or jsonl"
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
        if fmt == "txt":
            docs = _read_txt(lines, source, stats)
        elif fmt == "jsonl":
            docs = _read_jsonl(lines, source, text_column or "text", id_column, stats, limits)
        else:
            docs = _read_delimited(lines, source, fmt, text_column, id_column, stats, limits)
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
                + _LIMIT_HINT.format(name="max_line_bytes")
            )
        if compressed is not None:
            out += len(line)
            if out > limits.gzip_ratio_after_bytes and out > limits.max_gzip_ratio * max(compressed.bytes, 1):
                raise InputError(
                    f"{source}:{lineno}: gzip data expands more than {limits.max_gzip_ratio} times "
                    f"({compressed.bytes} compressed bytes gave {out}; max_gzip_ratio), like a "
                    "decompression bomb; " + _LIMIT_HINT.format(name="max_gzip_ratio")
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


def _strip_eol(text: str) -> str:
    if text.endswith("\n"):
        text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
    return text


# -------------------------------------------------------------------------------- formats
def _read_txt(lines: Iterable[tuple[int, str]], source: str, stats: ReadStats) -> Iterator[Document]:
    """One document per line, its id made from its text (:func:`~tase_search.store.content.content_id`):
    the same line gets the same id in every run, also after it was deleted."""
    for lineno, line in lines:
        text = clean_document(_strip_eol(line))
        if not text:
            stats.skipped_empty += 1
            continue
        yield Document(content_id(text), text, {}, source, lineno)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _excerpt(text: str, limit: int = 60) -> str:
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")


class _TooManyDigits(ValueError):
    pass


def _int_parser(limit: int) -> Any:
    def parse(digits: str) -> int:
        if len(digits) - digits.startswith("-") > limit:
            raise _TooManyDigits(len(digits) - digits.startswith("-"))
        return int(digits)

    return parse


def _convert_id(value: Any, where: str, name: str) -> str | None:
    """An id as str: strings and integers are accepted; null or empty means "let the store assign"."""
    if value is None:
        return None
    if isinstance(value, str):
        value = nfc(value).strip()
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InputError(f"{where}: the {name!r} field must be a string or an integer, found {_describe(value)}")


def _read_jsonl(
    lines: Iterable[tuple[int, str]],
    source: str,
    text_field: str,
    id_field: str | None,
    stats: ReadStats,
    limits: ReaderLimits,
) -> Iterator[Document]:
    id_key = id_field or "id"
    parse_int = _int_parser(limits.max_int_digits)
    for lineno, line in lines:
        if not line.strip():
            stats.skipped_empty += 1
            continue
        where = f"{source}:{lineno}"
        try:
            obj = json.loads(line, parse_int=parse_int)
        except _TooManyDigits as exc:
            raise InputError(
                f"{where}: an integer with {exc.args[0]} digits, over the limit of {limits.max_int_digits} "
                "(max_int_digits); quote it as a string, or " + _LIMIT_HINT.format(name="max_int_digits")
            ) from None
        except json.JSONDecodeError as exc:
            # some messages end in "at" ("Unterminated string starting at"): no second one
            at = "" if exc.msg.endswith(" at") else " at"
            raise InputError(
                f"{where}: not valid JSON ({exc.msg}{at} column {exc.colno}): {_excerpt(line)}"
            ) from None
        except RecursionError:
            raise InputError(f"{where}: JSON nested too deeply") from None
        except ValueError as exc:  # the interpreter's own integer digit limit
            raise InputError(f"{where}: {str(exc)[:120]}; quote the number as a string") from None
        # a record can only be deeper than the limit when it has that many brackets: count first (cheap)
        if (
            line.count("{") + line.count("[") > limits.max_json_depth
            and json_depth(obj) > limits.max_json_depth
        ):
            raise InputError(
                f"{where}: JSON nested more than {limits.max_json_depth} levels deep (max_json_depth); "
                "flatten the record's metadata"
            )
        if not isinstance(obj, dict):
            raise InputError(
                f"{where}: expected a JSON object with a {text_field!r} field, found {_describe(obj)}"
            )
        if text_field not in obj:
            found = ", ".join(repr(k) for k in list(obj)[:20]) or "none"
            raise InputError(
                f"{where}: no {text_field!r} field (fields found: {found}); use --text-column to pick one"
            )
        text = obj.pop(text_field)
        if not isinstance(text, str):
            raise InputError(f"{where}: the {text_field!r} field must be a string, found {_describe(text)}")
        if id_key in obj:
            doc_id = _convert_id(obj.pop(id_key), where, id_key)
        elif id_field is not None:
            raise InputError(f"{where}: no {id_field!r} field (the id field given with --id-column)")
        else:
            doc_id = None
        text = clean_document(text)
        if not text:
            stats.skipped_empty += 1
            continue
        yield Document(doc_id, text, obj, source, lineno)


def _read_delimited(
    lines: Iterable[tuple[int, str]],
    source: str,
    fmt: str,
    text_column: str | None,
    id_column: str | None,
    stats: ReadStats,
    limits: ReaderLimits,
) -> Iterator[Document]:
    """csv (RFC 4180 quoting, records may span lines) or tsv (one record per line, no quoting).

    tsv follows the linear-TSV convention of NLP corpora: quotes are ordinary characters, so a
    text starting with ``"`` is not mistaken for a quoted field that swallows the next lines.
    """
    csv.field_size_limit(min(limits.max_line_bytes, 2**31 - 1))  # a field spanning lines is bounded too
    current = [0]  # physical line number of the last line handed to the csv module
    ended = [False]  # the input ran out (inside a quoted field, if a row comes back after it)

    def feed() -> Iterator[str]:
        for lineno, line in lines:
            current[0] = lineno
            yield line
        ended[0] = True

    if fmt == "tsv":
        reader = csv.reader(feed(), delimiter="\t", quoting=csv.QUOTE_NONE, strict=False)
    else:
        reader = csv.reader(feed(), strict=False)

    def next_row() -> tuple[int, list[str]] | None:
        start = current[0] + 1
        try:
            row = next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            raise InputError(f"{source}:{current[0]}: malformed {fmt} ({exc})") from None
        if ended[0]:  # the csv module asked for more lines than there are: a quote never closed
            raise InputError(
                f"{source}:{start}: a quoted field opened on line {start} is never closed (it runs to the end "
                f"of the file, line {current[0]}); close the quote, or double a quote that is part of the "
                'text ("")'
            )
        return start, row

    first = next_row()
    if first is None:  # empty file: no header, no documents
        return
    header_line, header = first
    if len(header) > limits.max_columns:
        raise InputError(
            f"{source}:{header_line}: the header has {len(header)} columns, over the limit of "
            f"{limits.max_columns} (max_columns); check the delimiter, or "
            + _LIMIT_HINT.format(name="max_columns")
        )
    header = [nfc(h).strip() for h in header]
    columns = ", ".join(repr(h) for h in header[:20]) + (
        f", ... ({len(header)} in all)" if len(header) > 20 else ""
    )
    dupes = sorted(h for h, n in Counter(header).items() if n > 1)  # linear: a huge header stays fast
    if dupes:
        raise InputError(
            f"{source}:{header_line}: duplicate column name(s) in the header: {', '.join(dupes[:20])}"
        )
    text_name = text_column or "text"
    if text_name not in header:
        raise InputError(
            f"{source}:{header_line}: no {text_name!r} column in the header (columns found: {columns}); "
            "use --text-column to pick one"
        )
    if id_column is not None and id_column not in header:
        raise InputError(f"{source}:{header_line}: no {id_column!r} column (columns found: {columns})")
    id_name = id_column if id_column is not None else ("id" if "id" in header else None)
    text_idx = header.index(text_name)
    id_idx = header.index(id_name) if id_name is not None else None
    meta_cols = [(i, h) for i, h in enumerate(header) if i != text_idx and i != id_idx]

    while (item := next_row()) is not None:
        lineno, row = item
        if not row or (len(row) == 1 and not row[0].strip() and len(header) > 1):
            stats.skipped_empty += 1  # blank line
            continue
        if len(row) != len(header):
            raise InputError(
                f"{source}:{lineno}: {len(row)} field(s) but the header has {len(header)} "
                f"({columns}); check the delimiter and quoting"
            )
        text = clean_document(row[text_idx])
        if not text:
            stats.skipped_empty += 1
            continue
        doc_id = (
            _convert_id(row[id_idx], f"{source}:{lineno}", id_name or "id") if id_idx is not None else None
        )
        meta = {h: row[i] for i, h in meta_cols}
        yield Document(doc_id, text, meta, source, lineno)
