"""A tase-search index used as a toolkit's document store.

The toolkits' stores want what :class:`~tase_search.Retriever` does (add with ids and metadata, search
with a metadata filter, delete by id, get by id) plus two things it does not: an index that comes into
being with the first write, and listing the documents that match a filter (LlamaIndex deletes "all
nodes of this source document", Haystack's ``filter_documents`` returns every match). Listing reads
the document store of the index's current generation through its public methods.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..errors import IndexCorrupt, InputError
from ..readers import Document
from ..retriever import Hit, Retriever, resolve_index_path
from ..search_options import as_native_filter, check_mode, run_search
from ..store.layout import DOCS_FILE

_LIST_BATCH = 500


class IndexStore:
    """An index at ``path`` searched and written with ``encoder``; created by the first write.

    ``encoder`` None opens an existing index with the model its manifest names (a new index then
    needs one: InputError). All operations of one store are serialised by a lock: the toolkits call
    from executor threads for their async methods, and an index has one writer.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        encoder: Any = None,
        *,
        factory: str | None = None,
    ) -> None:
        self.path = resolve_index_path(path)
        self.encoder = encoder
        self.factory = factory
        self._retriever: Retriever | None = None
        self._lock = threading.RLock()
        if encoder is None and not Retriever.exists(self.path):
            raise InputError(
                f"no index at {self.path} and no model given to create one with; pass an encoder or model"
            )

    # ------------------------------------------------------------------ state
    def retriever(self) -> Retriever | None:
        """The index, refreshed to its newest generation (None while it does not exist)."""
        with self._lock:
            if self._retriever is None:
                if not Retriever.exists(self.path):
                    return None
                self._retriever = Retriever.load(self.path, model=self.encoder)
            else:
                self._retriever.refresh()
            return self._retriever

    def count(self) -> int:
        r = self.retriever()
        return 0 if r is None else r.manifest.documents

    # ------------------------------------------------------------------ writes
    def add(self, docs: Sequence[Document], *, on_duplicate: str = "replace") -> Any:
        """Add ``docs`` (every one with an id); returns the :class:`~tase_search.AddResult`."""
        if any(d.id is None for d in docs):
            raise InputError("every document given to an IndexStore needs an id")
        with self._lock:
            r = self.retriever()
            if r is not None:
                return r.add(docs, on_duplicate=on_duplicate)
            self._retriever = Retriever.build(
                docs, model=self.encoder, path=self.path, factory=self.factory, on_duplicate=on_duplicate
            )
            return self._retriever.last_add

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Delete by id; returns the ids that were there."""
        with self._lock:
            r = self.retriever()
            return [] if r is None or not ids else r.delete([str(i) for i in ids])

    def delete_matching(self, filter: Mapping[str, Any] | None) -> list[str]:  # noqa: A002
        """Delete every document that matches ``filter`` (all of them for None)."""
        with self._lock:
            return self.delete([d["id"] for d in self.documents(filter)])

    # ------------------------------------------------------------------ reads
    def search(
        self,
        query: str,
        k: int,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        mode: str | None = None,
    ) -> list[Hit]:
        check_mode(mode)
        with self._lock:
            r = self.retriever()
            return [] if r is None else run_search(r, query, k, filter, mode)

    def get(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Stored documents (``id``, ``text``, ``metadata``, ...) in the order of ``ids``; missing left out."""
        with self._lock:
            r = self.retriever()
            return [] if r is None or not ids else r.get([str(i) for i in ids])

    def documents(self, filter: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:  # noqa: A002
        """Every stored document matching ``filter`` (all for None), in insertion order."""
        with self._lock:
            r = self.retriever()
            if r is None:
                return []
            try:
                return list(self._list(r, filter))
            except (IndexCorrupt, FileNotFoundError):  # the generation went away under us: once more
                r.refresh()
                return list(self._list(r, filter))

    @staticmethod
    def _list(r: Retriever, filter: Mapping[str, Any] | None) -> Iterator[dict[str, Any]]:  # noqa: A002
        from ..store.docs import DocStore

        store = DocStore(r.path / r.manifest.generation_dir / DOCS_FILE, readonly=True)
        try:
            pids = sorted(store.pids_matching(as_native_filter(filter) or {}))
            seen: set[str] = set()
            for i in range(0, len(pids), _LIST_BATCH):
                fetched = store.fetch(pids[i : i + _LIST_BATCH])
                for pid in pids[i : i + _LIST_BATCH]:
                    sp = fetched.get(pid)
                    if sp is None or sp.doc_id in seen:
                        continue
                    seen.add(sp.doc_id)
                    yield {"id": sp.doc_id, "text": sp.text, "metadata": sp.metadata, "source": sp.source}
        finally:
            store.close()


def make_document(
    doc_id: str, text: Any, metadata: Mapping[str, Any] | None, source: str, n: int
) -> Document:
    """A :class:`~tase_search.Document` from a toolkit's record, refusing what the index cannot store."""
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"document #{n} ({doc_id!r}) has no text: tase-search indexes text, give some")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise InputError(f"document #{n} ({doc_id!r}): metadata is {type(metadata).__name__}, not a dict")
    return Document(id=str(doc_id), text=text, metadata=dict(metadata or {}), source=source, line=n + 1)


__all__ = ["IndexStore", "make_document"]
