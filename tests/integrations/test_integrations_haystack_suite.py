"""Haystack's own DocumentStore suites (``haystack.testing.document_store``) on TaseDocumentStore, with
Haystack's default comparison (documents equal as Haystack compares them, embeddings included):
``DocumentStoreBaseTests`` and the optional suites the store implements, on a store that keeps the
embeddings documents bring (no model: the suite's 768-dimension random embeddings) and on one that
embeds with our encoder (the toy bilingual one). Haystack 2.x and 3.x; an optional suite a version
does not ship is left out."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("haystack")

import haystack.testing.document_store as suites  # noqa: E402
from bilingual import BilingualEncoder  # noqa: E402
from haystack import Document  # noqa: E402
from haystack.document_stores.errors import DuplicateDocumentError  # noqa: E402

from tase_search.integrations.haystack import TaseDocumentStore  # noqa: E402

pytestmark = pytest.mark.integrations

OPTIONAL = [
    "DeleteAllTest",
    "DeleteByFilterTest",
    "UpdateByFilterTest",
    "CountDocumentsByFilterTest",
    "CountUniqueMetadataByFilterTest",
    "GetMetadataFieldsInfoTest",
    "GetMetadataFieldMinMaxTest",
    "GetMetadataFieldUniqueValuesTest",
]
_SUITES = tuple(getattr(suites, name) for name in OPTIONAL if hasattr(suites, name))


class _Suites(suites.DocumentStoreBaseTests, *_SUITES):  # type: ignore[misc]
    def test_write_documents(self, document_store: TaseDocumentStore) -> None:
        # the suite leaves the default policy to the store: FAIL on an existing id, as InMemoryDocumentStore
        doc = Document(content="test doc")
        assert document_store.write_documents([doc]) == 1
        self.assert_documents_are_equal(document_store.filter_documents(), [doc])
        with pytest.raises(DuplicateDocumentError):
            document_store.write_documents([doc])


class TestHaystackSuitesOwnEmbeddings(_Suites):
    """No model: the index holds the embeddings the documents bring."""

    @pytest.fixture
    def document_store(self, tmp_path: Path) -> TaseDocumentStore:
        return TaseDocumentStore(tmp_path / "suite", embedder="haystack-suite-random", embedding_dim=768)


class TestHaystackSuitesTaseModel(_Suites):
    """The index embeds with our encoder; embeddings documents bring are kept and returned as given."""

    @pytest.fixture
    def document_store(self, tmp_path: Path) -> TaseDocumentStore:
        return TaseDocumentStore(tmp_path / "suite", BilingualEncoder())
