"""FAISS's error text without its C++ frame: the part a user can act on.

Why: FAISS raises ``RuntimeError("Error in void faiss::Clustering::train_encoded(faiss::idx_t, const
uint8_t*, ...) at /project/faiss/Clustering.cpp:66: Error: 'nx >= k' failed: Number of training points
(8) should be at least as large as number of clusters (64)")``; only the last clause means anything to
someone indexing documents.
"""

from __future__ import annotations

import re

_FRAME = re.compile(r"Error in .*? at \S+:\d+: ")
_ASSERTION = re.compile(r"^Error: '.*?' failed: ")
_LIMIT = 200


def faiss_message(exc: BaseException) -> str:
    """The meaningful clause of a FAISS exception: no function signature, file:line or assertion text."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    text = next((ln for ln in lines if "rror" in ln), lines[-1] if lines else repr(exc))
    text = _FRAME.sub("", text)
    text = _ASSERTION.sub("", text)
    return text[:_LIMIT]
