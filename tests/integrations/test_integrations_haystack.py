"""Haystack: the tase-search components in Haystack Pipelines (Haystack's own DocumentStore suites on
TaseDocumentStore: test_integrations_haystack_suite.py)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

pytest.importorskip("haystack")

from bilingual import CORPUS, TEXTS, BilingualEncoder  # noqa: E402
from doc_examples import run_example  # noqa: E402
from haystack import Document, Pipeline  # noqa: E402
from haystack.components.retrievers.in_memory import InMemoryEmbeddingRetriever  # noqa: E402
from haystack.components.writers import DocumentWriter  # noqa: E402
from haystack.document_stores.in_memory import InMemoryDocumentStore  # noqa: E402
from haystack.document_stores.types import DuplicatePolicy  # noqa: E402

from tase_search.errors import InputError  # noqa: E402
from tase_search.integrations.haystack import (  # noqa: E402
    TaseDocumentEmbedder,
    TaseDocumentStore,
    TaseRetriever,
    TaseTextEmbedder,
)

pytestmark = pytest.mark.integrations


def _documents() -> list[Document]:
    return [Document(id=i, content=t, meta={"topic": topic}) for i, t, topic in CORPUS]


def _ids(result: dict) -> list[str]:
    return [d.id for d in result["documents"]]


@pytest.fixture
def store(tmp_path: Path) -> TaseDocumentStore:
    return TaseDocumentStore(tmp_path / "hs", BilingualEncoder())


def test_indexing_and_query_pipelines(store: TaseDocumentStore) -> None:
    indexing = Pipeline()
    indexing.add_component("writer", DocumentWriter(document_store=store))
    assert indexing.run({"writer": {"documents": _documents()}})["writer"]["documents_written"] == len(CORPUS)

    query = Pipeline()
    query.add_component("retriever", TaseRetriever(store, top_k=1))
    assert _ids(query.run({"retriever": {"query": "yarın yağmur yağacak mı"}})["retriever"]) == ["hava-1"]
    (doc,) = query.run({"retriever": {"query": "heavy rain tomorrow"}})["retriever"]["documents"]
    assert (doc.content, doc.meta, 0 < doc.score <= 1) == (TEXTS[2], {"topic": "hava"}, True)

    spor = {"field": "meta.topic", "operator": "==", "value": "spor"}
    out = query.run({"retriever": {"query": "football match", "filters": spor, "top_k": 5}})
    assert sorted(_ids(out["retriever"])) == ["spor-1", "spor-2"]

    store.delete_documents(["spor-1"])
    out = query.run({"retriever": {"query": "football match", "top_k": 8}})
    assert "spor-1" not in _ids(out["retriever"]) and store.count_documents() == len(CORPUS) - 1


def test_embedders_with_haystacks_in_memory_store() -> None:
    encoder = BilingualEncoder()
    mem = InMemoryDocumentStore()
    indexing = Pipeline()
    indexing.add_component("embedder", TaseDocumentEmbedder(encoder))
    indexing.add_component("writer", DocumentWriter(document_store=mem))
    indexing.connect("embedder.documents", "writer.documents")
    indexing.run({"embedder": {"documents": _documents()}})
    assert encoder.calls == {"query": 0, "document": len(CORPUS)}

    query = Pipeline()
    query.add_component("embedder", TaseTextEmbedder(encoder))
    query.add_component("retriever", InMemoryEmbeddingRetriever(mem, top_k=1))
    query.connect("embedder.embedding", "retriever.query_embedding")
    assert _ids(query.run({"embedder": {"text": "earthquake in the Aegean"}})["retriever"]) == ["doga-1"]
    assert encoder.calls["query"] == 1
    ekonomi = {"field": "meta.topic", "operator": "==", "value": "ekonomi"}
    out = query.run({"embedder": {"text": "inflation"}, "retriever": {"filters": ekonomi, "top_k": 2}})
    assert _ids(out["retriever"]) == ["ekonomi-2", "ekonomi-1"]


def test_pipeline_serialisation_round_trip(tmp_path: Path, tiny_model_dir: Path) -> None:
    store = TaseDocumentStore(tmp_path / "hs", str(tiny_model_dir))
    store.write_documents(_documents())
    pipe = Pipeline()
    pipe.add_component(
        "retriever",
        TaseRetriever(store, top_k=2, filters={"field": "id", "operator": "==", "value": "hava-2"}),
    )
    trusted = {"allowed_modules": ["tase_search.integrations.haystack"]}  # Haystack >= 2.2x asks for it
    loaded = Pipeline.loads(
        pipe.dumps(), **(trusted if "allowed_modules" in inspect.signature(Pipeline.loads).parameters else {})
    )
    out = loaded.run({"retriever": {"query": "hava"}})["retriever"]
    assert _ids(out) == ["hava-2"]


def test_write_policies_and_unsupported_filters(store: TaseDocumentStore) -> None:
    store.write_documents(_documents()[:2])
    changed = Document(id="spor-1", content="Futbol maçı berabere bitti.", meta={"topic": "spor"})
    assert store.write_documents([changed], policy=DuplicatePolicy.SKIP) == 0
    assert store.write_documents([changed], policy=DuplicatePolicy.OVERWRITE) == 1
    assert (
        store.filter_documents({"field": "id", "operator": "==", "value": "spor-1"})[0].content
        == changed.content
    )
    # filter_documents takes every Haystack operator, and the retrievers translate them all
    assert sorted(
        d.id for d in store.filter_documents({"field": "meta.topic", "operator": "in", "value": ["spor"]})
    ) == ["spor-1", "spor-2"]
    with pytest.raises(InputError, match="compare 'id' or a 'meta.NAME' field"):
        TaseRetriever(store, filters={"field": "content", "operator": "==", "value": "x"})
    with pytest.raises(InputError, match="mode 'fuzzy'"):
        TaseRetriever(store, mode="fuzzy")


def test_doc_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_example("haystack", encoder=BilingualEncoder())


def _embedded(dim: int = 16) -> list[Document]:
    """The corpus with embeddings from an embedder that is not ours (random: only identical texts are near)."""
    import numpy as np

    rng = np.random.default_rng(7)
    return [
        Document(id=i, content=t, meta={"topic": topic, "n": n}, embedding=rng.normal(size=dim).tolist())
        for n, (i, t, topic) in enumerate(CORPUS)
    ]


def test_own_embeddings_hybrid_mmr_and_return_embedding(tmp_path: Path) -> None:
    from tase_search.integrations.haystack import TaseEmbeddingRetriever

    docs = _embedded()
    store = TaseDocumentStore(tmp_path / "byo", embedder="my-embedder")
    pipe = Pipeline()
    pipe.add_component("writer", DocumentWriter(document_store=store))
    pipe.run({"writer": {"documents": docs}})
    m = store.store.retriever().manifest.model
    assert (m.id, m.dimension) == ("external:my-embedder", 16)
    assert store.filter_documents()[2] == docs[2]  # embeddings come back exactly as given

    retriever = TaseEmbeddingRetriever(store, top_k=2)
    out = retriever.run(query_embedding=docs[2].embedding)["documents"]
    assert [d.id for d in out] == ["hava-1", out[1].id] and out[0].score == pytest.approx(1.0, abs=1e-5)
    assert out[0].embedding is None
    # the query text joins the keyword part: a name the vectors know nothing of
    hybrid = TaseEmbeddingRetriever(store, top_k=1, mode="hybrid")
    assert _ids(hybrid.run(query_embedding=docs[2].embedding, query="Galatasaray")) in (
        ["hava-1"],
        ["spor-1"],
    )
    sparse_top = TaseRetriever(store, top_k=1, mode="sparse").run(query="Galatasaray")
    assert _ids(sparse_top) == ["spor-1"]
    # return_embedding: the stored embedding, as it came
    (doc,) = retriever.run(query_embedding=docs[4].embedding, top_k=1, return_embedding=True)["documents"]
    assert doc.embedding == docs[4].embedding
    # filters: Haystack's operators, translated to the store's filter language (range on meta.n)
    in_spor = {"field": "meta.topic", "operator": "==", "value": "spor"}
    assert sorted(_ids(retriever.run(query_embedding=docs[0].embedding, filters=in_spor, top_k=5))) == [
        "spor-1",
        "spor-2",
    ]
    # MMR: k different documents, the nearest first
    mmr = TaseEmbeddingRetriever(store, top_k=3, mmr=True, fetch_k=8, lambda_mult=0.5)
    picked = _ids(mmr.run(query_embedding=docs[6].embedding))
    assert picked[0] == "doga-1" and len(set(picked)) == 3
    # a serialised pipeline comes back with the store and the settings
    again = TaseEmbeddingRetriever.from_dict(mmr.to_dict())
    assert (again.mmr, again.fetch_k, again.document_store.store.path) == (True, 8, store.store.path)
    # a document without an embedding is kept (keyword search) but is not a result by vector
    store.write_documents([Document(id="plain", content="Galatasaray kupayı kazandı.")])
    assert "plain" not in _ids(retriever.run(query_embedding=docs[0].embedding, top_k=20))
    assert _ids(TaseRetriever(store, top_k=1, mode="sparse").run(query="kupayı")) == ["plain"]
    # reopened without arguments: the store knows its embedder from the index
    reopened = TaseDocumentStore(tmp_path / "byo")
    assert reopened.count_documents() == len(docs) + 1
    reopened.write_documents([_embedded()[0]], policy=DuplicatePolicy.OVERWRITE)


def test_own_embeddings_refuse_another_dimension_and_name(tmp_path: Path) -> None:
    from tase_search.errors import IndexMismatch

    store = TaseDocumentStore(tmp_path / "byo", embedder="my-embedder")
    store.write_documents(_embedded())
    with pytest.raises(IndexMismatch, match="dimension 8"):
        store.write_documents([Document(content="x", embedding=[0.1] * 8)])
    with pytest.raises(IndexMismatch, match="not by 'external:other'"):
        TaseDocumentStore(tmp_path / "byo", embedder="other").write_documents(_embedded()[:1])
    with pytest.raises(InputError, match="embedding_dim"):
        TaseDocumentStore(tmp_path / "new").write_documents([Document(content="no embedding")])


def test_haystack_filters_become_the_store_filter_language() -> None:
    from tase_search.integrations.haystack import store_filter

    assert store_filter(None) is None and store_filter({}) is None
    assert store_filter({"field": "meta.year", "operator": ">=", "value": 2020}) == {"year": {"$gte": 2020}}
    assert store_filter({"field": "id", "operator": "in", "value": ["a", "b"]}) == {"id": {"$in": ["a", "b"]}}
    assert store_filter(
        {
            "operator": "OR",
            "conditions": [
                {"field": "meta.topic", "operator": "!=", "value": "spor"},
                {"field": "meta.tags", "operator": "not in", "value": ["x"]},
                {"operator": "NOT", "conditions": [{"field": "meta.n", "operator": "<", "value": 3}]},
                {"field": "meta.gone", "operator": "==", "value": None},
            ],
        }
    ) == {
        "$or": [
            {"topic": {"$ne": "spor"}},
            {"tags": {"$nin": ["x"]}},
            {"$not": {"n": {"$lt": 3}}},
            {"$or": [{"gone": {"$exists": False}}, {"gone": {"$eq": None}}]},
        ]
    }
    assert store_filter(
        {
            "operator": "AND",
            "conditions": [
                {"field": "meta.a", "operator": ">", "value": 1},
                {"field": "meta.b", "operator": "<=", "value": 2},
            ],
        }
    ) == {"$and": [{"a": {"$gt": 1}}, {"b": {"$lte": 2}}]}
    with pytest.raises(InputError, match="takes a list"):
        store_filter({"field": "meta.a", "operator": "in", "value": "x"})
    with pytest.raises(InputError, match="operator one of"):
        store_filter({"field": "meta.a", "operator": "~", "value": "x"})
    with pytest.raises(InputError, match="logical filter"):
        store_filter({"operator": "XOR", "conditions": []})


def test_doc_example_own_embeddings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_example("haystack-byo")
