"""LangChain: tase-search's encoder as ``Embeddings`` and a tase-search index as a ``VectorStore``.

``TaseEmbeddings`` works with any LangChain vector store: ``embed_query`` uses the model's query prompt,
``embed_documents`` its passage prompt. ``TaseVectorStore`` keeps texts, metadata and ids in a
tase-search index (crash-safe, searchable from the CLI too) with Turkish-aware keyword search beside
the vectors. It embeds with any LangChain ``Embeddings``: with ``TaseEmbeddings`` the index splits long
texts into passages instead of truncating them; with any other (OpenAI, HuggingFace, a fake) each text
is one vector from that embedder, and the index records the embedder's name and dimension and refuses
another. Either way hybrid search fuses the keyword part (the query text) with the vectors.

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

from ..encoding.external import ExternalEmbedder, embedder_name  # noqa: E402
from ..errors import InputError  # noqa: E402
from ..results import Hit  # noqa: E402
from . import _filters  # noqa: E402
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
    """A LangChain ``VectorStore`` kept in a tase-search index at ``index``: a name (under the index
    root, ``tase-search list`` shows it; default ``langchain``) or a directory.

    ``embedding``: ``TaseEmbeddings`` (the index embeds with our encoder) or any LangChain
    ``Embeddings`` (its vectors are stored, scaled to unit length unless ``normalize=False``); None
    opens an existing index with what it was built with (for a toolkit embedder, searches then go by
    vector or keywords only). The index is created by the first write. Adding a text under an id that
    is already stored replaces it (LangChain's upsert); ids default to random UUIDs. ``filter`` is the
    store's filter language: ``{"topic": "spor"}``, ``{"year": {"$gte": 2020}}``, ``{"$or": [...]}``
    (``docs/filters.md``). Searches take ``mode`` (dense, sparse, hybrid, auto) as
    :meth:`tase_search.Retriever.search`. Scores are the hits' ``score``: with a calibrated model (the
    bundled one) the estimated probability that the document is relevant, in every mode, and that is
    the relevance ``similarity_search_with_relevance_scores`` filters by ``score_threshold``; with a
    model without calibration, dense scores are cosines (relevance ``(s + 1) / 2``).
    """

    def __init__(
        self,
        index: str | os.PathLike[str] = "langchain",
        embedding: Embeddings | None = None,
        *,
        factory: str | None = None,
        normalize: bool = True,
    ) -> None:
        if embedding is not None and not isinstance(embedding, Embeddings):
            raise InputError(
                f"embedding is {type(embedding).__name__}: give LangChain Embeddings (TaseEmbeddings or any other)"
            )
        self._embedding = embedding
        self._store = IndexStore(index, _encoder_of(embedding, normalize), factory=factory)

    @property
    def embeddings(self) -> Embeddings | None:
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
        """``(document, score)`` pairs, best first; ``mode`` (dense, sparse, hybrid, auto) and ``rerank``
        (rerank the top N with the cross-encoder; scores are then its probability) as for
        :meth:`tase_search.Retriever.search`: the query text goes to the keyword part, its embedding
        to the vectors."""
        hits = self._store.search(
            query, k, _filters.check(filter), kwargs.get("mode"), rerank=kwargs.get("rerank")
        )
        return _scored(hits)

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[Document]:
        return [
            doc
            for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, filter=filter, **kwargs)
        ]

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, filter: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Dense search by a query vector; with ``query=TEXT`` (the text it was made from) the keyword
        part joins (``mode`` hybrid or auto)."""
        hits = self._store.search_by_vector(
            embedding, k, _filters.check(filter), query=kwargs.get("query"), mode=kwargs.get("mode")
        )
        return _scored(hits)

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Maximal marginal relevance over the ``fetch_k`` nearest (:mod:`tase_search.query.mmr`)."""
        hits = self._store.search_mmr(
            query=query, k=k, fetch_k=fetch_k, lambda_mult=lambda_mult, filter=_filters.check(filter)
        )
        return [doc for doc, _ in _scored(hits)]

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        hits = self._store.search_mmr(
            vector=embedding, k=k, fetch_k=fetch_k, lambda_mult=lambda_mult, filter=_filters.check(filter)
        )
        return [doc for doc, _ in _scored(hits)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return _relevance

    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """``(document, relevance in 0..1)`` by what each hit's score is (:func:`_relevance_of`), so that
        ``similarity_search_with_relevance_scores(..., score_threshold=0.5)`` keeps the probably relevant."""
        flt = _filters.check(kwargs.get("filter"))
        hits = self._store.search(query, k, flt, kwargs.get("mode"), rerank=kwargs.get("rerank"))
        return [(_document(h.id, h.text, h.metadata), _relevance_of(h)) for h in hits]

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        index: str | os.PathLike[str] = "langchain",
        **kwargs: Any,
    ) -> TaseVectorStore:
        """A store at ``index`` (a name under the index root, default ``langchain``, or a directory)
        holding ``texts`` embedded by ``embedding``."""
        store = cls(
            index, embedding, factory=kwargs.pop("factory", None), normalize=kwargs.pop("normalize", True)
        )
        store.add_texts(texts, metadatas, ids=ids, **kwargs)
        return store


def _encoder_of(embedding: Embeddings | None, normalize: bool) -> Any:
    """What the index embeds with: our encoder, or the toolkit's embeddings as an external embedder."""
    if embedding is None:
        return None
    if isinstance(embedding, TaseEmbeddings):
        return embedding.encoder
    return ExternalEmbedder(
        embedder_name(embedding),
        normalize=normalize,
        embed_documents=embedding.embed_documents,
        embed_query=embedding.embed_query,
    )


def _scored(hits: list[Hit]) -> list[tuple[Document, float]]:
    return [(_document(h.id, h.text, h.metadata), float(h.score)) for h in hits]


def _relevance(score: float) -> float:
    """Cosine similarity in [-1, 1] to LangChain's relevance in [0, 1] (a score whose kind is not known)."""
    return (score + 1.0) / 2.0


def _relevance_of(hit: Hit) -> float:
    """A hit's relevance in [0, 1]: its calibrated probability as it is; for a model without calibration
    its cosine as ``(s + 1) / 2`` (a hybrid hit's too: its fused score is scaled within its own result
    list, so it says nothing across queries), else its keyword score (sparse, in 0..1 mostly)."""
    if hit.score_kind == "probability":
        return float(hit.score)
    if hit.dense_score is not None:
        return _relevance(float(hit.dense_score))
    return min(max(float(hit.score), 0.0), 1.0)


def _document(doc_id: str, text: str, metadata: dict[str, Any]) -> Document:
    return Document(id=doc_id, page_content=text, metadata=dict(metadata))


__all__ = ["TaseEmbeddings", "TaseVectorStore"]
