"""The HTTP API's search by vector and MMR: a POST search may carry a ``vector`` instead of the query
(or with its text, for the keyword part) and an ``mmr`` re-ranking."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from bilingual import CORPUS, BilingualEncoder  # noqa: E402

from tase_search.retriever import Retriever  # noqa: E402
from tase_search.server.app import ServerThread, create_app  # noqa: E402

pytestmark = pytest.mark.integrations


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    docs = [{"id": i, "text": t, "topic": topic} for i, t, topic in CORPUS]
    r = Retriever.build(docs, model=BilingualEncoder(), path=tmp_path_factory.mktemp("srv") / "news")
    with ServerThread(create_app({"news": r})) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        yield c


def _ids(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [h["id"] for h in resp.json()["results"][0]["hits"]]


def test_search_by_vector_with_text_and_filter(client: httpx.Client) -> None:
    vec = BilingualEncoder().encode_query(["earthquake"])[0].tolist()
    assert _ids(client.post("/indexes/news/search", json={"vector": vec, "k": 1})) == ["doga-1"]
    both = {"vector": vec, "query": "Galatasaray", "mode": "hybrid", "k": 2}
    assert set(_ids(client.post("/indexes/news/search", json=both))) == {"doga-1", "spor-1"}
    only_hava = {"vector": vec, "k": 3, "filter": {"topic": "hava"}}
    assert sorted(_ids(client.post("/indexes/news/search", json=only_hava))) == ["hava-1", "hava-2"]


def test_mmr_and_bad_vectors(client: httpx.Client) -> None:
    body = {"query": "yağmur hava", "k": 3, "mmr": {"fetch_k": 8, "lambda_mult": 0.5}}
    picked = _ids(client.post("/indexes/news/search", json=body))
    assert len(set(picked)) == 3 and picked[0] in ("hava-1", "hava-2")
    wrong_dim = client.post("/indexes/news/search", json={"vector": [0.1, 0.2]})
    assert wrong_dim.status_code == 400 and "dimension 2" in wrong_dim.json()["error"]["message"]
    batch = client.post("/indexes/news/search", json={"vector": [0.1] * 256, "query": ["a", "b"]})
    assert batch.status_code == 400 and "one text per vector" in batch.json()["error"]["message"]
    assert client.post("/indexes/news/search", json={"vector": []}).status_code == 422


def test_an_index_of_outside_vectors_is_served(tmp_path) -> None:
    """An index built from another embedder's vectors: search by vector and keyword search over HTTP;
    a text query that needs the embedder gets a 4xx that says so, not a failed start-up."""
    import numpy as np

    rng = np.random.default_rng(0)
    docs = [{"id": i, "text": t, "topic": topic} for i, t, topic in CORPUS]
    vectors = rng.standard_normal((len(docs), 8)).astype(np.float32)
    r = Retriever.build_from_vectors(docs, vectors, "my-embedder", tmp_path / "ext")
    with ServerThread(create_app({"ext": Retriever.load(tmp_path / "ext")})) as srv:
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            hit = c.post("/indexes/ext/search", json={"vector": vectors[2].tolist(), "k": 1})
            assert _ids(hit) == [docs[2]["id"]]
            assert (
                c.get("/indexes/ext/search", params={"query": "futbol", "mode": "sparse"}).status_code == 200
            )
            text = c.get("/indexes/ext/search", params={"query": "futbol", "mode": "dense"})
            assert 400 <= text.status_code < 500 and "embedder" in text.text
    assert r.info()["documents"] == len(docs)
