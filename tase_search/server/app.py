"""The HTTP API behind ``tase-search serve``: FastAPI over one or more indexes, run by uvicorn.

    GET  /health                              liveness and each index's size and generation
    GET  /indexes                             the served indexes
    GET  /indexes/{name}                      what an index holds (as ``tase-search info --json``)
    GET  /indexes/{name}/search?query=...&k=...&filter=topic=spor&where={json}&mode=dense   (q= is the same)
    POST /indexes/{name}/search               {"query": "..." or [...], "k", "filter", "mode"} ("q" too)
    GET  /indexes/{name}/documents/{id}       one stored document
    POST /indexes/{name}/documents            add: {"documents": [{"id", "text", "metadata"}], "on_duplicate"}
    POST /indexes/{name}/delete               {"ids": [...]}
    DELETE /indexes/{name}/documents/{id}
    GET  /docs, /redoc, /openapi.json         the API, described (the pages' scripts served from here)

Hits are what ``tase-search query --json`` prints. Every error, a bad request above all, is a JSON
body ``{"error": {"status", "type", "message"}}`` with a 4xx status (5xx only for the server's own
faults, without a traceback). Requests are bounded (body size, query length, k, batch sizes); writes
can require an API key; :mod:`tase_search.server.served_index` lets searches run while one write per index
commits. It listens on loopback unless told otherwise, and refuses a non-loopback address where
anyone could write (no API key, not read-only). It answers only requests whose ``Host`` is on its
allow-list (:class:`~tase_search.server.run.HostAllowList`: loopback names, IP addresses, names
given), so a web page cannot reach it through DNS rebinding.
"""

import hmac
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from .._version import __version__
from ..documents.document import Document
from ..errors import (
    IndexNotFound,
    InputError,
)
from ..integrations import require
from ..query.filters import parse_query_filter
from ..retriever import Retriever, resolve_index_path
from ..runtime.config import MAX_RERANK
from .served_index import ServedIndex

require("fastapi", "serve")
require("uvicorn", "serve")

from fastapi import Depends, FastAPI, HTTPException, Query, Security  # noqa: E402
from fastapi import Path as PathParam  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import HTMLResponse  # noqa: E402
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer  # noqa: E402

from .guards import DuplicateId, _add_error, _BodyLimit, _HostCheck, _InFlight, _install_error_handlers  # noqa: E402
from .run import (  # noqa: E402  (re-exported: the public names stay importable from here)
    API_KEY_ENV,
    DEFAULT_HOST,
    DEFAULT_PORT,
    WILDCARD_HOSTS,
    HostAllowList,
    ServerThread,
    _server,
    bind,
    check_exposure,
    is_loopback,
    raise_open_files_limit,
    serving,
    url_of,
)
from .schema import (  # noqa: E402
    INDEX_NAME,
    MAX_BODY_BYTES,
    MAX_FILTER_FIELDS,
    MAX_ID_CHARS,
    MAX_K,
    MAX_QUERIES,
    MAX_WHERE_CHARS,
    AddRequest,
    AddResponse,
    DeleteRequest,
    DeleteResponse,
    FilterItem,
    Health,
    IndexSummary,
    Mode,
    QueryText,
    SearchRequest,
    SearchResponse,
    StoredDocument,
    _errors,
)

log = logging.getLogger("tase_search.server")

#: Requests in progress at once; beyond them a request gets 503 at once rather than waiting in a queue.
MAX_IN_FLIGHT = 256
#: Where the API docs' scripts and styles are served (from the fastapi-offline package, not a CDN).
DOCS_ASSETS = "/docs-assets"


@dataclass
class _Settings:
    indexes: dict[str, ServedIndex]
    api_key: str | None
    read_only: bool


def create_app(
    indexes: Mapping[str, Retriever | ServedIndex],
    *,
    api_key: str | None = None,
    read_only: bool = False,
    max_body_bytes: int = MAX_BODY_BYTES,
    allow_hosts: Iterable[str] | HostAllowList = (),
    max_in_flight: int = MAX_IN_FLIGHT,
) -> FastAPI:
    """The API over ``indexes`` (name -> Retriever). ``api_key``: writes must send it (``Authorization:
    Bearer KEY`` or ``X-API-Key: KEY``); ``read_only``: no write routes at all. ``allow_hosts``: the
    ``Host`` names answered besides loopback names and IP addresses (``"*"``: any), against DNS
    rebinding; ``max_in_flight``: requests in progress at once (503 beyond)."""
    if not indexes:
        raise InputError("no index to serve; give at least one --index")
    served = {}
    for name, idx in indexes.items():
        if not isinstance(name, str) or not _valid_name(name):
            raise InputError(
                f"index name {name!r} cannot be used in a URL; use letters, digits, '.', '_', '-'"
            )
        served[name] = idx if isinstance(idx, ServedIndex) else ServedIndex(name, idx)
    if api_key is not None:
        _check_key(api_key)
    hosts = allow_hosts if isinstance(allow_hosts, HostAllowList) else HostAllowList(allow_hosts)
    settings = _Settings(served, api_key, read_only)
    app = _new_app(
        title="tase-search",
        version=__version__,
        description="Turkish and English->Turkish semantic search over tase-search indexes.",
    )
    app.state.tase = settings
    _install_error_handlers(app)
    app.add_middleware(_BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(_InFlight, limit=max_in_flight)
    app.add_middleware(_HostCheck, allow=hosts)  # outermost: a refused Host gets nothing else
    # The path parameter lists the served names, so /docs (and schema-driven clients) offer them.
    name_type = Annotated[
        str,
        PathParam(
            pattern=INDEX_NAME, description="a served index", json_schema_extra={"enum": sorted(served)}
        ),
    ]
    _read_routes(app, settings, name_type)
    if not read_only:
        _write_routes(app, settings, name_type)
    return app


_NO_DOCS = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>tase-search API</title></head><body>"
    "<p>The interactive API docs need the <code>fastapi-offline</code> package: "
    "<code>pip install 'tase-search[serve]'</code>. The API's description is at "
    "<a href='openapi.json'>/openapi.json</a>.</p></body></html>"
)


def _new_app(**kwargs: Any) -> FastAPI:
    """A FastAPI app whose /docs and /redoc pages load their scripts from this server, not a CDN, so
    they work offline (fastapi-offline ships Swagger UI and ReDoc). Without that package the pages
    say how to get it rather than staying blank."""
    try:
        from fastapi_offline import FastAPIOffline
    except ImportError:
        app = FastAPI(docs_url=None, redoc_url=None, **kwargs)
        for url in ("/docs", "/redoc"):
            app.add_api_route(url, lambda: HTMLResponse(_NO_DOCS), methods=["GET"], include_in_schema=False)
        return app
    return FastAPIOffline(
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},  # Swagger UI's default sends the schema off-site
        **kwargs,
    )


def _valid_name(name: str) -> bool:
    return re.match(INDEX_NAME, name) is not None


def _check_key(key: str) -> None:
    if len(key) < 16 or not key.isascii() or not key.isprintable() or " " in key:
        raise InputError(
            "the API key must be at least 16 printable ASCII characters without spaces "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )


def _index(settings: _Settings, name: str) -> ServedIndex:
    try:
        return settings.indexes[name]
    except KeyError:
        raise IndexNotFound(
            f"no index {name!r} is served here; served: {', '.join(sorted(settings.indexes))}"
        ) from None


def _read_routes(app: FastAPI, settings: _Settings, IndexName: Any) -> None:  # noqa: N803 - a type
    @app.get("/health", response_model=Health, tags=["server"])
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "indexes": _summaries(settings)}

    @app.get("/indexes", response_model=list[IndexSummary], tags=["indexes"])
    def list_indexes() -> list[dict[str, Any]]:
        return _summaries(settings)

    @app.get("/indexes/{name}", response_model=dict[str, Any], responses=_errors(404), tags=["indexes"])
    def info(name: IndexName) -> dict[str, Any]:
        return _index(settings, name).info()

    @app.get(
        "/indexes/{name}/search", response_model=SearchResponse, responses=_errors(400, 404), tags=["search"]
    )
    def search_get(
        name: IndexName,
        query: Annotated[
            list[QueryText] | None,
            Query(
                max_length=MAX_QUERIES,
                description="the query; repeated, a batch (one result each). `q` is the same",
            ),
        ] = None,
        q: Annotated[
            list[QueryText] | None, Query(max_length=MAX_QUERIES, description="the same as `query`")
        ] = None,
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
        filter: Annotated[  # noqa: A002 - the API's name
            list[FilterItem] | None,
            Query(
                max_length=MAX_FILTER_FIELDS,
                description="FIELD=VALUE, repeatable: different fields must all match, one field given "
                "twice matches either value; VALUE matches the string or the number/boolean it spells",
            ),
        ] = None,
        where: Annotated[
            str | None,
            Query(
                max_length=MAX_WHERE_CHARS,
                description='a JSON filter, as `filter` in the POST body: {"year": {"$gte": 2020}} '
                "(with `filter=`, both must hold)",
            ),
        ] = None,
        mode: Mode | None = None,
        min_score: Annotated[
            float | None, Query(description="leave out hits scoring below it (0.5: probably relevant)")
        ] = None,
        highlight: Annotated[bool, Query(description="name each hit's best-answering sentence")] = False,
        rerank: Annotated[
            int | None,
            Query(
                ge=0,
                le=MAX_RERANK,
                description="rerank the top N hits with the cross-encoder (scores: its probability); 0 off",
            ),
        ] = None,
    ) -> dict[str, Any]:
        if (query is None) == (q is None):
            raise RequestValidationError(
                [
                    {
                        "type": "missing",
                        "loc": ("query", "query"),
                        "msg": "give the query once, as query= (or q=)",
                    }
                ]
            )
        queries = query if query is not None else q
        assert queries is not None
        flt = parse_query_filter(filter or [], where)
        return _search(_index(settings, name), queries, k, flt, mode, min_score, highlight, rerank)

    @app.post(
        "/indexes/{name}/search", response_model=SearchResponse, responses=_errors(400, 404), tags=["search"]
    )
    def search_post(name: IndexName, body: SearchRequest) -> dict[str, Any]:
        if body.vector is not None or body.mmr is not None:
            return _search_vector(_index(settings, name), body)
        return _search(
            _index(settings, name),
            body.queries,
            body.k,
            body.filter,
            body.mode,
            body.min_score,
            body.highlight,
            body.rerank,
        )

    @app.get(
        "/indexes/{name}/documents/{doc_id}",
        response_model=StoredDocument,
        responses=_errors(404),
        tags=["documents"],
    )
    def get_document(
        name: IndexName, doc_id: Annotated[str, PathParam(max_length=MAX_ID_CHARS)]
    ) -> dict[str, Any]:
        found = _index(settings, name).get([doc_id])
        if not found:
            raise HTTPException(404, f"no document {doc_id!r} in index {name!r}")
        return found[0]


def _write_routes(app: FastAPI, settings: _Settings, IndexName: Any) -> None:  # noqa: N803 - a type
    guard = [Depends(_key_guard(settings.api_key))] if settings.api_key else []
    auth = (401,) if settings.api_key else ()

    @app.post(
        "/indexes/{name}/documents",
        response_model=AddResponse,
        responses=_errors(400, 404, 409, 503, 507, *auth),
        dependencies=guard,
        tags=["documents"],
        description="Add documents. An id the index holds with other content is a 409 conflict unless "
        '`"on_duplicate"` is `"skip"` or `"replace"`.',
    )
    def add(name: IndexName, body: AddRequest) -> dict[str, Any]:
        idx = _index(settings, name)
        docs = [
            Document(id=d.id, text=d.text, metadata=d.metadata, source="<http>", line=n + 1)
            for n, d in enumerate(body.documents)
        ]
        t0 = time.perf_counter()
        try:
            res = idx.add(docs, on_duplicate=body.on_duplicate)
        except InputError as exc:
            raise _add_error(exc) from None
        manifest = idx.reader().manifest
        return {
            "index": name,
            "added": res.added,
            "passages": res.passages,
            "replaced": res.replaced,
            "skipped_duplicate": res.skipped_duplicate,
            "skipped_empty": res.skipped_empty,
            "unchanged": int(getattr(res, "unchanged", 0)),
            "ids": list(res.ids),
            "documents": manifest.documents,
            "generation": manifest.generation,
            "took_ms": _ms(t0),
        }

    @app.post(
        "/indexes/{name}/delete",
        response_model=DeleteResponse,
        responses=_errors(400, 404, 409, 503, 507, *auth),
        dependencies=guard,
        tags=["documents"],
    )
    def delete(name: IndexName, body: DeleteRequest) -> dict[str, Any]:
        return _delete(_index(settings, name), name, body.ids)

    @app.delete(
        "/indexes/{name}/documents/{doc_id}",
        response_model=DeleteResponse,
        responses=_errors(400, 404, 409, 503, 507, *auth),
        dependencies=guard,
        tags=["documents"],
    )
    def delete_one(
        name: IndexName, doc_id: Annotated[str, PathParam(max_length=MAX_ID_CHARS)]
    ) -> dict[str, Any]:
        out = _delete(_index(settings, name), name, [doc_id])
        if not out["deleted"]:
            raise HTTPException(404, f"no document {doc_id!r} in index {name!r}")
        return out


_API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="the server's API key (writes)"
)
_BEARER = HTTPBearer(auto_error=False, description="Authorization: Bearer API-KEY (writes)")


def _key_guard(expected: str) -> Callable[..., None]:
    want = expected.encode("ascii")

    def guard(
        key: Annotated[str | None, Security(_API_KEY_HEADER)] = None,
        token: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
    ) -> None:
        given = key if key is not None else (token.credentials if token is not None else None)
        if given is None or not hmac.compare_digest(given.encode("latin-1", "replace"), want):
            raise HTTPException(
                401,
                "writes need the server's API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return guard


def _summaries(settings: _Settings) -> list[dict[str, Any]]:
    out = []
    for name, idx in settings.indexes.items():
        m = idx.reader().manifest
        out.append({"name": name, "documents": m.documents, "generation": m.generation, "model": m.model.id})
    return out


def _search(
    idx: ServedIndex,
    queries: list[str],
    k: int,
    filter: Mapping[str, Any] | None,
    mode: str | None,  # noqa: A002
    min_score: float | None = None,
    highlight: bool = False,
    rerank: int | None = None,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    results = idx.search(queries, k, filter, mode, min_score=min_score, highlight=highlight, rerank=rerank)
    return {
        "index": idx.name,
        "k": k,
        "mode": mode or idx.reader().search_mode,  # as asked (auto: each hit says the mode that ran)
        "results": [{"query": q, "hits": [h.to_dict() for h in hits]} for q, hits in zip(queries, results)],
        "took_ms": _ms(t0),
    }


def _search_vector(idx: ServedIndex, body: SearchRequest) -> dict[str, Any]:
    """A search by ``vector`` (the query text, if given, to the keyword part), or re-ranked by MMR."""
    t0 = time.perf_counter()
    r = idx.reader()
    if body.mmr is not None:
        mmr = body.mmr
        results = [
            r.search_mmr(
                None if body.vector is not None else q,
                vector=body.vector,
                k=body.k,
                fetch_k=int(mmr.fetch_k),
                lambda_mult=mmr.lambda_mult,
                filter=body.filter,
            )
            for q in body.queries
        ]
    else:
        # one vector: its text (if any) must be one query too, else the Retriever says so (400)
        results = [r.search_by_vector(body.vector, body.k, body.filter, query=body.query, mode=body.mode)]
    if body.min_score is not None:
        results = [[h for h in hits if h.score >= body.min_score] for hits in results]
    return {
        "index": idx.name,
        "k": body.k,
        "mode": body.mode or ("dense" if body.query is None else r.search_mode),
        "results": [
            {"query": q, "hits": [h.to_dict() for h in hits]} for q, hits in zip(body.queries, results)
        ],
        "took_ms": _ms(t0),
    }


def _delete(idx: ServedIndex, name: str, ids: Sequence[str]) -> dict[str, Any]:
    deleted = idx.delete(ids)
    manifest = idx.reader().manifest
    gone = set(deleted)
    return {
        "index": name,
        "deleted": deleted,
        "missing": sorted({i for i in ids if i not in gone}),
        "documents": manifest.documents,
        "generation": manifest.generation,
    }


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)


# ----------------------------------------------------------------------------- opening and running
def open_indexes(
    specs: Sequence[str],
    *,
    root: str | os.PathLike[str] | None = None,
    precision: str = "auto",
    query_backend: str = "auto",
) -> dict[str, Retriever]:
    """``NAME`` (under ``root``), ``DIR`` (served under its directory name) or ``NAME=DIR`` -> Retriever."""
    out: dict[str, Retriever] = {}
    for spec in specs or ("default",):
        name, sep, where = spec.partition("=")
        if sep and "/" not in name:
            path = resolve_index_path(where, root)
        else:
            path, name = resolve_index_path(spec, root), ""
        name = name or path.name
        if name in out:
            raise InputError(f"two indexes are served as {name!r}; name them with NAME=DIR")
        out[name] = Retriever.load(path, precision=precision, query_backend=query_backend)
    return out


def serve(
    indexes: Mapping[str, Retriever | ServedIndex],
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    api_key: str | None = None,
    read_only: bool = False,
    max_body_bytes: int = MAX_BODY_BYTES,
    log_level: str = "info",
    allow_hosts: Iterable[str] = (),
) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM stop it cleanly). Prints where it listens.
    ``allow_hosts``: ``Host`` names answered besides loopback names, IP addresses and ``host``."""
    check_exposure(host, api_key, read_only)
    hosts = HostAllowList.for_server(host, allow_hosts)
    app = create_app(
        indexes, api_key=api_key, read_only=read_only, max_body_bytes=max_body_bytes, allow_hosts=hosts
    )
    sock = bind(host, port)
    url = url_of(sock)
    names = ", ".join(app.state.tase.indexes)
    mode = "read-only" if read_only else ("writes need the API key" if api_key else "writes open (loopback)")
    print(f"serving {names} at {url} ({mode}); API docs at {url}/docs", file=sys.stderr, flush=True)
    if host.strip().lower() in WILDCARD_HOSTS and not hosts.any:
        print(
            f"answering Host: {hosts.describe()}; to reach it by another name, add --allow-host NAME",
            file=sys.stderr,
            flush=True,
        )
    raise_open_files_limit()  # each connection is a file descriptor
    with sock:
        _server(app, log_level).run(sockets=[sock])


__all__ = [
    "bind",
    "is_loopback",
    "url_of",
    "API_KEY_ENV",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_BODY_BYTES",
    "MAX_IN_FLIGHT",
    "DuplicateId",
    "HostAllowList",
    "ServerThread",
    "check_exposure",
    "create_app",
    "open_indexes",
    "serve",
    "serving",
]
