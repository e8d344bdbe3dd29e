"""The sentence encoder: load a model, turn queries and documents into unit vectors.

Wraps sentence-transformers so the rest of tase-search sees one small surface:
``encode_query`` / ``encode_document`` return L2-normalised float32 arrays (cosine == inner
product, which is what the index store assumes). Inputs are NFC-normalised, batched in
length order (padding is the dominant cost on CPU), and run under bf16 autocast on CPUs
with native bf16 (AVX512-BF16 / AMX), fp32 elsewhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from .config import PRECISIONS
from .errors import InputError, ModelError
from .models import resolve
from .text import normalize_for_model

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


def cpu_supports_bf16() -> bool:
    """True when this CPU runs bf16 matmuls natively (AVX512-BF16 or AMX), where autocast pays.

    On CPUs without it bf16 is emulated and slower than fp32, so ``precision="auto"`` falls back.
    ``TASE_SEARCH_FORCE_NO_BF16=1`` forces the fallback (used by tests to cover both paths).
    """
    if os.environ.get("TASE_SEARCH_FORCE_NO_BF16") == "1":
        return False
    try:
        import torch

        fn = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        if fn is not None and not fn():
            return False
    except Exception:  # noqa: BLE001 - any failure means "do not rely on it"
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def resolve_precision(precision: str) -> str:
    """Map ``auto`` to ``bf16`` or ``fp32`` for this machine; validate the others."""
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return precision


def load_sentence_transformer(
    location: str, *, device: str = "cpu", trust_remote_code: bool = False
) -> SentenceTransformer:
    """Load a SentenceTransformer from a directory or hub id.

    A plain Hugging Face checkpoint (no ``modules.json``) becomes transformer + mean pooling;
    T5-family checkpoints load encoder-only (sentence-transformers picks ``T5EncoderModel``),
    which is how the paper uses flan-t5-small. ``trust_remote_code`` stays off unless asked for.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from sentence_transformers import SentenceTransformer

    _quiet_transformers()

    path = Path(location)
    try:
        if path.is_dir() and not (path / "modules.json").is_file():
            if not (path / "config.json").is_file():
                raise ModelError(
                    f"{location} has neither modules.json nor config.json: not a model directory"
                )
            return _plain_checkpoint(location, device=device, trust_remote_code=trust_remote_code)
        return SentenceTransformer(location, device=device, trust_remote_code=trust_remote_code)
    except ModelError:
        raise
    except OSError as exc:
        raise ModelError(
            f"could not load model {location!r}: {exc}. A hub id needs network access "
            "(or a warm Hugging Face cache); offline, use a registered name or a local directory."
        ) from exc
    except Exception as exc:  # custom code refused, pickled weights refused, broken files: the model's fault
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ModelError(f"could not load model {location!r}: {type(exc).__name__}: {first[:300]}") from exc


def _quiet_transformers() -> None:
    """Weight-loading progress bars and notices belong to transformers' own CLI, not ours."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except Exception:  # noqa: BLE001 - cosmetic only
        pass


def _plain_checkpoint(location: str, *, device: str, trust_remote_code: bool) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.base.modules import Transformer
        from sentence_transformers.sentence_transformer.modules import Pooling
    except ImportError:  # sentence-transformers 3.x - 5.x
        from sentence_transformers.models import Pooling, Transformer  # type: ignore[no-redef]

    tr = Transformer(location, model_args={"trust_remote_code": trust_remote_code})
    dim = tr.get_word_embedding_dimension() if hasattr(tr, "get_word_embedding_dimension") else None
    if dim is None:
        dim = (
            tr.auto_model.config.d_model
            if hasattr(tr.auto_model.config, "d_model")
            else tr.auto_model.config.hidden_size
        )
    pool = Pooling(dim, pooling_mode="mean")
    return SentenceTransformer(modules=[tr, pool], device=device)


def weights_fingerprint(model: Any) -> str:
    """A stable hash of the loaded parameters and the tokenizer vocabulary.

    Recorded in index manifests so an index is never searched with vectors from other weights
    (same name, retrained model = different fingerprint). Hashes parameter bytes as loaded, so
    fp16-on-disk and fp32 copies of the same weights agree.
    """
    import torch

    h = hashlib.blake2b(digest_size=16)
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict().items()):
            h.update(name.encode())
            t = tensor.detach().to("cpu")
            if t.is_floating_point():
                t = t.to(torch.float16)
            h.update(t.contiguous().numpy().tobytes())
    tok = getattr(model, "tokenizer", None)
    if tok is not None:
        h.update(str(len(tok)).encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Passage:
    """A slice of a document: ``text[start:end]`` (character offsets), number ``index`` of ``count``."""

    start: int
    end: int
    index: int
    count: int


@runtime_checkable
class EncoderLike(Protocol):
    """What the index store needs from an encoder (tests use a deterministic fake)."""

    model_id: str

    @property
    def fingerprint(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_seq_length(self) -> int: ...

    def encode_query(self, texts: str | Sequence[str], *, batch_size: int | None = None) -> np.ndarray: ...

    def encode_document(
        self,
        texts: str | Sequence[str],
        *,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray: ...

    def split_passages(self, text: str, *, overlap: int = 32) -> list[Passage]: ...


class Encoder:
    """Encodes queries and documents with one sentence-transformers model.

    >>> enc = Encoder.load("default")                     # doctest: +SKIP
    >>> enc.encode_query(["futbol maçı"]).shape           # doctest: +SKIP
    (1, 384)
    """

    def __init__(
        self,
        model: SentenceTransformer,
        model_id: str,
        *,
        precision: str = "auto",
        batch_size: int = 64,
        max_seq_length: int | None = None,
    ) -> None:
        self.model = model
        self.model_id = model_id
        self.precision = resolve_precision(precision)
        if batch_size < 1:
            raise InputError(f"batch size {batch_size} must be >= 1")
        self.batch_size = batch_size
        if max_seq_length:
            model.max_seq_length = max_seq_length
        self.model.eval()
        self._prompts: dict[str, str] = dict(getattr(model, "prompts", {}) or {})

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
    ) -> Encoder:
        """Load by registered name, local directory or hub id (see :func:`tase_search.models.resolve`)."""
        model_id, location = resolve(spec)
        model = load_sentence_transformer(location, device=device, trust_remote_code=trust_remote_code)
        return cls(model, model_id, precision=precision, batch_size=batch_size, max_seq_length=max_seq_length)

    # -------------------------------------------------------------- properties
    @cached_property
    def fingerprint(self) -> str:
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
        tok = self.tokenizer
        if getattr(tok, "do_lower_case", False):
            return True
        try:
            return tok("A")["input_ids"] == tok("a")["input_ids"]
        except Exception:  # noqa: BLE001
            return False

    # ---------------------------------------------------------------- encoding
    def encode_query(self, texts: str | Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """Encode search queries (uses the model's ``query`` prompt if it defines one)."""
        return self._encode(_as_list(texts), self._prompts.get("query"), batch_size=batch_size)

    def encode_document(
        self,
        texts: str | Sequence[str],
        *,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Encode documents or passages (uses the model's ``document`` prompt if it defines one)."""
        prompt = self._prompts.get("document") or self._prompts.get("passage")
        return self._encode(_as_list(texts), prompt, batch_size=batch_size, progress=progress)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The autocast context for this encoder's precision (a no-op for fp32)."""
        import torch

        if self.precision == "bf16":
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
        prepared = [normalize_for_model(t, lowercase=self.lowercases) for t in texts]
        if prompt:
            prepared = [prompt + t for t in prepared]
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

    def _iter_passages(self, text: str, overlap: int) -> Iterator[Passage]:
        limit = max(8, self.max_seq_length - 2)  # room for [CLS]/[SEP] (or </s>)
        if len(text) <= limit:  # fewer characters than the limit: fewer tokens too
            yield Passage(0, len(text), 0, 1)
            return
        enc = self.tokenizer(
            normalize_for_model(text, lowercase=self.lowercases),
            add_special_tokens=False,
            return_offsets_mapping=True,
            truncation=False,
            verbose=False,
        )
        offsets = enc["offset_mapping"]
        if len(offsets) <= limit:
            yield Passage(0, len(text), 0, 1)
            return
        overlap = min(overlap, limit // 2)
        step = limit - overlap
        starts = list(range(0, len(offsets), step))
        while len(starts) > 1 and starts[-1] + overlap >= len(offsets):  # last window adds nothing new
            starts.pop()
        for i, s in enumerate(starts):
            e = min(s + limit, len(offsets)) - 1
            cstart = offsets[s][0] if i else 0
            cend = offsets[e][1] if i < len(starts) - 1 else len(text)
            yield Passage(int(cstart), int(cend), i, len(starts))


def _as_list(texts: str | Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InputError(f"text #{i} is {type(t).__name__}, not str")
    return out
