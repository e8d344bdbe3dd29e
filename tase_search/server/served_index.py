"""One index behind a long-lived server: many concurrent readers, one writer.

Readers share one opened :class:`~tase_search.Retriever` (its vector index, SQLite connection and
encoder are safe to use from several threads at once) and never wait for a write. A write takes this
process's writer lock, then the index's own cross-process lock (``Retriever`` raises
:class:`~tase_search.errors.IndexLocked` when another process holds it), commits a new generation
with a separate Retriever, opens it, and swaps it in as the reader; searches already running finish
on the generation they started with, whose open files stay readable after the writer removes them.
A write by another process (``tase-search index``) is noticed at the next read: the manifest is
replaced atomically, so a changed ``stat`` of it means a new generation to open.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import IndexLocked
from ..query.options import run_search
from ..retriever import AddResult, DocLike, Hit, Retriever
from ..store.layout import MANIFEST_NAME
from ..store.manifest import read_manifest

#: How long a write waits for another write to this index in the same process before giving up.
WRITE_WAIT_S = 60.0


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path / MANIFEST_NAME)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class ServedIndex:
    """``retriever``'s index, shared by concurrent requests (see the module docstring)."""

    def __init__(self, name: str, retriever: Retriever, *, write_wait_s: float = WRITE_WAIT_S) -> None:
        from ..encoding.external import is_external

        self.name = name
        self.path = retriever.path
        # vectors from an outside embedder: served for search by vector and keyword search; a text
        # query that needs the embedder, or an add, gets the error that says so
        self.external = is_external(retriever.manifest.model.id) and retriever._encoder is None
        self.encoder = None if self.external else retriever.encoder  # the model loads now, not later
        self._stamp = _stamp(self.path)
        if self.external:
            retriever._open()
        else:
            retriever.warm_up()
        self._reader = retriever
        self._swap = threading.Lock()
        self._write = threading.Lock()
        self._write_wait_s = write_wait_s

    # ------------------------------------------------------------------ reading
    def reader(self) -> Retriever:
        """The Retriever for the newest committed generation (opened; shared; never mutated)."""
        stamp = _stamp(self.path)
        if stamp != self._stamp:
            with self._swap:
                if stamp != self._stamp:
                    fresh = Retriever.load(self.path, model=self.encoder)  # a manifest at least as new
                    if self.external:
                        fresh._open()
                    else:
                        fresh.warm_up()
                    self._reader, self._stamp = fresh, stamp
        return self._reader

    def search(
        self,
        queries: str | Sequence[str],
        k: int,
        filter: Mapping[str, str] | None = None,  # noqa: A002 - the Retriever's name
        mode: str | None = None,
        *,
        min_score: float | None = None,
        highlight: bool = False,
        rerank: int | None = None,
    ) -> list[Hit] | list[list[Hit]]:
        return run_search(
            self.reader(), queries, k, filter, mode, min_score=min_score, highlight=highlight, rerank=rerank
        )

    def info(self) -> dict[str, Any]:
        return self.reader().info()

    def get(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return self.reader().get(ids)

    @property
    def documents(self) -> int:
        return self.reader().manifest.documents

    # ------------------------------------------------------------------ writing
    def add(self, docs: Iterable[DocLike], *, on_duplicate: str = "error") -> AddResult:
        with self._writing():
            writer = Retriever.load(self.path, model=self.encoder)
            result = writer.add(docs, on_duplicate=on_duplicate)
            self._publish(writer)
            return result

    def delete(self, ids: Sequence[str]) -> list[str]:
        with self._writing():
            writer = Retriever.load(self.path, model=self.encoder)
            deleted = writer.delete(ids)
            self._publish(writer)
            return deleted

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        if not self._write.acquire(timeout=self._write_wait_s):
            raise IndexLocked(
                f"another write to index {self.name!r} has been running for over {self._write_wait_s:.0f} s; "
                "retry when it is done"
            )
        try:
            yield
        finally:
            self._write.release()

    def _publish(self, writer: Retriever) -> None:
        """Make ``writer``'s freshly committed generation the one readers get."""
        writer.warm_up()
        stamp = _stamp(self.path)
        # If another process committed after us, the stamp is of its manifest: leave it unrecorded,
        # so the next read opens that newer generation.
        current = read_manifest(self.path).generation == writer.manifest.generation
        with self._swap:
            self._reader, self._stamp = writer, stamp if current else None


__all__ = ["WRITE_WAIT_S", "ServedIndex"]
