"""txtai: the tase-search encoder as txtai's vectors model, through txtai's custom-vectors hook.

txtai resolves a ``method`` that is not one of its own as a class path to a ``Vectors`` subclass, so
an ``Embeddings`` database configured with

    Embeddings(method="tase_search.integrations.txtai.TaseVectors", path="default", content=True)

embeds with the tase-search model (``path``: a registered name, model directory or hub id; an encoder
object also works for a database that is not saved). txtai asks for query vectors with category
``query`` and for indexed data with ``data``: they go to ``encode_query`` and ``encode_document``, so
the model's prompts apply. Extra keyword arguments for :meth:`tase_search.Encoder.load` go in the
``vectors`` config dict (``vectors={"precision": "fp32"}``), as for txtai's own models.

    pip install 'tase-search[txtai]'
"""

from __future__ import annotations

from typing import Any

from . import load_encoder, require

require("txtai", "txtai")

from txtai.vectors import Vectors  # noqa: E402

#: The ``method`` value that selects this class in a txtai config.
METHOD = f"{__name__}.TaseVectors"


class TaseVectors(Vectors):
    """txtai ``Vectors`` backed by a tase-search encoder."""

    def loadmodel(self, path: Any) -> Any:
        return load_encoder(path or "default", **(self.config.get("vectors") or {}))

    def encode(self, data: Any, category: str | None = None) -> Any:
        texts = [str(d) for d in data]
        if category == "data":
            return self.model.encode_document(texts)
        return self.model.encode_query(texts)  # "query", and txtai's default when none is given


__all__ = ["METHOD", "TaseVectors"]
