"""Vectors made outside tase-search (OpenAI, bge-m3, a toolkit's embeddings) as what an index holds.

Users of the retrieval toolkits keep the embedder they chose and still get what the index adds:
Turkish-aware keyword search fused with their vectors, crash-safe writes, an offline directory format.

An index records what made its vectors in its manifest's ``model``; for an external embedder that
record is ``id = "external:NAME"``, a fingerprint made from the name and the dimension, no prompts and
``max_seq_length`` 0, and ``normalized`` (whether vectors were scaled to unit length, so that scores
are cosines). Opening the index with another embedder, another dimension or the other normalisation is
refused, as for our own models. Each document is one passage: the embedder saw its whole text.

:class:`ExternalEmbedder` is that record as an encoder: given the embedder's functions it embeds
documents and queries like any encoder (``Retriever.build(docs, model=ExternalEmbedder(...))``,
``Retriever.load(path, model=...)``); without them it names the vectors given to
:meth:`tase_search.Retriever.add_vectors` and :meth:`~tase_search.Retriever.search_by_vector`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import IndexMismatch, InputError
from .passages import Passage

PREFIX = "external:"
MAX_NAME_CHARS = 256

Embed = Callable[[list[str]], Any]
EmbedOne = Callable[[str], Any]


def is_external(model_id: str) -> bool:
    """Whether a manifest's model id names an external embedder."""
    return isinstance(model_id, str) and model_id.startswith(PREFIX)


def external_name(model_id: str) -> str:
    return model_id[len(PREFIX) :] if is_external(model_id) else model_id


def fingerprint(name: str, dimension: int) -> str:
    """What the manifest records as the "weights" of an external embedder: its name and dimension."""
    digest = hashlib.blake2b(f"{name}\x00{int(dimension)}".encode(), digest_size=16).hexdigest()
    return f"external-{digest}"


def check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
        raise InputError(
            f"embedder name {name!r} is not valid: give a non-empty string of at most {MAX_NAME_CHARS} "
            "characters naming what made the vectors (e.g. 'openai:text-embedding-3-small')"
        )
    return name


class ExternalEmbedder:
    """An embedder outside tase-search, as an encoder an index can be built, opened and searched with.

    ``name`` identifies the embedder (and its model): the index refuses vectors recorded under another
    name. ``dimension`` None is learnt from the first vectors (or from the index it opens).
    ``normalize`` scales vectors to unit length, so scores are cosines. ``embed_documents(texts)``
    and ``embed_query(text)`` make the vectors; without them only given vectors can be stored
    (:meth:`tase_search.Retriever.add_vectors`).
    """

    max_seq_length = 0
    query_prompt: str | None = None
    passage_prompt: str | None = None

    def __init__(
        self,
        name: str,
        dimension: int | None = None,
        *,
        normalize: bool = True,
        embed_documents: Embed | None = None,
        embed_query: EmbedOne | None = None,
    ) -> None:
        self.name = check_name(name)
        if dimension is not None and (
            not isinstance(dimension, int) or isinstance(dimension, bool) or not 1 <= dimension <= 65536
        ):
            raise InputError(f"dimension={dimension!r} is not valid: give a whole number from 1 to 65536")
        if not isinstance(normalize, bool):
            raise InputError(f"normalize={normalize!r} is not valid: give True or False")
        self._dimension = dimension
        self.normalized = normalize
        self._embed_documents = embed_documents
        self._embed_query = embed_query

    @classmethod
    def from_manifest(cls, model: Any) -> ExternalEmbedder:
        """The record of an index's manifest (no functions: for given vectors)."""
        return cls(external_name(model.id), int(model.dimension), normalize=bool(model.normalized))

    def __repr__(self) -> str:
        return f"ExternalEmbedder({self.name!r}, dimension={self._dimension}, normalize={self.normalized})"

    @property
    def model_id(self) -> str:
        return PREFIX + self.name

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            raise InputError(
                f"the dimension of embedder {self.name!r} is not known yet: give dimension=..., or add "
                "vectors first"
            )
        return self._dimension

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.name, self.dimension)

    @property
    def knows_dimension(self) -> bool:
        return self._dimension is not None

    def adopt(self, manifest_model: Any) -> None:
        """Take the dimension an existing index records when none was given (its vectors then check it;
        an index of another embedder or model is refused by name)."""
        if self._dimension is None:
            self._dimension = int(manifest_model.dimension)

    # ------------------------------------------------------------------ vectors
    def prepare(self, vectors: Any, rows: int | None = None, what: str = "vectors") -> np.ndarray:
        """``vectors`` as float32 rows of this embedder's dimension (learnt here if unknown), finite,
        unit length when it normalises (a zero row stays zero)."""
        arr = as_matrix(vectors, what)
        if rows is not None and arr.shape[0] != rows:
            raise InputError(f"{arr.shape[0]} {what} for {rows} documents: give one vector per document")
        if self._dimension is None and arr.shape[0]:
            self._dimension = int(arr.shape[1])
        if arr.shape[0] and arr.shape[1] != self.dimension:
            raise IndexMismatch(
                f"{what} have dimension {arr.shape[1]}, but embedder {self.name!r} of this index gives "
                f"{self.dimension}: use the embedder the index was built with, or a new index"
            )
        return normalized(arr) if self.normalized else arr

    def encode_document(
        self,
        texts: str | Sequence[str],
        *,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        items = [texts] if isinstance(texts, str) else list(texts)
        if self._embed_documents is None:
            raise InputError(
                f"embedder {self.name!r} was given no embed_documents function: add documents with their "
                "vectors (Retriever.add_vectors), or give the embedder's functions"
            )
        out = self.prepare(self._embed_documents(items) if items else [], len(items), "document vectors")
        if progress is not None:
            progress(len(items))
        return out

    def encode_query(self, texts: str | Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        items = [texts] if isinstance(texts, str) else list(texts)
        if self._embed_query is None:
            raise InputError(
                f"embedder {self.name!r} was given no embed_query function: search by vector "
                "(Retriever.search_by_vector), or in mode 'sparse'"
            )
        return self.prepare([self._embed_query(t) for t in items], len(items), "query vectors")

    def split_passages(self, text: str, *, overlap: int = 32) -> list[Passage]:
        """One passage, the whole text: the embedder does its own truncation."""
        return [Passage(0, len(text), 0, 1)]


def as_matrix(vectors: Any, what: str = "vectors") -> np.ndarray:
    """A 2-D float32 array of finite numbers (a single vector becomes one row)."""
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} are not numbers in rows of equal length ({exc})") from None
    if arr.ndim == 1 and arr.size:
        arr = arr[None, :]
    if arr.size == 0:
        return np.zeros((0, arr.shape[-1] if arr.ndim == 2 else 0), np.float32)
    if arr.ndim != 2:
        raise InputError(f"{what} have shape {arr.shape}: give one vector, or one row per item")
    if not np.isfinite(arr).all():
        raise InputError(f"{what} hold NaN or infinite values")
    return np.ascontiguousarray(arr)


def normalized(arr: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return np.ascontiguousarray(arr / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def embedder_name(obj: Any) -> str:
    """A name for a toolkit's embeddings object: its class and, where it says, its model."""
    cls = type(obj)
    name = f"{cls.__module__.split('.')[0]}:{cls.__qualname__}"
    for attr in ("model", "model_name", "model_id", "deployment"):
        value = getattr(obj, attr, None)
        if isinstance(value, str) and value:
            return f"{name}:{value}"[:MAX_NAME_CHARS]
    size = getattr(obj, "size", None)  # the toolkits' fake embeddings name themselves by size
    if isinstance(size, int) and not isinstance(size, bool):
        return f"{name}:{size}"
    return name[:MAX_NAME_CHARS]


def needs_embedder(path: Any, model: Any) -> str:
    """What to tell a user who searched by text an index of vectors from an external embedder
    (``model``: the manifest's model record) without giving that embedder."""
    return (
        f"index {path} holds vectors from the external embedder {external_name(model.id)!r} "
        f"({model.dimension} dimensions): open it with that embedder (model=ExternalEmbedder(...), or the "
        "toolkit integration you built it with), search by vector (search_by_vector), or search in mode "
        "'sparse'"
    )


__all__ = ["PREFIX", "ExternalEmbedder", "as_matrix", "embedder_name", "fingerprint", "is_external"]
