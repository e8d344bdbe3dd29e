"""Corpus shards: pieces of the input that workers read on their own, with the local readers.

A shard is one file, or a byte range of one: uncompressed txt, jsonl and tsv (one record per line) are
cut into ranges of about ``target_bytes`` at line starts, found in one pass of the planner over the file
(which also counts lines, so each shard knows the number of its first line and every document keeps
the ``source:line`` a local build gives it). gzip (no random access) and csv (a quoted field may span
lines) are one shard per file. A tsv range is read with the file's header line in front of it.

The planner first reads each file's first record through :func:`~tase_search.documents.readers.read_corpus`, so a
wrong format, column or a binary file fails on the driver, before any worker starts.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..documents import readers as _readers
from ..documents.document import Document, ReadStats
from ..documents.formats import ParseContext, get_format
from ..documents.limits import ReaderLimits
from ..documents.read_options import ReadOptions
from ..errors import InputError

#: Bytes per shard of a splittable file: large enough that a shard's bookkeeping is noise, small enough
#: that a killed job loses little and a worker's share stays balanced.
TARGET_BYTES = 32 << 20
_BLOCK = 1 << 20
_SPLITTABLE = ("txt", "jsonl", "tsv")


@dataclass(frozen=True)
class Shard:
    """Bytes ``start:end`` of ``path`` (``end`` -1: to the end), its first line ``first_line``.

    ``source`` is the path as given (what documents record), ``path`` the absolute one a worker opens;
    ``size`` and ``mtime_ns`` name the file's version, so a changed file never resumes from old shards.
    """

    number: int
    source: str
    path: str
    fmt: str
    start: int
    end: int
    first_line: int
    size: int
    mtime_ns: int

    def key(self, options: ReadOptions, job: Sequence[Any]) -> str:
        """What the shard's result depends on: its bytes, how they are read, and the ``job`` (model,
        passage overlap); the name of its staged result."""
        read = {k: v for k, v in asdict(options).items() if k != "encoding"}  # Ray reads UTF-8 only
        raw = json.dumps([asdict(self), read, list(job)], sort_keys=True, default=str)
        return hashlib.blake2b(raw.encode("utf-8"), digest_size=12).hexdigest()


def plan_shards(
    corpus: Sequence[str], options: ReadOptions, target_bytes: int = TARGET_BYTES
) -> tuple[list[Shard], ReadStats]:
    """The shards of ``corpus`` in input order (the order a local build reads the documents in), and
    the read statistics of checking each file's first record."""
    if target_bytes < 1:
        raise InputError(f"shard size {target_bytes!r} is not valid: give a number of bytes >= 1")
    shards: list[Shard] = []
    probe = ReadStats()
    for source in corpus:
        if source == _readers.STDIN:
            raise InputError(
                "the ray engine reads corpus files, and stdin ('-') cannot be split among workers; save the "
                "input to a file and index that, or use --engine local"
            )
        fmt = _check_first_record(source, options, probe)
        path = os.path.abspath(source)
        st = os.stat(path)
        splittable = fmt in _SPLITTABLE and not _is_gzip(path)
        points = _line_starts(path, st.st_size, target_bytes) if splittable else [(0, 1)]
        for i, (start, line) in enumerate(points):
            end = points[i + 1][0] if i + 1 < len(points) else -1
            shards.append(Shard(len(shards), source, path, fmt, start, end, line, st.st_size, st.st_mtime_ns))
    return shards, probe


def _check_first_record(source: str, options: ReadOptions, stats: ReadStats) -> str:
    """Read ``source``'s first document as a local build would (all argument, path and header checks);
    returns the file's format."""
    it = _readers.read_corpus(
        source,
        fmt=options.fmt,
        text_column=options.text_column,
        id_column=options.id_column,
        encoding_errors=options.encoding_errors,
        stats=stats,
        limits=options.reader_limits(),
    )
    next(it, None)
    it.close()
    return _readers._check_format(options.fmt) if options.fmt else _readers.detect_format(source)


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _line_starts(path: str, size: int, target: int) -> list[tuple[int, int]]:
    """``(byte offset, line number)`` of each shard's first line: the first line starting at or after
    every ``target`` bytes from the previous shard's start. One pass, counting newlines in blocks."""
    points = [(0, 1)]
    boundary = target
    pos = newlines = 0
    with open(path, "rb") as fh:
        while boundary < size and (block := fh.read(_BLOCK)):
            while boundary < size:
                i = block.find(b"\n", max(0, boundary - 1 - pos))
                if i < 0:
                    break
                start = pos + i + 1
                if start >= size:
                    boundary = size
                    break
                points.append((start, newlines + block.count(b"\n", 0, i + 1) + 1))
                boundary = start + target
            newlines += block.count(b"\n")
            pos += len(block)
    return points


def read_shard(shard: Shard, options: ReadOptions, stats: ReadStats) -> Iterator[Document]:
    """The documents of one shard, as :func:`~tase_search.documents.readers.read_corpus` gives them for those lines
    (same cleaning, ids, metadata, ``source`` and ``line``, and the same errors)."""
    limits = options.reader_limits()
    if shard.start == 0 and shard.end == -1:  # a whole file: the reader itself
        yield from _readers.read_corpus(
            shard.path,
            fmt=shard.fmt,
            text_column=options.text_column,
            id_column=options.id_column,
            encoding_errors=options.encoding_errors,
            stats=stats,
            limits=limits,
        )
        return
    with open(shard.path, "rb") as fh:
        header: list[tuple[int, str]] = []
        if shard.fmt == "tsv" and shard.start > 0:
            first = next(_readers._checked_lines(fh, shard.source, limits), b"")
            # numbered as the line before the range: the csv reader numbers rows from the last line fed
            text = next(_readers._decoded_lines([first], shard.source, options.encoding_errors, ReadStats()))[
                1
            ]
            header = [(shard.first_line - 1, text)]
        fh.seek(shard.start)
        raw = _range_lines(fh, shard, limits)
        lines = _readers._decoded_lines(raw, shard.source, options.encoding_errors, stats, shard.first_line)
        if header:
            lines = _chain(header, lines)
        docs = _records(shard, options, lines, stats, limits)
        for doc in docs:
            stats.read += 1
            stats.per_source[shard.source] = stats.per_source.get(shard.source, 0) + 1
            yield doc


def _range_lines(fh: Any, shard: Shard, limits: ReaderLimits) -> Iterator[bytes]:
    left = None if shard.end < 0 else shard.end - shard.start
    for line in _readers._checked_lines(fh, shard.source, limits, first=shard.first_line):
        if left is not None:
            if left <= 0:
                return
            left -= len(line)
        yield line


def _chain(first: list[tuple[int, str]], rest: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    yield from first
    yield from rest


def _records(
    shard: Shard,
    options: ReadOptions,
    lines: Iterator[tuple[int, str]],
    stats: ReadStats,
    limits: ReaderLimits,
) -> Iterator[Document]:
    ctx = ParseContext(shard.source, options.text_column, options.id_column, stats, limits)
    return get_format(shard.fmt).parse(lines, ctx)
