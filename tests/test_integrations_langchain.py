"""LangChain: TaseEmbeddings and TaseVectorStore through LangChain's own interfaces, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("langchain_core")

from bilingual import IDS, METADATAS, TEXTS, BilingualEncoder  # noqa: E402
from doc_examples import run_example  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402
from langchain_core.vectorstores import InMemoryVectorStore  # noqa: E402

from tase_search.errors import InputError  # noqa: E402
from tase_search.integrations.langchain import TaseEmbeddings, TaseVectorStore  # noqa: E402
from tase_search.retriever import Retriever  # noqa: E402

pytestmark = pytest.mark.integrations


@pytest.fixture
def store(tmp_path: Path) -> TaseVectorStore:
    emb = TaseEmbeddings(BilingualEncoder())
    return TaseVectorStore.from_texts(TEXTS, emb, metadatas=METADATAS, ids=IDS, index=tmp_path / "lc")


def _ids(docs: list[Document]) -> list[str | None]:
    return [d.id for d in docs]


def test_turkish_and_english_queries_find_the_turkish_document(store: TaseVectorStore) -> None:
    enc = store.embeddings.encoder
    assert enc.calls["document"] == len(TEXTS) and enc.calls["query"] == 0  # documents: encode_document
    assert _ids(store.similarity_search("yarın yağmur yağacak mı", k=1)) == ["hava-1"]
    assert _ids(store.similarity_search("heavy rain tomorrow", k=1)) == ["hava-1"]
    assert enc.calls["query"] == 2  # queries: encode_query
    doc, score = store.similarity_search_with_score("earthquake in the Aegean", k=3)[0]
    assert (doc.id, doc.page_content, doc.metadata) == ("doga-1", TEXTS[6], {"topic": "doga"})
    assert 0 < score <= 1


def test_filter_delete_and_upsert(store: TaseVectorStore) -> None:
    assert _ids(store.similarity_search("sunny weather", k=3, filter={"topic": "kultur"})) == ["kultur-1"]
    assert store.similarity_search("football", k=3, filter={"topic": "no-such-topic"}) == []
    assert store.delete(["spor-1"]) is True
    assert "spor-1" not in _ids(store.similarity_search("football match", k=8))
    assert store.get_by_ids(["spor-1", "spor-2"]) == [
        Document(id="spor-2", page_content=TEXTS[1], metadata=METADATAS[1])
    ]
    # add_documents under an existing id replaces it (LangChain's upsert)
    store.add_documents(
        [Document(id="spor-2", page_content="Futbol maçı berabere bitti.", metadata={"topic": "spor"})]
    )
    assert _ids(store.similarity_search("football", k=1)) == ["spor-2"]
    assert len(store.index_store.documents()) == len(TEXTS) - 1
    store.delete()  # ids=None: everything
    assert store.index_store.documents() == []


def test_as_retriever_and_relevance_scores(store: TaseVectorStore) -> None:
    retriever = store.as_retriever(search_kwargs={"k": 2, "filter": {"topic": "ekonomi"}})
    assert _ids(retriever.invoke("inflation")) == ["ekonomi-2", "ekonomi-1"]
    threshold = store.as_retriever(
        search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.65}
    )
    assert _ids(threshold.invoke("central bank interest rate")) == ["ekonomi-1"]


async def _async_flow(store: TaseVectorStore) -> list[str | None]:
    await store.aadd_texts(["Deprem bölgesine yardım ulaştı."], [{"topic": "doga"}], ids=["doga-2"])
    return _ids(await store.asimilarity_search("earthquake", k=2))


def test_async_methods(store: TaseVectorStore) -> None:
    import asyncio

    assert asyncio.run(_async_flow(store)) == ["doga-2", "doga-1"]


def test_generated_ids_and_the_index_is_a_normal_tase_search_index(tmp_path: Path) -> None:
    encoder = BilingualEncoder()
    store = TaseVectorStore(tmp_path / "lc", TaseEmbeddings(encoder))
    ids = store.add_texts(TEXTS[:2], METADATAS[:2])
    assert len(set(ids)) == 2 and all(len(i) == 36 for i in ids)  # uuid4
    r = Retriever.load(tmp_path / "lc", model=encoder)  # what the CLI would open
    assert [h.id for h in r.search("football", k=1)] == [ids[0]]
    reopened = TaseVectorStore(tmp_path / "lc", TaseEmbeddings(encoder))
    assert _ids(reopened.similarity_search("basketball", k=1)) == [ids[1]]


def test_embeddings_work_in_another_vector_store() -> None:
    emb = TaseEmbeddings(BilingualEncoder())
    assert isinstance(emb, Embeddings)
    mem = InMemoryVectorStore.from_texts(TEXTS, emb, metadatas=METADATAS, ids=IDS)
    assert _ids(mem.similarity_search("football match", k=1)) == ["spor-1"]
    assert emb.encoder.calls == {"query": 1, "document": len(TEXTS)}
    assert len(emb.embed_query("futbol")) == emb.encoder.dimension


def test_bad_arguments_name_the_fix(tmp_path: Path) -> None:
    class Other(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [[0.0] for _ in texts]

        def embed_query(self, text: str) -> list[float]:
            return [0.0]

    with pytest.raises(InputError, match="TaseEmbeddings"):
        TaseVectorStore.from_texts(TEXTS, Other(), index=tmp_path / "x")
    with pytest.raises(InputError, match="index="):
        TaseVectorStore.from_texts(TEXTS, TaseEmbeddings(BilingualEncoder()))
    store = TaseVectorStore(tmp_path / "y", TaseEmbeddings(BilingualEncoder()))
    with pytest.raises(InputError, match="2 ids for 1 texts"):
        store.add_texts(["bir"], ids=["a", "b"])
    with pytest.raises(InputError, match="no text"):
        store.add_texts(["  "])
    with pytest.raises(InputError, match="mode 'fuzzy'"):
        store.similarity_search("x", mode="fuzzy")
    assert store.similarity_search("futbol") == []  # nothing written yet: no index, no hits


def test_doc_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_example("langchain", encoder=BilingualEncoder())
