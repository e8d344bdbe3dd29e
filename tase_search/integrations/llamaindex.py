"""LlamaIndex: tase-search's encoder as a ``BaseEmbedding`` and a tase-search index as a vector store.

``TaseEmbedding`` works with any LlamaIndex index (query prompt for queries, passage prompt for text).
``TaseVectorStore`` keeps nodes, their metadata and their source-document link in a tase-search index.
The index embeds node text with its own encoder and is searched with the query text
(``is_embedding_query = False``: LlamaIndex computes no query vector for it); long nodes are split into
passages instead of truncated. Because the index embeds for itself, the node embeddings LlamaIndex
computes while inserting are not used: ``VectorStoreIndex.from_vector_store(store)`` after
``store.add(nodes)`` skips that second pass.

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
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict  # noqa: E402

from ..errors import InputError  # noqa: E402
from ._store import IndexStore, make_document  # noqa: E402

SOURCE = "<llamaindex>"
_MODES = {
    VectorStoreQueryMode.DEFAULT: None,  # the index's default mode
    VectorStoreQueryMode.SPARSE: "sparse",
    VectorStoreQueryMode.TEXT_SEARCH: "sparse",
    VectorStoreQueryMode.HYBRID: "hybrid",
}


class TaseEmbedding(BaseEmbedding):
    """LlamaIndex embedding model over a tase-search encoder (``model``: a name, directory, hub id or
    an encoder object; ``load_kwargs`` go to :meth:`tase_search.Encoder.load`)."""

    _encoder: Any = PrivateAttr()

    def __init__(self, model: Any = "default", *, embed_batch_size: int = 64, **load_kwargs: Any) -> None:
        encoder = load_encoder(model, **load_kwargs)
        super().__init__(model_name=str(encoder.model_id), embed_batch_size=embed_batch_size)
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

    ``model``: what embeds the nodes and queries (a name, directory, hub id, encoder object or
    :class:`TaseEmbedding`); None opens an existing index with the model its manifest names.
    Filters: ``==`` comparisons joined by AND (what the index filters on natively).
    """

    stores_text: bool = True
    is_embedding_query: bool = False
    flat_metadata: bool = False
    index_path: str

    _store: IndexStore = PrivateAttr()

    def __init__(
        self, index: str | os.PathLike[str], model: Any = None, *, factory: str | None = None
    ) -> None:
        if isinstance(model, TaseEmbedding):
            model = model.encoder
        encoder = None if model is None else load_encoder(model)
        store = IndexStore(index, encoder, factory=factory)
        super().__init__(index_path=str(store.path))
        self._store = store

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
        if docs:
            self._store.add(docs, on_duplicate="replace")
        return [d.id for d in docs]  # type: ignore[misc]

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
        native = _native_filter(filters)
        if node_ids is not None:
            docs = self._store.get(node_ids)
            docs = [d for d in docs if all(str(d["metadata"].get(k)) == v for k, v in (native or {}).items())]
        else:
            docs = self._store.documents(native)
        return [metadata_dict_to_node(d["metadata"], text=d["text"]) for d in docs]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        if not query.query_str:
            raise InputError(
                "TaseVectorStore searches by query text (the index encodes it with the query prompt); "
                "this query has none, only an embedding"
            )
        if query.mode not in _MODES:
            raise InputError(
                f"query mode {query.mode.value!r} is not supported; use default, sparse, text_search or hybrid"
            )
        native = _native_filter(query.filters) or {}
        wanted = query.node_ids or query.doc_ids
        if wanted:
            if len(wanted) != 1:
                raise InputError(
                    "TaseVectorStore restricts a query to one node_id/doc_id; filter on metadata instead"
                )
            native["id" if query.node_ids else "ref_doc_id"] = wanted[0]
        hits = self._store.search(query.query_str, query.similarity_top_k, native, _MODES[query.mode])
        return VectorStoreQueryResult(
            nodes=[metadata_dict_to_node(h.metadata, text=h.text) for h in hits],
            similarities=[float(h.score) for h in hits],
            ids=[h.id for h in hits],
        )


def _native_filter(filters: MetadataFilters | None) -> dict[str, str] | None:
    """LlamaIndex ``MetadataFilters`` as the index's equality filter (``==`` joined by AND only)."""
    if filters is None or not filters.filters:
        return None
    if filters.condition not in (None, FilterCondition.AND) and len(filters.filters) > 1:
        raise InputError(f"filter condition {filters.condition.value!r} is not supported; use 'and'")
    out: dict[str, str] = {}
    for f in filters.filters:
        if isinstance(f, MetadataFilters):
            raise InputError("nested MetadataFilters are not supported; give == filters joined by 'and'")
        op = getattr(f, "operator", FilterOperator.EQ)
        if op != FilterOperator.EQ:
            raise InputError(f"filter operator {op.value!r} on {f.key!r} is not supported; use '=='")
        if isinstance(f.value, list) or f.value is None:
            raise InputError(f"filter on {f.key!r} has value {f.value!r}; give one plain value")
        out[f.key] = str(int(f.value)) if isinstance(f.value, bool) else str(f.value)
    return out


__all__ = ["TaseEmbedding", "TaseVectorStore"]
