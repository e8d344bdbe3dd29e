"""Haystack 2.x/3.x: tase-search embedders, a document store kept in a tase-search index, and a retriever.

- ``TaseTextEmbedder`` / ``TaseDocumentEmbedder``: components that embed a query (query prompt) or
  documents (passage prompt), for any Haystack document store and embedding retriever.
- ``TaseDocumentStore``: Haystack's ``DocumentStore`` protocol over a tase-search index (write with a
  ``DuplicatePolicy``, count, ``filter_documents`` with Haystack's full filter syntax, delete), so a
  ``DocumentWriter`` fills it. The index embeds the documents itself.
- ``TaseRetriever``: a component that searches a ``TaseDocumentStore`` with the query text.

    pip install 'tase-search[haystack]'
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from . import load_encoder, require

require("haystack", "haystack")

from haystack import Document, component, default_from_dict, default_to_dict  # noqa: E402
from haystack.document_stores.errors import DuplicateDocumentError  # noqa: E402
from haystack.document_stores.types import DuplicatePolicy  # noqa: E402
from haystack.utils.filters import document_matches_filter  # noqa: E402

from ..errors import InputError  # noqa: E402
from ._store import IndexStore, check_mode, make_document  # noqa: E402

SOURCE = "<haystack>"


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

    ``model``: what embeds documents and queries (a name, directory, hub id or encoder object); None
    opens an existing index with the model its manifest names. The index is created by the first write.
    Documents need text (``content``); embeddings set on them by other embedders are not used.
    """

    def __init__(
        self, index: str | os.PathLike[str], model: Any = None, *, factory: str | None = None
    ) -> None:
        self._model = model
        self._factory = factory
        self.store = IndexStore(index, None if model is None else load_encoder(model), factory=factory)

    def to_dict(self) -> dict[str, Any]:
        spec = self._model if self._model is None or isinstance(self._model, str) else self._model.model_id
        return default_to_dict(self, index=str(self.store.path), model=spec, factory=self._factory)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaseDocumentStore:
        return default_from_dict(cls, data)

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
        docs = [make_document(d.id, d.content, d.meta, SOURCE, n) for n, d in enumerate(documents)]
        if policy == DuplicatePolicy.OVERWRITE:
            self.store.add(docs, on_duplicate="replace")
            return len(docs)
        res = self.store.add(docs, on_duplicate="skip" if policy == DuplicatePolicy.SKIP else "error")
        return res.added

    def delete_documents(self, document_ids: list[str]) -> None:
        """Delete by id (ids that are not stored are ignored, as in Haystack's own stores)."""
        self.store.delete(document_ids)


@component
class TaseRetriever:
    """Searches a :class:`TaseDocumentStore` with the query text (the index encodes it with the query
    prompt). ``filters``: Haystack filters made of ``==`` comparisons joined by AND (``meta.FIELD`` or
    ``id``); ``mode``: dense, sparse or hybrid where the index has them (None: the index's default)."""

    def __init__(
        self,
        document_store: TaseDocumentStore,
        *,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        mode: str | None = None,
    ) -> None:
        if not isinstance(document_store, TaseDocumentStore):
            raise InputError(f"document_store is {type(document_store).__name__}; give a TaseDocumentStore")
        self.document_store = document_store
        self.top_k = top_k
        self.filters = filters
        self.mode = check_mode(mode)
        native_filter(filters)  # refuse an unsupported filter now, not at the first query

    def to_dict(self) -> dict[str, Any]:
        store = self.document_store.to_dict()  # explicitly: Haystack 2.x does not call nested to_dict
        return default_to_dict(
            self, document_store=store, top_k=self.top_k, filters=self.filters, mode=self.mode
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaseRetriever:
        params = dict(data.get("init_parameters", {}))
        if isinstance(params.get("document_store"), dict):
            params["document_store"] = TaseDocumentStore.from_dict(params["document_store"])
        return default_from_dict(cls, {**data, "init_parameters": params})

    @component.output_types(documents=list[Document])
    def run(
        self, query: str, filters: dict[str, Any] | None = None, top_k: int | None = None
    ) -> dict[str, Any]:
        """Top ``top_k`` documents for ``query``; ``filters`` given here replace the ones from ``__init__``."""
        native = native_filter(filters if filters is not None else self.filters)
        hits = self.document_store.store.search(query, top_k or self.top_k, native, self.mode)
        return {"documents": [_to_haystack(h.id, h.text, h.metadata, score=h.score) for h in hits]}


def native_filter(filters: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Haystack filters as the index's equality filter: ``==`` comparisons joined by AND only."""
    if not filters:
        return None
    conditions = [filters]
    if "field" not in filters:
        if filters.get("operator") != "AND" or not isinstance(filters.get("conditions"), list):
            raise InputError(
                f"filter operator {filters.get('operator')!r} is not supported by TaseRetriever; "
                "use '==' comparisons joined by AND (filter_documents takes any filter)"
            )
        conditions = filters["conditions"]
    out: dict[str, str] = {}
    for c in conditions:
        op, field = c.get("operator"), c.get("field")
        if op != "==" or not isinstance(field, str):
            raise InputError(
                f"filter {c!r} is not supported by TaseRetriever; use {{'field': 'meta.NAME', 'operator': '==', "
                "'value': ...}} comparisons joined by AND"
            )
        value = c.get("value")
        if (
            not (field == "id" or field.startswith("meta."))
            or value is None
            or isinstance(value, (list, dict))
        ):
            raise InputError(
                f"filter {c!r} is not supported by TaseRetriever: compare 'id' or a 'meta.NAME' field with one value"
            )
        key = field[len("meta.") :] if field.startswith("meta.") else field
        out[key] = str(int(value)) if isinstance(value, bool) else str(value)
    return out


def _to_haystack(doc_id: str, text: str, meta: dict[str, Any], score: float | None = None) -> Document:
    return Document(id=doc_id, content=text, meta=dict(meta), score=None if score is None else float(score))


__all__ = ["TaseDocumentEmbedder", "TaseDocumentStore", "TaseRetriever", "TaseTextEmbedder", "native_filter"]
