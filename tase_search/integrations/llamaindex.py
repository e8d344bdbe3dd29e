"""LlamaIndex: tase-search's encoder as a ``BaseEmbedding`` and a tase-search index as a vector store.

``TaseEmbedding`` works with any LlamaIndex index (query prompt for queries, passage prompt for text).
``TaseVectorStore`` keeps nodes, their metadata and their source-document link in a tase-search index,
with Turkish-aware keyword search beside the vectors, in one of two ways:

- with our model (``model=TaseEmbedding(...)``, a name or an encoder): the index embeds node text
  itself, splitting long nodes into passages, and is searched with the query text
  (``is_embedding_query = False``: LlamaIndex computes no query vector for it). The node embeddings
  LlamaIndex computes while inserting are not used: ``VectorStoreIndex.from_vector_store(store)``
  after ``store.add(nodes)`` skips that second pass.
- with the embeddings LlamaIndex brings (``model=None`` for a new index, or any other
  ``BaseEmbedding``): each node's embedding is stored and queries come with LlamaIndex's query
  embedding; the index records the embedder's name and dimension and refuses another. The query text
  still reaches the keyword part, so ``VectorStoreQueryMode.HYBRID`` fuses both.

Query modes: default, ``sparse``/``text_search`` (keywords), ``hybrid``, ``mmr`` (maximal marginal
relevance; ``mmr_threshold`` is its lambda, ``mmr_prefetch_k`` its candidate count). Filters:
``MetadataFilters`` with ``==, !=, >, >=, <, <=, in, nin, is_empty`` joined by AND, OR, NOT (nested
too), and any number of ``doc_ids`` / ``node_ids``, in the store's filter language.

    pip install 'tase-search[llamaindex]'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from . import load_encoder, require

require("llama_index.core", "llamaindex")

from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402
from llama_index.core.bridge.pydantic import PrivateAttr  # noqa: E402
from llama_index.core.schema import BaseNode, MetadataMode  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict  # noqa: E402

from ..encoding.external import ExternalEmbedder, embedder_name, is_external  # noqa: E402
from ..errors import InputError  # noqa: E402
from ..query.rerank import check_rerank  # noqa: E402
from ..retriever import Retriever  # noqa: E402
from ._filters import all_of, matches  # noqa: E402
from ._store import IndexStore, make_document  # noqa: E402

SOURCE = "<llamaindex>"
DEFAULT_EMBEDDER = "llamaindex-nodes"
_MODES = {
    VectorStoreQueryMode.DEFAULT: None,  # the index's default mode
    VectorStoreQueryMode.SPARSE: "sparse",
    VectorStoreQueryMode.TEXT_SEARCH: "sparse",
    VectorStoreQueryMode.HYBRID: "hybrid",
    VectorStoreQueryMode.MMR: "mmr",
}
_EMBEDDING_FIELDS = ("callback_manager", "num_workers", "embeddings_cache", "rate_limiter")


class TaseEmbedding(BaseEmbedding):
    """LlamaIndex embedding model over a tase-search encoder (``model``: a name, directory, hub id or
    an encoder object; ``load_kwargs`` go to :meth:`tase_search.Encoder.load`)."""

    _encoder: Any = PrivateAttr()

    def __init__(
        self,
        model: Any = None,
        *,
        embed_batch_size: int = 64,
        model_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        # model_name is what to_dict records (the spec; from_dict passes it back)
        spec = model if model is not None else (model_name or "default")
        base = {k: kwargs.pop(k) for k in _EMBEDDING_FIELDS if k in kwargs}
        kwargs.pop("class_name", None)
        encoder = load_encoder(spec, **kwargs)
        name = os.fspath(spec) if isinstance(spec, (str, os.PathLike)) else str(encoder.model_id)
        super().__init__(model_name=name, embed_batch_size=embed_batch_size, **base)
        self._encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        return "TaseEmbedding"

    @property
    def encoder(self) -> Any:
        return self._encoder

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encoder.encode_query([query])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encoder.encode_document([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encoder.encode_document(list(texts)).tolist() if texts else []


class TaseVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store kept in a tase-search index at ``index`` (a name or a directory).

    ``model``: our model (a name, directory, hub id, encoder object or :class:`TaseEmbedding`: the
    index embeds text), another ``BaseEmbedding`` (the index stores its vectors; nodes that arrive
    without an embedding are embedded by it), or None: an existing index opens with what it was built
    with, a new one stores the embeddings the nodes bring (``embedder`` names them in the manifest).
    ``normalize`` scales stored vectors to unit length (cosine scores). See the module docstring for
    query modes and filters. ``to_dict`` / ``from_dict`` round-trip it (a model given as an object is
    recorded by its name).
    """

    stores_text: bool = True
    is_embedding_query: bool = False
    flat_metadata: bool = False
    index_path: str
    model_spec: str | None = None
    embedder: str | None = None
    factory: str | None = None
    normalize: bool = True

    _store: IndexStore = PrivateAttr()
    _embed_model: Any = PrivateAttr(default=None)

    def __init__(
        self,
        index: str | os.PathLike[str] | None = None,
        model: Any = None,
        *,
        factory: str | None = None,
        embedder: str | None = None,
        normalize: bool = True,
        index_path: str | None = None,
        model_spec: str | None = None,
        **fields: Any,
    ) -> None:
        if index is None and index_path is None:
            raise InputError("TaseVectorStore needs index='NAME or DIR': where the index lives")
        where = index if index is not None else index_path
        model = model if model is not None else model_spec
        encoder, spec, embed_model = _writer_for(where, model, embedder, normalize)  # type: ignore[arg-type]
        store = IndexStore(where, encoder, factory=factory)  # type: ignore[arg-type]
        super().__init__(
            index_path=str(store.path),
            model_spec=spec,
            embedder=embedder,
            factory=factory,
            normalize=normalize,
            is_embedding_query=store.external is not None,
        )
        self._store = store
        self._embed_model = embed_model

    @classmethod
    def class_name(cls) -> str:
        return "TaseVectorStore"

    @property
    def client(self) -> Any:
        """The :class:`~tase_search.Retriever` (None until the first write creates the index)."""
        return self._store.retriever()

    @property
    def index_store(self) -> IndexStore:
        return self._store

    # ------------------------------------------------------------------ writes
    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Store ``nodes`` (a node id already stored is replaced); returns their ids."""
        docs = [
            make_document(
                node.node_id,
                node.get_content(metadata_mode=MetadataMode.NONE),
                node_to_metadata_dict(node, remove_text=True, flat_metadata=self.flat_metadata),
                SOURCE,
                n,
            )
            for n, node in enumerate(nodes)
        ]
        if not docs:
            return []
        if self._store.external is None:
            self._store.add(docs, on_duplicate="replace")
        else:
            self._store.add_vectors(docs, self._node_vectors(nodes), on_duplicate="replace")
        return [d.id for d in docs]  # type: ignore[misc]

    def _node_vectors(self, nodes: Sequence[BaseNode]) -> list[list[float]]:
        missing = [n for n in nodes if n.embedding is None]
        if missing and self._embed_model is None:
            raise InputError(
                f"node {missing[0].node_id!r} has no embedding: this store keeps the embeddings LlamaIndex "
                "computes (give VectorStoreIndex an embed_model), or give TaseVectorStore(model=...)"
            )
        made = iter(
            self._embed_model.get_text_embedding_batch(
                [n.get_content(metadata_mode=MetadataMode.EMBED) for n in missing]
            )
            if missing
            else []
        )
        return [n.embedding if n.embedding is not None else next(made) for n in nodes]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of source document ``ref_doc_id``."""
        self._store.delete_matching({"ref_doc_id": ref_doc_id})

    def delete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        self._store.delete([n.node_id for n in self.get_nodes(node_ids, filters)])

    def clear(self) -> None:
        self._store.delete_matching(None)

    # ------------------------------------------------------------------ reads
    def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        flt = store_filter(filters)
        if node_ids is not None:  # by id, in the order asked
            docs = [d for d in self._store.get(node_ids) if matches(flt, d)]
        else:
            docs = self._store.documents(flt)
        return [metadata_dict_to_node(d["metadata"], text=d["text"]) for d in docs]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        if query.mode not in _MODES:
            raise InputError(
                f"query mode {query.mode.value!r} is not supported; use default, sparse, text_search, "
                "hybrid or mmr"
            )
        mode = _MODES[query.mode]
        text, vector = query.query_str, query.query_embedding
        if self._store.external is not None and vector is None and mode != "sparse" and text:
            if self._embed_model is None:
                raise InputError(
                    "this store holds LlamaIndex's embeddings: the query needs its query_embedding "
                    "(VectorStoreIndex computes it), or give TaseVectorStore(model=...) to embed it"
                )
            vector = self._embed_model.get_query_embedding(text)
        if not text and vector is None:
            raise InputError("the query has neither text nor an embedding: give query_str or query_embedding")
        flt = query_filter(query)
        k = query.similarity_top_k
        if mode == "mmr":
            fetch_k = kwargs.get("mmr_prefetch_k") or max(20, k * int(kwargs.get("mmr_prefetch_factor", 4)))
            lam = kwargs.get("mmr_threshold", query.mmr_threshold)
            hits = self._store.search_mmr(
                query=None if vector is not None else text,
                vector=vector,
                k=k,
                fetch_k=fetch_k,
                lambda_mult=0.5 if lam is None else lam,
                filter=flt,
            )
        elif vector is not None and mode != "sparse":
            rerank = check_rerank(kwargs["rerank"]) if kwargs.get("rerank") is not None else 0
            want = max(k, rerank) if rerank and text else k
            hits = self._store.search_by_vector(
                vector, want, flt, query=text or None, mode=mode if text else None
            )
            if rerank and text:
                hits = self._store.rerank(text, hits, k)
        else:
            if not text:
                raise InputError("a sparse (keyword) query needs query_str")
            hits = self._store.search(text, k, flt, mode, rerank=kwargs.get("rerank"))
        return VectorStoreQueryResult(
            nodes=[metadata_dict_to_node(h.metadata, text=h.text) for h in hits],
            similarities=[float(h.score) for h in hits],
            ids=[h.id for h in hits],
        )


def _writer_for(
    index: str | os.PathLike[str], model: Any, embedder: str | None, normalize: bool
) -> tuple[Any, str | None, Any]:
    """``(what the index writes with, the model spec to_dict records, the BaseEmbedding that embeds
    nodes and queries missing an embedding)``."""
    if isinstance(model, TaseEmbedding):
        return model.encoder, model.model_name, None
    if isinstance(model, BaseEmbedding):
        name = embedder or embedder_name(model)
        return ExternalEmbedder(name, normalize=normalize), None, model
    if model is not None:
        encoder = load_encoder(model)
        return (
            encoder,
            os.fspath(model) if isinstance(model, (str, os.PathLike)) else str(encoder.model_id),
            None,
        )
    from ..runtime.paths import resolve_index_path
    from ..store.manifest import read_existing

    path = resolve_index_path(index)
    if Retriever.exists(path):
        m = read_existing(path).model
        if not is_external(m.id):
            return None, None, None
        return (
            ExternalEmbedder(embedder, normalize=normalize)
            if embedder
            else ExternalEmbedder.from_manifest(m),
            None,
            None,
        )
    return ExternalEmbedder(embedder or DEFAULT_EMBEDDER, normalize=normalize), None, None


_OPERATORS = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
}


def store_filter(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """LlamaIndex ``MetadataFilters`` in the store's filter language (``docs/filters.md``)."""
    if filters is None or not filters.filters:
        return None
    parts = [_one(f) for f in filters.filters]
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.NOT:
        return {"$not": parts[0] if len(parts) == 1 else {"$and": parts}}
    if len(parts) == 1:
        return parts[0]
    return {"$or": parts} if condition == FilterCondition.OR else {"$and": parts}


def _one(f: MetadataFilter | MetadataFilters) -> dict[str, Any]:
    if isinstance(f, MetadataFilters):
        out = store_filter(f)
        if out is None:
            raise InputError("an empty nested MetadataFilters: give it at least one filter")
        return out
    op = f.operator or FilterOperator.EQ
    if op == FilterOperator.IS_EMPTY:
        return {f.key: {"$exists": False}}
    if op not in _OPERATORS:
        raise InputError(
            f"filter operator {op.value!r} on {f.key!r} is not supported; use one of "
            f"{', '.join(o.value for o in _OPERATORS)}, is_empty"
        )
    value = f.value
    if op in (FilterOperator.IN, FilterOperator.NIN):
        if not isinstance(value, list):
            raise InputError(f"filter on {f.key!r}: {op.value!r} takes a list of values")
    elif value is None or isinstance(value, list):
        raise InputError(f"filter on {f.key!r} has value {value!r}; give one plain value")
    return {f.key: {_OPERATORS[op]: value}}


def query_filter(query: VectorStoreQuery) -> dict[str, Any] | None:
    """A query's filters, ``doc_ids`` (source documents) and ``node_ids``, all required."""
    parts = [store_filter(query.filters) or {}]
    for key, ids in (("ref_doc_id", query.doc_ids), ("id", query.node_ids)):
        if ids:
            parts.append({key: ids[0]} if len(ids) == 1 else {key: {"$in": list(ids)}})
    return all_of(parts)


__all__ = ["TaseEmbedding", "TaseVectorStore", "store_filter"]
