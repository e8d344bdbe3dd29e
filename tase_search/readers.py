"""Corpus readers: turn txt / jsonl / tsv / csv files (optionally gzip) into :class:`Document` objects.

Everything streams: files are read line by line from a binary stream and decoded one line at a
time, so a many-gigabyte corpus never sits in memory and every decoding or parsing error can
name ``file:line``. Texts go through :func:`tase_search.text.clean_document` (NFC, control
characters removed, trimmed); empty texts are skipped and counted in :class:`ReadStats`.

Only the standard library is imported, so ``tase-search`` can validate input before loading torch.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError
from .sniff import SAMPLE_BYTES, describe_binary
from .text import clean_document, nfc

__all__ = [
    "ENCODING_ERRORS",
    "FORMATS",
    "Document",
    "ReadStats",
    "detect_format",
    "read_corpus",
]

FORMATS: tuple[str, ...] = ("txt", "jsonl", "tsv", "csv")
"""Corpus formats, as accepted by ``fmt`` / ``--format``."""

ENCODING_ERRORS: tuple[str, ...] = ("strict", "replace")
"""Accepted ``encoding_errors`` values: fail on bad UTF-8, or replace bad bytes with U+FFFD."""

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
_CSV_FIELD_LIMIT = 2**31 - 1  # the C long limit on every platform; 10 MB+ fields must parse


@dataclass(frozen=True)
class Document:
    """One document read from a corpus.

    ``id`` is None when the input has none (txt, or no id field/column, or an empty one): the
    index store assigns ids then. ``text`` is cleaned (NFC, no control characters, trimmed,
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


def read_corpus(
    path: str,
    *,
    fmt: str | None = None,
    text_column: str | None = None,
    id_column: str | None = None,
    encoding_errors: str = "strict",
    stats: ReadStats | None = None,
) -> Iterator[Document]:
    """Stream the documents of one corpus file (``-`` for stdin) as :class:`Document` objects.

    ``fmt`` forces a format (one of :data:`FORMATS`); otherwise it comes from the extension,
    and stdin defaults to txt. Gzip is recognised by its magic bytes (a ``.gz`` file that is not
    gzip is an error). ``text_column`` / ``id_column`` name the jsonl field or csv/tsv column
    holding the text (default ``text``) and id (default ``id``, optional unless given). They
    make no sense for txt and are rejected there, which catches a tsv saved as .txt.

    Arguments, the path and the format are checked now (raising :class:`InputError`); the file
    is opened and read lazily as the iterator is consumed, and closed when it is exhausted or
    closed. ``encoding_errors="replace"`` turns invalid UTF-8 into U+FFFD instead of failing.
    """
    if encoding_errors not in ENCODING_ERRORS:
        raise InputError(
            f"encoding errors mode {encoding_errors!r} is not one of {', '.join(ENCODING_ERRORS)}"
        )
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
        path, fmt, text_column, id_column, encoding_errors, stats if stats is not None else ReadStats()
    )


def _display(path: str) -> str:
    return STDIN_NAME if path == STDIN else path


def _check_path(path: str) -> None:
    if not os.path.exists(path):
        raise InputError(f"corpus file not found: {path}")
    if os.path.isdir(path):
        glob = os.path.join(path, "*.txt")
        raise InputError(f"{path} is a directory: pass the files inside it or a glob (e.g. {glob})")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path} is not readable (permission denied)")


def _read(
    path: str,
    fmt: str,
    text_column: str | None,
    id_column: str | None,
    encoding_errors: str,
    stats: ReadStats,
) -> Iterator[Document]:
    source = _display(path)
    with _raw_lines(path) as raw:
        lines = _decoded_lines(raw, source, encoding_errors, stats)
        if fmt == "txt":
            docs = _read_txt(lines, source, stats)
        elif fmt == "jsonl":
            docs = _read_jsonl(lines, source, text_column or "text", id_column, stats)
        else:
            docs = _read_delimited(lines, source, fmt, text_column, id_column, stats)
        for doc in docs:
            stats.read += 1
            stats.per_source[source] = stats.per_source.get(source, 0) + 1
            yield doc


# --------------------------------------------------------------------- opening and decoding
class _Borrowed(io.BufferedReader):
    """A buffered (peekable) view of stdin's bytes that leaves stdin open when closed."""

    def close(self) -> None:
        pass


@contextlib.contextmanager
def _raw_lines(path: str) -> Iterator[Iterator[bytes]]:
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
        if magic == _GZIP_MAGIC:
            stream = stack.enter_context(gzip.GzipFile(fileobj=stream, mode="rb"))
        elif path != STDIN and path.lower().endswith(".gz"):
            raise InputError(
                f"{path} is not a valid gzip file (its name ends in .gz but it is not gzip data)"
            )
        _refuse_binary(stream, source)
        yield _checked_lines(stream, source)


def _refuse_binary(stream: Any, source: str) -> None:
    """Stop at once on a binary (or UTF-16) file: its "documents" would be garbage (:mod:`.sniff`)."""
    try:
        sample = stream.peek(SAMPLE_BYTES)[:SAMPLE_BYTES]
    except (OSError, EOFError, zlib.error) as exc:
        what = "corrupt or truncated gzip data" if isinstance(stream, gzip.GzipFile) else "read error"
        raise InputError(f"{source}:1: {what} ({exc})") from exc
    why = describe_binary(sample)
    if why is not None:
        raise InputError(
            f"{source}: {why}; tase-search indexes UTF-8 text (.txt, .jsonl, .tsv, .csv): check that this "
            "is the corpus file"
        )


def _checked_lines(stream: Any, source: str) -> Iterator[bytes]:
    lineno = 0
    while True:
        try:
            line = stream.readline()
        except (OSError, EOFError, zlib.error) as exc:
            what = "corrupt or truncated gzip data" if isinstance(stream, gzip.GzipFile) else "read error"
            raise InputError(f"{source}:{lineno + 1}: {what} ({exc})") from exc
        if not line:
            return
        lineno += 1
        yield line


def _decoded_lines(
    lines: Iterable[bytes], source: str, encoding_errors: str, stats: ReadStats
) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` pairs, 1-based, line endings kept; a leading UTF-8 BOM dropped."""
    for lineno, raw in enumerate(lines, start=1):
        if lineno == 1 and raw.startswith(_UTF8_BOM):
            raw = raw[len(_UTF8_BOM) :]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if encoding_errors == "strict" and describe_binary(raw[:SAMPLE_BYTES]) is not None:
                raise InputError(
                    f"{source}:{lineno}: binary data, not text (byte {raw[exc.start : exc.start + 1].hex()} "
                    f"at column {exc.start + 1} and many more like it); check that this is the corpus file "
                    "and that it is UTF-8 text"
                ) from None
            if encoding_errors == "strict":
                raise InputError(
                    f"{source}:{lineno}: invalid UTF-8 (byte {raw[exc.start : exc.start + 1].hex()} at column "
                    f"{exc.start + 1}); convert the file to UTF-8, or pass --encoding-errors replace to "
                    "replace bad bytes with U+FFFD"
                ) from None
            text = raw.decode("utf-8", "replace")
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
    for lineno, line in lines:
        text = clean_document(_strip_eol(line))
        if not text:
            stats.skipped_empty += 1
            continue
        yield Document(None, text, {}, source, lineno)


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
) -> Iterator[Document]:
    id_key = id_field or "id"
    for lineno, line in lines:
        if not line.strip():
            stats.skipped_empty += 1
            continue
        where = f"{source}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            # some messages end in "at" ("Unterminated string starting at"): no second one
            at = "" if exc.msg.endswith(" at") else " at"
            raise InputError(
                f"{where}: not valid JSON ({exc.msg}{at} column {exc.colno}): {_excerpt(line)}"
            ) from None
        except RecursionError:
            raise InputError(f"{where}: JSON nested too deeply") from None
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
) -> Iterator[Document]:
    """csv (RFC 4180 quoting, records may span lines) or tsv (one record per line, no quoting).

    tsv follows the linear-TSV convention of NLP corpora: quotes are ordinary characters, so a
    text starting with ``"`` is not mistaken for a quoted field that swallows the next lines.
    """
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
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
    header = [nfc(h).strip() for h in header]
    columns = ", ".join(repr(h) for h in header)
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise InputError(
            f"{source}:{header_line}: duplicate column name(s) in the header: {', '.join(dupes)}"
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
