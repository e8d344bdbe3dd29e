"""Haystack: the tase-search components in Haystack Pipelines, and TaseDocumentStore against Haystack's
own DocumentStore test suite (``haystack.testing.document_store.DocumentStoreBaseTests``)."""

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
from haystack.document_stores.errors import DuplicateDocumentError  # noqa: E402
from haystack.document_stores.in_memory import InMemoryDocumentStore  # noqa: E402
from haystack.document_stores.types import DuplicatePolicy  # noqa: E402
from haystack.testing.document_store import DocumentStoreBaseTests  # noqa: E402

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
    # filter_documents takes every Haystack operator; the retriever refuses what the index cannot pre-filter
    assert sorted(
        d.id for d in store.filter_documents({"field": "meta.topic", "operator": "in", "value": ["spor"]})
    ) == [
        "spor-1",
        "spor-2",
    ]
    with pytest.raises(InputError, match="not supported by TaseRetriever"):
        TaseRetriever(store, filters={"field": "meta.year", "operator": ">", "value": 2020})
    with pytest.raises(InputError, match="mode 'fuzzy'"):
        TaseRetriever(store, mode="fuzzy")


class TestHaystackDocumentStoreSuite(DocumentStoreBaseTests):
    """Haystack's conformance tests for a DocumentStore: write, count, delete, every filter operator."""

    @pytest.fixture
    def document_store(self, tmp_path: Path) -> TaseDocumentStore:
        return TaseDocumentStore(tmp_path / "suite", BilingualEncoder())

    @staticmethod
    def assert_documents_are_equal(received: list[Document], expected: list[Document]) -> None:
        # The index keeps id, text and metadata; embeddings computed elsewhere are not stored (it embeds
        # for itself), so compare what it keeps.
        def key(d: Document) -> tuple:
            return (d.id, d.content, sorted(d.meta.items(), key=repr))

        assert sorted(map(key, received)) == sorted(map(key, expected))

    def test_write_documents(self, document_store: TaseDocumentStore) -> None:
        # the suite leaves the default policy to the store: FAIL on an existing id, as InMemoryDocumentStore
        doc = Document(content="test doc")
        assert document_store.write_documents([doc]) == 1
        self.assert_documents_are_equal(document_store.filter_documents(), [doc])
        with pytest.raises(DuplicateDocumentError):
            document_store.write_documents([doc])


def test_doc_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_example("haystack", encoder=BilingualEncoder())
