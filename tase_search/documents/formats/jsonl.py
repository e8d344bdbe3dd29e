"""jsonl: one JSON object per line (``.jsonl``, ``.ndjson``), the text in one field, the others metadata."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from ...errors import InputError
from ...store.docs import json_depth
from ...text.normalize import clean_document
from ..document import Document
from ..limits import LIMIT_HINT
from . import CorpusFormat, ParseContext
from .values import convert_id, describe, excerpt


class _TooManyDigits(ValueError):
    pass


def _int_parser(limit: int) -> Any:
    def parse(digits: str) -> int:
        if len(digits) - digits.startswith("-") > limit:
            raise _TooManyDigits(len(digits) - digits.startswith("-"))
        return int(digits)

    return parse


def read_jsonl(lines: Iterable[tuple[int, str]], ctx: ParseContext) -> Iterator[Document]:
    """One JSON object per line; the ``text`` field (or ``ctx.text_column``) is the text, ``id`` (or
    ``ctx.id_column``) the id, the other fields the metadata."""
    source, stats, limits = ctx.source, ctx.stats, ctx.limits
    text_field, id_field = ctx.text_column or "text", ctx.id_column
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
                "(max_int_digits); quote it as a string, or " + LIMIT_HINT.format(name="max_int_digits")
            ) from None
        except json.JSONDecodeError as exc:
            # some messages end in "at" ("Unterminated string starting at"): no second one
            at = "" if exc.msg.endswith(" at") else " at"
            raise InputError(
                f"{where}: not valid JSON ({exc.msg}{at} column {exc.colno}): {excerpt(line)}"
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
                f"{where}: expected a JSON object with a {text_field!r} field, found {describe(obj)}"
            )
        if text_field not in obj:
            found = ", ".join(repr(k) for k in list(obj)[:20]) or "none"
            raise InputError(
                f"{where}: no {text_field!r} field (fields found: {found}); use --text-column to pick one"
            )
        text = obj.pop(text_field)
        if not isinstance(text, str):
            raise InputError(f"{where}: the {text_field!r} field must be a string, found {describe(text)}")
        if id_key in obj:
            doc_id = convert_id(obj.pop(id_key), where, id_key)
        elif id_field is not None:
            raise InputError(f"{where}: no {id_field!r} field (the id field given with --id-column)")
        else:
            doc_id = None
        text = clean_document(text)
        if not text:
            stats.skipped_empty += 1
            continue
        yield Document(doc_id, text, obj, source, lineno)


FORMATS = (
    CorpusFormat(
        "jsonl", (".jsonl", ".ndjson"), read_jsonl, aliases=("ndjson",), summary="one JSON object per line"
    ),
)
