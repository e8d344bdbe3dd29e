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
from tase_search.query.filters import Compare, parse_filter
from tase_search.query.options import as_native_filter, check_mode, run_search
from tase_search.retriever import Retriever

MODULES = [
    ("tase_search.integrations.langchain", "langchain_core", "langchain"),
    ("tase_search.integrations.llamaindex", "llama_index.core", "llamaindex"),
    ("tase_search.integrations.haystack", "haystack", "haystack"),
    ("tase_search.integrations.txtai", "txtai", "txtai"),
    ("tase_search.integrations.llm_plugin", "llm", "llm"),
    ("tase_search.server.app", "fastapi", "serve"),
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
    # the one filter language (tase_search.query.filters), values kept with their types
    assert as_native_filter({"topic": "spor", "year": 2020, "ok": True}) == parse_filter(
        {"topic": "spor", "year": 2020, "ok": True}
    )
    assert as_native_filter({"year": {"$gte": 2020}}) == Compare("year", "$gte", 2020)
    with pytest.raises(InputError, match=r"is a list.*\$in"):
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


# ----------------------------------------------------------------------------- vectors made elsewhere
def _vectors(n: int, dim: int = 12, seed: int = 0):  # noqa: ANN202 - an array
    import numpy as np

    return np.random.default_rng(seed).normal(size=(n, dim))


def test_an_index_of_external_vectors_records_its_embedder_and_searches_hybrid(tmp_path: Path) -> None:
    import numpy as np

    from tase_search.encoding.external import ExternalEmbedder
    from tase_search.errors import IndexMismatch

    docs = [{"id": i, "text": t, "topic": topic} for i, t, topic in CORPUS]
    vecs = _vectors(len(docs))
    r = Retriever.build_from_vectors(docs, vecs, "acme:embed-v1", tmp_path / "x")
    m = r.manifest.model
    assert (m.id, m.dimension, m.normalized, m.max_seq_length) == ("external:acme:embed-v1", 12, True, 0)
    assert [h.id for h in r.search_by_vector(vecs[2], k=1)] == ["hava-1"]
    assert r.search_by_vector(vecs[2], k=1)[0].score == pytest.approx(1.0, abs=1e-5)
    rows = r.search_by_vector(vecs[[0, 6]], k=1)  # rows: one list each
    assert [[h.id for h in hits] for hits in rows] == [["spor-1"], ["doga-1"]]
    assert {h.id for h in r.search_by_vector(vecs[2], k=8, filter={"topic": "spor"})} == {"spor-1", "spor-2"}
    # the keyword part: a name found by its text, fused with the vector in hybrid
    assert [h.id for h in r.search("Galatasaray", k=1, mode="sparse")] == ["spor-1"]
    hybrid = r.search_by_vector(vecs[2], k=2, query="Galatasaray", mode="hybrid")
    assert {h.id for h in hybrid} == {"hava-1", "spor-1"}
    with pytest.raises(InputError, match="needs the query text"):
        r.search_by_vector(vecs[2], k=1, mode="hybrid")
    with pytest.raises(InputError, match="dimension 5"):
        r.search_by_vector([0.1] * 5)
    # stored vectors come back (unit length), MMR picks different documents
    stored = r.stored_vectors(["hava-1", "nope"])
    assert list(stored) == ["hava-1"]
    assert np.allclose(stored["hava-1"], vecs[2] / np.linalg.norm(vecs[2]), atol=1e-6)
    mmr = r.search_mmr(vector=vecs[2], k=3, fetch_k=8, lambda_mult=0.5)
    assert mmr[0].id == "hava-1" and len({h.id for h in mmr}) == 3 and [h.rank for h in mmr] == [1, 2, 3]
    # opened again: vectors and keywords without the embedder; text needs it; a mismatch is refused
    again = Retriever.load(tmp_path / "x")
    assert again.add_vectors([{"id": "new", "text": "Yeni belge."}], _vectors(1, seed=5)).added == 1
    with pytest.raises(InputError, match="external embedder 'acme:embed-v1'"):
        again.search("hava", mode="dense")
    with pytest.raises(IndexMismatch, match="cannot go into an index of 'external:acme:embed-v1'"):
        again.add_vectors([{"text": "x"}], _vectors(1), embedder="acme:embed-v2")
    with pytest.raises(IndexMismatch, match="not by 'external:other'"):
        Retriever.load(tmp_path / "x", model=ExternalEmbedder("other"))
    with pytest.raises(IndexMismatch, match="normalised"):
        Retriever.load(tmp_path / "x", model=ExternalEmbedder("acme:embed-v1", normalize=False))
    with pytest.raises(InputError, match="2 vectors for 1 documents"):
        again.add_vectors([{"text": "x"}], _vectors(2))
    # with the embedder's functions it searches by text like any encoder
    table = {t: v for t, v in zip([d["text"] for d in docs], vecs)}
    ext = ExternalEmbedder(
        "acme:embed-v1", embed_documents=lambda ts: [table[t] for t in ts], embed_query=table.get
    )
    live = Retriever.load(tmp_path / "x", model=ext)
    assert [h.id for h in live.search(TEXTS_[4], k=1, mode="dense")] == ["ekonomi-1"]


TEXTS_ = [t for _, t, _ in CORPUS]


def test_our_index_searches_by_vector_and_mmr(tmp_path: Path) -> None:
    enc = BilingualEncoder()
    docs = [{"id": i, "text": t, "topic": topic} for i, t, topic in CORPUS]
    r = Retriever.build(docs, model=enc, path=tmp_path / "i")
    vec = enc.encode_query(["deprem"])[0]
    assert [h.id for h in r.search_by_vector(vec, k=1)] == ["doga-1"]
    assert [h.id for h in r.search_mmr("deprem", k=2, fetch_k=4)][0] == "doga-1"
    with pytest.raises(InputError, match="lambda_mult"):
        r.search_mmr("deprem", lambda_mult=2)
    with pytest.raises(InputError, match="one of them"):
        r.search_mmr("deprem", vector=vec)


def test_mmr_select() -> None:
    import numpy as np

    from tase_search.query.mmr import mmr_select

    q = np.array([1.0, 0.0])
    cands = np.array([[1.0, 0.0], [0.99, 0.01], [0.7, 0.7], [0.0, 0.0]])
    assert mmr_select(q, cands, 2, 1.0) == [0, 1]  # relevance only
    assert mmr_select(q, cands[:3], 2, 0.3) == [0, 2]  # the near-copy gives way
    assert mmr_select(q, cands[:0], 3, 0.5) == []
    assert len(mmr_select(q, cands, 10, 0.5)) == 4
