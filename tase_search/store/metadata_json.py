"""Stored metadata read back: JSON text that must be an object nested at most :data:`MAX_METADATA_DEPTH` deep."""

from __future__ import annotations

import json
from typing import Any

from ..errors import IndexCorrupt

#: The deepest metadata accepted: where documents enter, in the store, and in every check.
MAX_METADATA_DEPTH = 64
_FIX = "the index is damaged (run `tase-search verify`)"


def parse_metadata(raw: object, where: str) -> dict[str, Any]:
    """Stored metadata as a dict: it must be a JSON object nested at most :data:`MAX_METADATA_DEPTH` deep."""
    if not isinstance(raw, str):
        raise IndexCorrupt(f"{where} has metadata that is not JSON text ({type(raw).__name__}); {_FIX}")
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, absurd nesting, or an integer past the digit limit
        raise IndexCorrupt(f"{where} has metadata that is not valid JSON; {_FIX}") from None
    if not isinstance(meta, dict):
        raise IndexCorrupt(f"{where} has metadata that is not a JSON object; {_FIX}")
    if json_depth(meta) > MAX_METADATA_DEPTH:
        raise IndexCorrupt(f"{where} has metadata nested deeper than {MAX_METADATA_DEPTH} levels; {_FIX}")
    return meta


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, ``{}`` is 1), without recursion."""
    depth, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        elif not isinstance(v, list):
            continue
        depth = max(depth, d)
        stack.extend((x, d + 1) for x in v if isinstance(x, (dict, list)))
    return depth
