"""Index names and paths.

On the command line (``--index``) a bare name lives under the index root and anything that looks like a
path is one (:func:`resolve_index_path`). In the Python API (``Retriever.build(path=...)``) ``path`` is
always a filesystem path, relative to the working directory as ``open()`` would take it
(:func:`api_index_path`): a keyword called ``path`` that put ``"cmp_api"`` in the user data directory
surprised its users. Leaving it out means the CLI's default index.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import InputError

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def resolve_index_path(
    name_or_path: str | os.PathLike[str] | None, root: str | os.PathLike[str] | None = None
) -> Path:
    """An index name lives under ``root``; anything with a path separator (or ``.``) is a path.

    ``root`` defaults to the ``index_root`` setting (``TASE_SEARCH_INDEX_ROOT``, the config file, else
    the user data directory: :func:`tase_search.runtime.home.default_index_root`), as for the CLI.
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


def api_index_path(path: str | os.PathLike[str] | None) -> Path:
    """The index directory a Python caller means by ``path``: a filesystem path as written (relative to
    the working directory, ``~`` expanded); None is the index named ``default`` under the index root,
    the one the CLI uses without ``--index``."""
    if path is None:
        return resolve_index_path(None)
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"path={path!r} is not valid: give a directory path (str or pathlib.Path) or None")
    s = os.fspath(path)
    if isinstance(s, bytes) or not s.strip():
        raise InputError(f"path={path!r} is not valid: give a directory path (str or pathlib.Path) or None")
    return _expand(s)
