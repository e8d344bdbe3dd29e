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
    with pytest.raises(InputError, match="give LangChain Embeddings"):
        TaseVectorStore(tmp_path / "x", object())  # type: ignore[arg-type]
    store = TaseVectorStore(tmp_path / "y", TaseEmbeddings(BilingualEncoder()))
    with pytest.raises(InputError, match="2 ids for 1 texts"):
        store.add_texts(["bir"], ids=["a", "b"])
    with pytest.raises(InputError, match="no text"):
        store.add_texts(["  "])
    with pytest.raises(InputError, match="mode 'fuzzy'"):
        store.similarity_search("x", mode="fuzzy")
    assert store.similarity_search("futbol") == []  # nothing written yet: no index, no hits
    with pytest.raises(InputError, match="operator '\\$like'"):
        store.similarity_search("x", filter={"topic": {"$like": "s%"}})


class _Hashed(Embeddings):
    """A toolkit embedder that is not ours: 32 random-looking dimensions per word (meaningless across
    words), so only identical texts are near; what it finds by meaning, it finds by chance."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self.model = "hashed-32"

    def _vec(self, text: str) -> list[float]:
        import hashlib

        import numpy as np

        seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        return np.random.default_rng(seed).normal(size=self.size).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vec(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vec(text)


@pytest.fixture
def byo(tmp_path: Path) -> TaseVectorStore:
    return TaseVectorStore.from_texts(TEXTS, _Hashed(), metadatas=METADATAS, ids=IDS, index=tmp_path / "byo")


def test_other_embeddings_keep_turkish_keyword_and_hybrid_search(byo: TaseVectorStore) -> None:
    """A Turkish corpus embedded by a non-Tase embedder: the index records that embedder, its vectors
    answer dense queries, and the Turkish keyword part finds a name the vectors know nothing of."""
    m = byo.index_store.retriever().manifest.model
    assert (m.id, m.dimension, m.normalized) == (
        "external:test_integrations_langchain:_Hashed:hashed-32",
        32,
        True,
    )
    # the exact text: its vector is identical, so dense finds it
    assert _ids(byo.similarity_search(TEXTS[4], k=1, mode="dense")) == ["ekonomi-1"]
    # a name: the embedder's vector for it is noise, the keyword part finds it, and hybrid keeps it on top
    assert _ids(byo.similarity_search("Galatasaray", k=1, mode="sparse")) == ["spor-1"]
    assert _ids(byo.similarity_search("Galatasaray'ın maçı", k=1, mode="hybrid")) == ["spor-1"]
    dense = _ids(byo.similarity_search("Galatasaray'ın maçı", k=8, mode="dense"))
    assert dense[0] != "spor-1"  # by vectors alone the name is not found first
    # Turkish-aware: the inflected "depremi" finds "deprem"
    assert _ids(byo.similarity_search("depremi", k=1, mode="hybrid")) == ["doga-1"]


def test_search_by_vector_mmr_and_filters(byo: TaseVectorStore) -> None:
    emb = byo.embeddings
    vec = emb.embed_query(TEXTS[2])
    assert _ids(byo.similarity_search_by_vector(vec, k=1)) == ["hava-1"]
    doc, score = byo.similarity_search_with_score_by_vector(vec, k=1)[0]
    assert doc.id == "hava-1" and score == pytest.approx(1.0, abs=1e-5)
    assert _ids(byo.similarity_search_by_vector(vec, k=1, query="Galatasaray", mode="hybrid"))[0] in {
        "hava-1",
        "spor-1",
    }
    assert _ids(byo.similarity_search_by_vector(vec, k=3, filter={"topic": "spor"})) == [
        d for d in _ids(byo.similarity_search_by_vector(vec, k=8)) if d.startswith("spor")
    ]
    mmr = byo.max_marginal_relevance_search(TEXTS[2], k=3, fetch_k=8, lambda_mult=0.5)
    assert len(mmr) == 3 and mmr[0].id == "hava-1" and len(set(_ids(mmr))) == 3
    assert _ids(byo.max_marginal_relevance_search_by_vector(vec, k=2, fetch_k=8)) == _ids(mmr[:2])
    import asyncio

    assert _ids(asyncio.run(byo.amax_marginal_relevance_search(TEXTS[2], k=2, fetch_k=8))) == _ids(mmr[:2])
    assert _ids(asyncio.run(byo.asimilarity_search_by_vector(vec, k=1))) == ["hava-1"]


def test_mmr_prefers_a_different_document_to_a_near_copy(tmp_path: Path) -> None:
    enc = BilingualEncoder()
    texts = ["Futbol maçı golle bitti.", "Futbol maçı golle bitti!", "Futbol takımı kupayı aldı."]
    store = TaseVectorStore.from_texts(texts, TaseEmbeddings(enc), ids=["a", "a2", "b"], index=tmp_path / "m")
    assert sorted(_ids(store.similarity_search("futbol maçı", k=2, mode="dense"))) == ["a", "a2"]
    diverse = _ids(store.max_marginal_relevance_search("futbol maçı", k=2, fetch_k=3, lambda_mult=0.3))
    assert diverse[1] == "b" and diverse[0] in ("a", "a2")  # the near-copy gives way
    relevant = _ids(store.max_marginal_relevance_search("futbol maçı", k=2, fetch_k=3, lambda_mult=1.0))
    assert sorted(relevant) == ["a", "a2"]


def test_an_index_refuses_another_embedder(byo: TaseVectorStore, tmp_path: Path) -> None:
    from tase_search.errors import IndexMismatch

    path = byo.index_store.path
    with pytest.raises(IndexMismatch, match="dimension 16, but embedder .*hashed-32' of this index gives 32"):
        TaseVectorStore(path, _Hashed(16)).similarity_search("hava")  # other dimension
    other = _Hashed()
    other.model = "another-model"
    with pytest.raises(IndexMismatch, match="not by 'external:.*another-model'"):
        TaseVectorStore(path, other).add_texts(["Yeni bir belge."])
    with pytest.raises(IndexMismatch, match="normalised"):
        TaseVectorStore(path, _Hashed(), normalize=False).similarity_search("hava")
    with pytest.raises(IndexMismatch):
        TaseVectorStore(path, TaseEmbeddings(BilingualEncoder())).similarity_search("hava")
    # opened without its embedder: by vector and by keywords still work, by text says what to give
    bare = TaseVectorStore(path)
    assert _ids(bare.similarity_search("Galatasaray", k=1, mode="sparse")) == ["spor-1"]
    assert _ids(bare.similarity_search_by_vector(_Hashed().embed_query(TEXTS[0]), k=1)) == ["spor-1"]
    with pytest.raises(InputError, match="external embedder"):
        bare.similarity_search("hava", mode="dense")


def test_from_texts_defaults_to_a_named_index_in_the_user_data_directory() -> None:
    from tase_search.runtime.paths import resolve_index_path

    store = TaseVectorStore.from_texts(TEXTS[:2], TaseEmbeddings(BilingualEncoder()), ids=IDS[:2])
    assert store.index_store.path == resolve_index_path("langchain")  # `tase-search list` shows it
    assert _ids(store.similarity_search("football", k=1)) == ["spor-1"]


def test_doc_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_example("langchain", encoder=BilingualEncoder())


def test_doc_example_own_embeddings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_example("langchain-byo")
