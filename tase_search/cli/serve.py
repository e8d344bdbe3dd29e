"""``tase-search serve``: the HTTP API over one or more indexes (attached to the main CLI with
``add_command``). A thin command: the API is :mod:`tase_search.server`, imported when it runs, so
``tase-search --help`` needs neither FastAPI nor uvicorn."""

from __future__ import annotations

import sys

import click

from ..runtime.config import PRECISIONS, QUERY_BACKENDS

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.command("serve", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--index",
    "-i",
    "indexes",
    multiple=True,
    metavar="NAME|DIR|NAME=DIR",
    help="An index to serve (repeatable): a name under --root, a directory (served under its own name) "
    "or NAME=DIR. Default: the index named 'default'.",
)
@click.option(
    "--root", default=None, metavar="DIR", help="Where named indexes live. Env: TASE_SEARCH_INDEX_ROOT."
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default)."
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="0: any free port."
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests sent to this host name (repeatable; '*': any). Always answered: "
    "localhost, 127.0.0.1, [::1], IP addresses and --host; other names are refused (421), so a web "
    "page cannot reach the server by DNS rebinding.",
)
@click.option(
    "--api-key",
    envvar="TASE_SEARCH_API_KEY",
    default=None,
    show_envvar=True,
    help="Writes (add, delete) must send this key as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'. "
    "Prefer the environment variable: a flag is visible to other users in the process list.",
)
@click.option("--read-only", is_flag=True, help="Serve searches only: no add or delete routes.")
@click.option(
    "--max-body-mb",
    type=click.FloatRange(0.01, 1024),
    default=8.0,
    show_default=True,
    help="Largest request body accepted (413 beyond it).",
)
@click.option("--precision", type=click.Choice(list(PRECISIONS)), default=None, help="As for `query`.")
@click.option(
    "--query-backend", type=click.Choice(list(QUERY_BACKENDS)), default=None, help="As for `query`."
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
    help="uvicorn's log level (debug also logs every request).",
)
def serve_cmd(
    indexes: tuple[str, ...],
    root: str | None,
    host: str,
    port: int,
    allow_hosts: tuple[str, ...],
    api_key: str | None,
    read_only: bool,
    max_body_mb: float,
    precision: str | None,
    query_backend: str | None,
    log_level: str,
) -> None:
    """Serve indexes over HTTP: search (GET/POST), add, delete, info, health; API docs at /docs.

    Searches run concurrently; writes to an index go one at a time through its writer lock, and
    searches keep answering from the previous version until a write is committed.

    \b
    Examples:
      tase-search serve --index haberler
      tase-search serve -i haberler -i notes=./indexes/notlar --port 9000
      curl 'http://127.0.0.1:8765/indexes/haberler/search?q=football+match&k=3'
      TASE_SEARCH_API_KEY=$(openssl rand -hex 24) tase-search serve -i haberler --host 0.0.0.0 \\
          --allow-host search.example.org
    """
    from ..runtime.config import load_settings
    from ..server.app import HostAllowList, check_exposure, open_indexes, serve

    api_key = api_key or None  # an empty TASE_SEARCH_API_KEY is no key
    s = load_settings(index_root=root, precision=precision, query_backend=query_backend)
    check_exposure(host, api_key, read_only)  # before loading models, which takes seconds
    HostAllowList.for_server(host, allow_hosts)  # a bad --allow-host too
    opened = open_indexes(
        indexes or ("default",), root=s.index_root, precision=s.precision, query_backend=s.query_backend
    )
    try:
        serve(
            opened,
            host=host,
            port=port,
            api_key=api_key,
            read_only=read_only,
            max_body_bytes=int(max_body_mb * (1 << 20)),
            log_level=log_level,
            allow_hosts=allow_hosts,
        )
    except KeyboardInterrupt:  # uvicorn shut down cleanly, then re-raised Ctrl-C
        click.echo("stopped", err=True)
        sys.exit(130)


__all__ = ["serve_cmd"]
