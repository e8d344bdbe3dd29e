"""Input coercion: what users hand to ``add`` and ``search`` made storable.

Documents arrive as strings, dicts or :class:`~tase_search.readers.Document`; each becomes a cleaned
Document (blank ones counted and skipped) whose id, metadata and source can be stored: lone surrogates
become U+FFFD, NaN and infinities become null, metadata must be JSON.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .errors import InputError
from .readers import Document
from .results import AddResult
from .text import clean_document

DocLike = str | Document | Mapping[str, Any]


def as_documents(docs: Iterable[DocLike], res: AddResult) -> Iterator[Document]:
    """The storable documents of ``docs``, in order; blank ones are counted in ``res.skipped_empty``."""
    if isinstance(docs, (str, bytes)):
        raise InputError("docs must be a list or iterable of documents, not a single string")
    for i, d in enumerate(docs):
        doc = coerce(d, i, res)
        if doc is not None:
            yield doc


def coerce(d: DocLike, i: int, res: AddResult) -> Document | None:
    """Document #``i`` of the input as a cleaned, storable :class:`Document`; None (counted in
    ``res.skipped_empty``) when its text is blank."""
    if isinstance(d, Document):
        doc = d
    elif isinstance(d, str):
        doc = Document(id=None, text=d, metadata={}, source="<python>", line=i + 1)
    elif isinstance(d, Mapping):
        if "text" not in d or not isinstance(d["text"], str):
            raise InputError(f"document #{i} has no string 'text' field (keys: {', '.join(map(str, d))})")
        meta = {str(k): v for k, v in d.items() if k not in ("text", "id")}
        doc_id = d.get("id")
        doc = Document(
            id=None if doc_id is None else str(doc_id),
            text=d["text"],
            metadata=meta,
            source="<python>",
            line=i + 1,
        )
    else:
        raise InputError(f"document #{i} is {type(d).__name__}; give str, dict with 'text', or Document")
    text = clean_document(doc.text)
    if not text:
        res.skipped_empty += 1
        return None
    if doc.id is not None and not str(doc.id).strip():
        raise InputError(f"document #{i} ({doc.source}:{doc.line}) has an empty id")
    doc_id, meta, source = scrub(doc.id), scrub(doc.metadata), scrub(doc.source)
    try:
        json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"document #{i} ({doc.source}:{doc.line}): metadata is not JSON-serialisable ({exc})"
        ) from None
    if text != doc.text or (doc_id, meta, source) != (doc.id, doc.metadata, doc.source):
        doc = Document(id=doc_id, text=text, metadata=meta, source=source, line=doc.line)
    return doc


_SURROGATES = re.compile("[\ud800-\udfff]")


def scrub(value: Any) -> Any:
    """Make a value storable: lone surrogates (JSON ``"\\ud800"`` escapes, undecodable file names) are not
    UTF-8 and become U+FFFD; NaN and ±Infinity are not JSON (SQLite's JSON functions reject them) and
    become null."""
    if isinstance(value, str):
        return _SURROGATES.sub("\ufffd", value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {scrub(str(k)): scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


def normalize_filter(filter: Mapping[str, str]) -> dict[str, str]:  # noqa: A002
    out = {}
    for key, value in filter.items():
        if not isinstance(key, str) or not key:
            raise InputError(f"filter key {key!r} must be a non-empty string")
        out[scrub(key)] = scrub(str(value))
    return out
