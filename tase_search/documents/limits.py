"""How big one record of a corpus may be (:class:`ReaderLimits`), for every format and the Ray shards."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace

from ..errors import InputError
from ..store.docs import MAX_METADATA_DEPTH


@dataclass(frozen=True)
class ReaderLimits:
    """How big one record of a corpus may be. The defaults fit any real corpus and stop hostile input
    (a device, a gzip bomb, a line with no end) in seconds with a clear error; raise one for an unusual
    corpus: ``read_corpus(path, limits=ReaderLimits(max_line_bytes=1 << 30))``, or on the command line
    ``tase-search index --reader-limit max_line_bytes=1073741824``.

    ``max_line_bytes``: one line (and one csv field). ``max_columns``: columns of a csv/tsv header.
    ``max_json_depth``: nesting of a JSON Lines record (at most the store's ``MAX_METADATA_DEPTH``).
    ``max_int_digits``: digits of a JSON integer (at most Python's ``sys.get_int_max_str_digits()``).
    ``max_gzip_ratio``: decompressed / compressed size, checked once ``gzip_ratio_after_bytes`` have
    been decompressed (so small, very repetitive files are fine).
    """

    max_line_bytes: int = 64 << 20
    max_columns: int = 10_000
    max_json_depth: int = MAX_METADATA_DEPTH
    max_int_digits: int = 4300
    max_gzip_ratio: int = 100
    gzip_ratio_after_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise InputError(f"reader limit {f.name}={v!r} is not valid: give a whole number >= 1")
        if self.max_json_depth > MAX_METADATA_DEPTH:
            raise InputError(
                f"reader limit max_json_depth={self.max_json_depth} is over {MAX_METADATA_DEPTH}, the deepest "
                "metadata an index stores"
            )
        interpreter = sys.get_int_max_str_digits() or self.max_int_digits
        if self.max_int_digits > interpreter:
            raise InputError(
                f"reader limit max_int_digits={self.max_int_digits} is over Python's own limit ({interpreter}); "
                "raise that first (sys.set_int_max_str_digits, or PYTHONINTMAXSTRDIGITS)"
            )

    @classmethod
    def parse(cls, items: Iterable[str]) -> ReaderLimits:
        """Limits from ``NAME=NUMBER`` strings (the CLI's ``--reader-limit``); unnamed ones keep their default."""
        names = {f.name for f in fields(cls)}
        changes: dict[str, int] = {}
        for item in items:
            name, sep, value = item.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in names or not value.strip().isdigit():
                raise InputError(
                    f"reader limit {item!r} is not NAME=NUMBER with NAME one of {', '.join(sorted(names))}"
                )
            changes[name] = int(value)
        return replace(cls(), **changes)


LIMIT_HINT = "raise it with --reader-limit {name}=N (ReaderLimits({name}=N) in Python) if the file is genuine"
