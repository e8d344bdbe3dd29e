"""Haystack 2.x/3.x: tase-search embedders, a document store kept in a tase-search index, and retrievers.

- ``TaseTextEmbedder`` / ``TaseDocumentEmbedder``: components that embed a query (query prompt) or
  documents (passage prompt), for any Haystack document store and embedding retriever.
- ``TaseDocumentStore``: Haystack's ``DocumentStore`` protocol over a tase-search index (write with a
  ``DuplicatePolicy``, count, ``filter_documents`` with Haystack's full filter syntax, delete) and its
  optional ones (delete all, delete / update / count by filter, metadata field information), so a
  ``DocumentWriter`` fills it. With ``model`` the index embeds the text itself; without, it stores the
  embeddings the documents bring (any embedder), keyword search beside them.
- ``TaseRetriever``: searches a ``TaseDocumentStore`` with the query text (dense, sparse, hybrid).
- ``TaseEmbeddingRetriever``: searches it with a query embedding, the query text too for hybrid, MMR
  on request, ``return_embedding`` as Haystack's embedding retrievers.

    pip install 'tase-search[haystack]'
"""

from __future__ import annotations

import base64
import dataclasses
import os
from typing import Any

import numpy as np

from . import load_encoder, require

require("haystack", "haystack")

from haystack import Document, component, default_from_dict, default_to_dict  # noqa: E402
from haystack.document_stores.errors import DuplicateDocumentError  # noqa: E402
from haystack.document_stores.types import DuplicatePolicy  # noqa: E402
from haystack.utils.filters import document_matches_filter  # noqa: E402

from ..encoding.external import ExternalEmbedder, is_external  # noqa: E402
from ..errors import InputError  # noqa: E402
from ..query.rerank import check_rerank  # noqa: E402
from ..results import Hit  # noqa: E402
from ..retriever import Retriever  # noqa: E402
from ._store import IndexStore, check_mode, make_document  # noqa: E402
from .haystack_filters import _field, native_filter, store_filter  # noqa: E402, F401 - native_filter: the older name

SOURCE = "<haystack>"
#: The metadata key under which a document's own embedding is kept exactly as it came (float64, base64):
#: Haystack returns it unchanged, and the index's float32 copy is not that.
EMBEDDING_KEY = "_embedding"
DEFAULT_EMBEDDER = "haystack-documents"


class _EncoderHolder:
    """A model spec or encoder object, loaded on ``warm_up`` (Haystack's place for loading models)."""

    def __init__(self, model: Any, load_kwargs: dict[str, Any]) -> None:
        self.model = model
        self.load_kwargs = load_kwargs
        self._encoder = None if isinstance(model, str) else load_encoder(model)

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            self._encoder = load_encoder(self.model, **self.load_kwargs)
        return self._encoder

    def spec(self) -> str:
        """What ``to_dict`` records: the spec, or the model id of an encoder object."""
        return self.model if isinstance(self.model, str) else str(self.model.model_id)


@component
class TaseTextEmbedder:
    """Embeds a query with the tase-search encoder (``encode_query``: the model's query prompt)."""

    def __init__(self, model: Any = "default", **load_kwargs: Any) -> None:
        self._holder = _EncoderHolder(model, load_kwargs)

    def warm_up(self) -> None:
        self._holder.encoder  # noqa: B018 - loads the model

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, model=self._holder.spec(), **self._holder.load_kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaseTextEmbedder:
        return default_from_dict(cls, data)

    @component.output_types(embedding=list[float], meta=dict[str, Any])
    def run(self, text: str) -> dict[str, Any]:
        if not isinstance(text, str):
            raise TypeError(
                f"TaseTextEmbedder embeds one string, not {type(text).__name__}; for documents use TaseDocumentEmbedder"
            )
        enc = self._holder.encoder
        return {"embedding": enc.encode_query([text])[0].tolist(), "meta": {"model": enc.model_id}}


@component
class TaseDocumentEmbedder:
    """Sets ``embedding`` on documents with the tase-search encoder (``encode_document``: passage prompt)."""

    def __init__(self, model: Any = "default", **load_kwargs: Any) -> None:
        self._holder = _EncoderHolder(model, load_kwargs)

    def warm_up(self) -> None:
        self._holder.encoder  # noqa: B018 - loads the model

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, model=self._holder.spec(), **self._holder.load_kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaseDocumentEmbedder:
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document], meta=dict[str, Any])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        if not isinstance(documents, list) or any(not isinstance(d, Document) for d in documents):
            raise TypeError(
                "TaseDocumentEmbedder embeds a list of Documents; for a query use TaseTextEmbedder"
            )
        enc = self._holder.encoder
        texts = [d.content or "" for d in documents]
        vectors = enc.encode_document(texts) if texts else []
        embedded = [dataclasses.replace(d, embedding=v.tolist()) for d, v in zip(documents, vectors)]
        return {"documents": embedded, "meta": {"model": enc.model_id}}


class TaseDocumentStore:
    """Haystack ``DocumentStore`` kept in a tase-search index at ``index`` (a name or a directory).

    ``model``: what embeds documents and queries (a name, directory, hub id or encoder object); the
    index embeds each document's text, and an embedding a document brings is kept and returned with it.
    Without ``model`` a new index stores the embeddings the documents bring (from any embedder:
    ``embedder`` names it in the index's manifest, which refuses another name or dimension later;
    ``embedding_dim`` is needed only when the first documents carry none); a document without one is
    found by keywords only. An existing index opens with what it was built with. Vectors are scaled to
    unit length unless ``normalize=False``. The index is created by the first write.
    """

    def __init__(
        self,
        index: str | os.PathLike[str],
        model: Any = None,
        *,
        factory: str | None = None,
        embedder: str | None = None,
        embedding_dim: int | None = None,
        normalize: bool = True,
    ) -> None:
        self._model = model
        self._factory = factory
        self._embedder = embedder
        self._embedding_dim = embedding_dim
        self._normalize = normalize
        if model is not None:
            encoder = load_encoder(model)
        else:
            encoder = _external_for(index, embedder, embedding_dim, normalize)
        self.store = IndexStore(index, encoder, factory=factory)

    def to_dict(self) -> dict[str, Any]:
        spec = self._model if self._model is None or isinstance(self._model, str) else self._model.model_id
        return default_to_dict(
            self,
            index=str(self.store.path),
            model=spec,
            factory=self._factory,
            embedder=self._embedder,
            embedding_dim=self._embedding_dim,
            normalize=self._normalize,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaseDocumentStore:
        return default_from_dict(cls, data)

    # ------------------------------------------------------------------ the protocol
    def count_documents(self) -> int:
        return self.store.count()

    def filter_documents(self, filters: dict[str, Any] | None = None) -> list[Document]:
        """Documents matching Haystack ``filters`` (any operator; evaluated by Haystack's own matcher)."""
        docs = [_to_haystack(d["id"], d["text"], d["metadata"]) for d in self.store.documents()]
        if not filters:
            return docs
        return [d for d in docs if document_matches_filter(filters, d)]

    def write_documents(
        self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE
    ) -> int:
        if not isinstance(documents, list) or any(not isinstance(d, Document) for d in documents):
            raise ValueError("write_documents takes a list of haystack Document objects")
        if not documents:
            return 0
        if policy == DuplicatePolicy.NONE:
            policy = DuplicatePolicy.FAIL  # as Haystack's InMemoryDocumentStore
        ids = [d.id for d in documents]
        if policy == DuplicatePolicy.FAIL:
            taken = {d["id"] for d in self.store.get(ids)} | {i for n, i in enumerate(ids) if i in ids[:n]}
            if taken:
                raise DuplicateDocumentError(
                    f"documents with ids {sorted(taken)} already exist; choose another policy"
                )
        docs = [make_document(d.id, d.content, _stored_meta(d), SOURCE, n) for n, d in enumerate(documents)]
        on_duplicate = {DuplicatePolicy.OVERWRITE: "replace", DuplicatePolicy.SKIP: "skip"}.get(
            policy, "error"
        )
        if self.store.external is not None:
            res = self.store.add_vectors(docs, self._vectors(documents), on_duplicate=on_duplicate)
        else:
            res = self.store.add(docs, on_duplicate=on_duplicate)
        return len(docs) if policy == DuplicatePolicy.OVERWRITE else res.added

    def delete_documents(self, document_ids: list[str]) -> None:
        """Delete by id (ids that are not stored are ignored, as in Haystack's own stores)."""
        self.store.delete(document_ids)

    def _vectors(self, documents: list[Document]) -> np.ndarray:
        """The documents' embeddings as rows; a document without one gets a zero row (keywords only)."""
        ext = self.store.external
        assert ext is not None
        self.store.retriever()  # an existing index tells the embedder its dimension
        given = [d.embedding for d in documents if d.embedding is not None]
        if not ext.knows_dimension and given:
            ext.prepare([given[0]])
        if not ext.knows_dimension:
            raise InputError(
                "these documents carry no embedding and the index has none yet to take its dimension "
                "from: give TaseDocumentStore(..., embedding_dim=N), or a model to embed with"
            )
        zero = [0.0] * ext.dimension
        return ext.prepare([zero if d.embedding is None else d.embedding for d in documents], len(documents))

    # ------------------------------------------------------------------ optional protocols
    def delete_all_documents(self) -> None:
        """Delete every document (the index, its embedder record and its settings stay)."""
        self.store.delete_matching(None)

    def delete_by_filter(self, filters: dict[str, Any]) -> int:
        """Delete the documents matching Haystack ``filters``; returns how many."""
        return len(self.store.delete([d.id for d in self.filter_documents(filters)]))

    def update_by_filter(self, filters: dict[str, Any], meta: dict[str, Any]) -> int:
        """Merge ``meta`` into the metadata of the documents matching ``filters``; returns how many."""
        docs = self.filter_documents(filters)
        if docs:
            changed = [dataclasses.replace(d, meta={**d.meta, **meta}) for d in docs]
            self.write_documents(changed, policy=DuplicatePolicy.OVERWRITE)
        return len(docs)

    def count_documents_by_filter(self, filters: dict[str, Any]) -> int:
        return len(self.filter_documents(filters))

    def count_unique_metadata_by_filter(
        self, filters: dict[str, Any], metadata_fields: list[str]
    ) -> dict[str, int]:
        """Field -> how many distinct values it has among the documents matching ``filters``."""
        docs = self.filter_documents(filters)
        return {
            f: len({_value_key(d.meta[_field(f)]) for d in docs if _field(f) in d.meta})
            for f in metadata_fields
        }

    def get_metadata_fields_info(self) -> dict[str, dict[str, str]]:
        """Field -> ``{"type": ...}`` (keyword, long, float, boolean, object) over all documents."""
        types: dict[str, str] = {}
        for d in self.filter_documents():
            for key, value in d.meta.items():
                types.setdefault(key, _type_name(value))
        return {key: {"type": t} for key, t in sorted(types.items())}

    def get_metadata_field_min_max(self, metadata_field: str) -> dict[str, Any]:
        values = [
            d.meta[_field(metadata_field)]
            for d in self.filter_documents()
            if isinstance(d.meta.get(_field(metadata_field)), (int, float, str))
        ]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        pool: list[Any] = numbers or [v for v in values if isinstance(v, str)]
        return {"min": min(pool), "max": max(pool)} if pool else {"min": None, "max": None}

    def get_metadata_field_unique_values(
        self,
        metadata_field: str,
        search_term: str | None = None,
        from_: int = 0,
        size: int = 10,
        filters: dict[str, Any] | None = None,
    ) -> tuple[list[Any], int]:
        """Distinct values of a field (``search_term``: a case-insensitive part of the value), sorted,
        one page of ``size`` from ``from_``; and how many there are."""
        field = _field(metadata_field)
        seen: dict[Any, Any] = {}
        for d in self.filter_documents(filters):
            if field in d.meta:
                value = d.meta[field]
                if search_term is None or search_term.lower() in str(value).lower():
                    seen.setdefault(_value_key(value), value)
        values = sorted(seen.values(), key=lambda v: (type(v).__name__, str(v)))
        return values[from_ : from_ + size], len(values)

    # ------------------------------------------------------------------ searches (used by the retrievers)
    def embedding_retrieval(
        self,
        query_embedding: list[float],
        *,
        query: str | None = None,
        filters: dict[str, Any] | None = None,
        top_k: int = 10,
        mode: str | None = None,
        return_embedding: bool = False,
        mmr: bool = False,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
    ) -> list[Document]:
        """Top ``top_k`` by a query embedding (with ``query``, its text, the keyword part joins in
        ``mode`` hybrid or auto), or re-ranked by maximal marginal relevance (``mmr``)."""
        flt = store_filter(filters)
        if mmr:
            hits = self.store.search_mmr(
                vector=query_embedding, k=top_k, fetch_k=fetch_k, lambda_mult=lambda_mult, filter=flt
            )
        else:
            hits = self._nearest(query_embedding, query, flt, top_k, mode)
        return self._documents(hits, return_embedding)

    def _nearest(
        self, vector: list[float], query: str | None, flt: dict[str, Any] | None, top_k: int, mode: str | None
    ) -> list[Hit]:
        """The top ``top_k``; by vector alone, documents stored without an embedding (zero vectors) are
        not results."""
        if self.store.external is None or query:
            return self.store.search_by_vector(vector, top_k, flt, query=query, mode=mode)
        want = top_k
        while True:
            hits = self.store.search_by_vector(vector, want, flt, mode=mode)
            kept = [h for h in hits if EMBEDDING_KEY in h.metadata]
            if len(kept) >= top_k or len(hits) < want:
                return kept[:top_k]
            want *= 4

    def _documents(self, hits: list[Hit], return_embedding: bool) -> list[Document]:
        docs = [_to_haystack(h.id, h.text, h.metadata, score=h.score) for h in hits]
        if not return_embedding:
            return [dataclasses.replace(d, embedding=None) for d in docs]
        missing = [d.id for d in docs if d.embedding is None]
        stored = self.store.stored_vectors(missing) if missing else {}
        return [
            d if d.id not in stored else dataclasses.replace(d, embedding=stored[d.id].tolist()) for d in docs
        ]


def _external_for(
    index: str | os.PathLike[str], embedder: str | None, embedding_dim: int | None, normalize: bool
) -> ExternalEmbedder | None:
    """What a store without a model writes with: the embedder an existing external index records,
    none for an index of one of our models (it opens with it), else a new record."""
    from ..runtime.paths import resolve_index_path
    from ..store.manifest import read_existing

    path = resolve_index_path(index)
    if Retriever.exists(path):
        m = read_existing(path).model
        if not is_external(m.id):
            return None
        found = ExternalEmbedder.from_manifest(m)
        return ExternalEmbedder(embedder, normalize=normalize) if embedder else found
    return ExternalEmbedder(embedder or DEFAULT_EMBEDDER, embedding_dim, normalize=normalize)


def _stored_meta(doc: Document) -> dict[str, Any]:
    meta = dict(doc.meta or {})
    if EMBEDDING_KEY in meta:
        raise InputError(f"document {doc.id!r}: the metadata key {EMBEDDING_KEY!r} is the store's own")
    if doc.embedding is not None:
        meta[EMBEDDING_KEY] = base64.b64encode(np.asarray(doc.embedding, dtype="<f8").tobytes()).decode(
            "ascii"
        )
    return meta


def _value_key(value: Any) -> tuple[str, str]:
    """Distinct per type: 1, 1.0, "1" and True are four values."""
    return type(value).__name__, repr(value)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "keyword"
    return "object"


@component
class TaseRetriever:
    """Searches a :class:`TaseDocumentStore` with the query text (the index encodes it with the query
    prompt). ``filters``: Haystack filters (``==, !=, >, >=, <, <=, in, not in`` on ``meta.FIELD`` or
    ``id``, joined by AND, OR, NOT); ``mode``: dense, sparse or hybrid where the index has them (None:
    the index's default); ``rerank``: rerank the top N with the cross-encoder (each document's score is
    then its probability; None: the ``rerank`` setting, 0: off)."""

    def __init__(
        self,
        document_store: TaseDocumentStore,
        *,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        mode: str | None = None,
        rerank: int | None = None,
    ) -> None:
        if not isinstance(document_store, TaseDocumentStore):
            raise InputError(f"document_store is {type(document_store).__name__}; give a TaseDocumentStore")
        self.document_store = document_store
        self.top_k = top_k
        self.filters = filters
        self.mode = check_mode(mode)
        self.rerank = None if rerank is None else check_rerank(rerank)
        store_filter(filters)  # refuse an unsupported filter now, not at the first query

    def to_dict(self) -> dict[str, Any]:
        store = self.document_store.to_dict()  # explicitly: Haystack 2.x does not call nested to_dict
        return default_to_dict(
            self,
            document_store=store,
            top_k=self.top_k,
            filters=self.filters,
            mode=self.mode,
            rerank=self.rerank,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaseRetriever:
        return _with_store(cls, data)

    @component.output_types(documents=list[Document])
    def run(
        self, query: str, filters: dict[str, Any] | None = None, top_k: int | None = None
    ) -> dict[str, Any]:
        """Top ``top_k`` documents for ``query``; ``filters`` given here replace the ones from ``__init__``."""
        flt = store_filter(filters if filters is not None else self.filters)
        hits = self.document_store.store.search(
            query, top_k or self.top_k, flt, self.mode, rerank=self.rerank
        )
        return {"documents": self.document_store._documents(hits, False)}


@component
class TaseEmbeddingRetriever:
    """Searches a :class:`TaseDocumentStore` with a query embedding made by the embedder its documents
    were embedded with. Give ``query`` (the text) too and the keyword part joins: ``mode`` hybrid or
    auto fuses them. ``mmr`` re-ranks the ``fetch_k`` nearest by maximal marginal relevance
    (``lambda_mult``: 1 relevance only, 0 diversity only). ``return_embedding`` puts the stored
    embedding on each document; ``filters`` as for :class:`TaseRetriever`."""

    def __init__(
        self,
        document_store: TaseDocumentStore,
        *,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        mode: str | None = None,
        return_embedding: bool = False,
        mmr: bool = False,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
    ) -> None:
        if not isinstance(document_store, TaseDocumentStore):
            raise InputError(f"document_store is {type(document_store).__name__}; give a TaseDocumentStore")
        self.document_store = document_store
        self.top_k = top_k
        self.filters = filters
        self.mode = check_mode(mode)
        self.return_embedding = return_embedding
        self.mmr = mmr
        self.fetch_k = fetch_k
        self.lambda_mult = lambda_mult
        store_filter(filters)

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(
            self,
            document_store=self.document_store.to_dict(),
            top_k=self.top_k,
            filters=self.filters,
            mode=self.mode,
            return_embedding=self.return_embedding,
            mmr=self.mmr,
            fetch_k=self.fetch_k,
            lambda_mult=self.lambda_mult,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaseEmbeddingRetriever:
        return _with_store(cls, data)

    @component.output_types(documents=list[Document])
    def run(
        self,
        query_embedding: list[float],
        query: str | None = None,
        filters: dict[str, Any] | None = None,
        top_k: int | None = None,
        return_embedding: bool | None = None,
    ) -> dict[str, Any]:
        docs = self.document_store.embedding_retrieval(
            query_embedding,
            query=query,
            filters=filters if filters is not None else self.filters,
            top_k=top_k or self.top_k,
            mode=self.mode,
            return_embedding=self.return_embedding if return_embedding is None else return_embedding,
            mmr=self.mmr,
            fetch_k=self.fetch_k,
            lambda_mult=self.lambda_mult,
        )
        return {"documents": docs}


def _with_store(cls: Any, data: dict[str, Any]) -> Any:
    params = dict(data.get("init_parameters", {}))
    if isinstance(params.get("document_store"), dict):
        params["document_store"] = TaseDocumentStore.from_dict(params["document_store"])
    return default_from_dict(cls, {**data, "init_parameters": params})


def _to_haystack(doc_id: str, text: str, meta: dict[str, Any], score: float | None = None) -> Document:
    meta = dict(meta)
    packed = meta.pop(EMBEDDING_KEY, None)
    embedding = (
        np.frombuffer(base64.b64decode(packed), dtype="<f8").tolist() if isinstance(packed, str) else None
    )
    return Document(
        id=doc_id, content=text, meta=meta, embedding=embedding, score=None if score is None else float(score)
    )


__all__ = [
    "TaseDocumentEmbedder",
    "TaseDocumentStore",
    "TaseEmbeddingRetriever",
    "TaseRetriever",
    "TaseTextEmbedder",
    "store_filter",
]
