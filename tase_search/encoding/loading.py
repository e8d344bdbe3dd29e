"""Which loader a model directory gets: the light loader where it reproduces sentence-transformers
exactly (seconds faster cold), sentence-transformers otherwise. Chosen once, at load."""

from __future__ import annotations

import logging
from typing import Any

from ..errors import ModelError
from .light_layout import inspect_light_layout, loader_choice
from .light_model import LightSentenceModel
from .st_loader import load_sentence_transformer

log = logging.getLogger(__name__)


def load_model(
    location: str, *, loader: str | None = None, device: str = "cpu", trust_remote_code: bool = False
) -> Any:
    """A :class:`LightSentenceModel` or a SentenceTransformer for ``location``.

    ``loader`` (default ``$TASE_SEARCH_LOADER``, else ``auto``): ``auto`` loads a plain
    sentence-transformers directory with the light loader and everything else with
    sentence-transformers; ``st`` always uses sentence-transformers; ``light`` requires the light
    loader (ModelError saying why not).
    """
    choice = loader_choice(loader)
    if choice != "st":
        layout, reason = inspect_light_layout(location)
        if layout is not None and trust_remote_code:
            layout, reason = None, "trust_remote_code was asked for"
        if layout is None:
            if choice == "light":
                raise ModelError(f"model {location!r} cannot use the light loader: {reason}")
            log.debug("loading %s with sentence-transformers: %s", location, reason)
        else:
            try:
                return LightSentenceModel.from_layout(layout, device=device)
            except Exception as exc:  # broken files: let sentence-transformers load or explain
                if choice == "light":
                    first = (str(exc).strip().splitlines() or [""])[0]
                    raise ModelError(
                        f"could not load model {location!r}: {type(exc).__name__}: {first[:300]}"
                    ) from exc
                log.debug("light loader failed on %s (%s); using sentence-transformers", location, exc)
    return load_sentence_transformer(location, device=device, trust_remote_code=trust_remote_code)
