"""LangChain's own standard tests (``langchain-tests``) on the integration, as the suite prescribes:
``VectorStoreIntegrationTests`` with the suite's own embeddings (``get_embeddings()``, a
``DeterministicFakeEmbedding``: not ours), and the Embeddings unit and integration suites on
``TaseEmbeddings`` over the toy bilingual encoder."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_tests")

from bilingual import BilingualEncoder  # noqa: E402
from langchain_tests.integration_tests import (  # noqa: E402
    EmbeddingsIntegrationTests,
    VectorStoreIntegrationTests,
)
from langchain_tests.unit_tests import EmbeddingsUnitTests  # noqa: E402

from tase_search.integrations.langchain import TaseEmbeddings, TaseVectorStore  # noqa: E402

pytestmark = pytest.mark.integrations


def _async_tests_on_asyncio(cls: type) -> type:
    """Run the suite's ``async def`` tests on pytest-asyncio, as langchain's own projects do
    (``asyncio_mode = "auto"``), without changing this repository's pytest settings: the mark is put
    on the suite's own test functions (the suite refuses overridden tests)."""
    for name, fn in inspect.getmembers(cls, inspect.iscoroutinefunction):
        if name.startswith("test_"):
            pytest.mark.asyncio(fn)
    return cls


@_async_tests_on_asyncio
class TestTaseVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self, tmp_path: Path) -> Iterator[TaseVectorStore]:  # type: ignore[override]
        store = TaseVectorStore(tmp_path / "suite", self.get_embeddings())
        try:
            yield store
        finally:
            store.delete()


@_async_tests_on_asyncio
class TestTaseEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[TaseEmbeddings]:
        return TaseEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": BilingualEncoder()}


@_async_tests_on_asyncio
class TestTaseEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[TaseEmbeddings]:
        return TaseEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model": BilingualEncoder()}
