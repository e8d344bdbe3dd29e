"""``rerank`` through LangChain and LlamaIndex: the same hits as the Retriever's reranked search."""

from __future__ import annotations

from pathlib import Path

import pytest
from bilingual import CORPUS, IDS, METADATAS, TEXTS, BilingualEncoder

from tase_search.query.rerank import Reranker
from tase_search.retriever import Retriever
from tase_search.testing.tiny_models import build_tiny_reranker

pytestmark = pytest.mark.integrations


@pytest.fixture(scope="module")
def reranker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_reranker(tmp_path_factory.mktemp("rr") / "model")


@pytest.fixture(autouse=True)
def _reranker_setting(reranker_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASE_SEARCH_RERANKER", str(reranker_dir))


def _want(path: Path, reranker_dir: Path, query: str, k: int, n: int) -> list[str]:
    r = Retriever.load(path, model=BilingualEncoder(), reranker=str(reranker_dir))
    return [h.id for h in r.search(query, k=k, rerank=n, mode="dense")]


def test_langchain_rerank(tmp_path: Path, reranker_dir: Path) -> None:
    pytest.importorskip("langchain_core")
    from tase_search.integrations.langchain import TaseEmbeddings, TaseVectorStore

    store = TaseVectorStore.from_texts(
        TEXTS, TaseEmbeddings(BilingualEncoder()), metadatas=METADATAS, ids=IDS, index=tmp_path / "lc"
    )
    got = store.similarity_search_with_score("yarın yağmur", k=2, mode="dense", rerank=6)
    assert [d.id for d, _ in got] == _want(tmp_path / "lc", reranker_dir, "yarın yağmur", 2, 6)
    probs = Reranker.load(str(reranker_dir)).score("yarın yağmur", [d.page_content for d, _ in got])
    assert [s for _, s in got] == pytest.approx(list(probs), abs=1e-6)
    rel = store.similarity_search_with_relevance_scores("yarın yağmur", k=2, mode="dense", rerank=6)
    assert [s for _, s in rel] == pytest.approx([s for _, s in got], abs=1e-6)


def test_llamaindex_rerank_on_the_vector_path(tmp_path: Path, reranker_dir: Path) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core import Document, StorageContext, VectorStoreIndex

    from tase_search.integrations.llamaindex import TaseEmbedding, TaseVectorStore

    encoder = BilingualEncoder()
    store = TaseVectorStore(tmp_path / "li", encoder)
    index = VectorStoreIndex.from_documents(
        [Document(text=t, metadata={"topic": topic}, id_=i) for i, t, topic in CORPUS],
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=TaseEmbedding(encoder),
    )
    plain = index.as_retriever(similarity_top_k=6).retrieve("yarın yağmur")
    got = index.as_retriever(similarity_top_k=2, vector_store_kwargs={"rerank": 6}).retrieve("yarın yağmur")
    probs = Reranker.load(str(reranker_dir)).score("yarın yağmur", [n.node.get_content() for n in plain])
    order = sorted(range(len(plain)), key=lambda i: (-probs[i], i))[:2]
    assert [n.node.node_id for n in got] == [plain[i].node.node_id for i in order]
    assert [n.score for n in got] == pytest.approx([probs[i] for i in order], abs=1e-6)
    with pytest.raises(Exception, match="rerank="):
        index.as_retriever(similarity_top_k=2, vector_store_kwargs={"rerank": -3}).retrieve("yağmur")


def test_haystack_retriever_rerank(tmp_path: Path, reranker_dir: Path) -> None:
    pytest.importorskip("haystack")
    from haystack import Document

    from tase_search.integrations.haystack import TaseDocumentStore, TaseRetriever

    store = TaseDocumentStore(index=tmp_path / "hs", model=BilingualEncoder())
    store.write_documents([Document(id=i, content=t, meta=m) for i, t, m in zip(IDS, TEXTS, METADATAS)])
    retriever = TaseRetriever(store, top_k=2, mode="dense", rerank=6)
    got = retriever.run("yarın yağmur")["documents"]
    assert [d.id for d in got] == _want(tmp_path / "hs", reranker_dir, "yarın yağmur", 2, 6)
    probs = Reranker.load(str(reranker_dir)).score("yarın yağmur", [d.content for d in got])
    assert [d.score for d in got] == pytest.approx(list(probs), abs=1e-6)
    assert retriever.to_dict()["init_parameters"]["rerank"] == 6  # a saved pipeline keeps it
    with pytest.raises(Exception, match="rerank="):
        TaseRetriever(store, rerank=-1)
