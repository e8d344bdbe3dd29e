"""How a corpus is read, as one value: the options of :func:`~tase_search.documents.readers.read_corpus`
that the CLI, the Ray engine and its shard readers pass along instead of loose arguments."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from .document import Document, ReadStats
from .limits import ReaderLimits


@dataclass(frozen=True)
class ReadOptions:
    """``fmt`` (None: from the extension), the jsonl/csv/tsv ``text_column``/``id_column``,
    ``encoding_errors`` (``strict`` or ``replace``), ``limits`` (:class:`ReaderLimits` fields that differ
    from the defaults, as a plain dict so the value travels to Ray workers) and the text ``encoding``."""

    fmt: str | None = None
    text_column: str | None = None
    id_column: str | None = None
    encoding_errors: str = "strict"
    limits: dict[str, int] = field(default_factory=dict)
    encoding: str = "utf-8"

    @classmethod
    def with_limits(cls, limits: ReaderLimits | None = None, **options: object) -> ReadOptions:
        """The options with ``limits`` given as a :class:`ReaderLimits`."""
        return cls(limits=asdict(limits or ReaderLimits()), **options)  # type: ignore[arg-type]

    def reader_limits(self) -> ReaderLimits:
        return ReaderLimits(**self.limits)

    def read(self, path: str, stats: ReadStats | None = None) -> Iterator[Document]:
        """The documents of ``path`` read with these options (:func:`~.readers.read_corpus`)."""
        from .readers import read_corpus

        return read_corpus(
            path,
            fmt=self.fmt,
            text_column=self.text_column,
            id_column=self.id_column,
            encoding=self.encoding,
            encoding_errors=self.encoding_errors,
            stats=stats,
            limits=self.reader_limits(),
        )
