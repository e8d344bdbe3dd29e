"""LlamaIndex: TaseEmbedding and TaseVectorStore in LlamaIndex's own VectorStoreIndex flow, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("llama_index.core")

from bilingual import CORPUS, TEXTS, BilingualEncoder  # noqa: E402
from doc_examples import run_example  # noqa: E402
from llama_index.core import Document, StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.schema import TextNode  # noqa: E402
from llama_index.core.vector_stores import (  # noqa: E402
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)

from tase_search.errors import InputError  # noqa: E402
from tase_search.integrations.llamaindex import TaseEmbedding, TaseVectorStore  # noqa: E402
from tase_search.retriever import Retriever  # noqa: E402

pytestmark = pytest.mark.integrations


def _documents() -> list[Document]:
    return [Document(text=text, metadata={"topic": topic}, id_=doc_id) for doc_id, text, topic in CORPUS]


@pytest.fixture
def built(tmp_path: Path) -> tuple[VectorStoreIndex, TaseVectorStore, BilingualEncoder]:
    encoder = BilingualEncoder()
    store = TaseVectorStore(tmp_path / "li", encoder)
    index = VectorStoreIndex.from_documents(
        _documents(),
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=TaseEmbedding(encoder),
    )
    return index, store, encoder


def _refs(results: list) -> list[str]:
    return [r.node.ref_doc_id for r in results]


def test_index_and_query_in_turkish_and_english(built) -> None:
    index, store, encoder = built
    assert store.index_store.count() == len(CORPUS)  # one node per short document
    queries_before = encoder.calls["query"]
    retriever = index.as_retriever(similarity_top_k=1)
    assert _refs(retriever.retrieve("yarın yağmur yağacak mı")) == ["hava-1"]
    (hit,) = retriever.retrieve("heavy rain tomorrow")
    assert (hit.node.ref_doc_id, hit.node.get_content(), hit.node.metadata) == (
        "hava-1",
        TEXTS[2],
        {"topic": "hava"},
    )
    assert 0 < hit.score <= 1
    # the store searches by query text: exactly one encode_query per query, none by LlamaIndex
    assert encoder.calls["query"] - queries_before == 2


def test_filters_and_delete_ref_doc(built) -> None:
    index, store, _ = built
    spor = MetadataFilters(filters=[MetadataFilter(key="topic", value="spor")])
    assert sorted(_refs(index.as_retriever(similarity_top_k=5, filters=spor).retrieve("football match"))) == [
        "spor-1",
        "spor-2",
    ]
    index.delete_ref_doc("spor-1")
    assert "spor-1" not in _refs(index.as_retriever(similarity_top_k=8).retrieve("football match"))
    assert store.index_store.count() == len(CORPUS) - 1
    # insert through the index again: the node comes back under its source document
    index.insert(Document(text="Futbol maçı berabere bitti.", metadata={"topic": "spor"}, id_="spor-3"))
    assert _refs(index.as_retriever(similarity_top_k=1).retrieve("football")) == ["spor-3"]


def test_store_api_directly_and_reopening(tmp_path: Path) -> None:
    encoder = BilingualEncoder()
    store = TaseVectorStore(tmp_path / "li", TaseEmbedding(encoder))
    nodes = [
        TextNode(text=t, id_=f"n{i}", metadata={"topic": topic}) for i, (_, t, topic) in enumerate(CORPUS)
    ]
    assert store.add(nodes) == [n.node_id for n in nodes]
    # no double embedding: the index embedded each node once, LlamaIndex not at all
    assert encoder.calls["document"] == len(nodes)
    index = VectorStoreIndex.from_vector_store(store, embed_model=TaseEmbedding(encoder))
    assert [r.node.node_id for r in index.as_retriever(similarity_top_k=1).retrieve("inflation")] == ["n5"]
    res = store.query(VectorStoreQuery(query_str="earthquake", similarity_top_k=2))
    assert res.ids[0] == "n6" and res.similarities[0] > res.similarities[1]
    hava = MetadataFilters(filters=[MetadataFilter(key="topic", value="hava")])
    assert sorted(n.node_id for n in store.get_nodes(filters=hava)) == ["n2", "n3"]
    store.delete_nodes(["n2"])
    assert [n.node_id for n in store.get_nodes(filters=hava)] == ["n3"]
    reopened = TaseVectorStore(tmp_path / "li", encoder)  # same index, new process would do the same
    assert reopened.get_nodes(["n3"])[0].get_content() == TEXTS[3]
    assert Retriever.load(tmp_path / "li", model=encoder).search("sunny weather", k=1)[0].id == "n3"
    store.clear()
    assert store.get_nodes() == []


def test_embedding_roles_and_unsupported_queries(tmp_path: Path) -> None:
    encoder = BilingualEncoder()
    emb = TaseEmbedding(encoder)
    assert len(emb.get_query_embedding("futbol")) == encoder.dimension
    assert len(emb.get_text_embedding_batch(TEXTS)) == len(TEXTS)
    assert encoder.calls == {"query": 1, "document": len(TEXTS)}
    store = TaseVectorStore(tmp_path / "li", encoder)
    store.add([TextNode(text=TEXTS[0], id_="a", metadata={"topic": "spor"})])
    gt = MetadataFilters(filters=[MetadataFilter(key="year", value=2020, operator=FilterOperator.GT)])
    with pytest.raises(InputError, match="operator '>'"):
        store.query(VectorStoreQuery(query_str="futbol", filters=gt))
    with pytest.raises(InputError, match="query text"):
        store.query(VectorStoreQuery(query_embedding=[0.0] * encoder.dimension))


def test_doc_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_example("llamaindex", encoder=BilingualEncoder())
