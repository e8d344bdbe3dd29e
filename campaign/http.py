"""The HTTP API against other sites' pages, idle and slow sockets, a full disk and hostile bodies.

A real server (uvicorn on a loopback port, :class:`tase_search.server.ServerThread`) over an index of
the fake encoder. A case *holds* when the server answers as documented (421 for another site's
``Host``, 422/409/507/405 with the right body or header, a request answered while hundreds of sockets
sit idle, a half-sent request head closed) and the index is byte-identical after every refused write.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from campaign.common import fake_encoder, make_docs
from campaign.hostile import index_bytes


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def _nested(depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cur = out
    for _ in range(depth - 1):
        cur["a"] = {}
        cur = cur["a"]
    return out


class _LockDiskFull:
    """Writes to any ``.lock`` file fail with ENOSPC (0 bytes free) while active."""

    def __init__(self) -> None:
        self.real = os.write

    def __enter__(self) -> _LockDiskFull:
        real = self.real

        def write(fd: int, data: Any) -> int:
            if os.readlink(f"/proc/self/fd/{fd}").endswith("/.lock"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(fd, data)

        os.write = write  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        os.write = self.real  # type: ignore[assignment]


def run_http(work: Path, *, idle: int = 300, fuzz: int = 200, seed: int = 0) -> dict[str, Any]:
    """Every HTTP case once (``fuzz`` random bodies): the figures for the campaign's summary."""
    import httpx

    from tase_search.retriever import Retriever
    from tase_search.server.app import ServerThread, create_app
    from tase_search.store.verify import verify_index

    work = Path(work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ix = work / "news"
    enc = fake_encoder()
    Retriever.build(make_docs(40, prefix="h"), model=enc, path=ix).close()
    results: dict[str, str] = {}
    failed: list[dict[str, str]] = []

    def case(name: str, check: Callable[[], str | None]) -> None:
        try:
            problem = check()
        except Exception as exc:  # noqa: BLE001 - a case that raises did not hold
            problem = f"{type(exc).__name__}: {str(exc)[:200]}"
        results[name] = "held" if problem is None else f"failed: {problem}"
        if problem is not None:
            failed.append({"case": name, "problem": problem})

    app = create_app({"news": Retriever.load(ix, model=enc)})
    with ServerThread(app, header_timeout=1.0) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:

        def other_site() -> str | None:
            before = index_bytes(ix)
            for host in ("attacker.example", "attacker.example:80", "localhost.attacker.example"):
                h = {"Host": host}
                got = [
                    c.get("/indexes/news/search", params={"query": "h1"}, headers=h).status_code,
                    c.post("/indexes/news/documents", json={"documents": ["x"]}, headers=h).status_code,
                    c.post("/indexes/news/delete", json={"ids": ["h1"]}, headers=h).status_code,
                ]
                if got != [421, 421, 421]:
                    return f"Host {host}: {got}"
            return None if index_bytes(ix) == before else "the index changed"

        def idle_sockets() -> str | None:
            socks = [_connect(srv.url) for _ in range(idle)]
            try:
                t0 = time.monotonic()
                status = c.get("/indexes/news/search", params={"query": "h1"}).status_code
                took = time.monotonic() - t0
            finally:
                for s in socks:
                    s.close()
            return None if status == 200 and took < 5 else f"status {status} after {took:.1f} s"

        def half_head() -> str | None:
            s = _connect(srv.url)
            try:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
                s.settimeout(5)
                t0 = time.monotonic()
                while s.recv(4096):
                    pass
                took = time.monotonic() - t0
            except TimeoutError:
                return "a half-sent request head was kept open for 5 s"
            finally:
                s.close()
            return None if took < 5 else f"closed after {took:.1f} s"

        def deep_metadata() -> str | None:
            before = index_bytes(ix)
            r = c.post("/indexes/news/documents", json={"documents": [{"text": "derin", **_nested(100)}]})
            if r.status_code != 422:
                return f"status {r.status_code}"
            ok = c.get("/indexes/news/search", params={"query": "h1"}).status_code == 200
            same = index_bytes(ix) == before
            return None if ok and same and verify_index(ix).ok else "search or index changed"

        def duplicate_id() -> str | None:
            r = c.post(
                "/indexes/news/documents", json={"documents": [{"id": "h1", "text": "başka bir metin"}]}
            )
            return None if r.status_code == 409 and "on_duplicate" in r.text else f"status {r.status_code}"

        def full_disk() -> str | None:
            if not Path("/proc/self/fd").is_dir():
                return None
            before = index_bytes(ix)
            with _LockDiskFull():
                r = c.post("/indexes/news/documents", json={"documents": [{"id": "n1", "text": "yeni"}]})
            if r.status_code != 507 or index_bytes(ix) != before:
                return f"status {r.status_code} on a full disk"
            again = c.post("/indexes/news/documents", json={"documents": [{"id": "n1", "text": "yeni"}]})
            return None if again.status_code == 200 else f"the next write: status {again.status_code}"

        def allow_header() -> str | None:
            r = c.put("/indexes/news/search")
            allow = {m.strip() for m in r.headers.get("allow", "").split(",")}
            return None if r.status_code == 405 and {"GET", "POST"} <= allow else f"{r.status_code} {allow}"

        def fuzz_bodies() -> str | None:
            rng = random.Random(seed)
            atoms: list[Any] = [None, True, 0, -1, 10**30, 1.5e308, "", "ş" * 1000, [], {}, "\x00", "$or"]
            keys = ["query", "q", "k", "filter", "mode", "documents", "ids", "text", "id", "on_duplicate"]
            paths = ["/indexes/news/search", "/indexes/news/documents", "/indexes/news/delete"]
            for _ in range(fuzz):
                body = {rng.choice(keys): rng.choice(atoms) for _ in range(rng.randint(0, 4))}
                r = c.post(
                    rng.choice(paths), content=json.dumps(body), headers={"content-type": "application/json"}
                )
                if r.status_code >= 500:
                    return f"{r.status_code} for {json.dumps(body)[:200]}"
            return None if verify_index(ix).ok else "the index no longer verifies"

        case("another site's Host (DNS rebinding): search, add, delete", other_site)
        case(f"{idle} idle sockets, then a request", idle_sockets)
        case("a half-sent request head", half_head)
        case("metadata 100 levels deep", deep_metadata)
        case("an id already taken, other content", duplicate_id)
        case("0 bytes free at the writer lock, then space back", full_disk)
        case("a method the path does not have", allow_header)
        case(f"{fuzz} random JSON bodies", fuzz_bodies)
    held = sum(v == "held" for v in results.values())
    return {"tried": len(results), "held": held, "cases": results, "failed": failed}
