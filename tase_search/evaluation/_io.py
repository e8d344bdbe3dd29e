"""Readers for the evaluation files: UTF-8 TSV with a header row, and SQuAD v1.1 JSON.

Every failure is a :class:`~tase_search.errors.DataError` that names the file (and the line) and
says what was expected. Only the standard library is used.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..text import nfc

# Sentences in these files contain quotes and are never quoted themselves.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def check_file(path: str | Path, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{what} file {str(p)!r} not found")
    if not p.is_file():
        raise DataError(f"{what} path {str(p)!r} is not a file")
    return p


def read_tsv(
    path: str | Path,
    required: Sequence[str],
    *,
    what: str = "TSV",
    limit: int | None = None,
    aliases: dict[str, Sequence[str]] | None = None,
) -> list[dict[str, str]]:
    """Rows of a tab-separated file with a header row, as dicts keyed by the ``required`` names.

    ``aliases`` maps a required name to other header spellings accepted for it. Fields are not
    quoted (``"`` is an ordinary character), text is NFC-normalised and stripped, and blank lines
    are skipped. ``limit`` keeps the first N data rows.
    """
    p = check_file(path, what)
    aliases = aliases or {}
    try:
        with p.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            if header is None:
                raise DataError(
                    f"{what} file {str(p)!r} is empty: expected a header row with {', '.join(required)}"
                )
            header = [h.strip().lower() for h in header]
            cols: dict[str, int] = {}
            for name in required:
                for cand in (name, *aliases.get(name, ())):
                    if cand in header:
                        cols[name] = header.index(cand)
                        break
                else:
                    raise DataError(
                        f"{what} file {str(p)!r} has columns {header}, but needs a header row with "
                        f"{', '.join(required)} (tab-separated)"
                    )
            need = max(cols.values()) + 1
            rows: list[dict[str, str]] = []
            for fields in reader:
                if not fields or all(not f.strip() for f in fields):
                    continue
                if len(fields) < need:
                    raise DataError(
                        f"{what} file {str(p)!r}, line {reader.line_num}: {len(fields)} field(s), expected "
                        f"{len(header)} ({', '.join(header)}) separated by tabs"
                    )
                rows.append({name: nfc(fields[i]).strip() for name, i in cols.items()})
                if limit is not None and len(rows) >= limit:
                    break
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} file {str(p)!r} is not UTF-8: {exc}") from exc
    except csv.Error as exc:
        raise DataError(f"{what} file {str(p)!r} could not be parsed as TSV: {exc}") from exc
    if not rows:
        raise DataError(f"{what} file {str(p)!r} has a header but no data rows")
    return rows


def read_squad(path: str | Path, *, what: str = "SQuAD JSON") -> tuple[list[dict[str, Any]], list[str]]:
    """``(questions, paragraphs)`` of a SQuAD v1.1 file, in file order.

    Questions are ``{"id", "question", "context", "title"}`` dicts; paragraphs are every non-empty
    context, including those without questions.
    """
    p = check_file(path, what)
    try:
        doc = json.loads(p.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{what} file {str(p)!r} is not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(f'{what} file {str(p)!r} has no top-level "data" list (expected SQuAD v1.1 format)')
    out: list[dict[str, Any]] = []
    contexts: list[str] = []
    try:
        for ai, article in enumerate(doc["data"]):
            for pi, para in enumerate(article["paragraphs"]):
                context = nfc(str(para["context"])).strip()
                if context:
                    contexts.append(context)
                for qi, qa in enumerate(para["qas"]):
                    question = nfc(str(qa["question"])).strip()
                    if not question or not context:
                        continue
                    qid = str(qa.get("id", f"{ai}-{pi}-{qi}"))
                    out.append(
                        {
                            "id": qid,
                            "question": question,
                            "context": context,
                            "title": str(article.get("title", "")),
                        }
                    )
    except (KeyError, TypeError) as exc:
        raise DataError(
            f"{what} file {str(p)!r} is not SQuAD v1.1: missing or malformed field {exc} "
            "(expected data[].paragraphs[].{context, qas[].{id, question}})"
        ) from exc
    if not out:
        raise DataError(f"{what} file {str(p)!r} contains no questions")
    return out, contexts
