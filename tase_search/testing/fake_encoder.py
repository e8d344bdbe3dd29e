"""A deterministic :class:`~tase_search.encoding.protocols.DocumentEncoder`: no torch, no weights.

A hashed bag of words, so texts sharing words are similar and identical texts are identical vectors;
enough for the index store, ingest, search and the crash tests to run in milliseconds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

import numpy as np

from ..encoding.passages import Passage

__all__ = ["FakeEncoder"]

_WORD = re.compile(r"\w+", re.UNICODE)


class FakeEncoder:
    """Hashed bag-of-words encoder: each lowercased word adds +-1 at a hashed position.

    The encoder protocols' surface (``encode_query`` / ``encode_document`` give L2-normalised
    float32, ``model_id``, ``fingerprint``, ``dimension``, ``max_seq_length``, ``split_passages``).
    Stable across processes (blake2b, not ``hash()``), so a writer process and a reader agree. A text
    without words maps to a fixed unit vector. ``calls`` counts texts encoded per role.
    """

    def __init__(self, dim: int = 64, *, model_id: str = "fake") -> None:
        if dim < 2:
            raise ValueError(f"dim {dim} is too small for FakeEncoder: use 2 or more")
        self.dim = dim
        self.model_id = model_id
        self.fingerprint = hashlib.blake2b(f"{model_id}:{dim}".encode(), digest_size=16).hexdigest()
        self.max_seq_length = 128
        self.precision = "fp32"
        self.batch_size = 64
        self.lowercases = True
        self.calls = {"query": 0, "document": 0}

    @property
    def dimension(self) -> int:
        return self.dim

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            h = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
            v[int.from_bytes(h[:4], "little") % self.dim] += 1.0 if h[4] & 1 else -1.0
        norm = float(np.linalg.norm(v))
        if norm == 0.0:
            v[0] = 1.0
            return v
        return v / norm

    def _encode(self, texts: str | Sequence[str], role: str) -> np.ndarray:
        items = [texts] if isinstance(texts, str) else list(texts)
        self.calls[role] += len(items)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in items]).astype(np.float32)

    def encode_query(self, texts: str | Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        return self._encode(texts, "query")

    def encode_document(
        self,
        texts: str | Sequence[str],
        *,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        out = self._encode(texts, "document")
        if progress is not None:
            progress(len(out))
        return out

    def split_passages(self, text: str, *, overlap: int = 32) -> list[Passage]:
        return [Passage(0, len(text), 0, 1)]
