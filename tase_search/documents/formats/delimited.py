"""csv (RFC 4180 quoting) and tsv (linear TSV): a header row names the columns; one holds the text."""

from __future__ import annotations

import csv
import functools
from collections import Counter
from collections.abc import Iterable, Iterator

from ...errors import InputError
from ...text.normalize import clean_document, nfc
from ..document import Document
from ..limits import LIMIT_HINT
from . import CorpusFormat, ParseContext
from .values import convert_id


def read_delimited(lines: Iterable[tuple[int, str]], ctx: ParseContext, fmt: str) -> Iterator[Document]:
    """csv (RFC 4180 quoting, records may span lines) or tsv (one record per line, no quoting).

    tsv follows the linear-TSV convention of NLP corpora: quotes are ordinary characters, so a
    text starting with ``"`` is not mistaken for a quoted field that swallows the next lines.
    """
    source, stats, limits = ctx.source, ctx.stats, ctx.limits
    text_column, id_column = ctx.text_column, ctx.id_column
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
            + LIMIT_HINT.format(name="max_columns")
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
            convert_id(row[id_idx], f"{source}:{lineno}", id_name or "id") if id_idx is not None else None
        )
        meta = {h: row[i] for i, h in meta_cols}
        yield Document(doc_id, text, meta, source, lineno)


FORMATS = (
    CorpusFormat(
        "tsv", (".tsv",), functools.partial(read_delimited, fmt="tsv"), summary="one record per line"
    ),
    CorpusFormat("csv", (".csv",), functools.partial(read_delimited, fmt="csv"), summary="RFC 4180 records"),
)
