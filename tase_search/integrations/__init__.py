"""tase-search inside other toolkits: each module adapts the encoder (and, where the toolkit has one, the
index) to that toolkit's own extension interface.

==================  ==============================================  ===========================
module              what it provides                                install
==================  ==============================================  ===========================
``langchain``       ``TaseEmbeddings``, ``TaseVectorStore``         ``tase-search[langchain]``
``llamaindex``      ``TaseEmbedding``, ``TaseVectorStore``          ``tase-search[llamaindex]``
``haystack``        embedders, ``TaseDocumentStore``, retriever     ``tase-search[haystack]``
``txtai``           ``TaseVectors`` (txtai's custom ``method``)     ``tase-search[txtai]``
``llm_plugin``      ``tase-tr`` embedding models for simonw/llm     ``tase-search[llm]``
==================  ==============================================  ===========================

A module imports its toolkit when it is imported, and only then, so the core install never needs them;
without the toolkit the import fails with :class:`ExtraNotInstalled` naming the extra to install.
Queries always go through ``encode_query`` and documents through ``encode_document``, so a model's
query and passage prompts are applied as in tase-search itself. The stores also keep the vectors of
the toolkit's own embedder (:mod:`tase_search.encoding.external`), with the keyword part beside them; filters
are translated into the store's filter language (:mod:`tase_search.query.filters`). Docs:
``docs/integrations.md``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from ..errors import InputError, TaseSearchError


class ExtraNotInstalled(TaseSearchError, ImportError):
    """An integration's toolkit is not installed (the message names the pip extra)."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ExtraNotInstalled(
            f"{module} is not installed ({exc}); install it with: pip install 'tase-search[{extra}]'"
        ) from exc


def load_encoder(model: Any = "default", **load_kwargs: Any) -> Any:
    """``model`` as an encoder: a model spec (registered name, directory, hub id) is loaded with
    :meth:`tase_search.Encoder.load`; anything else is taken to be an encoder already (an
    :class:`~tase_search.encoding.DocumentEncoder`, such as the test suite's fake)."""
    if model is None or isinstance(model, str):
        from ..encoding.encoder import Encoder

        return Encoder.load(model or "default", **load_kwargs)
    for attr in ("encode_query", "encode_document", "fingerprint", "dimension"):
        if not hasattr(model, attr):
            raise InputError(
                f"model {type(model).__name__} has no {attr!r}: give a model name or path, or an Encoder"
            )
    return model


__all__ = ["ExtraNotInstalled", "load_encoder", "require"]
