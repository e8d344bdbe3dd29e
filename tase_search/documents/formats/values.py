"""Field values shared by the formats with named fields: ids, descriptions of wrong values, excerpts."""

from __future__ import annotations

from typing import Any

from ...errors import InputError
from ...text.normalize import nfc


def strip_eol(text: str) -> str:
    if text.endswith("\n"):
        text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
    return text


def describe(value: Any) -> str:
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


def excerpt(text: str, limit: int = 60) -> str:
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + "...")


def convert_id(value: Any, where: str, name: str) -> str | None:
    """An id as str: strings and integers are accepted; null or empty means "let the store assign"."""
    if value is None:
        return None
    if isinstance(value, str):
        value = nfc(value).strip()
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InputError(f"{where}: the {name!r} field must be a string or an integer, found {describe(value)}")
