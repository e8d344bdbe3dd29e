"""A tase-search index used as a toolkit's document store.

The toolkits' stores want what :class:`~tase_search.Retriever` does (add with ids and metadata, or with
vectors made by the toolkit's embedder; search by text, by vector or by MMR with a filter; delete and get
by id) plus two things it does not: an index that comes into being with the first write, and listing the
documents that match a filter (LlamaIndex deletes "all nodes of this source document", Haystack's
``filter_documents`` returns every match). Listing reads the document store of the index's current
generation through its public methods. Filters are the store's filter language
(:mod:`tase_search.integrations._filters`).

``encoder`` is one of our encoders (the index embeds text itself) or an
:class:`~tase_search.encoding.external.ExternalEmbedder` (the toolkit's embedder: each document is one vector).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .. import writes as _writes
from ..documents.document import Document
from ..encoding.external import ExternalEmbedder
from ..errors import IndexCorrupt, InputError
from ..query.options import check_mode, run_search
from ..retriever import Hit, Retriever, resolve_index_path
from . import _filters

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
    @property
    def external(self) -> ExternalEmbedder | None:
        """The toolkit's embedder when the index holds its vectors (None: one of our encoders)."""
        return self.encoder if isinstance(self.encoder, ExternalEmbedder) else None

    def add(self, docs: Sequence[Document], *, on_duplicate: str = "replace") -> Any:
        """Add ``docs`` (every one with an id); returns the :class:`~tase_search.AddResult`. With an
        external embedder, the embedder makes one vector per document."""
        if any(d.id is None for d in docs):
            raise InputError("every document given to an IndexStore needs an id")
        ext = self.external
        if ext is not None:
            self.retriever()  # an existing index tells the embedder its dimension first
            return self.add_vectors(
                docs, ext.encode_document([d.text for d in docs]), on_duplicate=on_duplicate
            )
        with self._lock:

            def build() -> tuple[Retriever, Any]:
                r = Retriever.build(
                    docs, model=self.encoder, path=self.path, factory=self.factory, on_duplicate=on_duplicate
                )
                return r, r.last_add

            def add(r: Retriever) -> tuple[Retriever, Any]:
                return r, r.add(docs, on_duplicate=on_duplicate)

            return self._write(build, add)

    def add_vectors(self, docs: Sequence[Document], vectors: Any, *, on_duplicate: str = "replace") -> Any:
        """Add ``docs`` with their vectors (one each) made by the external embedder of this store."""
        ext = self.external
        if ext is None:
            raise InputError("this index embeds text with its own model; add documents without vectors")
        if any(d.id is None for d in docs):
            raise InputError("every document given to an IndexStore needs an id")
        with self._lock:

            def build() -> tuple[Retriever, Any]:
                r = Retriever.build_from_vectors(
                    docs, vectors, ext, self.path, factory=self.factory, on_duplicate=on_duplicate
                )
                return r, r.last_add

            def add(r: Retriever) -> tuple[Retriever, Any]:
                return r, r.add_vectors(docs, vectors, on_duplicate=on_duplicate, embedder=ext)

            return self._write(build, add)

    def _write(self, build: Any, add: Any) -> Any:
        """One write through :func:`tase_search.writes.build_or_append`: the first write builds the index,
        later ones (and one racing another process's first) append to it; returns the AddResult."""
        r = self.retriever()

        def append() -> tuple[Retriever, Any]:
            current = r if r is not None else self.retriever()  # None: another process built it since
            if current is None:  # pragma: no cover - build_or_append appends only where an index exists
                raise IndexCorrupt(f"no index at {self.path}")
            return add(current)

        done = _writes.build_or_append(self.path, build=build, append=append, appending=r is not None)
        self._retriever = done.retriever
        return done.result

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
        rerank: int | None = None,
    ) -> list[Hit]:
        """Top ``k``; ``rerank=N`` reranks the first ``max(N, k)`` with the cross-encoder
        (:meth:`tase_search.Retriever.search`; None: the ``rerank`` setting)."""
        check_mode(mode)
        with self._lock:
            r = self.retriever()
            if r is None:
                return []
            return run_search(r, query, k, _filters.check(filter), mode, rerank=rerank)

    def rerank(self, query: str, hits: Sequence[Hit], k: int) -> list[Hit]:
        """``hits`` reranked by the index's reranker (the ``reranker`` setting) for ``query``, top ``k``."""
        with self._lock:
            r = self.retriever()
            return [] if r is None or not hits else r.reranker.rerank(query, hits, limit=k)

    def search_by_vector(
        self,
        vector: Any,
        k: int,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        *,
        query: str | None = None,
        mode: str | None = None,
    ) -> list[Hit]:
        """Top ``k`` for a query vector; with ``query`` (its text) the keyword part joins (hybrid)."""
        check_mode(mode)
        with self._lock:
            r = self.retriever()
            if r is None:
                return []
            flt = _filters.check(filter)
            return r.search_by_vector(vector, k, flt, query=query, mode=mode)  # type: ignore[return-value]

    def search_mmr(
        self,
        *,
        query: str | None = None,
        vector: Any = None,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
    ) -> list[Hit]:
        """Maximal marginal relevance (:meth:`tase_search.Retriever.search_mmr`)."""
        with self._lock:
            r = self.retriever()
            if r is None:
                return []
            return r.search_mmr(
                query,
                vector=vector,
                k=k,
                fetch_k=fetch_k,
                lambda_mult=lambda_mult,
                filter=_filters.check(filter),
            )

    def stored_vectors(self, ids: Sequence[str]) -> dict[str, Any]:
        """Document id -> stored vector (float32), for the ids stored."""
        with self._lock:
            r = self.retriever()
            return {} if r is None or not ids else r.stored_vectors([str(i) for i in ids])

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
            flt = _filters.check(filter)
            try:
                return list(self._list(r, flt))
            except (IndexCorrupt, FileNotFoundError):  # the generation went away under us: once more
                r.refresh()
                return list(self._list(r, flt))

    @staticmethod
    def _list(r: Retriever, filter: Any) -> Iterator[dict[str, Any]]:  # noqa: A002
        from ..store.snapshot import open_documents

        store = open_documents(r.path, r.manifest)
        try:
            pids = sorted(store.pids_matching(filter))
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
