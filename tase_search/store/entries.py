"""What a manifest's entries may hold: the ``files`` map of a generation or segment and the
``segments`` list of a format-2 index, refused with a one-line IndexCorrupt naming the field."""

from __future__ import annotations

import re
from typing import Any

from ..errors import IndexCorrupt
from .layout import INDEX_FILES

_MAX_COUNT = (1 << 53) + 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SEG_NAME = re.compile(r"(seg|gen)-[0-9]{6}")
_DEL_NAME = re.compile(r"del-[0-9]{6}\.npz")
_FIELDS = {
    "name",
    "factory",
    "search_params",
    "documents",
    "rows",
    "tombstones",
    "files",
    "ranges",
    "deletes",
}


def check_files_field(files: Any) -> None:
    """A ``files`` map: plain index file names to ``{"bytes", "sha256"}`` (IndexCorrupt otherwise)."""
    if not isinstance(files, dict):
        raise IndexCorrupt("manifest field 'files' must be an object; the index is damaged")
    for name, info in files.items():
        if name not in INDEX_FILES:
            raise IndexCorrupt(
                f"manifest lists the file {name[:80]!r}, which is not an index file (expected plain names "
                f"among {', '.join(INDEX_FILES)}); the index is damaged"
            )
        if (
            not isinstance(info, dict)
            or set(info) != {"bytes", "sha256"}
            or not _is_int(info["bytes"], 0, _MAX_COUNT)
            or not isinstance(info["sha256"], str)
            or not _HEX64.fullmatch(info["sha256"])
        ):
            raise IndexCorrupt(
                f'manifest entry for {name} must be {{"bytes": <size>, "sha256": <64 hex digits>}}; '
                "the index is damaged"
            )


def _is_int(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def validate_segments(raw: Any) -> None:
    """Refuse a ``segments`` list with a wrongly typed or out-of-range entry, or names that are not a
    segment's own (IndexCorrupt, one line naming the field)."""
    if not isinstance(raw, list) or len(raw) > 100_000:
        raise IndexCorrupt("manifest field 'segments' must be a list; the index is damaged")
    seen: set[str] = set()
    for n, s in enumerate(raw):
        where = f"manifest segment {n}"
        if not isinstance(s, dict) or set(s) != _FIELDS:
            raise IndexCorrupt(
                f"{where} must have the fields {', '.join(sorted(_FIELDS))}; the index is damaged"
            )
        name = s["name"]
        if not isinstance(name, str) or not _SEG_NAME.fullmatch(name) or name in seen:
            raise IndexCorrupt(f"{where} has an invalid or repeated name; the index is damaged")
        seen.add(name)
        if not (isinstance(s["factory"], str) and 0 < len(s["factory"]) <= 256):
            raise IndexCorrupt(f"{where} has an invalid factory; the index is damaged")
        if not (isinstance(s["search_params"], str) and len(s["search_params"]) <= 1024):
            raise IndexCorrupt(f"{where} has invalid search parameters; the index is damaged")
        for key in ("documents", "rows", "tombstones"):
            if not _count(s[key]):
                raise IndexCorrupt(f"{where} field {key!r} is not a count; the index is damaged")
        ranges = s["ranges"]
        if (
            not isinstance(ranges, list)
            or len(ranges) > 100_000
            or not all(
                isinstance(r, list) and len(r) == 2 and _count(r[0]) and _count(r[1]) and r[0] <= r[1]
                for r in ranges
            )
        ):
            raise IndexCorrupt(f"{where} field 'ranges' is not a list of [lo, hi]; the index is damaged")
        check_files_field(s["files"])
        d = s["deletes"]
        if d is not None and not (
            isinstance(d, dict)
            and set(d) == {"name", "documents", "rows", "bytes", "sha256"}
            and isinstance(d["name"], str)
            and _DEL_NAME.fullmatch(d["name"])
            and all(_count(d[k]) for k in ("documents", "rows", "bytes"))
            and isinstance(d["sha256"], str)
            and re.fullmatch(r"[0-9a-f]{64}", d["sha256"])
        ):
            raise IndexCorrupt(f"{where} field 'deletes' is invalid; the index is damaged")


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= _MAX_COUNT


__all__ = ["check_files_field", "validate_segments"]
