"""LangChain: tase-search's encoder as ``Embeddings`` and a tase-search index as a ``VectorStore``.

``TaseEmbeddings`` works with any LangChain vector store: ``embed_query`` uses the model's query prompt,
``embed_documents`` its passage prompt. ``TaseVectorStore`` keeps texts, metadata and ids in a
tase-search index (crash-safe, searchable from the CLI too); the index embeds with the encoder of the
``TaseEmbeddings`` it is given, splitting long texts into passages instead of truncating them.

    pip install 'tase-search[langchain]'
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from . import load_encoder, require

require("langchain_core", "langchain")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402
from langchain_core.vectorstores import VectorStore  # noqa: E402

from ..errors import InputError  # noqa: E402
from ._store import IndexStore, make_document  # noqa: E402

SOURCE = "<langchain>"


class TaseEmbeddings(Embeddings):
    """LangChain ``Embeddings`` over a tase-search encoder.

    ``model``: a registered name, model directory or hub id (loaded now, as LangChain's local
    embeddings do), or an encoder object. ``load_kwargs`` go to :meth:`tase_search.Encoder.load`
    (``precision``, ``batch_size``, ``query_backend``).
    """

    def __init__(self, model: Any = "default", **load_kwargs: Any) -> None:
        self.encoder = load_encoder(model, **load_kwargs)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encoder.encode_document(list(texts)).tolist() if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self.encoder.encode_query([text])[0].tolist()


class TaseVectorStore(VectorStore):
    """A LangChain ``VectorStore`` kept in a tase-search index at ``index`` (a name or a directory).

    The index is created by the first write. Adding a text under an id that is already stored replaces
    it (LangChain's upsert); ids default to random UUIDs. ``filter`` is a dict of metadata field ->
    value, all of which must match. Scores are cosine similarities (higher is closer).
    """

    def __init__(
        self,
        index: str | os.PathLike[str],
        embedding: TaseEmbeddings | None = None,
        *,
        factory: str | None = None,
    ) -> None:
        if embedding is not None and not isinstance(embedding, TaseEmbeddings):
            raise InputError(
                f"embedding is {type(embedding).__name__}: a TaseVectorStore embeds with tase-search's "
                "encoder, give TaseEmbeddings(...) (other Embeddings work with other vector stores)"
            )
        self._embedding = embedding
        self._store = IndexStore(index, embedding.encoder if embedding else None, factory=factory)

    @property
    def embeddings(self) -> TaseEmbeddings | None:
        return self._embedding

    @property
    def index_store(self) -> IndexStore:
        """The underlying index (``.retriever()`` gives the :class:`~tase_search.Retriever`)."""
        return self._store

    # ------------------------------------------------------------------ writes
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise InputError(f"{len(metadatas)} metadatas for {len(texts)} texts: give one per text")
        if ids is not None and len(ids) != len(texts):
            raise InputError(f"{len(ids)} ids for {len(texts)} texts: give one per text")
        if not texts:
            return []
        ids = [str(i) if i else str(uuid.uuid4()) for i in (ids or [None] * len(texts))]
        docs = [
            make_document(i, t, metadatas[n] if metadatas else None, SOURCE, n)
            for n, (i, t) in enumerate(zip(ids, texts))
        ]
        self._store.add(docs, on_duplicate=kwargs.get("on_duplicate", "replace"))
        return ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete by id (all documents for ``ids=None``, as LangChain specifies)."""
        if ids is None:
            self._store.delete_matching(None)
        else:
            self._store.delete(ids)
        return True

    # ------------------------------------------------------------------ reads
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return [_document(d["id"], d["text"], d["metadata"]) for d in self._store.get(list(ids))]

    def similarity_search(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter=filter, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """``(document, cosine similarity)`` pairs, best first; ``mode`` (dense, sparse, hybrid) as
        for :meth:`tase_search.Retriever.search`."""
        hits = self._store.search(query, k, filter, kwargs.get("mode"))
        return [(_document(h.id, h.text, h.metadata), float(h.score)) for h in hits]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return _relevance

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        index: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> TaseVectorStore:
        """A store at ``index`` (required: where the index lives) holding ``texts``."""
        if index is None:
            raise InputError("TaseVectorStore.from_texts needs index='NAME or DIR': where to keep the index")
        store = cls(index, embedding, factory=kwargs.pop("factory", None))  # type: ignore[arg-type]
        store.add_texts(texts, metadatas, ids=ids, **kwargs)
        return store


def _relevance(score: float) -> float:
    """Cosine similarity in [-1, 1] to LangChain's relevance in [0, 1]."""
    return (score + 1.0) / 2.0


def _document(doc_id: str, text: str, metadata: dict[str, Any]) -> Document:
    return Document(id=doc_id, page_content=text, metadata=dict(metadata))


__all__ = ["TaseEmbeddings", "TaseVectorStore"]
