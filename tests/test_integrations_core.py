"""What the integrations need from the core, without any toolkit installed: the missing-extra error,
the search ``mode`` hand-off, filters, and the index-as-store adapter."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from bilingual import CORPUS, BilingualEncoder

from tase_search.errors import InputError
from tase_search.integrations import ExtraNotInstalled, load_encoder, require
from tase_search.integrations._store import IndexStore, make_document
from tase_search.retriever import Retriever
from tase_search.search_options import as_native_filter, check_mode, run_search

MODULES = [
    ("tase_search.integrations.langchain", "langchain_core", "langchain"),
    ("tase_search.integrations.llamaindex", "llama_index.core", "llamaindex"),
    ("tase_search.integrations.haystack", "haystack", "haystack"),
    ("tase_search.integrations.txtai", "txtai", "txtai"),
    ("tase_search.integrations.llm_plugin", "llm", "llm"),
    ("tase_search.server", "fastapi", "serve"),
]


@pytest.mark.parametrize(("module", "toolkit", "extra"), MODULES)
def test_a_missing_toolkit_names_the_extra(
    module: str, toolkit: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, toolkit, None)  # what an uninstalled package looks like to import
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(ExtraNotInstalled, match=rf"pip install 'tase-search\[{extra}\]'"):
        importlib.import_module(module)


def test_require_and_load_encoder() -> None:
    assert require("json", "x").dumps([]) == "[]"
    with pytest.raises(ImportError):  # ExtraNotInstalled is an ImportError too
        require("no_such_module_for_tase", "langchain")
    enc = BilingualEncoder()
    assert load_encoder(enc) is enc
    with pytest.raises(InputError, match="no 'encode_query'"):
        load_encoder(object())


class _ModeRetriever(Retriever):
    """A Retriever that records the mode each search is given."""

    seen: list[str | None] = []

    def search(self, query, k=10, filter=None, mode=None):  # noqa: A002, ANN001, ANN201
        self.seen.append(mode)
        return super().search(query, k=k, filter=filter)


def test_mode_is_passed_on_where_the_retriever_takes_it(tmp_path: Path) -> None:
    docs = [{"id": i, "text": t, "topic": topic} for i, t, topic in CORPUS]
    plain = Retriever.build(docs, model=BilingualEncoder(), path=tmp_path / "i", sparse=False)
    assert [h.id for h in run_search(plain, "football", 1, mode="dense")] == ["spor-1"]
    with pytest.raises(InputError, match="mode 'hybrid' is not available: .* sparse build"):
        run_search(plain, "football", 1, mode="hybrid")  # an index without a keyword part
    with pytest.raises(InputError, match="mode 'fuzzy' is not one of auto, dense, sparse, hybrid"):
        check_mode("fuzzy")
    # auto on an index without a keyword part searches by meaning, as Retriever.search does
    assert [h.id for h in run_search(plain, "football", 1, mode="auto")] == ["spor-1"]
    moded = _ModeRetriever(plain.path, plain.manifest, encoder=plain.encoder)
    run_search(moded, "football", 1, mode="hybrid")
    run_search(moded, "football", 1, mode="auto")
    run_search(moded, "football", 1)
    assert _ModeRetriever.seen == ["hybrid", "auto", None]  # no mode given: none passed, the index's default


def test_native_filters() -> None:
    assert as_native_filter(None) is None and as_native_filter({}) is None
    assert as_native_filter({"topic": "spor", "year": 2020, "ok": True}) == {
        "topic": "spor",
        "year": "2020",
        "ok": "1",
    }
    with pytest.raises(InputError, match="one plain value"):
        as_native_filter({"topic": ["spor", "hava"]})
    with pytest.raises(InputError, match="give a dict"):
        as_native_filter([("topic", "spor")])  # type: ignore[arg-type]


def test_index_store_lists_gets_and_deletes_by_filter(tmp_path: Path) -> None:
    store = IndexStore(tmp_path / "s", BilingualEncoder())
    assert store.retriever() is None and store.count() == 0 and store.documents() == []
    docs = [
        make_document(i, t, {"topic": topic, "year": 2024}, "<test>", n)
        for n, (i, t, topic) in enumerate(CORPUS)
    ]
    store.add(docs)
    assert store.count() == len(CORPUS)
    assert [d["id"] for d in store.documents({"topic": "hava"})] == ["hava-1", "hava-2"]
    assert len(store.documents({"year": 2024})) == len(CORPUS)
    assert [d["id"] for d in store.get(["doga-1", "nope"])] == ["doga-1"]
    assert sorted(store.delete_matching({"topic": "spor"})) == ["spor-1", "spor-2"]
    assert store.count() == len(CORPUS) - 2
    # another writer (the CLI, say) adds a document: the store sees it on its next read
    Retriever.load(tmp_path / "s", model=BilingualEncoder()).add([{"id": "x", "text": "Futbol maçı."}])
    assert [h.id for h in store.search("football", 1)] == ["x"]
    with pytest.raises(InputError, match="no text"):
        make_document("e", "  ", None, "<test>", 0)
    with pytest.raises(InputError, match="needs an id"):
        store.add([docs[0].__class__(id=None, text="a", metadata={}, source="<test>", line=1)])
    with pytest.raises(InputError, match="no model given"):
        IndexStore(tmp_path / "absent")


def test_the_documented_corpus_is_the_toy_encoders_corpus() -> None:
    """The toy encoder's glossary is made for this corpus: docs and tests must not drift apart."""
    from doc_examples import corpus

    assert corpus()["CORPUS"] == CORPUS
