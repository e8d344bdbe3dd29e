"""What a search and an add return: :class:`Hit` (with its :class:`PassageRef`) and :class:`AddResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PassageRef:
    """Which part of the document matched: passage ``index`` of ``count``, characters ``start:end``."""

    index: int
    count: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Highlight:
    """The sentence of a passage that best answers the query: characters ``start:end`` of the passage's
    text (``PassageRef.text``), and that text."""

    start: int
    end: int
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text}


@dataclass(frozen=True)
class Hit:
    """One search result: a document and the passage of it that matched best.

    ``score`` is what :attr:`score_kind` says (:data:`tase_search.query.calibration.SCORE_KINDS`): with a
    calibrated model, the estimated probability that the passage is relevant to the query, comparable
    across queries and modes. ``dense_score`` (the cosine) and ``keyword_score`` (BM25 normalised by
    the query, :func:`tase_search.store.sparse.group_weights`) are the raw parts, None for a part the
    search ``mode`` did not run. ``rerank_score`` is the reranker's probability when the hit was
    reranked (:mod:`tase_search.query.rerank`; then ``score`` is that probability too), else None."""

    id: str
    score: float
    text: str
    metadata: dict[str, Any]
    passage: PassageRef
    source: str | None = None
    rank: int = 0
    mode: str | None = None
    dense_score: float | None = None
    keyword_score: float | None = None
    score_kind: str = "cosine"
    highlight: Highlight | None = None
    rerank_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id": self.id,
            "score": round(float(self.score), 6),
            "score_kind": self.score_kind,
            "mode": self.mode,
            "dense_score": _rounded(self.dense_score),
            "keyword_score": _rounded(self.keyword_score),
            "rerank_score": _rounded(self.rerank_score),
            "text": self.text,
            "metadata": self.metadata,
            "source": self.source,
            "passage": {
                "index": self.passage.index,
                "count": self.passage.count,
                "start": self.passage.start,
                "end": self.passage.end,
                "text": self.passage.text,
            },
            "highlight": None if self.highlight is None else self.highlight.to_dict(),
        }


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


@dataclass
class AddResult:
    """What an add did."""

    added: int = 0
    passages: int = 0
    skipped_duplicate: int = 0
    replaced: int = 0
    skipped_empty: int = 0
    unchanged: int = 0  # identical to a document already indexed (or earlier in the input): not stored again
    seconds: float = 0.0
    ids: list[str] = field(default_factory=list, repr=False)
