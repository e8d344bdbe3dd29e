"""The HTTP API: :mod:`.app` (routes, error bodies, guards), :mod:`.schema` (request and response
bodies), :mod:`.run` (socket, exposure check, uvicorn, ``ServerThread``), :mod:`.served_index` (one
index behind a server: concurrent readers, one writer). Importing this package imports no FastAPI."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """``create_app``, ``ServerThread``, ``serve`` ... (``from tase_search.server import create_app``), loaded on use."""
    import importlib

    module = importlib.import_module(".app", __name__)
    try:
        return getattr(module, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
