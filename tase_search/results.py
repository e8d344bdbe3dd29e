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
class Hit:
    """One search result: a document and the passage of it that matched best."""

    id: str
    score: float
    text: str
    metadata: dict[str, Any]
    passage: PassageRef
    source: str | None = None
    rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id": self.id,
            "score": round(float(self.score), 6),
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
        }


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
