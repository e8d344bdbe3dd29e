"""Running the HTTP API: the listening socket, the exposure check, uvicorn, and a server on a thread.

Apart from :mod:`tase_search.server` (the app) so that what the API answers and how it is put on
the network read separately; nothing here knows the routes.
"""

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterator
from typing import Any

from .errors import InputError
from .integrations import require

require("fastapi", "serve")
require("uvicorn", "serve")

import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
API_KEY_ENV = "TASE_SEARCH_API_KEY"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, api_key: str | None, read_only: bool) -> None:
    """Refuse to let anyone on the network write: a non-loopback host needs an API key or read-only."""
    if not is_loopback(host) and api_key is None and not read_only:
        raise InputError(
            f"--host {host} is reachable from the network and writes would be open to anyone: set an API key "
            f"(--api-key or {API_KEY_ENV}) or serve --read-only"
        )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (``port`` 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP; without
    # it a kept-alive connection waits ~40 ms per response (Nagle against the client's delayed ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise InputError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --host/--port"
        ) from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app: FastAPI, log_level: str) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=log_level == "debug",
        timeout_keep_alive=5,
        limit_concurrency=256,  # beyond this many open requests: 503, not an unbounded queue
        server_header=False,
    )
    return uvicorn.Server(config)


class ServerThread:
    """An app served by uvicorn on a background thread, e.g. for tests and load checks.

    The socket is bound and listening before :meth:`start` returns, so requests can be sent at once
    (the kernel queues them until uvicorn accepts).
    """

    def __init__(
        self, app: FastAPI, *, host: str = DEFAULT_HOST, port: int = 0, log_level: str = "warning"
    ) -> None:
        self.app = app
        self._sock = bind(host, port)
        self.url = url_of(self._sock)
        self._server = _server(app, log_level)
        self._thread = threading.Thread(target=self._run, name="tase-search-server", daemon=True)

    def _run(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self) -> "ServerThread":
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def serving(app: FastAPI, **kwargs: Any) -> Iterator[str]:
    """``with serving(app) as url:`` — the app on a free loopback port for the duration of the block."""
    with ServerThread(app, **kwargs) as server:
        yield server.url
