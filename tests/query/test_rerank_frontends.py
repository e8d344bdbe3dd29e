"""``--rerank`` / ``rerank=`` through the CLI and the HTTP API: the same hits as the Retriever's reranked
search, bad counts refused with the valid range."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tase_search.cli.app import main
from tase_search.retriever import Retriever
from tase_search.testing import FakeEncoder
from tase_search.testing.tiny_models import build_tiny_reranker

DOCS = [
    {"id": "a", "text": "Yarın Ankara'da yağmur yağacak.", "topic": "hava"},
    {"id": "b", "text": "Galatasaray maçı yarın İstanbul'da.", "topic": "spor"},
    {"id": "c", "text": "Yarın hava güneşli olacak, yağmur yok.", "topic": "hava"},
    {"id": "d", "text": "Kedi ve köpek yarın okulda.", "topic": "ev"},
]


@pytest.fixture(scope="module")
def reranker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_reranker(tmp_path_factory.mktemp("rr") / "model")


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    Retriever.build(DOCS, model=FakeEncoder(), path=tmp_path / "ix")
    return tmp_path / "ix"


def _expected(index_dir: Path, reranker_dir: Path, query: str, k: int, n: int) -> list[tuple[str, float]]:
    r = Retriever.load(index_dir, model=FakeEncoder(), reranker=str(reranker_dir))
    return [(h.id, round(h.score, 6)) for h in r.search(query, k=k, mode="sparse", rerank=n)]


def test_cli_rerank_gives_the_retrievers_reranked_hits(index_dir: Path, reranker_dir: Path) -> None:
    args = ["query", "yarın yağmur", "--index", str(index_dir), "--mode", "sparse", "-k", "2", "--json"]
    res = CliRunner().invoke(main, [*args, "--rerank", "4", "--reranker", str(reranker_dir)])
    assert res.exit_code == 0, res.output
    hits = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(h["id"], h["score"]) for h in hits] == _expected(index_dir, reranker_dir, "yarın yağmur", 2, 4)
    assert all(0 < h["rerank_score"] < 1 and h["score_kind"] == "probability" for h in hits)
    plain = CliRunner().invoke(main, args)
    assert all(json.loads(line)["rerank_score"] is None for line in plain.stdout.splitlines())
    # the setting turns it on, the flag wins over it
    env = {"TASE_SEARCH_RERANK": "4", "TASE_SEARCH_RERANKER": str(reranker_dir)}
    on = CliRunner(env=env).invoke(main, args)
    assert [json.loads(line)["rerank_score"] is not None for line in on.stdout.splitlines()] == [True, True]
    off = CliRunner(env=env).invoke(main, [*args, "--rerank", "0"])
    assert all(json.loads(line)["rerank_score"] is None for line in off.stdout.splitlines())


@pytest.mark.parametrize("bad", ["-1", "1001", "x"])
def test_cli_rerank_count_is_checked(index_dir: Path, bad: str) -> None:
    res = CliRunner().invoke(main, ["query", "yağmur", "--index", str(index_dir), "--rerank", bad])
    assert res.exit_code == 2 and "--rerank" in res.output and bad in res.output


def test_cli_missing_reranker_names_it(index_dir: Path, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-reranker")
    res = CliRunner().invoke(
        main,
        [
            "query",
            "yağmur",
            "--index",
            str(index_dir),
            "--mode",
            "sparse",
            "--rerank",
            "3",
            "--reranker",
            missing,
        ],
    )
    assert res.exit_code != 0 and "no-such-reranker" in res.output and "Traceback" not in res.output


def test_the_bundled_reranker_is_the_default(index_dir: Path) -> None:
    args = ["query", "yarın yağmur yağacak mı?", "--index", str(index_dir), "--mode", "sparse", "--json"]
    res = CliRunner().invoke(main, [*args, "--rerank", "3"])
    assert res.exit_code == 0, res.output
    hits = [json.loads(line) for line in res.stdout.splitlines()]
    assert hits and all(h["rerank_score"] is not None for h in hits)


def test_http_rerank(index_dir: Path, reranker_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    from tase_search.server.app import ServerThread, create_app

    monkeypatch.setenv("TASE_SEARCH_RERANKER", str(reranker_dir))
    app = create_app({"ix": Retriever.load(index_dir, model=FakeEncoder())})
    want = _expected(index_dir, reranker_dir, "yarın yağmur", 2, 4)
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        body = {"query": "yarın yağmur", "k": 2, "mode": "sparse", "rerank": 4}
        got = client.post("/indexes/ix/search", json=body).json()["results"][0]["hits"]
        assert [(h["id"], h["score"]) for h in got] == want and 0 < got[0]["rerank_score"] < 1
        params = {"query": "yarın yağmur", "k": 2, "mode": "sparse", "rerank": 4}
        got = client.get("/indexes/ix/search", params=params).json()["results"][0]["hits"]
        assert [(h["id"], h["score"]) for h in got] == want
        for bad in (-1, 1001, "x", 2.5):
            res = client.post("/indexes/ix/search", json={**body, "rerank": bad})
            assert res.status_code == 422 and "rerank" in res.text
        plain = client.post("/indexes/ix/search", json={**body, "rerank": 0}).json()["results"][0]["hits"]
        assert all(h["rerank_score"] is None for h in plain)
