"""Index names and paths: a name lives under the index root, anything that looks like a path is one."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import InputError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def resolve_index_path(
    name_or_path: str | os.PathLike[str] | None, root: str | os.PathLike[str] | None = None
) -> Path:
    """An index name lives under ``root``; anything with a path separator (or ``.``) is a path.

    ``root`` defaults to the ``index_root`` setting (``TASE_SEARCH_INDEX_ROOT``, the config file, else
    the user data directory: :func:`tase_search.home.default_index_root`), as for the CLI.
    """
    if name_or_path is None or str(name_or_path) == "":
        name_or_path = "default"
    s = str(name_or_path)
    if isinstance(name_or_path, Path) or os.sep in s or s.startswith(".") or s.startswith("~"):
        return _expand(s)
    if not _NAME_RE.match(s):
        raise InputError(
            f"index name {s!r} is not valid: use letters, digits, '.', '_' and '-' (or give a path with a '/')"
        )
    if root is None:
        from .config import load_settings

        root = load_settings().index_root
    return _expand(str(root)) / s


def _expand(path: str) -> Path:
    if "\x00" in path:
        # the OS cannot name such a file, and "~user\0" makes the home-directory lookup raise ValueError
        raise InputError(f"index path {path!r} contains a NUL character; give a path without it")
    try:
        return Path(path).expanduser()
    except RuntimeError:  # "~nosuchuser": no home directory to expand to
        raise InputError(f"cannot expand {path!r}: no such user's home directory") from None
