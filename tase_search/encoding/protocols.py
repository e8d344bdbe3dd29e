"""What the rest of tase-search needs from an encoder, declared once: a query side and a document side.

Why two: a query process needs only the query side (the torch-free :class:`.query_bundle.LightQueryEncoder`
implements nothing else), while a write needs both (:class:`.encoder.Encoder`, or the test suite's
fake). Search, evaluation and the integrations take a :class:`QueryEncoder`; ingest takes a
:class:`DocumentEncoder`. Both return L2-normalised float32 rows (cosine == inner product, as the
index store assumes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from .passages import Passage


@runtime_checkable
class QueryEncoder(Protocol):
    """Encodes search queries for an index built with the weights named by :attr:`fingerprint`."""

    model_id: str

    @property
    def fingerprint(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_seq_length(self) -> int: ...

    def encode_query(self, texts: str | Sequence[str], *, batch_size: int | None = None) -> np.ndarray: ...


@runtime_checkable
class DocumentEncoder(QueryEncoder, Protocol):
    """A full encoder: queries, documents and the passage split an ingest needs."""

    def encode_document(
        self,
        texts: str | Sequence[str],
        *,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray: ...

    def split_passages(self, text: str, *, overlap: int = 32) -> list[Passage]: ...
