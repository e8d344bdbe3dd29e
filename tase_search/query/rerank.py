"""Reranking: a cross-encoder reads the query and each candidate passage together and gives the
probability that the passage answers the query.

Why a second stage: the encoder embeds query and passage apart, so two paragraphs of one article
look alike to it; a cross-encoder attends across the pair and tells them apart, at a cost per
candidate, so it reorders only the first N hits of a search. Its output (sigmoid of one logit,
trained with binary cross-entropy on matching and non-matching pairs) is a probability on its own:
comparable across queries, thresholdable.

Speed: pairs are sorted by length and batched, so each batch pads little and few shapes are built;
weights are bf16 where the CPU runs bf16 natively (the encoder's precision rule), else fp32;
``precision="int8"`` quantises the linear layers to int8 (torch dynamic quantisation).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError, ModelError
from ..runtime.config import MAX_RERANK

log = logging.getLogger(__name__)

#: The bundled reranker's registry name.
DEFAULT_RERANKER = "tase-rerank-tr"
#: Whether a reranked hit's score blends the reranker's probability with the first stage's (mean of
#: the two; bench/hybrid.py: TQuAD MRR@10 0.883 → 0.904 with auto's top 20).
BLEND = True


def check_rerank(value: Any) -> int:
    """``value`` as a number of hits to rerank (0: none); a clear error otherwise."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or not 0 <= int(value) <= MAX_RERANK
    ):
        raise InputError(
            f"rerank={value!r} is not valid: give the number of top hits to rerank, 0 to {MAX_RERANK} "
            "(e.g. 20; 0 turns reranking off)"
        )
    return int(value)


class Reranker:
    """A cross-encoder reranker (a Hugging Face sequence-classification model with one output)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        model_id: str,
        *,
        max_length: int = 256,
        batch_size: int = 16,
        blend: bool = BLEND,
        questions_only: bool = False,
    ) -> None:
        num_labels = getattr(model.config, "num_labels", None)
        if num_labels != 1:
            raise ModelError(
                f"{model_id} is not a reranker: it has {num_labels} outputs, a cross-encoder reranker has 1 "
                f"(use {DEFAULT_RERANKER} or another CrossEncoder with one score)"
            )
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.model_id = model_id
        limit = getattr(model.config, "max_position_embeddings", 512) or 512
        self.max_length = max(8, min(int(max_length), int(limit) - 2))
        self.batch_size = max(1, int(batch_size))
        #: whether a hit's score is the mean of the reranker's probability and the first stage's
        #: (when the first stage's is a calibrated probability); the order follows that score
        self.blend = bool(blend)
        #: whether it reads only queries that are questions (:mod:`.question`), as a reranker trained
        #: on questions says in its directory's ``rerank.json`` (``{"queries": "questions"}``)
        self.questions_only = bool(questions_only)
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        spec: str = DEFAULT_RERANKER,
        *,
        precision: str = "auto",
        max_length: int = 256,
        batch_size: int = 16,
        blend: bool = BLEND,
    ) -> Reranker:
        """Load by registered name (``tase-rerank-tr``), local directory or hub id."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from ..encoding.precision import resolve_precision
        from ..models import resolve

        if not isinstance(spec, str) or not spec.strip():
            raise InputError(f"reranker {spec!r} is not valid: give a model name, directory or hub id")
        from .rerank_bundle import is_shared, load_shared

        model_id, location = resolve(spec)
        try:
            if is_shared(location):  # tensors and tokenizer borrowed from the model it was trained from
                model, tokenizer = load_shared(location, torch.float32)
            else:
                tokenizer = AutoTokenizer.from_pretrained(location)
                model = AutoModelForSequenceClassification.from_pretrained(location, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise ModelError(
                f"cannot load reranker {spec!r} from {location}: {exc}; give a CrossEncoder directory, "
                f"a hub id, or {DEFAULT_RERANKER}"
            ) from exc
        if precision == "int8":  # int8 weights for the linear layers, activations quantised per call
            import warnings

            with warnings.catch_warnings():  # torch marks torch.ao deprecated; it is what torch 2.x ships
                warnings.simplefilter("ignore", DeprecationWarning)
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        elif resolve_precision(precision) == "bf16":
            model = model.to(torch.bfloat16)
        return cls(
            model,
            tokenizer,
            model_id,
            max_length=max_length,
            batch_size=batch_size,
            blend=blend,
            questions_only=_reads_questions_only(location),
        )

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """The probability that each passage answers ``query`` (float64, in input order)."""
        import torch

        if not passages:
            return np.zeros(0, dtype=np.float64)
        lengths = [len(p) for p in passages]
        order = sorted(range(len(passages)), key=lambda i: lengths[i])
        out = np.zeros(len(passages), dtype=np.float64)
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                enc = self._encode(query, [passages[i] for i in idx])
                logits = self.model(**enc).logits.float().reshape(-1)
                out[idx] = torch.sigmoid(logits).double().numpy()
        return out

    def _encode(self, query: str, passages: list[str]) -> Any:
        kwargs = {"padding": True, "return_tensors": "pt", "max_length": self.max_length}
        try:
            return self.tokenizer([query] * len(passages), passages, truncation="only_second", **kwargs)
        except Exception:  # noqa: BLE001 - a query longer than the window: cut both sides
            return self.tokenizer([query] * len(passages), passages, truncation="longest_first", **kwargs)

    def rerank(self, query: str, hits: Sequence[Any], *, limit: int | None = None) -> list[Any]:
        """``hits`` ordered by the reranker's probability (the hit's ``score`` and ``rerank_score``),
        the first ``limit`` of them. The passage text that matched is what is scored."""
        hits = list(hits)
        if not hits:
            return []
        probs = self.score(query, [_passage_text(h) for h in hits])
        final = probs
        if self.blend and all(getattr(h, "score_kind", None) == "probability" for h in hits):
            final = (probs + np.asarray([float(h.score) for h in hits], dtype=np.float64)) / 2
        order = sorted(range(len(hits)), key=lambda i: (-final[i], i))
        ranked = [
            dataclasses.replace(
                hits[i],
                score=float(final[i]),
                rerank_score=float(probs[i]),
                score_kind="probability",
                rank=r + 1,
            )
            for r, i in enumerate(order)
        ]
        return ranked[:limit] if limit is not None else ranked


def _reads_questions_only(location: str) -> bool:
    """What the model directory's ``rerank.json`` says about the queries it was trained on."""
    import json
    from pathlib import Path

    path = Path(location) / "rerank.json"
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("queries") == "questions"
    except (OSError, ValueError, AttributeError):
        raise ModelError(f"{path} is not a JSON object naming the queries the reranker reads") from None


def _passage_text(hit: Any) -> str:
    passage = getattr(hit, "passage", None)
    text = getattr(passage, "text", None)
    return str(text if text else hit.text)


_CACHE: dict[tuple[str, str], Reranker] = {}
_CACHE_LOCK = threading.Lock()


def load_reranker(spec: str | None = None, *, precision: str = "auto") -> Reranker:
    """The reranker for ``spec`` (default :data:`DEFAULT_RERANKER`), loaded once per process."""
    key = (spec or DEFAULT_RERANKER, precision)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = Reranker.load(key[0], precision=precision)
        return _CACHE[key]


def resolve_reranker(spec: Any = None, *, precision: str = "auto") -> Any:
    """A loaded reranker for ``spec``: a Reranker (or anything with ``rerank``) as given, else a name,
    directory or hub id loaded once per process; None: the ``reranker`` setting."""
    if spec is not None and not isinstance(spec, str):
        if not callable(getattr(spec, "rerank", None)):
            raise InputError(
                f"reranker {type(spec).__name__} has no rerank(): give a model name or a Reranker"
            )
        return spec
    if spec is None:
        from ..runtime.config import load_settings

        spec = load_settings().reranker
    return load_reranker(spec, precision=precision)


def default_rerank() -> int:
    """How many hits a search reranks when it does not say: the ``rerank`` setting (0: none)."""
    from ..runtime.config import load_settings  # noqa: PLC0415 - settings read per call

    return load_settings().rerank


__all__ = [
    "DEFAULT_RERANKER",
    "MAX_RERANK",
    "Reranker",
    "check_rerank",
    "default_rerank",
    "load_reranker",
    "resolve_reranker",
]
