"""`tase-search serve`: a real server on 127.0.0.1 (started and stopped in each test), its answers
against the Retriever's and the CLI's, bad requests, API keys, and writes while searches run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from bilingual import CORPUS, IDS, METADATAS, TEXTS, BilingualEncoder  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from doc_examples import run_example  # noqa: E402

from tase_search.cli.app import main  # noqa: E402
from tase_search.retriever import Retriever  # noqa: E402
from tase_search.server.app import ServerThread, create_app  # noqa: E402

pytestmark = pytest.mark.integrations
KEY = "k" * 12 + "-secret-0123"


def _build(path: Path, encoder: object) -> Retriever:
    docs = [{"id": i, "text": t, **m} for i, t, m in zip(IDS, TEXTS, METADATAS)]
    return Retriever.build(docs, model=encoder, path=path)


@pytest.fixture
def encoder() -> BilingualEncoder:
    return BilingualEncoder()


@pytest.fixture
def index_dir(tmp_path: Path, encoder: BilingualEncoder) -> Path:
    _build(tmp_path / "news", encoder)
    return tmp_path / "news"


@pytest.fixture
def server(index_dir: Path, encoder: BilingualEncoder) -> Iterator[httpx.Client]:
    app = create_app({"news": Retriever.load(index_dir, model=encoder)})
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """One server for the requests that change nothing (the bad ones)."""
    encoder = BilingualEncoder()
    path = tmp_path_factory.mktemp("serve-shared") / "news"
    app = create_app({"news": _build(path, encoder)})
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        yield client


def _hits(resp: httpx.Response, i: int = 0) -> list[tuple[str, float]]:
    assert resp.status_code == 200, resp.text
    return [(h["id"], h["score"]) for h in resp.json()["results"][i]["hits"]]


def test_search_answers_as_the_retriever(
    server: httpx.Client, index_dir: Path, encoder: BilingualEncoder
) -> None:
    r = Retriever.load(index_dir, model=encoder)
    for q in ("yarın yağmur yağacak mı", "heavy rain tomorrow", "central bank interest rate"):
        want = [(h.id, round(h.score, 6)) for h in r.search(q, k=3)]
        assert _hits(server.get("/indexes/news/search", params={"q": q, "k": 3})) == want
        assert _hits(server.post("/indexes/news/search", json={"query": q, "k": 3})) == want
    # a batch, a filter (GET: repeatable FIELD=VALUE; POST: a dict), mode 'dense'
    resp = server.post(
        "/indexes/news/search", json={"query": ["football", "inflation"], "k": 1, "mode": "dense"}
    )
    assert [_hits(resp, i)[0][0] for i in range(2)] == ["spor-1", "ekonomi-2"]
    got = server.get("/indexes/news/search", params={"q": "sunny weather", "k": 5, "filter": "topic=kultur"})
    assert [i for i, _ in _hits(got)] == ["kultur-1"]
    assert _hits(server.post("/indexes/news/search", json={"query": "x", "filter": {"topic": "yok"}})) == []
    # the same filter language everywhere: POST operators, GET where=, GET one field twice = either value
    either = {"$or": [{"topic": "kultur"}, {"id": {"$in": ["hava-2"]}}]}
    posted = server.post("/indexes/news/search", json={"query": "sunny weather", "k": 5, "filter": either})
    where = server.get(
        "/indexes/news/search", params={"q": "sunny weather", "k": 5, "where": json.dumps(either)}
    )
    pairs = server.get(
        "/indexes/news/search", params={"q": "sunny weather", "k": 5, "filter": ["topic=kultur", "id=hava-2"]}
    )
    assert sorted(i for i, _ in _hits(posted)) == sorted(i for i, _ in _hits(where)) == ["hava-2", "kultur-1"]
    assert _hits(pairs) == []  # different fields: both must hold
    twice = {"q": "sunny weather", "k": 5, "filter": ["topic=kultur", "topic=hava"]}
    assert {i.split("-")[0] for i, _ in _hits(server.get("/indexes/news/search", params=twice))} == {
        "kultur",
        "hava",
    }
    body = server.get("/indexes/news/search", params={"q": "earthquake"}).json()["results"][0]["hits"][0]
    assert body == {**r.search("earthquake", k=1)[0].to_dict(), "rank": 1}  # the CLI's --json hit


def test_info_health_documents_add_delete(server: httpx.Client) -> None:
    health = server.get("/health").json()
    assert health["status"] == "ok" and health["indexes"][0]["documents"] == len(CORPUS)
    assert server.get("/indexes/news").json()["documents"] == len(CORPUS)
    assert server.get("/indexes/news/documents/hava-2").json()["text"] == TEXTS[3]
    added = server.post(
        "/indexes/news/documents",
        json={
            "documents": [
                {"id": "spor-3", "text": "Futbol maçı berabere bitti.", "metadata": {"topic": "spor"}}
            ]
        },
    ).json()
    assert (added["added"], added["ids"], added["documents"]) == (1, ["spor-3"], len(CORPUS) + 1)
    assert server.get("/indexes/news/search", params={"q": "football", "k": 1}).json()["results"][0]["hits"][
        0
    ]["id"] in (
        "spor-1",
        "spor-3",
    )
    deleted = server.post("/indexes/news/delete", json={"ids": ["spor-3", "nope"]}).json()
    assert (deleted["deleted"], deleted["missing"], deleted["documents"]) == (
        ["spor-3"],
        ["nope"],
        len(CORPUS),
    )
    assert server.delete("/indexes/news/documents/hava-2").json()["deleted"] == ["hava-2"]
    assert server.get("/indexes/news/documents/hava-2").status_code == 404
    assert "/indexes/{name}/search" in server.get("/openapi.json").json()["paths"]
    assert server.get("/docs").status_code == 200


def test_top_k_equals_the_cli(tmp_path: Path, tiny_model_dir: Path) -> None:
    path = tmp_path / "tiny"
    _build(path, str(tiny_model_dir))
    queries = ["futbol maçı", "yarın yağmur", "football match"]
    res = CliRunner().invoke(main, ["query", *queries, "--index", str(path), "-k", "4", "--json"])
    assert res.exit_code == 0, res.output
    cli = [json.loads(line) for line in res.output.splitlines()]
    app = create_app({"tiny": Retriever.load(path)})  # the model its manifest names, as the CLI
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url) as client:
        for q in queries:
            got = client.get("/indexes/tiny/search", params={"q": q, "k": 4}).json()["results"][0]["hits"]
            want = [h for h in cli if h["query"] == q]
            assert [h["id"] for h in got] == [h["id"] for h in want]
            assert [h["score"] for h in got] == pytest.approx([h["score"] for h in want], abs=1e-4)


BAD_REQUESTS = [
    ("GET", "/indexes/news/search", {"params": {"q": "futbol", "k": 0}}, 422),
    ("GET", "/indexes/news/search", {"params": {"q": "futbol", "k": "beş"}}, 422),
    ("GET", "/indexes/news/search", {"params": {"q": "futbol", "k": 100_000}}, 422),
    ("GET", "/indexes/news/search", {"params": {}}, 422),
    ("GET", "/indexes/news/search", {"params": {"q": "futbol", "query": "maç"}}, 422),
    ("GET", "/indexes/news/search", {"params": {"q": "ç" * 2001}}, 422),
    ("GET", "/indexes/news/search", {"params": {"q": "   "}}, 400),
    ("GET", "/indexes/news/search", {"params": {"q": "\x00\x01"}}, 400),
    ("GET", "/indexes/news/search", {"params": {"q": "futbol", "filter": "topic"}}, 422),
    ("GET", "/indexes/news/search", {"params": {"q": "futbol", "filter": "$or=1"}}, 400),
    ("GET", "/indexes/news/search", {"params": {"q": "futbol", "where": '{"a": {"$regex": 1}}'}}, 400),
    ("GET", "/indexes/news/search", {"params": {"q": "futbol", "where": "{a: 1}"}}, 400),
    ("POST", "/indexes/news/search", {"json": {"query": "a", "filter": {"a": {"$gt": True}}}}, 422),
    ("GET", "/indexes/news/search", {"params": {"q": "futbol", "mode": "fuzzy"}}, 422),
    ("GET", "/indexes/nope/search", {"params": {"q": "futbol"}}, 404),
    ("GET", "/indexes/..%2F..%2Fetc/search", {"params": {"q": "futbol"}}, 404),
    (
        "POST",
        "/indexes/news/search",
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
        422,
    ),
    ("POST", "/indexes/news/search", {"json": {"query": "a", "queries": ["b"]}}, 422),
    ("POST", "/indexes/news/search", {"json": {"query": []}}, 422),
    ("POST", "/indexes/news/search", {"json": {}}, 422),
    ("POST", "/indexes/news/search", {"json": {"query": "a", "q": "b"}}, 422),
    ("POST", "/indexes/news/search", {"json": {"query": "a", "limit": 3}}, 422),
    ("POST", "/indexes/news/search", {"json": {"query": "a", "filter": {"topic": ["spor"]}}}, 422),
    ("POST", "/indexes/news/search", {"json": {"query": ["a"] * 65}}, 422),
    ("POST", "/indexes/news/search", {"json": ["futbol"]}, 422),
    ("POST", "/indexes/news/documents", {"json": {"documents": []}}, 422),
    ("POST", "/indexes/news/documents", {"json": {"documents": [{"id": "x"}]}}, 422),
    ("POST", "/indexes/news/documents", {"json": {"documents": [{"text": "a", "metadata": []}]}}, 422),
    ("POST", "/indexes/news/documents", {"json": {"documents": [{"id": "spor-1", "text": "yeni"}]}}, 409),
    (
        "POST",
        "/indexes/news/documents",
        {"json": {"documents": [{"text": "a"}], "on_duplicate": "merge"}},
        422,
    ),
    ("POST", "/indexes/news/delete", {"json": {"ids": []}}, 422),
    ("POST", "/indexes/news/delete", {"json": {"ids": [""]}}, 422),
    ("DELETE", "/indexes/news/documents/nope", {}, 404),
    ("PUT", "/indexes/news/search", {}, 405),
    ("GET", "/no/such/route", {}, 404),
    (
        "POST",
        "/indexes/news/documents",
        {"content": b"x" * (9 << 20), "headers": {"content-type": "application/json"}},
        413,
    ),
]


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"), BAD_REQUESTS, ids=[f"{m} {u} {s}" for m, u, _, s in BAD_REQUESTS]
)
def test_bad_requests_get_a_4xx_json_error(
    shared_server: httpx.Client, method: str, url: str, kwargs: dict, status: int
) -> None:
    resp = shared_server.request(method, url, **kwargs)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["status"] == status and error["message"] and "Traceback" not in resp.text
    assert shared_server.get("/indexes/news").json()["documents"] == len(CORPUS)  # and nothing changed


def test_a_chunked_body_over_the_limit_is_refused(index_dir: Path, encoder: BilingualEncoder) -> None:
    app = create_app({"news": Retriever.load(index_dir, model=encoder)}, max_body_bytes=1000)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as the body arrives
        yield b'{"documents": [{"text": "'
        yield b"a" * 2000
        yield b'"}]}'

    with ServerThread(app) as srv, httpx.Client(base_url=srv.url) as client:
        resp = client.post(
            "/indexes/news/documents", content=chunks(), headers={"content-type": "application/json"}
        )
        assert resp.status_code == 413 and resp.json()["error"]["type"] == "TooLarge"
        assert client.get("/indexes/news").json()["documents"] == len(CORPUS)


def test_writes_need_the_api_key(index_dir: Path, encoder: BilingualEncoder) -> None:
    app = create_app({"news": Retriever.load(index_dir, model=encoder)}, api_key=KEY)
    doc = {"documents": [{"id": "n1", "text": "Yeni haber."}]}
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url) as client:
        assert client.post("/indexes/news/documents", json=doc).status_code == 401
        wrong = client.post("/indexes/news/documents", json=doc, headers={"X-API-Key": KEY + "x"})
        assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        assert (
            client.post(
                "/indexes/news/documents", json=doc, headers={"Authorization": f"Bearer {KEY}"}
            ).status_code
            == 200
        )
        assert (
            client.post("/indexes/news/delete", json={"ids": ["n1"]}, headers={"X-API-Key": KEY}).status_code
            == 200
        )
        assert client.get("/indexes/news/search", params={"q": "haber"}).status_code == 200  # reads stay open
    read_only = create_app({"news": Retriever.load(index_dir, model=encoder)}, read_only=True)
    with ServerThread(read_only) as srv, httpx.Client(base_url=srv.url) as client:
        assert client.post("/indexes/news/documents", json=doc).status_code in (404, 405)
        assert client.get("/indexes/news/search", params={"q": "haber"}).status_code == 200


def test_a_write_during_reads_loses_nothing(server: httpx.Client) -> None:
    """Readers search without pause while two writers add 60 documents in 6 requests; every read
    succeeds with the same right answer, and every document is there afterwards."""
    base = str(server.base_url)
    writing = threading.Event()
    done = threading.Event()
    reads: list[tuple[int, str, int]] = []  # status, top id, generation seen
    failures: list[str] = []

    def reader() -> None:
        with httpx.Client(base_url=base, timeout=30) as c:
            while True:
                s = c.get("/indexes/news/search", params={"q": "football match", "k": 1})
                g = c.get("/indexes/news").json()["generation"]
                top = s.json()["results"][0]["hits"][0]["id"] if s.status_code == 200 else s.text
                reads.append((s.status_code, top, g))
                writing.set()  # writers start once reads are flowing
                if done.is_set():
                    return

    def writer(w: int) -> None:
        writing.wait()
        with httpx.Client(base_url=base, timeout=60) as c:
            for b in range(3):
                docs = [
                    {"id": f"w{w}-{b}-{i}", "text": f"Haber {w} {b} {i}: bugün hava serin."}
                    for i in range(10)
                ]
                resp = c.post("/indexes/news/documents", json={"documents": docs})
                if resp.status_code != 200:
                    failures.append(resp.text)

    readers = [threading.Thread(target=reader) for _ in range(3)]
    writers = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    for t in readers:
        t.join()
    assert failures == []
    assert {(s, top) for s, top, _ in reads} == {(200, "spor-1")}
    assert len({g for _, _, g in reads}) > 1  # reads really ran while generations were committed
    assert server.get("/indexes/news").json()["documents"] == len(CORPUS) + 60
    for w in range(2):
        for b in range(3):
            for i in range(10):
                assert server.get(f"/indexes/news/documents/w{w}-{b}-{i}").status_code == 200


def test_a_write_by_another_process_is_seen(
    server: httpx.Client, index_dir: Path, encoder: BilingualEncoder
) -> None:
    Retriever.load(index_dir, model=encoder).add([{"id": "cli-1", "text": "Deprem bölgesine yardım ulaştı."}])
    top = server.get("/indexes/news/search", params={"q": "earthquake", "k": 1}).json()["results"][0]["hits"][
        0
    ]
    assert top["id"] == "cli-1"


def test_serve_refuses_an_open_network_address() -> None:
    res = CliRunner().invoke(
        main, ["serve", "--host", "0.0.0.0", "--index", "/nonexistent"], env={"TASE_SEARCH_API_KEY": ""}
    )
    assert res.exit_code == 1 and "--api-key" in res.output and "--read-only" in res.output


@pytest.mark.slow  # starts the real server process with a model
def test_serve_command_runs_and_stops(tmp_path: Path, tiny_model_dir: Path) -> None:
    path = tmp_path / "tiny"
    _build(path, str(tiny_model_dir))
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("tase-search")),
            "serve",
            "--index",
            f"haber={path}",
            "--port",
            "0",
            "--log-level",
            "info",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TASE_SEARCH_API_KEY": ""},
    )
    try:
        assert proc.stderr is not None
        line = ""
        for line in proc.stderr:  # model loading may log first; the URL line says it is listening
            if line.startswith("serving "):
                break
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        health = httpx.get(f"{url}/health", timeout=30).json()
        assert health["indexes"][0]["name"] == "haber" and health["indexes"][0]["documents"] == len(CORPUS)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    # a clean shutdown (uvicorn then re-raises SIGTERM, so the exit status may say so)
    assert code in (0, -signal.SIGTERM) and "Finished server process" in proc.stderr.read()


def test_doc_example(server: httpx.Client) -> None:
    run_example("serve", base_url=str(server.base_url))


def test_listening_socket_says_tcp_so_responses_are_not_delayed() -> None:
    """asyncio turns on TCP_NODELAY only for sockets whose proto is TCP; a socket made with proto 0
    left every kept-alive response waiting ~40 ms for the client's delayed ACK (measured: /health
    p50 48 ms -> 1.9 ms once fixed)."""
    import socket

    from tase_search.server.app import bind

    with bind("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP
