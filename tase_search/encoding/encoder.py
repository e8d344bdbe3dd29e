"""The sentence encoder: one model, queries and documents as unit vectors.

Wraps a sentence-transformers model (or its light twin, :mod:`.light_model`) so the rest of tase-search
sees the :class:`~.protocols.DocumentEncoder` surface: ``encode_query`` / ``encode_document`` return
L2-normalised float32 arrays (cosine == inner product, which is what the index store assumes). Inputs
are NFC-normalised, batched in length order (padding is the dominant cost on CPU), and run with the
weights cast to bf16 on CPUs with native bf16 (:mod:`.precision`).

Every backend is chosen once, at construction: the loader (:func:`.loading.load_model`), the query
path (``query_backend``: PyTorch or an ONNX Runtime graph, :mod:`.onnx_runtime`) and the document path
(``backend``, :mod:`tase_search.encoding.backends`). Nothing is exported to disk here; the index keeps the query
graph it was built with (:mod:`.query_bundle`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError, ModelError
from ..models import resolve
from ..runtime.config import QUERY_BACKENDS
from ..text.normalize import normalize_for_model
from .fingerprint import weights_fingerprint
from .light_model import LightSentenceModel
from .loading import load_model
from .onnx_runtime import MAX_BATCH as ONNX_MAX_BATCH
from .onnx_runtime import PROBE_TEXTS, OnnxQueryEncoder, l2_normalize, open_checked
from .passages import Passage, iter_passages, prompt_tokens, tokenizer_lowercases
from .precision import resolve_precision, to_bf16

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


class Encoder:
    """Encodes queries and documents with one sentence-transformers model (or its light twin).

    ``precision`` (see :func:`resolve_precision`): ``auto`` is ``bf16`` on CPUs with native bf16
    (:func:`cpu_supports_bf16`) and ``fp32`` elsewhere; ``bf16`` runs the model with its weights
    cast to bf16; ``bf16-autocast`` keeps fp32 weights under ``torch.autocast`` (the previous
    default, kept for comparison); ``fp32`` is plain fp32.

    Why bf16 weights and not autocast: autocast converts the fp32 weights to bf16 inside the
    forward pass (at best once per encode call, from its cast cache) and casts every activation to
    bf16 before each matmul and back to fp32 around the ops it runs in fp32; with the weights
    stored in bf16 those per-op casts disappear and every op reads half the memory. On AVX512-BF16 without AMX, where bf16 peaks at about 2x fp32, this measured 2.13x and
    1.91x plain fp32 ``SentenceTransformer.encode`` against 1.51x and 1.71x for autocast, with
    embeddings at cosine >= 0.9998 to fp32 and tatoeba retrieval accuracy unchanged (within 0.1
    point). Outputs are float32 either way (pooled in fp32, L2-normalised in fp32).

    With bf16, :attr:`fingerprint` is computed from the weights *before* the cast (so costs a hash of
    the weights at construction) and cached: an index built on a bf16 machine opens on an fp32
    machine and vice versa. The model passed in is never modified by the cast: ``copy_model=True``
    (the default) casts a copy and leaves the caller's model in fp32 (its ``eval()`` mode and
    ``max_seq_length`` are set on whichever model the encoder runs, as before);
    :meth:`load` passes ``copy_model=False`` for the model it loaded itself, casting it in place.
    Training never goes through :class:`Encoder` (it loads with :func:`load_sentence_transformer`,
    fp32 master weights under the trainer's own autocast).

    >>> enc = Encoder.load("default")                     # doctest: +SKIP
    >>> enc.encode_query(["futbol maçı"]).shape           # doctest: +SKIP
    (1, 384)
    """

    def __init__(
        self,
        model: SentenceTransformer | LightSentenceModel,
        model_id: str,
        *,
        precision: str = "auto",
        batch_size: int = 64,
        max_seq_length: int | None = None,
        copy_model: bool = True,
        query_backend: str = "auto",
        query_graph: str | Path | None = None,
    ) -> None:
        self.model_id = model_id
        self.precision = resolve_precision(precision)
        if batch_size < 1:
            raise InputError(f"batch size {batch_size} must be >= 1")
        if query_backend not in QUERY_BACKENDS:
            raise InputError(f"query backend {query_backend!r} is not one of {', '.join(QUERY_BACKENDS)}")
        self.batch_size = batch_size
        self.query_backend = query_backend
        if self.precision == "bf16":
            # The fingerprint names the weights as loaded (fp32 or fp16 on disk), not their bf16 cast.
            self.__dict__["fingerprint"] = weights_fingerprint(model)
            model = to_bf16(model, copy_model=copy_model)
        self.model = model
        if max_seq_length:
            model.max_seq_length = max_seq_length
        self.model.eval()
        self._prompts: dict[str, str] = dict(getattr(model, "prompts", {}) or {})
        self._onnx = self._choose_query_path(None if query_graph is None else Path(query_graph))

    def _choose_query_path(self, graph: Path | None) -> OnnxQueryEncoder | None:
        """The ONNX Runtime session queries run on, or None for PyTorch; decided here, once.

        ``onnx``: the graph file ``graph`` when it is given and agrees with PyTorch, else one exported
        into memory (a few seconds; nothing is written); ModelError when ONNX Runtime cannot be used.
        ``auto``: the graph file when it is given and usable, else PyTorch (nothing is exported: the
        index's query bundle is the torch-free path, :mod:`.query_bundle`).
        """
        if self.query_backend == "torch":
            return None
        if self.query_backend == "onnx":
            return open_checked(self.model, self.model_id, self.onnx_agreement, graph=graph)
        if graph is None:
            return None
        try:
            return open_checked(
                self.model, self.model_id, self.onnx_agreement, graph=graph, export_missing=False
            )
        except ModelError as exc:
            log.info("queries run on PyTorch: %s", exc)
            return None

    # ----------------------------------------------------------------- loading
    @classmethod
    def load(
        cls,
        spec: str = "default",
        *,
        precision: str = "auto",
        device: str = "cpu",
        batch_size: int = 64,
        max_seq_length: int | None = None,
        trust_remote_code: bool = False,
        loader: str | None = None,
        query_backend: str = "auto",
        query_graph: str | Path | None = None,
        backend: str = "auto",
        build_backend: bool = False,
        threads: int | None = None,
        stage: Callable[[str], object] | None = None,
    ) -> Encoder:
        """Load by registered name, local directory or hub id (see :func:`tase_search.models.resolve`).

        ``loader`` (default ``$TASE_SEARCH_LOADER``, else ``auto``): see :func:`.loading.load_model`;
        both loaders give the same vectors and the same :attr:`fingerprint`. ``query_backend`` and
        ``query_graph``: see :meth:`_choose_query_path`. ``backend`` is the document backend
        (:data:`tase_search.encoding.backends.BACKENDS`), chosen here for every entry point (CLI, Retriever, HTTP,
        integrations, Ray workers): ``auto`` picks the fast one for this CPU (bf16 weights where the CPU
        has native bf16; else a converted int8 model when one exists, see :func:`~tase_search.encoding.backends.choose`),
        ``torch`` is this encoder's own path, any other name wraps it
        (:func:`tase_search.encoding.backends.with_backend`). ``build_backend=True`` (write paths that may take
        seconds once per weights, such as ``tase-search index``) converts the weights when no converted
        model exists yet; without it a missing one means the torch path under ``auto``. ``stage(text)``
        hears of the slow step a backend other than torch takes (a progress reporter's ``stage``).
        A ``max_seq_length`` the model has no positions for is refused before any conversion.
        """
        model_id, location = resolve(spec)
        if not Path(location).is_dir():  # from the hub: fail in seconds, naming the fix, not after retries
            from ..runtime.preflight import check_model

            check_model(spec)
        model = load_model(location, loader=loader, device=device, trust_remote_code=trust_remote_code)
        encoder = cls(
            model,
            model_id,
            precision=precision,
            batch_size=batch_size,
            max_seq_length=max_seq_length,
            copy_model=False,  # ours: cast in place, no second copy of the weights
            query_backend=query_backend,
            query_graph=query_graph,
        )
        from ..runtime.preflight import check_max_seq_length

        check_max_seq_length(encoder, max_seq_length)
        if backend != "torch":
            from .backends import choose, with_backend

            if stage is not None and (chosen := choose(backend, encoder)) != "torch":
                stage(f"preparing document backend {chosen}")
            return with_backend(encoder, backend, build=build_backend, threads=threads)
        return encoder

    @property
    def loader(self) -> str:
        """``light`` when the model is a :class:`LightSentenceModel`, else ``st``."""
        return "light" if isinstance(self.model, LightSentenceModel) else "st"

    # -------------------------------------------------------------- properties
    @cached_property
    def fingerprint(self) -> str:
        """:func:`weights_fingerprint` of the model's weights as loaded (before any bf16 cast)."""
        return weights_fingerprint(self.model)

    @property
    def dimension(self) -> int:
        fn = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        dim = fn()
        if dim is None:  # pragma: no cover - exotic module stacks
            dim = int(self._encode(["x"], None).shape[1])
        return int(dim)

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length or 512)

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @cached_property
    def lowercases(self) -> bool:
        """Whether the tokenizer lowercases (then İ is folded to i before it, see text.py)."""
        return tokenizer_lowercases(self.tokenizer)

    @property
    def query_prompt(self) -> str | None:
        """The text put before every query (e5: ``"query: "``), or None."""
        return self._prompts.get("query") or None

    @property
    def passage_prompt(self) -> str | None:
        """The text put before every document or passage (e5: ``"passage: "``), or None."""
        return self._prompts.get("document") or self._prompts.get("passage") or None

    @property
    def active_query_backend(self) -> str:
        """What queries run on, as chosen at construction: ``onnx`` or ``torch``."""
        return "onnx" if self._onnx is not None else "torch"

    def onnx_query_encoder(self) -> OnnxQueryEncoder | None:
        """The checked ONNX Runtime session queries run on (chosen at construction), or None for PyTorch."""
        return self._onnx

    # ---------------------------------------------------------------- encoding
    def encode_query(self, texts: str | Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """Encode search queries (uses the model's ``query`` prompt if it defines one).

        With an ONNX query path (see :meth:`_choose_query_path`), ``onnx`` sends every batch to it and
        ``auto`` batches of up to 16 queries (7.0 vs 8.5 ms p50 for one query in ``bench/end_to_end.py``;
        larger batches are faster on PyTorch's bf16 weights).
        """
        items = _as_list(texts)
        runner = self._onnx
        if items and runner is not None and (self.query_backend == "onnx" or len(items) <= ONNX_MAX_BATCH):
            try:
                return self.encode_query_with(runner, items, batch_size=batch_size)
            except Exception as exc:
                raise ModelError(
                    f"ONNX Runtime failed on a query: {type(exc).__name__}: {exc}; "
                    "load the encoder with query_backend='torch' (--query-backend torch)"
                ) from exc
        return self._encode(items, self._prompts.get("query"), batch_size=batch_size)

    def encode_query_with(
        self,
        runner: Callable[[dict[str, Any]], np.ndarray],
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Queries (with the query prompt) through ``runner``, an ONNX session over this encoder's model."""
        return self._encode_onnx(runner, list(texts), self._prompts.get("query"), batch_size=batch_size)

    def onnx_agreement(self, runner: Callable[[dict[str, Any]], np.ndarray]) -> float:
        """Worst cosine between ONNX and PyTorch embeddings of the probe texts, one by one and batched."""
        probes = list(PROBE_TEXTS)
        ref = self._encode(probes, None)
        got = np.vstack([self._encode_onnx(runner, [p], None) for p in probes])
        batched = self._encode_onnx(runner, probes, None)
        if not (np.isfinite(got).all() and np.isfinite(batched).all()):
            return -1.0
        return float(min((ref * got).sum(1).min(), (ref * batched).sum(1).min()))

    def write_query_bundle(
        self, index_dir: str | Path, *, stage: Callable[[str], object] | None = None
    ) -> Path | None:
        """Write (or keep) the torch-free query bundle in ``index_dir``: the write path's call, see
        :func:`.query_bundle.write_bundle`. Nothing under ``query_backend="torch"``."""
        if self.query_backend == "torch":
            return None
        from .query_bundle import write_bundle

        return write_bundle(self, index_dir, stage=stage)

    def _prepare(self, texts: list[str], prompt: str | None) -> list[str]:
        prepared = [normalize_for_model(t, lowercase=self.lowercases) for t in texts]
        if prompt:
            prepared = [prompt + t for t in prepared]
        return prepared

    def _encode_onnx(
        self,
        runner: Callable[[dict[str, Any]], np.ndarray],
        texts: list[str],
        prompt: str | None,
        *,
        batch_size: int | None = None,
    ) -> np.ndarray:
        prepared = self._prepare(texts, prompt)
        bs = min(batch_size or ONNX_MAX_BATCH, ONNX_MAX_BATCH)
        preprocess = getattr(self.model, "preprocess", None) or self.model.tokenize
        parts = [runner(preprocess(prepared[i : i + bs])) for i in range(0, len(prepared), bs)]
        return l2_normalize(np.vstack(parts))

    def encode_document(
        self,
        texts: str | Sequence[str],
        *,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Encode documents or passages (uses the model's ``document`` prompt if it defines one)."""
        return self._encode(_as_list(texts), self.passage_prompt, batch_size=batch_size, progress=progress)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The autocast context for this encoder's precision: bf16 autocast for ``bf16-autocast``,
        a no-op otherwise (``bf16`` runs bf16 weights directly, ``fp32`` plain fp32)."""
        import torch

        if self.precision == "bf16-autocast":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _encode(
        self,
        texts: list[str],
        prompt: str | None,
        *,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        import torch

        bs = batch_size or self.batch_size
        dim = self.dimension
        if not texts:
            return np.zeros((0, dim), dtype=np.float32)
        prepared = self._prepare(texts, prompt)
        order = np.argsort([-len(t) for t in prepared], kind="stable")
        out = np.empty((len(prepared), dim), dtype=np.float32)
        preprocess = getattr(self.model, "preprocess", None) or self.model.tokenize
        device = self.model.device
        with torch.inference_mode(), self.autocast():
            for start in range(0, len(order), bs):
                idx = order[start : start + bs]
                feats = preprocess([prepared[i] for i in idx])
                feats = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in feats.items()}
                emb = self.model(feats)["sentence_embedding"].float()
                emb = torch.nn.functional.normalize(emb, p=2, dim=1)
                out[idx] = emb.cpu().numpy()
                if progress is not None:
                    progress(len(idx))
        return out

    # --------------------------------------------------------------- passages
    def split_passages(self, text: str, *, overlap: int = 32) -> list[Passage]:
        """Split ``text`` into passages that fit the model's window, with ``overlap`` tokens shared.

        A document that fits is one passage. Longer ones are cut on token boundaries (using the
        fast tokenizer's offsets), so nothing past ``max_seq_length`` is silently dropped.
        """
        return list(self._iter_passages(text, overlap))

    @cached_property
    def _passage_prompt_tokens(self) -> int:
        return prompt_tokens(self.tokenizer, self.passage_prompt)

    def _iter_passages(self, text: str, overlap: int) -> Iterator[Passage]:
        return iter_passages(
            self.tokenizer,
            text,
            max_seq_length=self.max_seq_length,
            reserved=self._passage_prompt_tokens,
            lowercase=self.lowercases,
            overlap=overlap,
        )


def _as_list(texts: str | Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InputError(f"text #{i} is {type(t).__name__}, not str")
    return out
