"""simonw/llm plugin: tase-search's encoder as llm embedding models.

Registered through llm's ``llm`` entry point group (``pyproject.toml``), so once tase-search is
installed next to llm, ``llm embed -m tase-tr`` and ``llm similar`` use it:

- ``tase-tr`` (alias ``tase``): documents, ``encode_document`` (the model's passage prompt);
- ``tase-tr-query``: queries, ``encode_query`` (the query prompt).

llm embeds a collection and the ``llm similar -c`` query with the collection's one model, so
``llm similar`` compares the query as a document. With the shipped model both prompts are empty and
that is exact; with a model whose prompts differ, embed the query with ``tase-tr-query`` and search
with ``Collection.similar_by_vector``. Which weights: the ``model`` setting (``TASE_SEARCH_MODEL``,
the config file; default ``default``), loaded once per process on the first embedding.

    pip install 'tase-search[llm]'
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

from . import load_encoder, require

llm = require("llm", "llm")

DOCUMENT_MODEL_ID = "tase-tr"
QUERY_MODEL_ID = "tase-tr-query"

_encoders: dict[str, Any] = {}
_lock = threading.Lock()


def configured_encoder() -> Any:
    """The encoder for the ``model`` setting, loaded once per process."""
    from ..runtime.config import load_settings

    spec = load_settings().model or "default"
    with _lock:
        if spec not in _encoders:
            _encoders[spec] = load_encoder(spec)
        return _encoders[spec]


class TaseEmbeddingModel(llm.EmbeddingModel):
    """An llm embedding model embedding text as documents (``role="document"``) or queries."""

    supports_text = True
    supports_binary = False
    batch_size = 64

    def __init__(self, model_id: str, role: str) -> None:
        if role not in ("document", "query"):
            raise ValueError(f"role {role!r} is not 'document' or 'query'")
        self.model_id = model_id
        self.role = role

    def embed_batch(self, items: Iterable[str | bytes], *, key: str | None = None) -> Iterator[list[float]]:
        texts = [i.decode("utf-8") if isinstance(i, bytes) else str(i) for i in items]
        if not texts:
            return
        encoder = configured_encoder()
        vectors = encoder.encode_document(texts) if self.role == "document" else encoder.encode_query(texts)
        for v in vectors:
            yield [float(x) for x in v]


@llm.hookimpl
def register_embedding_models(register: Any) -> None:
    register(TaseEmbeddingModel(DOCUMENT_MODEL_ID, "document"), aliases=("tase",))
    register(TaseEmbeddingModel(QUERY_MODEL_ID, "query"))


__all__ = ["DOCUMENT_MODEL_ID", "QUERY_MODEL_ID", "TaseEmbeddingModel", "configured_encoder"]
