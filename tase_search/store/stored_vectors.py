"""The stored vector of a passage, read back from an opened vector index by passage id.

MMR compares candidates with each other, and the toolkits return a document's embedding when asked
(Haystack ``return_embedding``), so a search needs the vectors it found, not only their scores. Read
from the index itself (FAISS ``IDMap2`` keeps id -> row); IVF indexes get their direct map first;
compressed types (PQ, SQ) give their approximation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def vectors_by_pid(index: Any, pids: Sequence[int]) -> np.ndarray:
    """Rows for ``pids`` in order (float32, ``(len(pids), dimension)``); KeyError for an id not stored."""
    want = [int(p) for p in pids]
    if not want:
        return np.zeros((0, int(index.dimension)), np.float32)
    if hasattr(index, "index_of"):  # a segmented index: each row from its segment
        return np.stack([vectors_by_pid(index.index_of(p), [p])[0] for p in want])
    if hasattr(index, "ids") and hasattr(index, "vectors"):  # NumpyIndex
        at = {int(i): n for n, i in enumerate(index.ids)}
        return np.stack([index.vectors[at[p]] for p in want]).astype(np.float32)
    import faiss

    from .vectors import _ivf_of

    ivf = _ivf_of(faiss.downcast_index(index.index.index))
    if ivf is not None and ivf.direct_map.type == 0:  # NoMap
        ivf.make_direct_map()
    try:
        return np.stack([np.asarray(index.index.reconstruct(p), dtype=np.float32) for p in want])
    except RuntimeError as exc:  # FAISS: key not found
        raise KeyError(f"vector of passage {want} not in the index ({exc})") from None


__all__ = ["vectors_by_pid"]
