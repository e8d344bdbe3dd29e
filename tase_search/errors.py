"""The few exception types tase-search raises on purpose.

Every user-facing error says what was wrong (the bad value) and what to do next, so
the CLI can print it as-is and exit non-zero without a traceback.
"""

from __future__ import annotations


class TaseSearchError(Exception):
    """Base class: an error the user can act on."""


class InputError(TaseSearchError):
    """A corpus, query or argument could not be used (names file, line and the fix)."""


class IndexExists(InputError):
    """A new index was asked for where one already exists (append to it, or overwrite it)."""


class ModelError(TaseSearchError):
    """A model name, path or checkpoint could not be resolved or loaded."""


class IndexError_(TaseSearchError):
    """An index directory is missing, incompatible with the encoder, or corrupt."""


class IndexNotFound(IndexError_):
    """No index at the given name or path."""


class IndexMismatch(IndexError_):
    """The index was built with another model, dimension or format version."""


class IndexCorrupt(IndexError_):
    """The index files disagree with each other or with their checksums."""


class IndexLocked(IndexError_):
    """Another process is writing to this index."""


class IndexWriteError(IndexError_):
    """A write could not be completed (disk full, no permission, I/O error); the index is as it was."""


class DataError(TaseSearchError):
    """Training or evaluation data is missing, empty or malformed (names file and line)."""
