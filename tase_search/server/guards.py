"""The HTTP API's error bodies (one JSON shape, the status of each error type) and the guards every
request passes: the Host allow-list, the in-flight cap, the body size limit."""

import logging
import re
from typing import Any

from ..errors import (
    IndexCorrupt,
    IndexLocked,
    IndexMismatch,
    IndexNotFound,
    IndexWriteError,
    InputError,
    ModelError,
    TaseSearchError,
)
from ..integrations import require

require("fastapi", "serve")
require("uvicorn", "serve")

from fastapi import FastAPI, HTTPException, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402
from starlette.routing import Match  # noqa: E402

from .run import HostAllowList  # noqa: E402

log = logging.getLogger("tase_search.server")


class DuplicateId(InputError):
    """An added document's id is taken (by other content) and the request said on_duplicate=error."""


_STATUS: list[tuple[type[TaseSearchError], int]] = [
    (DuplicateId, 409),  # the index holds that id: send on_duplicate skip or replace
    (IndexNotFound, 404),
    (IndexLocked, 409),  # another writer: retry later
    (IndexWriteError, 507),  # disk full, permissions: the index is unchanged
    (IndexMismatch, 503),
    (IndexCorrupt, 503),
    (ModelError, 503),
    (InputError, 400),
]


def status_of(exc: TaseSearchError) -> int:
    return next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)


def _error(
    status: int, kind: str, message: str, details: list[dict[str, Any]] | None = None, **kw: Any
) -> JSONResponse:
    body = {"error": {"status": status, "type": kind, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, **kw)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TaseSearchError)
    async def _tase(_: Request, exc: TaseSearchError) -> JSONResponse:
        return _error(status_of(exc), type(exc).__name__, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()[:20]
        ]
        summary = "; ".join(f"{'.'.join(d['loc'])}: {d['msg']}" for d in details[:3])
        return _error(422, "ValidationError", f"invalid request: {summary}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {401: "Unauthorized", 404: "NotFound", 405: "MethodNotAllowed", 413: "TooLarge"}.get(
            exc.status_code, "HTTPError"
        )
        headers, message = getattr(exc, "headers", None), str(exc.detail)
        if exc.status_code == 405:  # the router names only the first route of the path; list them all
            allow = _allowed_methods(request)
            headers = {**(headers or {}), "Allow": allow}
            message = f"{request.method} is not allowed on {request.url.path}; allowed: {allow}"
        return _error(exc.status_code, kind, message, headers=headers)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, "InternalError", "internal error; the server log has the details")


def _allowed_methods(request: Request) -> str:
    """Every method some route of the request's path answers, as an ``Allow`` header."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if getattr(route, "methods", None) and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


def _add_error(exc: InputError) -> InputError:
    """An add's input error in the API's words: the ingest layer words it for the CLI (``--on-duplicate``,
    ``<http>:N``), and a taken id is a conflict (409), not a bad request."""
    message = re.sub(r"\(<http>:(\d+)\)", r"(document \1 of the request)", str(exc))
    message = message.replace(
        "choose --on-duplicate skip or replace", 'send "on_duplicate": "skip" or "replace"'
    )
    message = message.replace("earlier in the input", "earlier in the request")
    taken = "is already in the index" in message and "on_duplicate" in message
    return (DuplicateId if taken else type(exc))(message)


class _HostCheck:
    """Refuse (421) a request whose ``Host`` the allow-list does not name: a web page that makes its
    own name resolve to this machine (DNS rebinding) sends that name, never an allowed one."""

    def __init__(self, app: Any, allow: HostAllowList) -> None:
        self.app = app
        self.allow = allow

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            hosts = [v.decode("latin-1") for k, v in scope.get("headers") or [] if k == b"host"]
            if not hosts or not all(self.allow.allows(h) for h in hosts):
                await self._refuse(hosts)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refuse(self, hosts: list[str]) -> JSONResponse:
        if not hosts:
            why = "the request has no Host header"
        else:
            why = f"this server does not answer to Host {hosts[0][:100]!r}"
        return _error(
            421,
            "MisdirectedRequest",
            f"{why}; it answers {self.allow.describe()}. To serve another name, start it with "
            "--allow-host NAME (create_app(allow_hosts=[...]) in Python)",
        )


class _InFlight:
    """At most ``limit`` requests in progress; one more is refused at once (503, Retry-After) instead
    of queueing without bound. Idle connections do not count."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.now = 0  # the event loop is one thread: no lock needed

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.now >= self.limit:
            message = (
                f"{self.now} requests are in progress, the most this server takes at once; retry shortly"
            )
            await _error(503, "Busy", message, headers={"Retry-After": "1"})(scope, receive, send)
            return
        self.now += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.now -= 1


class _BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413: by Content-Length up front, and by counting
    the bytes of a chunked body as it arrives."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            response = _error(413, "TooLarge", self._message())
            await response(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, counting_receive, send)

    def _message(self) -> str:
        return f"request body over {self.max_bytes} bytes; send fewer documents per request"


# ----------------------------------------------------------------------------- app
