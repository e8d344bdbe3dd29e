"""Input coercion: what users hand to ``add`` and ``search`` made storable.

Documents arrive as strings, dicts or :class:`~tase_search.documents.readers.Document`; each becomes a cleaned
Document (blank ones counted and skipped) whose id, metadata and source can be stored: lone surrogates
become U+FFFD, NaN and infinities become null, metadata must be JSON.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..errors import InputError
from ..results import AddResult
from ..store.docs import MAX_METADATA_DEPTH
from ..text.normalize import clean_document
from .document import Document

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
    where = f"document #{i} ({doc.source}:{doc.line})"
    if not isinstance(doc.metadata, Mapping):
        raise InputError(f"{where}: metadata is {type(doc.metadata).__name__}; give a dict (a JSON object)")
    depth = nesting_depth(doc.metadata, MAX_METADATA_DEPTH)
    if depth > MAX_METADATA_DEPTH:
        raise InputError(
            f"{where}: metadata is nested more than {MAX_METADATA_DEPTH} levels deep, the limit; "
            "flatten it (an index could not be searched with it)"
        )
    if doc.id is not None and not isinstance(doc.id, str):
        raise InputError(f"{where}: id is {type(doc.id).__name__}; give a string")
    if doc.id is not None and len(doc.id) > MAX_ID_CHARS:
        raise InputError(f"{where}: id is {len(doc.id)} characters long, over the limit of {MAX_ID_CHARS}")
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


#: The longest document id accepted: ids are keys, not content.
MAX_ID_CHARS = 4096


def nesting_depth(value: Any, limit: int) -> int:
    """Nesting depth of mappings and lists in ``value`` (a scalar is 0, ``{}`` is 1), without recursion;
    stops counting past ``limit`` (so a self-containing dict ends too)."""
    depth, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, Mapping):
            items: Any = v.values()
        elif isinstance(v, (list, tuple)):
            items = v
        else:
            continue
        depth = max(depth, d)
        if depth > limit:
            return depth
        stack.extend((x, d + 1) for x in items if isinstance(x, (Mapping, list, tuple)))
    return depth


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
