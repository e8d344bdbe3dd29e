"""LlamaIndex: TaseEmbedding and TaseVectorStore in LlamaIndex's own VectorStoreIndex flow, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("llama_index.core")

from bilingual import CORPUS, TEXTS, BilingualEncoder  # noqa: E402
from doc_examples import run_example  # noqa: E402
from llama_index.core import Document, StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode  # noqa: E402
from llama_index.core.vector_stores import (  # noqa: E402
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)
from llama_index.core.vector_stores.types import VectorStoreQueryMode  # noqa: E402

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


def test_embedding_roles_and_queries_by_vector(tmp_path: Path) -> None:
    encoder = BilingualEncoder()
    emb = TaseEmbedding(encoder)
    assert len(emb.get_query_embedding("futbol")) == encoder.dimension
    assert len(emb.get_text_embedding_batch(TEXTS)) == len(TEXTS)
    assert encoder.calls == {"query": 1, "document": len(TEXTS)}
    store = TaseVectorStore(tmp_path / "li", encoder)
    store.add([TextNode(text=t, id_=i, metadata={"topic": topic}) for i, t, topic in CORPUS])
    # a query that brings only an embedding (made by the index's model) is searched by it
    res = store.query(VectorStoreQuery(query_embedding=emb.get_query_embedding("deprem"), similarity_top_k=1))
    assert res.ids == ["doga-1"]
    with pytest.raises(InputError, match="neither text nor an embedding"):
        store.query(VectorStoreQuery(similarity_top_k=1))
    contains = MetadataFilters(
        filters=[MetadataFilter(key="tags", value="x", operator=FilterOperator.CONTAINS)]
    )
    with pytest.raises(InputError, match="operator 'contains'"):
        store.query(VectorStoreQuery(query_str="futbol", filters=contains))


def _filtered(store: TaseVectorStore, filters: MetadataFilters | None = None, **query: object) -> list[str]:
    res = store.query(
        VectorStoreQuery(query_str="futbol maçı", similarity_top_k=10, filters=filters, **query)
    )
    return sorted(res.ids)


def test_filter_operators_or_not_and_several_doc_ids(tmp_path: Path) -> None:
    from tase_search.integrations.llamaindex import store_filter

    store = TaseVectorStore(tmp_path / "li", BilingualEncoder())
    nodes = [
        TextNode(text=t, id_=i, metadata={"topic": topic, "n": n}) for n, (i, t, topic) in enumerate(CORPUS)
    ]
    for n, node in enumerate(nodes):  # two nodes per source document
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=f"src-{n // 2}")
    store.add(nodes)
    ge = MetadataFilter(key="n", value=6, operator=FilterOperator.GTE)
    ne = MetadataFilter(key="topic", value="spor", operator=FilterOperator.NE)
    isin = MetadataFilter(key="topic", value=["hava", "doga"], operator=FilterOperator.IN)
    nin = MetadataFilter(key="topic", value=["spor", "hava", "ekonomi"], operator=FilterOperator.NIN)
    assert _filtered(store, MetadataFilters(filters=[ge])) == ["doga-1", "kultur-1"]
    assert len(_filtered(store, MetadataFilters(filters=[ne]))) == len(CORPUS) - 2
    assert _filtered(store, MetadataFilters(filters=[isin])) == ["doga-1", "hava-1", "hava-2"]
    assert _filtered(store, MetadataFilters(filters=[nin])) == ["doga-1", "kultur-1"]
    either = MetadataFilters(filters=[ge, isin], condition=FilterCondition.OR)
    assert _filtered(store, either) == ["doga-1", "hava-1", "hava-2", "kultur-1"]
    neither = MetadataFilters(filters=[ge, isin], condition=FilterCondition.OR)
    assert len(_filtered(store, MetadataFilters(filters=[neither], condition=FilterCondition.NOT))) == 4
    assert _filtered(store, doc_ids=["src-0", "src-3"]) == ["doga-1", "kultur-1", "spor-1", "spor-2"]
    assert _filtered(store, node_ids=["spor-1", "hava-2"]) == ["hava-2", "spor-1"]
    assert sorted(n.node_id for n in store.get_nodes(filters=MetadataFilters(filters=[isin]))) == [
        "doga-1",
        "hava-1",
        "hava-2",
    ]
    assert store_filter(MetadataFilters(filters=[ge, ne], condition=FilterCondition.AND)) == {
        "$and": [{"n": {"$gte": 6}}, {"topic": {"$ne": "spor"}}]
    }


def test_mmr_and_hybrid_query_modes(tmp_path: Path) -> None:
    encoder = BilingualEncoder()
    store = TaseVectorStore(tmp_path / "li", encoder)
    texts = ["Futbol maçı golle bitti.", "Futbol maçı golle bitti!", "Futbol takımı kupayı aldı."]
    store.add([TextNode(text=t, id_=i) for i, t in zip(["a", "a2", "b"], texts)])
    mmr = VectorStoreQuery(query_str="futbol maçı", similarity_top_k=2, mode=VectorStoreQueryMode.MMR)
    picked = store.query(mmr, mmr_threshold=0.3).ids
    assert picked[1] == "b" and picked[0] in ("a", "a2")
    index = VectorStoreIndex.from_vector_store(store, embed_model=TaseEmbedding(encoder))
    retriever = index.as_retriever(
        similarity_top_k=2, vector_store_query_mode="mmr", vector_store_kwargs={"mmr_threshold": 0.3}
    )
    assert [r.node.node_id for r in retriever.retrieve("futbol maçı")][1] == "b"
    hybrid = VectorStoreQuery(query_str="kupayı", similarity_top_k=1, mode=VectorStoreQueryMode.HYBRID)
    assert store.query(hybrid).ids == ["b"]


def test_llamaindex_embeddings_kept_with_hybrid_search(tmp_path: Path) -> None:
    """A new store without a model keeps the embeddings LlamaIndex computes (any BaseEmbedding); the
    query text still reaches the Turkish keyword part."""
    from llama_index.core.embeddings import MockEmbedding

    class Hashed(MockEmbedding):
        def _vec(self, text: str) -> list[float]:
            import hashlib

            import numpy as np

            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            return np.random.default_rng(seed).normal(size=self.embed_dim).tolist()

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._vec(text)

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._vec(query)

    embed = Hashed(embed_dim=24)
    store = TaseVectorStore(tmp_path / "byo")
    assert store.is_embedding_query
    index = VectorStoreIndex.from_documents(
        _documents(), storage_context=StorageContext.from_defaults(vector_store=store), embed_model=embed
    )
    m = store.client.manifest.model
    assert (m.id, m.dimension) == ("external:llamaindex-nodes", 24)
    hybrid = index.as_retriever(similarity_top_k=1, vector_store_query_mode="hybrid")
    assert _refs(hybrid.retrieve("Galatasaray")) == ["spor-1"]  # a name: found by the keyword part
    (node,) = [n for n in store.get_nodes() if n.get_content() == TEXTS[3]]
    stored = store.index_store.stored_vectors([node.node_id])[node.node_id]  # the vector LlamaIndex made
    res = store.query(VectorStoreQuery(query_embedding=stored.tolist(), similarity_top_k=1))
    assert res.ids == [node.node_id] and res.similarities[0] == pytest.approx(1.0, abs=1e-5)
    mmr = index.as_retriever(similarity_top_k=3, vector_store_query_mode="mmr")
    assert len({r.node.node_id for r in mmr.retrieve(TEXTS[3])}) == 3
    # another embedder's vectors are refused
    from tase_search.errors import IndexMismatch

    with pytest.raises(IndexMismatch):
        TaseVectorStore(tmp_path / "byo", Hashed(embed_dim=8)).add([TextNode(text="x", embedding=[0.0] * 8)])


def test_serialisation_round_trips(tmp_path: Path, tiny_model_dir: Path) -> None:
    emb = TaseEmbedding(str(tiny_model_dir))
    again = TaseEmbedding.from_dict(emb.to_dict())
    assert again.model_name == str(tiny_model_dir)
    assert again.get_query_embedding("futbol") == pytest.approx(emb.get_query_embedding("futbol"), abs=1e-5)
    store = TaseVectorStore(tmp_path / "li", emb)
    store.add([TextNode(text=t, id_=i) for i, t, _ in CORPUS[:3]])
    copy = TaseVectorStore.from_dict(store.to_dict())
    assert copy.index_path == store.index_path and copy.model_spec == str(tiny_model_dir)
    assert copy.query(VectorStoreQuery(query_str=TEXTS[1], similarity_top_k=1)).ids == ["spor-2"]
    byo = TaseVectorStore(tmp_path / "byo", embedder="mine")
    byo.add([TextNode(text="Bir belge.", id_="x", embedding=[1.0, 0.0, 0.0])])
    copy = TaseVectorStore.from_dict(byo.to_dict())
    assert copy.is_embedding_query and copy.embedder == "mine"
    assert copy.query(VectorStoreQuery(query_embedding=[1.0, 0.1, 0.0], similarity_top_k=1)).ids == ["x"]


def test_doc_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_example("llamaindex", encoder=BilingualEncoder())


def test_doc_example_own_embeddings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_example("llamaindex-byo")
