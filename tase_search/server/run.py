"""Running the HTTP API: the listening socket, the exposure check, uvicorn, and a server on a thread.

Apart from :mod:`tase_search.server` (the app) so that what the API answers and how it is put on
the network read separately; nothing here knows the routes.

Idle connections cannot starve requests: a connection must send a complete request head (request
line and headers) within :data:`HEADER_TIMEOUT_S` of opening or of its previous response, and is
closed after :data:`KEEP_ALIVE_S` idle after a response. Open connections are not limited as such
(the app limits requests in progress, :data:`~tase_search.server.MAX_IN_FLIGHT`), so a crowd of
silent sockets neither refuses requests nor stays for long.
"""

import asyncio
import contextlib
import ipaddress
import re
import resource
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import InputError
from ..integrations import require

require("fastapi", "serve")
require("uvicorn", "serve")

import h11  # noqa: E402  (uvicorn's own HTTP/1.1 parser, always installed with it)
import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from uvicorn.protocols.http.h11_impl import H11Protocol  # noqa: E402

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
API_KEY_ENV = "TASE_SEARCH_API_KEY"
#: Seconds a connection may take to send a complete request head, from opening or its last response.
HEADER_TIMEOUT_S = 10.0
#: Seconds an idle kept-alive connection stays open after a response.
KEEP_ALIVE_S = 5
#: Pending connections the kernel queues before uvicorn accepts them (capped by ``net.core.somaxconn``).
BACKLOG = 1024
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


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


#: Host names every server answers to, with any port: loopback, which a DNS name cannot rebind to.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
_NAME = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9_]([a-z0-9_.-]{0,251}[a-z0-9_])?)$")


class HostAllowList:
    """Which ``Host`` headers a server answers: against DNS rebinding, where a web page's own name is
    made to resolve to this server so the browser sends it requests, with that name as ``Host``.

    Allowed: the loopback names, any IP address (a rebinding always has a name, so an address means
    the client asked for this machine by address), and ``names``; ``"*"`` among them allows any
    ``Host``. A name may be given with a port, which is ignored: every port is allowed."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.any = False
        self.names = set(LOOPBACK_NAMES)
        for raw in names:
            if raw.strip() == "*":
                self.any = True
                continue
            name = self._name(raw.strip())
            if name is None:
                raise InputError(
                    f"--allow-host {raw!r} is not a host name or address (e.g. search.example.org, "
                    "10.0.0.5, [fd00::5], or * for any)"
                )
            self.names.add(name)

    @staticmethod
    def _name(host: str) -> str | None:
        """``host`` (a Host header or a name the user gave) without its port, lower-cased, brackets
        around an IPv6 address; None if it is not a host name or address."""
        host = host.strip().lower()
        if not host.startswith("[") and host.count(":") > 1:  # a bare IPv6 address, as a user writes it
            host = f"[{host}]"
        end = host.find("]") + 1 if host.startswith("[") else len(host.split(":", 1)[0])
        name, port = host[:end], host[end:]
        if port and not (port.startswith(":") and port[1:].isdigit() and len(port) <= 6):
            return None
        name = name if name.startswith("[") else name.rstrip(".")  # "localhost." is "localhost"
        return name if _NAME.match(name) else None

    def allows(self, host: str | None) -> bool:
        if self.any:
            return True
        name = self._name(host) if host else None
        if name is None:
            return False
        return name in self.names or _is_address(name)

    def describe(self) -> str:
        if self.any:
            return "any host"
        extra = sorted(self.names - set(LOOPBACK_NAMES))
        return ", ".join([*LOOPBACK_NAMES, "any IP address", *extra])

    @classmethod
    def for_server(cls, host: str, allow: Iterable[str] = ()) -> "HostAllowList":
        """The list for a server listening on ``host``: its name is allowed too, unless it is a
        wildcard address (every interface), which names nothing; ``allow`` adds names."""
        names = list(allow)
        if host.strip().lower() not in WILDCARD_HOSTS:
            names.append(host)
        return cls(names)


def _is_address(name: str) -> bool:
    try:
        if name.startswith("["):
            ipaddress.IPv6Address(name[1:-1].split("%", 1)[0])
        else:
            ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (``port`` 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP; without
    # it a kept-alive connection waits ~40 ms per response (Nagle against the client's delayed ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise InputError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --host/--port"
        ) from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _HeadDeadline(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request head.

    uvicorn arms its keep-alive timer only after a response, so a connection that never sends a
    byte, or sends half a header line, would stay open for ever; here such a connection is closed
    ``header_timeout`` seconds after it opened or after its last response."""

    header_timeout: float = HEADER_TIMEOUT_S

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)  # type: ignore[arg-type]
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # a request head arrived (or the connection ended)
            self._cancel_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._await_head()

    def _await_head(self) -> None:
        self._cancel_head()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _cancel_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def _server(app: FastAPI, log_level: str, *, header_timeout: float = HEADER_TIMEOUT_S) -> uvicorn.Server:
    protocol = type("HeadDeadline", (_HeadDeadline,), {"header_timeout": header_timeout})
    config = uvicorn.Config(
        app,
        http=protocol,
        log_level=log_level,
        access_log=log_level == "debug",
        timeout_keep_alive=KEEP_ALIVE_S,
        # No limit_concurrency: uvicorn counts idle connections in it, so a few hundred silent sockets
        # turned every request away; the app limits requests in progress instead.
        limit_concurrency=None,
        server_header=False,
    )
    return uvicorn.Server(config)


def raise_open_files_limit(want: int = 65536) -> None:
    """Let the process hold many connections (each is a file descriptor) before accepting fails: the
    soft limit up to ``want``, within the hard limit the system allows."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class ServerThread:
    """An app served by uvicorn on a background thread, e.g. for tests and load checks.

    The socket is bound and listening before :meth:`start` returns, so requests can be sent at once
    (the kernel queues them until uvicorn accepts).
    """

    def __init__(
        self,
        app: FastAPI,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        log_level: str = "warning",
        header_timeout: float = HEADER_TIMEOUT_S,
    ) -> None:
        self.app = app
        self._sock = bind(host, port)
        self.url = url_of(self._sock)
        self._server = _server(app, log_level, header_timeout=header_timeout)
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
