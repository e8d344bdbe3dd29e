"""Readers of labelled data files, shared by training, evaluation and the library: tables, SQuAD, STS.

One reader per format, so a file means the same thing to the trainer and to the evaluation that
measures it (corpora to index are read by :mod:`tase_search.documents.readers`, which streams and bounds).

Quoting rule (one, everywhere):

* **tsv** (``.tsv``, ``.tab``) is linear TSV, as in :mod:`tase_search.documents.readers`: one record per line,
  fields split on tabs, no quoting. ``"`` is an ordinary character, so a sentence that starts with
  a quote (720 of the 3000 lines of newstest2018) is read as written, never as a quoted field that
  swallows the following lines. A field cannot hold a tab or a newline.
* **csv** follows RFC 4180 (fields with commas, quotes or newlines are quoted, quotes doubled).
* **jsonl** holds one JSON object per line; the columns are its keys.

Tables have a header row (matched case-insensitively, a BOM dropped); every row must have as many
fields as the header; text is NFC-normalised and stripped; blank lines are skipped. Errors are
:class:`~tase_search.errors.DataError` naming ``file:line`` and the fix. Only the standard library
is imported.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..text.normalize import nfc

__all__ = [
    "TABLE_FORMATS",
    "SquadFile",
    "SquadQuestion",
    "StsPairs",
    "check_file",
    "read_squad",
    "read_sts",
    "read_table",
    "table_format",
]

TABLE_FORMATS: dict[str, str] = {
    ".tsv": "tsv",
    ".tab": "tsv",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
"""File extension -> table format."""

_FIELD_LIMIT = 1 << 27  # one csv field (a long SQuAD-like paragraph is ~10 kB); the csv default is 128 kB


def check_file(path: str | Path, what: str) -> Path:
    """``path`` as a :class:`Path` when it is an existing regular file, else a :class:`DataError`."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: {what} file not found; check the path")
    if not p.is_file():
        raise DataError(f"{p}: {what} path is not a file; give a file")
    return p


def table_format(path: str | Path, fmt: str | None = None) -> str:
    """``fmt`` when given, else the table format its extension names (tsv, csv, jsonl)."""
    if fmt:
        if fmt not in ("tsv", "csv", "jsonl"):
            raise DataError(f"{path}: format {fmt!r} is not a table format; use tsv, csv or jsonl")
        return fmt
    kind = TABLE_FORMATS.get(Path(path).suffix.lower())
    if kind is None:
        raise DataError(
            f"{path}: cannot tell the format from the extension; use .tsv, .csv or .jsonl (or set format)"
        )
    return kind


def _columns_of(
    header: list[str], columns: Sequence[str], optional: Sequence[str], aliases: dict[str, Sequence[str]]
) -> dict[str, int]:
    """Header position of each wanted column (optional ones only when present); ``{}`` if a required one is missing."""
    cols: dict[str, int] = {}
    for name in (*columns, *optional):
        for cand in (name, *aliases.get(name, ())):
            if cand.lower() in header:
                cols[name] = header.index(cand.lower())
                break
    return cols


def _missing_header(p: Path, header: list[str], columns: Sequence[str], kind: str) -> DataError:
    sep = "tab" if kind == "tsv" else "comma"
    return DataError(
        f"{p}:1: header {header} lacks column(s) {[c for c in columns if c.lower() not in header]}; "
        f"the file needs a header row with {', '.join(columns)} ({sep}-separated)"
    )


def _iter_delimited(
    p: Path, kind: str, columns: Sequence[str], optional: Sequence[str], aliases: dict[str, Sequence[str]]
) -> Iterator[tuple[int, dict[str, str]]]:
    csv.field_size_limit(max(csv.field_size_limit(), _FIELD_LIMIT))
    with p.open(encoding="utf-8-sig", newline="") as fh:
        if kind == "tsv":
            reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        else:
            reader = csv.reader(fh)
        first = next(reader, None)
        if not first or all(not h.strip() for h in first):
            raise DataError(f"{p}:1: the file is empty; it needs a header row with {', '.join(columns)}")
        header = [h.strip().lower() for h in first]
        cols = _columns_of(header, columns, optional, aliases)
        if any(c not in cols for c in columns):
            raise _missing_header(p, header, columns, kind)
        for fields in reader:
            if not fields or all(not f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise DataError(
                    f"{p}:{reader.line_num}: expected {len(header)} {kind.upper()} fields "
                    f"({', '.join(header)}), got {len(fields)} (a stray tab or comma?)"
                )
            yield reader.line_num, {name: nfc(fields[i]).strip() for name, i in cols.items()}


def _iter_jsonl(
    p: Path, columns: Sequence[str], optional: Sequence[str], aliases: dict[str, Sequence[str]]
) -> Iterator[tuple[int, dict[str, str]]]:
    with p.open(encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{p}:{lineno}: invalid JSON ({exc.msg}); write one JSON object per line"
                ) from exc
            if not isinstance(obj, dict):
                raise DataError(f"{p}:{lineno}: expected a JSON object per line, got {type(obj).__name__}")
            row: dict[str, str] = {}
            for name in (*columns, *optional):
                key = next((k for k in (name, *aliases.get(name, ())) if k in obj), None)
                value = obj.get(key) if key is not None else None
                if value is None and name in optional:
                    continue
                if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                    raise DataError(
                        f"{p}:{lineno}: field {name!r} missing or not text (need fields {list(columns)})"
                    )
                row[name] = nfc(str(value)).strip()
            yield lineno, row


def iter_table(
    path: str | Path,
    columns: Sequence[str],
    *,
    what: str = "data",
    fmt: str | None = None,
    optional: Sequence[str] = (),
    aliases: dict[str, Sequence[str]] | None = None,
    allow_empty: bool = False,
) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for each data row of a table; see :func:`read_table`."""
    p = check_file(path, what)
    kind = table_format(p, fmt)
    rows = (
        _iter_jsonl(p, columns, optional, aliases or {})
        if kind == "jsonl"
        else _iter_delimited(p, kind, columns, optional, aliases or {})
    )
    try:
        for lineno, row in rows:
            if not allow_empty:
                for name in columns:
                    if not row[name]:
                        raise DataError(f"{p}:{lineno}: field {name!r} is empty; fill it or drop the row")
            yield lineno, row
    except UnicodeDecodeError as exc:
        raise DataError(f"{p}: not UTF-8 ({exc.reason} at byte {exc.start}); save the file as UTF-8") from exc
    except csv.Error as exc:
        raise DataError(f"{p}: malformed {kind.upper()}: {exc}") from exc


def read_table(
    path: str | Path,
    columns: Sequence[str],
    *,
    what: str = "data",
    fmt: str | None = None,
    limit: int | None = None,
    optional: Sequence[str] = (),
    aliases: dict[str, Sequence[str]] | None = None,
    allow_empty: bool = False,
) -> list[dict[str, str]]:
    """Rows of a tsv/csv/jsonl table as dicts keyed by ``columns`` (and the ``optional`` ones present).

    ``aliases`` maps a column to other accepted header names. An empty required field is an error
    unless ``allow_empty``. ``limit`` keeps the first N data rows. A file without data rows is an
    error. ``what`` names the file's role in messages ("bitext", "training data").
    """
    out: list[dict[str, str]] = []
    for _, row in iter_table(
        path, columns, what=what, fmt=fmt, optional=optional, aliases=aliases, allow_empty=allow_empty
    ):
        out.append(row)
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise DataError(
            f"{Path(path).expanduser()}: no data rows in the {what} file; add rows below the header"
        )
    return out


# --------------------------------------------------------------------------------------- STS
@dataclass(frozen=True)
class StsPairs:
    """Scored sentence pairs of an STS file, in file order (scores as written, e.g. 0-5 for STSb-TR)."""

    scores: list[float]
    sentences1: list[str]
    sentences2: list[str]

    def __len__(self) -> int:
        return len(self.scores)


def read_sts(path: str | Path, *, limit: int | None = None, what: str = "STS") -> StsPairs:
    """An STS table (STS-B / STSb-TR: ``score``, ``sentence1``, ``sentence2`` columns) as :class:`StsPairs`.

    Rows with an empty sentence are skipped; a score that is not a number is an error naming the line.
    """
    scores: list[float] = []
    s1: list[str] = []
    s2: list[str] = []
    p = Path(path).expanduser()
    for lineno, row in iter_table(p, ("score", "sentence1", "sentence2"), what=what, allow_empty=True):
        if not row["sentence1"] or not row["sentence2"]:
            continue
        try:
            scores.append(float(row["score"]))
        except ValueError as exc:
            raise DataError(
                f"{p}:{lineno}: score {row['score']!r} is not a number; write a decimal number"
            ) from exc
        s1.append(row["sentence1"])
        s2.append(row["sentence2"])
        if limit is not None and len(scores) >= limit:
            break
    if not scores:
        raise DataError(f"{p}: {what} file has no scored sentence pairs")
    return StsPairs(scores, s1, s2)


# ------------------------------------------------------------------------------------- SQuAD
@dataclass(frozen=True)
class SquadQuestion:
    """One question of a SQuAD file; ``paragraph`` indexes :attr:`SquadFile.paragraphs`."""

    id: str
    question: str
    paragraph: int
    answer_start: int | None  # offset of the first answer in the raw paragraph text, when given


@dataclass(frozen=True)
class SquadFile:
    """A SQuAD v1.1 file: every non-empty paragraph in file order (repeats kept) and its questions.

    ``paragraphs`` are NFC-normalised and stripped; ``raw_paragraphs`` are as written, the text
    that answer offsets point into.
    """

    paragraphs: list[str]
    raw_paragraphs: list[str]
    titles: list[str]
    questions: list[SquadQuestion]


def _answer_start(qa: dict[str, object]) -> int | None:
    answers = qa.get("answers")
    first = answers[0] if isinstance(answers, list) and answers else None
    start = first.get("answer_start") if isinstance(first, dict) else None
    if isinstance(start, str) and start.strip().isdigit():  # TQuAD stores it as a string
        return int(start)
    return start if isinstance(start, int) and not isinstance(start, bool) else None


def read_squad(path: str | Path, *, what: str = "SQuAD JSON") -> SquadFile:
    """A SQuAD v1.1 JSON file (``data[].paragraphs[].{context, qas[].{id, question, answers}}``).

    Paragraphs with an empty context and questions with empty text are skipped; a question without
    an ``id`` gets ``"article-paragraph-question"`` numbers. A file without questions is an error.
    """
    p = check_file(path, what)
    try:
        doc = json.loads(p.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{p}:{exc.lineno}: invalid JSON ({exc.msg}); {what} must be valid UTF-8 JSON"
        ) from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{p}: not UTF-8 ({exc.reason}); {what} must be valid UTF-8 JSON") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(f'{p}: not SQuAD v1.1 JSON: no top-level "data" list')
    paragraphs: list[str] = []
    raw: list[str] = []
    titles: list[str] = []
    questions: list[SquadQuestion] = []
    try:
        for ai, article in enumerate(doc["data"]):
            for pi, para in enumerate(article["paragraphs"]):
                context = str(para["context"])
                if not context.strip():
                    continue
                paragraphs.append(nfc(context).strip())
                raw.append(context)
                titles.append(str(article.get("title", "")))
                for qi, qa in enumerate(para["qas"]):
                    question = nfc(str(qa.get("question") or "")).strip()
                    if question:
                        qid = str(qa.get("id", f"{ai}-{pi}-{qi}"))
                        questions.append(SquadQuestion(qid, question, len(paragraphs) - 1, _answer_start(qa)))
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise DataError(
            f"{p}: not SQuAD v1.1 JSON: missing or malformed field {exc} "
            "(expected data[].paragraphs[].{context, qas[].{id, question}})"
        ) from exc
    if not questions:
        raise DataError(f"{p}: {what} file contains no questions")
    return SquadFile(paragraphs, raw, titles, questions)
