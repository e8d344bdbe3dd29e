"""`tase-search serve` against hostile and unlucky clients: a full disk while the writer lock is taken,
other sites' pages (DNS rebinding), idle and slow sockets, duplicate ids, unknown methods, deep
metadata; and the API docs without a network, the same parameter names on GET and POST."""

from __future__ import annotations

import errno
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from bilingual import CORPUS, IDS, METADATAS, TEXTS, BilingualEncoder  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from tase_search.cli.app import main  # noqa: E402
from tase_search.errors import IndexWriteError  # noqa: E402
from tase_search.retriever import Retriever  # noqa: E402
from tase_search.server.app import HostAllowList, ServerThread, create_app  # noqa: E402
from tase_search.store.docs import MAX_METADATA_DEPTH  # noqa: E402
from tase_search.store.lock import WriterLock  # noqa: E402

pytestmark = pytest.mark.integrations


def _build(path: Path) -> Path:
    docs = [{"id": i, "text": t, **m} for i, t, m in zip(IDS, TEXTS, METADATAS)]
    Retriever.build(docs, model=BilingualEncoder(), path=path)
    return path


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return _build(tmp_path / "news")


def _client(index_dir: Path, **app_kwargs: Any) -> Iterator[httpx.Client]:
    app = create_app({"news": Retriever.load(index_dir, model=BilingualEncoder())}, **app_kwargs)
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        yield client


@pytest.fixture
def server(index_dir: Path) -> Iterator[httpx.Client]:
    yield from _client(index_dir)


@pytest.fixture(scope="module")
def shared_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index for the tests that change nothing."""
    return _build(tmp_path_factory.mktemp("serve-hardening") / "news")


@pytest.fixture(scope="module")
def shared(shared_index: Path) -> Iterator[httpx.Client]:
    """One server for the requests that must change nothing."""
    yield from _client(shared_index)


def _count(client: httpx.Client) -> int:
    return client.get("/indexes/news").json()["documents"]


# ============================================================================ F8: a full disk at the lock
def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _lock_write_fails(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Writes to any ``.lock`` file fail with ENOSPC (the disk has 0 bytes free) until the returned
    function is called; every other write goes through."""
    real = os.write
    full = [True]

    def write(fd: int, data: Any) -> int:
        if full[0] and os.readlink(f"/proc/self/fd/{fd}").endswith("/.lock"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    return lambda: full.__setitem__(0, False)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open descriptors in /proc")
def test_a_full_disk_at_the_lock_says_so_and_leaves_it_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    space_back = _lock_write_fails(monkeypatch)
    before = _open_fds()
    with pytest.raises(IndexWriteError, match="no space left on the device; free some space") as e:
        WriterLock(tmp_path).acquire()
    assert "writer lock" in str(e.value) and "unchanged" in str(e.value)
    assert _open_fds() == before  # the descriptor (and with it the flock) is not kept
    space_back()
    with WriterLock(tmp_path):  # free at once: nothing holds it
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())


def test_http_write_on_a_full_disk_is_507_and_the_next_one_works(
    server: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = {"documents": [{"id": "yeni-1", "text": "Yeni bir haber geldi."}]}
    space_back = _lock_write_fails(monkeypatch)
    full = server.post("/indexes/news/documents", json=doc)
    assert full.status_code == 507, full.text
    error = full.json()["error"]
    assert error["type"] == "IndexWriteError" and "free some space" in error["message"]
    assert server.post("/indexes/news/delete", json={"ids": ["spor-1"]}).status_code == 507
    space_back()
    assert server.post("/indexes/news/documents", json=doc).status_code == 200  # not "locked"
    assert server.post("/indexes/news/delete", json={"ids": ["spor-1"]}).json()["deleted"] == ["spor-1"]
    assert _count(server) == len(CORPUS)


# ============================================================================ F9: the Host allow-list
@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:8765", "localhost.attacker.example", "127.0.0.1.nip.io"]
)
def test_another_sites_host_is_refused_reads_and_writes(server: httpx.Client, host: str) -> None:
    """A page on attacker.example whose name is made to resolve to 127.0.0.1 sends its own name."""
    for method, url, kwargs in [
        ("GET", "/health", {}),
        ("GET", "/indexes/news/search", {"params": {"q": "futbol"}}),
        ("POST", "/indexes/news/delete", {"json": {"ids": ["spor-1"]}}),
        ("DELETE", "/indexes/news/documents/spor-2", {}),
        ("GET", "/docs", {}),
    ]:
        resp = server.request(method, url, headers={"Host": host}, **kwargs)
        assert resp.status_code == 421, (method, url, resp.text)
        error = resp.json()["error"]
        assert error["type"] == "MisdirectedRequest" and "--allow-host" in error["message"]
    assert _count(server) == len(CORPUS)


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:8765", "LOCALHOST.", "127.0.0.1:1", "[::1]:8765", "10.1.2.3", "[fd00::5]"],
)
def test_loopback_names_and_addresses_are_answered(shared: httpx.Client, host: str) -> None:
    assert shared.get("/health", headers={"Host": host}).status_code == 200


def test_allowed_names_are_configurable(index_dir: Path) -> None:
    for client in _client(index_dir, allow_hosts=["Search.Example.org:443"]):
        assert client.get("/health", headers={"Host": "search.example.org:8765"}).status_code == 200
        assert client.get("/health", headers={"Host": "attacker.example"}).status_code == 421
    for client in _client(index_dir, allow_hosts=["*"]):
        assert client.get("/health", headers={"Host": "anything.example"}).status_code == 200


def test_a_server_answers_its_own_host_name_but_a_wildcard_names_none() -> None:
    assert HostAllowList.for_server("search.lan").allows("search.lan:8765")
    wildcard = HostAllowList.for_server("0.0.0.0")
    assert not wildcard.allows("search.lan") and wildcard.allows("192.168.1.20:8765")
    assert HostAllowList.for_server("::", ["search.lan"]).allows("search.lan")


def test_a_bad_allow_host_is_refused_before_loading_anything() -> None:
    res = CliRunner().invoke(main, ["serve", "--index", "/nonexistent", "--allow-host", "a b/c"])
    assert res.exit_code == 1 and "--allow-host 'a b/c' is not a host name" in res.output


# ============================================================================ F11: idle and slow sockets
def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def test_hundreds_of_idle_connections_do_not_starve_requests(index_dir: Path) -> None:
    app = create_app({"news": Retriever.load(index_dir, model=BilingualEncoder())})
    with ServerThread(app) as srv:
        idle = [_connect(srv.url) for _ in range(300)]
        try:
            t0 = time.monotonic()
            with httpx.Client(base_url=srv.url, timeout=10) as client:
                assert client.get("/indexes/news/search", params={"q": "futbol"}).status_code == 200
                assert client.get("/health").status_code == 200
            assert time.monotonic() - t0 < 5
        finally:
            for s in idle:
                s.close()


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


@pytest.mark.parametrize(
    "sent", [b"", b"GET /health HTTP/1.1\r\nHost: localhost\r\n"], ids=["nothing", "half a head"]
)
def test_a_connection_that_sends_no_complete_request_head_is_closed(shared_index: Path, sent: bytes) -> None:
    app = create_app({"news": Retriever.load(shared_index, model=BilingualEncoder())})
    with ServerThread(app, header_timeout=0.3) as srv:
        with _connect(srv.url) as sock:
            sock.sendall(sent)
            assert _closed_by_server(sock, within=5)
        with httpx.Client(base_url=srv.url) as client:  # kept alive across requests within the deadline
            for _ in range(3):
                assert client.get("/health").status_code == 200
                time.sleep(0.1)


def test_a_slow_body_after_a_complete_head_is_not_cut(shared_index: Path) -> None:
    """The deadline is for the head only: a request whose body comes later is answered."""
    app = create_app({"news": Retriever.load(shared_index, model=BilingualEncoder())})
    body = b'{"query": "futbol", "k": 1}'
    head = (
        b"POST /indexes/news/search HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    )
    with ServerThread(app, header_timeout=0.3) as srv, _connect(srv.url) as sock:
        sock.sendall(head)
        time.sleep(0.8)
        sock.sendall(body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200") and b"spor-1" in reply


def test_requests_over_the_in_flight_limit_get_503_at_once(index_dir: Path) -> None:
    for client in _client(index_dir, max_in_flight=0):
        resp = client.get("/health")
        assert resp.status_code == 503 and resp.headers["retry-after"] == "1"
        assert resp.json()["error"]["type"] == "Busy"


# ============================================================================ duplicates, methods
def test_a_taken_id_is_a_409_conflict_worded_for_http(server: httpx.Client) -> None:
    taken = {"documents": [{"text": "ok"}, {"id": "spor-1", "text": "Başka bir metin."}]}
    resp = server.post("/indexes/news/documents", json=taken)
    assert resp.status_code == 409, resp.text
    error = resp.json()["error"]
    assert error["type"] == "DuplicateId"
    assert "--on-duplicate" not in error["message"] and "<http>" not in error["message"]
    assert '"on_duplicate": "skip" or "replace"' in error["message"]
    assert "document 2 of the request" in error["message"]
    assert _count(server) == len(CORPUS)
    skipped = server.post("/indexes/news/documents", json={**taken, "on_duplicate": "skip"}).json()
    assert (skipped["added"], skipped["skipped_duplicate"]) == (1, 1)


@pytest.mark.parametrize(
    ("method", "url", "allow"),
    [
        ("PUT", "/indexes/news/search", "GET, POST"),
        ("PATCH", "/indexes/news/documents/spor-1", "DELETE, GET"),
        ("GET", "/indexes/news/documents", "POST"),
        ("DELETE", "/health", "GET"),
    ],
)
def test_405_allow_lists_every_method_of_the_path(
    shared: httpx.Client, method: str, url: str, allow: str
) -> None:
    resp = shared.request(method, url)
    assert resp.status_code == 405 and resp.headers["allow"] == allow
    assert f"allowed: {allow}" in resp.json()["error"]["message"]


# ============================================================================ F10: deep metadata
def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_metadata_over_the_depth_limit_is_refused_and_search_still_works(server: httpx.Client) -> None:
    deep = {"documents": [{"id": "derin", "text": "Futbol maçı derin.", "metadata": _nested(100)}]}
    resp = server.post("/indexes/news/documents", json=deep)
    assert resp.status_code == 422, resp.text
    assert f"over the limit of {MAX_METADATA_DEPTH}" in resp.json()["error"]["message"]
    assert _count(server) == len(CORPUS)
    at_limit = {
        "documents": [{"id": "sig", "text": "Futbol maçı sığ.", "metadata": _nested(MAX_METADATA_DEPTH)}]
    }
    assert server.post("/indexes/news/documents", json=at_limit).status_code == 200
    hits = server.get("/indexes/news/search", params={"q": "futbol maçı", "k": 10})
    assert hits.status_code == 200, hits.text
    assert "sig" in {h["id"] for h in hits.json()["results"][0]["hits"]}


def test_a_body_nested_beyond_the_parser_is_a_4xx(shared: httpx.Client) -> None:
    deep = b'{"documents": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    resp = shared.post("/indexes/news/documents", content=deep, headers={"content-type": "application/json"})
    assert 400 <= resp.status_code < 500 and "Traceback" not in resp.text
    assert _count(shared) == len(CORPUS)


# ============================================================================ the same names on GET and POST
def test_get_and_post_take_query_and_q(shared: httpx.Client) -> None:
    def top(resp: httpx.Response) -> list[str]:
        assert resp.status_code == 200, resp.text
        return [r["hits"][0]["id"] for r in resp.json()["results"]]

    url = "/indexes/news/search"
    assert top(shared.get(url, params={"query": "football", "k": 1})) == ["spor-1"]
    assert top(shared.get(url, params={"q": "football", "k": 1})) == ["spor-1"]
    assert top(shared.post(url, json={"query": "football", "k": 1})) == ["spor-1"]
    assert top(shared.post(url, json={"q": "football", "k": 1})) == ["spor-1"]
    batch = shared.get(url, params=[("query", "football"), ("query", "inflation"), ("k", "1")])
    assert top(batch) == ["spor-1", "ekonomi-2"]
    assert top(shared.post(url, json={"q": ["football", "inflation"], "k": 1})) == ["spor-1", "ekonomi-2"]


# ============================================================================ /docs without a network
_URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_everything_from_the_server(shared: httpx.Client, page: str) -> None:
    pytest.importorskip("fastapi_offline")
    html = shared.get(page)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    urls = [a or b for a, b in _URL.findall(html.text)]
    assert any(u.endswith(".js") for u in urls), urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url  # nothing from another site
        assert shared.get(url).status_code == 200, url
    assert "http://" not in html.text and "https://" not in html.text


def test_api_docs_without_fastapi_offline_say_what_to_install(
    index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "fastapi_offline", None)  # import fails
    for client in _client(index_dir):
        page = client.get("/docs")
        assert page.status_code == 200 and "pip install" in page.text and "https://" not in page.text
        assert client.get("/openapi.json").status_code == 200
