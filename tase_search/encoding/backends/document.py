"""An encoder whose documents go through another backend's runner; queries and the rest unchanged.

Why a wrapper: the backend is chosen once, at load, and everything that takes an encoder (the
Retriever, the CLI, the evaluation) keeps calling ``encode_document``. The output is the same as
:meth:`tase_search.encoding.encoder.Encoder.encode_document`: the model's passage prompt applied, NFC (and
İ→i for lowercasing tokenizers), batches in length order (padding is the dominant cost on CPU),
L2-normalised float32 rows in input order. A runner that runs batches side by side
(``parallel_batches`` > 1) is given that many at once, the next ones tokenised meanwhile.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from ...text.normalize import normalize_for_model
from ..onnx_runtime import l2_normalize

Runner = Callable[[dict[str, np.ndarray]], np.ndarray]


def _numpy_features(features: dict[str, Any]) -> dict[str, np.ndarray]:
    # tensors only: sentence-transformers' tokenize also returns non-tensor entries
    return {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in features.items() if hasattr(v, "shape")}


class BackendEncoder:
    """``encoder`` with :meth:`encode_document` run by ``runner`` (named ``backend``)."""

    def __init__(self, encoder: Any, runner: Runner, backend: str) -> None:
        self._inner = encoder
        self.runner = runner
        self.backend = backend

    def __getattr__(self, name: str) -> Any:  # everything else is the wrapped encoder's
        return getattr(self.__dict__["_inner"], name)

    @property
    def inner(self) -> Any:
        """The wrapped encoder (the torch path)."""
        return self._inner

    def encode_document(
        self,
        texts: str | Sequence[str],
        *,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        items = [texts] if isinstance(texts, str) else list(texts)
        enc = self._inner
        if not items:
            return np.zeros((0, enc.dimension), dtype=np.float32)
        prompt = enc.passage_prompt or ""
        prepared = [prompt + normalize_for_model(t, lowercase=enc.lowercases) for t in items]
        order = np.argsort([-len(t) for t in prepared], kind="stable")
        out = np.empty((len(prepared), enc.dimension), dtype=np.float32)
        preprocess = getattr(enc.model, "preprocess", None) or enc.model.tokenize
        # a runner's own measured batch size caps the encoder's default; an explicit one is used as given
        bs = batch_size or min(enc.batch_size, getattr(self.runner, "batch_size", None) or enc.batch_size)
        max_tokens = getattr(self.runner, "max_batch_tokens", None)
        batches = [order[start : start + bs] for start in range(0, len(order), bs)]
        workers = min(len(batches), max(1, int(getattr(self.runner, "parallel_batches", 1) or 1)))
        if workers == 1:
            for idx in batches:
                feats = _numpy_features(preprocess([prepared[i] for i in idx]))
                out[idx] = l2_normalize(self._run(feats, max_tokens))
                if progress is not None:
                    progress(len(idx))
            return out
        # the runner runs batches side by side (each on its own thread): tokenise the next batches
        # while it works, at most ``workers`` ahead, and write each result where its rows belong
        with ThreadPoolExecutor(workers, thread_name_prefix="tase-encode") as pool:
            pending: collections.deque[tuple[np.ndarray, Future[np.ndarray]]] = collections.deque()
            for idx in batches:
                feats = _numpy_features(preprocess([prepared[i] for i in idx]))
                pending.append((idx, pool.submit(self._run, feats, max_tokens)))
                while len(pending) > workers or (pending and pending[0][1].done()):
                    self._collect(out, *pending.popleft(), progress)
            while pending:
                self._collect(out, *pending.popleft(), progress)
        return out

    @staticmethod
    def _collect(
        out: np.ndarray, idx: np.ndarray, future: Future[np.ndarray], progress: Callable[[int], None] | None
    ) -> None:
        out[idx] = l2_normalize(future.result())
        if progress is not None:
            progress(len(idx))

    def _run(self, feats: dict[str, np.ndarray], max_tokens: int | None) -> np.ndarray:
        """The runner on ``feats``, in row slices of at most ``max_tokens`` padded tokens (long passages
        run faster in smaller batches; rows are length-sorted, so the first row is the longest)."""
        rows, width = feats["input_ids"].shape
        step = rows if not max_tokens else max(1, min(rows, max_tokens // max(1, width)))
        if step >= rows:
            return self.runner(feats)
        parts = []
        for lo in range(0, rows, step):
            part = {k: v[lo : lo + step] for k, v in feats.items()}
            keep = int(part["attention_mask"].sum(axis=1).max()) if "attention_mask" in part else width
            parts.append(self.runner({k: v[:, :keep] if v.ndim == 2 else v for k, v in part.items()}))
        return np.vstack(parts)

    def __repr__(self) -> str:
        return f"BackendEncoder({self.backend}, {self._inner!r})"
