"""The sentence encoder: load a model, turn queries and documents into unit vectors.

Wraps sentence-transformers so the rest of tase-search sees one small surface:
``encode_query`` / ``encode_document`` return L2-normalised float32 arrays (cosine == inner
product, which is what the index store assumes). Inputs are NFC-normalised, batched in
length order (padding is the dominant cost on CPU), and run with the weights cast to bf16 on
CPUs with native bf16 (AVX512-BF16 / AMX), fp32 elsewhere (see :class:`Encoder` for why bf16
weights rather than autocast, and for the fingerprint and model-ownership rules that come with it).

For inference, a plain sentence-transformers directory (Transformer -> mean/cls/max Pooling ->
optional Normalize, safetensors weights) is rebuilt on transformers alone by
:class:`LightSentenceModel`: importing sentence-transformers costs seconds (it pulls in sklearn
and more) on every cold ``tase-search query``. Anything else loads through sentence-transformers;
``TASE_SEARCH_LOADER=st|light|auto`` (or ``Encoder.load(loader=...)``) overrides the choice.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import inspect
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from .config import PRECISIONS, QUERY_BACKENDS
from .errors import InputError, ModelError
from .models import resolve
from .onnx_query import MAX_BATCH as ONNX_MAX_BATCH
from .onnx_query import MIN_PROBE_COSINE, PROBE_TEXTS, l2_normalize
from .text import normalize_for_model

if TYPE_CHECKING:  # pragma: no cover
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


def cpu_supports_bf16() -> bool:
    """True when this CPU runs bf16 matmuls natively (AVX512-BF16 or AMX), where bf16 pays.

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
    """Map ``auto`` to ``bf16`` or ``fp32`` for this machine; validate the others.

    ``bf16`` (bf16 weights) and ``bf16-autocast`` (fp32 weights under bf16 autocast, the behaviour
    before bf16 weights became the default) are taken as asked for, even on a CPU without native
    bf16, where they run emulated and slower than fp32.
    """
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


# ----------------------------------------------------------------------------- light loader
#: Values of ``TASE_SEARCH_LOADER`` / ``Encoder.load(loader=...)``: ``auto`` uses the light loader when
#: the model directory allows it and sentence-transformers otherwise; ``st`` always uses
#: sentence-transformers; ``light`` requires the light loader (a ModelError says why it cannot).
LOADERS = ("auto", "st", "light")
LOADER_ENV = "TASE_SEARCH_LOADER"

_LIGHT_POOLING_MODES = ("mean", "cls", "max")
# sentence-transformers' pre-v5 boolean pooling keys, in its concatenation order.
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
# Encoder-decoder checkpoints: sentence-transformers loads only the encoder. The T5 family is
# reproduced here; the other types it special-cases stay with it.
_T5_MODEL_TYPES = frozenset({"t5", "mt5", "umt5"})
_T5_ENCODERS = (
    ("T5Config", "T5EncoderModel"),
    ("MT5Config", "MT5EncoderModel"),
    ("UMT5Config", "UMT5EncoderModel"),
)
_ST_SPECIAL_MODEL_TYPES = frozenset(
    {
        "longt5", "udop", "prophetnet", "switch_transformers", "blenderbot", "blenderbot-small",
        "m2m_100", "pegasus", "pegasus_x", "moonshine", "whisper", "marian", "t5gemma", "t5gemma2",
        "t5gemma2_text",
    }
)  # fmt: skip
_TEXT_MODALITY = {"text": {"method": "forward", "method_output_name": "last_hidden_state"}}
_LEGACY_SBERT_CONFIGS = (
    "sentence_roberta_config.json", "sentence_distilbert_config.json", "sentence_camembert_config.json",
    "sentence_albert_config.json", "sentence_xlm-roberta_config.json", "sentence_xlnet_config.json",
)  # fmt: skip
# Files that make sentence-transformers load a processor (multimodal) instead of a bare tokenizer,
# or a PEFT adapter instead of plain weights.
_NOT_PLAIN_TEXT_FILES = (
    "adapter_config.json", "processor_config.json", "preprocessor_config.json",
    "video_preprocessor_config.json",
)  # fmt: skip
_KWARGS_KEYS = (
    "model_args",
    "tokenizer_args",
    "config_args",
    "model_kwargs",
    "processor_kwargs",
    "config_kwargs",
)
# Feature keys that are sentence-transformers bookkeeping, never model inputs.
_NON_MODEL_FEATURES = frozenset(
    {"modality", "prompt_length", "num_images_per_sample", "num_videos_per_sample"}
)
_FORWARD_SAFETY_NET = frozenset(
    {"input_ids", "attention_mask", "token_type_ids", "inputs_embeds", "return_dict"}
)


def loader_choice(loader: str | None = None) -> str:
    """The loader to use: the argument, else ``$TASE_SEARCH_LOADER``, else ``auto``."""
    value = loader if loader is not None else os.environ.get(LOADER_ENV, "")
    value = (value or "auto").strip().lower()
    if value not in LOADERS:
        where = "loader" if loader is not None else LOADER_ENV
        raise InputError(f"{where} {value!r} is not one of {', '.join(LOADERS)}")
    return value


@dataclass(frozen=True)
class LightLayout:
    """What :class:`LightSentenceModel` needs from a plain sentence-transformers directory."""

    root: Path
    transformer_dir: Path
    max_seq_length: int | None
    do_lower_case: bool
    pooling_mode: str
    embedding_dimension: int
    normalize: bool
    prompts: dict[str, str]


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _st_class(ref: Any, name: str) -> bool:
    """``ref`` is a sentence-transformers class called ``name`` (any of its module paths, old or new)."""
    return (
        isinstance(ref, str) and ref.startswith("sentence_transformers.") and ref.rsplit(".", 1)[-1] == name
    )


def _sub_dir(root: Path, rel: Any) -> Path | None:
    if not isinstance(rel, str) or Path(rel).is_absolute() or ".." in Path(rel).parts:
        return None
    return root / rel if rel else root


def _empty_kwargs(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, dict) and not {k for k in value if k != "trust_remote_code"}


def inspect_light_layout(location: str | os.PathLike[str]) -> tuple[LightLayout | None, str]:
    """``(layout, "")`` when ``location`` is a directory the light loader reproduces exactly, else
    ``(None, reason)``. Reads a few JSON files; imports nothing heavy."""
    try:
        return _inspect_light_layout(Path(location))
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:  # unreadable or odd JSON
        return None, f"unreadable model files ({type(exc).__name__}: {exc})"


def _inspect_light_layout(root: Path) -> tuple[LightLayout | None, str]:
    if not root.is_dir():
        return None, "not a local directory"
    if not (root / "modules.json").is_file():
        return None, "no modules.json"
    modules = _read_json(root / "modules.json")
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        return None, "modules.json is not a list of modules"
    types = [m.get("type") for m in modules]
    if not (
        len(modules) in (2, 3)
        and _st_class(types[0], "Transformer")
        and _st_class(types[1], "Pooling")
        and (len(modules) == 2 or _st_class(types[2], "Normalize"))
    ):
        return None, f"modules {types} are not Transformer -> Pooling [-> Normalize]"
    tdir = _sub_dir(root, modules[0].get("path", ""))
    pdir = _sub_dir(root, modules[1].get("path", ""))
    ndir = _sub_dir(root, modules[2].get("path", "")) if len(modules) == 3 else root
    if tdir is None or pdir is None or ndir is None or not tdir.is_dir():
        return None, "a module path is not a subdirectory"
    if len(modules) == 3 and (ndir / "config.json").is_file() and ndir != tdir:
        norm = _read_json(ndir / "config.json")
        if (
            not isinstance(norm, dict)
            or set(norm) - {"module_input_name", "module_output_name"}
            or norm.get("module_input_name", "sentence_embedding") != "sentence_embedding"
            or norm.get("module_output_name") not in ("sentence_embedding", None)
        ):
            return None, f"Normalize config {norm!r} is not the sentence-embedding default"

    # -- the Transformer module
    sbert: dict[str, Any] = {}
    if (tdir / "sentence_bert_config.json").is_file():
        sbert = _read_json(tdir / "sentence_bert_config.json")
    elif any((tdir / name).is_file() for name in _LEGACY_SBERT_CONFIGS):
        return None, "legacy sentence_*_config.json"
    if not isinstance(sbert, dict):
        return None, "sentence_bert_config.json is not an object"
    for key, value in sbert.items():
        ok = {
            "max_seq_length": value is None
            or (isinstance(value, int) and not isinstance(value, bool) and value > 0),
            "do_lower_case": isinstance(value, bool),
            "transformer_task": value == "feature-extraction",
            "modality_config": value == _TEXT_MODALITY,
            "module_output_name": value == "token_embeddings",
            "unpad_inputs": value in (None, False),
            "processing_kwargs": not value,
            "query_length": value is None,
            "document_length": value is None,
            "query_expansion": value is None,
        }.get(key, key in _KWARGS_KEYS and _empty_kwargs(value))
        if not ok:
            return None, f"sentence_bert_config.json sets {key}={value!r}"
    if not (tdir / "config.json").is_file():
        return None, "no config.json"
    config = _read_json(tdir / "config.json")
    if not isinstance(config, dict):
        return None, "config.json is not an object"
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        return None, "config.json has no model_type"
    if "auto_map" in config:
        return None, "config.json maps custom code (auto_map)"
    if config.get("quantization_config"):
        return None, "quantized weights"
    if model_type in _ST_SPECIAL_MODEL_TYPES or (
        config.get("is_encoder_decoder") and model_type not in _T5_MODEL_TYPES
    ):
        return None, f"encoder-decoder model type {model_type!r}"
    if not ((tdir / "model.safetensors").is_file() or (tdir / "model.safetensors.index.json").is_file()):
        return None, "weights are not safetensors"
    for name in _NOT_PLAIN_TEXT_FILES:
        if (tdir / name).exists():
            return None, f"{name} present"
    if (tdir / "tokenizer_config.json").is_file():
        tok_cfg = _read_json(tdir / "tokenizer_config.json")
        if not isinstance(tok_cfg, dict) or "auto_map" in tok_cfg or tok_cfg.get("processor_class"):
            return None, "tokenizer_config.json names custom code or a processor"

    # -- the Pooling module
    if not (pdir / "config.json").is_file():
        return None, "no pooling config"
    pool = dict(_read_json(pdir / "config.json"))
    legacy = [k for k in _LEGACY_POOLING_KEYS if k in pool]
    if legacy and "pooling_mode" not in pool:
        modes = tuple(mode for key, mode in _LEGACY_POOLING_KEYS.items() if pool.get(key)) or ("mean",)
        pool["pooling_mode"] = modes[0] if len(modes) == 1 else list(modes)
    for key in legacy:
        del pool[key]
    if "word_embedding_dimension" in pool:
        pool.setdefault("embedding_dimension", pool.pop("word_embedding_dimension"))
    unknown = set(pool) - {"embedding_dimension", "pooling_mode", "include_prompt"}
    if unknown:
        return None, f"pooling config sets {sorted(unknown)}"
    mode = pool.get("pooling_mode", "mean")
    if isinstance(mode, list) and len(mode) == 1:
        mode = mode[0]
    if mode not in _LIGHT_POOLING_MODES:
        return None, f"pooling mode {mode!r}"
    if pool.get("include_prompt", True) is not True:
        return None, "pooling excludes the prompt"
    dim = pool.get("embedding_dimension")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0:
        return None, "pooling config has no embedding dimension"

    # -- model-level settings
    prompts: dict[str, str] = {}
    if (root / "config_sentence_transformers.json").is_file():
        top = _read_json(root / "config_sentence_transformers.json")
        if not isinstance(top, dict):
            return None, "config_sentence_transformers.json is not an object"
        for key, value in top.items():
            ok = {
                "__version__": True,
                "model_type": value == "SentenceTransformer",
                "prompts": isinstance(value, dict),
                "default_prompt_name": True,  # only SentenceTransformer.encode reads it; Encoder does not
                "similarity_fn_name": True,
                "truncate_dim": value is None,
            }.get(key, False)
            if not ok:
                return None, f"config_sentence_transformers.json sets {key}={value!r}"
        prompts = {k: v for k, v in (top.get("prompts") or {}).items() if isinstance(v, str)}

    return (
        LightLayout(
            root=root,
            transformer_dir=tdir,
            max_seq_length=sbert.get("max_seq_length"),
            do_lower_case=bool(sbert.get("do_lower_case", False)),
            pooling_mode=mode,
            embedding_dimension=dim,
            normalize=len(modules) == 3,
            prompts=prompts,
        ),
        "",
    )


class LightSentenceModel:
    """A sentence-transformers Transformer -> Pooling [-> Normalize] stack on transformers alone.

    Inference only, and only the surface :class:`Encoder` uses: ``tokenizer``, ``max_seq_length``,
    ``device``, ``eval()``, ``state_dict()``, ``preprocess(texts)``, ``__call__(features)`` ->
    ``{"sentence_embedding": ...}``, ``get_sentence_embedding_dimension()`` and ``prompts``. Loading
    mirrors sentence-transformers 6 step for step (AutoConfig with ``use_cache`` off, AutoModel or the
    T5 encoder, AutoTokenizer with ``model_max_length`` from ``sentence_bert_config.json`` or capped at
    ``max_position_embeddings``, a Lowercase normalizer for ``do_lower_case``) and pooling is its
    Pooling code, so vectors agree with it. Never trusts remote code. Training keeps using
    :func:`load_sentence_transformer`.
    """

    def __init__(
        self,
        auto_model: Any,
        tokenizer: Any,
        *,
        pooling_mode: str = "mean",
        embedding_dimension: int | None = None,
        normalize: bool = False,
        prompts: dict[str, str] | None = None,
    ) -> None:
        if pooling_mode not in _LIGHT_POOLING_MODES:
            raise ValueError(f"pooling mode {pooling_mode!r} is not one of {_LIGHT_POOLING_MODES}")
        self.auto_model = auto_model
        self.tokenizer = tokenizer
        self.pooling_mode = pooling_mode
        self.normalize = normalize
        self.prompts: dict[str, str] = dict(prompts or {})
        cfg = auto_model.config
        self._dimension = int(embedding_dimension or getattr(cfg, "hidden_size", None) or cfg.d_model)
        params = inspect.signature(auto_model.forward).parameters
        takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        self._forward_params = None if takes_kwargs else set(params) | _FORWARD_SAFETY_NET

    @classmethod
    def load(cls, location: str | os.PathLike[str], *, device: str = "cpu") -> LightSentenceModel:
        """Load a directory that :func:`inspect_light_layout` accepts (ModelError otherwise)."""
        layout, reason = inspect_light_layout(location)
        if layout is None:
            raise ModelError(f"model {str(location)!r} cannot use the light loader: {reason}")
        return cls.from_layout(layout, device=device)

    @classmethod
    def from_layout(cls, layout: LightLayout, *, device: str = "cpu") -> LightSentenceModel:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import transformers
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        _quiet_transformers()
        where = str(layout.transformer_dir)
        no_code = {"trust_remote_code": False, "local_files_only": True}
        config = AutoConfig.from_pretrained(where, **no_code)
        _use_cache_off(config)
        model_cls = AutoModel
        for config_name, class_name in _T5_ENCODERS:  # the isinstance tests sentence-transformers makes
            if isinstance(config, getattr(transformers, config_name)):
                model_cls = getattr(transformers, class_name)
                break
        auto_model = model_cls.from_pretrained(where, config=config, **no_code)
        tok_kwargs: dict[str, Any] = dict(no_code)
        if layout.max_seq_length is not None:
            tok_kwargs["model_max_length"] = layout.max_seq_length
        tokenizer = AutoTokenizer.from_pretrained(where, **tok_kwargs)
        mpe = getattr(config, "max_position_embeddings", None)
        if layout.max_seq_length is None and mpe is not None and mpe != -1:
            tokenizer.model_max_length = min(tokenizer.model_max_length, mpe)
        if layout.do_lower_case:
            _add_lowercase(tokenizer)
        auto_model.to(device)
        auto_model.eval()
        return cls(
            auto_model,
            tokenizer,
            pooling_mode=layout.pooling_mode,
            embedding_dimension=layout.embedding_dimension,
            normalize=layout.normalize,
            prompts=layout.prompts,
        )

    # ---------------------------------------------------------------- surface
    @property
    def max_seq_length(self) -> int:
        return self.tokenizer.model_max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.tokenizer.model_max_length = value

    @property
    def device(self) -> Any:
        return self.auto_model.device

    def eval(self) -> LightSentenceModel:
        self.auto_model.eval()
        return self

    def to(self, device: Any) -> LightSentenceModel:
        self.auto_model.to(device)
        return self

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The transformers model's own state dict (no sentence-transformers ``0.model.`` prefix)."""
        return self.auto_model.state_dict(*args, **kwargs)

    def parameters(self, recurse: bool = True) -> Iterator[Any]:
        return self.auto_model.parameters(recurse)

    def get_sentence_embedding_dimension(self) -> int:
        return self._dimension

    get_embedding_dimension = get_sentence_embedding_dimension

    def preprocess(self, texts: Sequence[str]) -> dict[str, Any]:
        """Tokenize like sentence-transformers: pad to the longest, truncate at ``max_seq_length``."""
        enc = self.tokenizer(
            list(texts),
            padding=True,
            truncation="longest_first",
            max_length=self.max_seq_length,
            return_tensors="pt",
        )
        return dict(enc)

    tokenize = preprocess

    def __call__(self, features: dict[str, Any]) -> dict[str, Any]:
        import torch

        kwargs = {
            k: v
            for k, v in features.items()
            if k not in _NON_MODEL_FEATURES and (self._forward_params is None or k in self._forward_params)
        }
        kwargs["return_dict"] = True
        tokens = self.auto_model(**kwargs)["last_hidden_state"]
        mask = features.get("attention_mask")
        if mask is None or mask.size(-1) != tokens.size(1):
            mask = torch.ones(tokens.shape[:-1], device=tokens.device, dtype=torch.int64)
        emb = _pool(tokens, mask, self.pooling_mode)
        if self.normalize:
            emb = torch.nn.functional.normalize(emb, p=2, dim=-1)
        return {**features, "token_embeddings": tokens, "sentence_embedding": emb}

    forward = __call__

    def __repr__(self) -> str:
        return (
            f"LightSentenceModel({type(self.auto_model).__name__}, pooling={self.pooling_mode}, "
            f"normalize={self.normalize}, max_seq_length={self.max_seq_length}, dim={self._dimension})"
        )


def _pool(tokens: Any, mask: Any, mode: str) -> Any:
    """sentence-transformers' Pooling (padded inputs, no prompt exclusion) for mean, cls and max."""
    import torch

    if mode == "cls":
        first = mask.to(torch.int).argmax(dim=1)
        index = first.unsqueeze(-1).unsqueeze(1).expand(-1, 1, tokens.shape[-1])
        return torch.gather(tokens, 1, index).squeeze(1)
    if mode == "max":
        m = mask.unsqueeze(-1).expand_as(tokens).to(tokens.dtype)
        return tokens.masked_fill(m == 0, float("-inf")).max(dim=1).values
    acc = torch.float32 if tokens.dtype in (torch.float16, torch.bfloat16) else tokens.dtype
    m = mask.unsqueeze(-1).to(tokens.dtype)
    total = (tokens * m).sum(dim=1, dtype=acc)
    count = torch.clamp(m.sum(dim=1, dtype=acc), min=1e-9)
    mean = total / count
    return mean.to(tokens.dtype) if tokens.dtype.is_floating_point else mean


def _use_cache_off(config: Any) -> None:
    """As sentence-transformers does: no KV cache, on the config and its sub-configs."""
    if hasattr(config, "use_cache"):
        config.use_cache = False
    for name in getattr(config, "sub_configs", {}) or {}:
        sub = getattr(config, name, None)
        if sub is not None:
            _use_cache_off(sub)


def _add_lowercase(tokenizer: Any) -> None:
    """``do_lower_case``: prepend a Lowercase normalizer unless the tokenizer already has one."""
    if getattr(tokenizer, "is_fast", False):
        from tokenizers.normalizers import Lowercase
        from tokenizers.normalizers import Sequence as NormalizerSequence

        normalizer = tokenizer.backend_tokenizer.normalizer
        if isinstance(normalizer, Lowercase) or (
            isinstance(normalizer, NormalizerSequence) and any(isinstance(n, Lowercase) for n in normalizer)
        ):
            return
        parts: list[Any] = [Lowercase()]
        if isinstance(normalizer, NormalizerSequence):
            parts += list(normalizer)
        elif normalizer is not None:
            parts.append(normalizer)
        tokenizer.backend_tokenizer.normalizer = NormalizerSequence(parts)
    else:  # pragma: no cover - transformers v5 tokenizers are all fast
        try:
            tokenizer.do_lower_case = True
        except AttributeError:
            tokenizer.basic_tokenizer.do_lower_case = True


# ------------------------------------------------------------------------------- fingerprint
def canonical_parameters(model: Any) -> list[tuple[str, Any]]:
    """The model's tensors keyed by the underlying transformers model's own names.

    A :class:`LightSentenceModel` and a SentenceTransformer loaded from the same directory give the
    same list: the Transformer module's ``0.model.`` (sentence-transformers 6) or ``0.auto_model.``
    (older) prefix is dropped; other modules' tensors (a Dense layer, say) keep ``<index>.<name>``.
    """
    inner = getattr(model, "auto_model", None)
    if inner is not None and hasattr(inner, "state_dict"):  # LightSentenceModel (or a bare Transformer)
        return list(inner.state_dict().items())
    named_children = getattr(model, "named_children", None)
    children = list(named_children()) if callable(named_children) else []
    if any(getattr(module, "auto_model", None) is not None for _, module in children):
        items: list[tuple[str, Any]] = []
        for name, module in children:
            tr = getattr(module, "auto_model", None)
            if tr is not None and hasattr(tr, "state_dict"):
                items.extend(tr.state_dict().items())
            else:
                items.extend((f"{name}.{key}", value) for key, value in module.state_dict().items())
        return items
    return list(model.state_dict().items())


def weights_fingerprint(model: Any) -> str:
    """A stable hash of the loaded parameters and the tokenizer vocabulary.

    Recorded in index manifests so an index is never searched with vectors from other weights
    (same name, retrained model = different fingerprint). Hashes the parameters as float16 (so
    fp16-on-disk and fp32 copies of the same weights agree) under the transformers model's own
    names (so the light loader and sentence-transformers agree, see :func:`canonical_parameters`).
    The fp16 conversion is numpy's, single-threaded: torch's threaded one stalls on a busy CPU.
    """
    import torch

    h = hashlib.blake2b(digest_size=16)
    with torch.no_grad():
        for name, tensor in sorted(canonical_parameters(model), key=lambda item: item[0]):
            h.update(name.encode())
            t = tensor.detach()
            if t.device.type != "cpu":
                t = t.cpu()
            if t.is_floating_point() and t.dtype != torch.float16:
                arr = t.to(torch.float32).numpy().astype(np.float16)  # round-to-nearest-even, as torch
            else:
                arr = t.numpy()
            h.update(np.ascontiguousarray(arr))
    tok = getattr(model, "tokenizer", None)
    if tok is not None:
        h.update(str(len(tok)).encode())
    return h.hexdigest()


def to_bf16(model: Any, *, copy_model: bool = True) -> Any:
    """``model`` with its floating-point weights in bf16: a copy (default) or ``model`` itself, cast in place.

    The copy never holds a second fp32 set of weights: each parameter is converted straight into
    the copy (shared/tied parameters stay shared), then ``.to(bfloat16)`` converts the floating
    buffers. The caller's model is left exactly as it was.
    """
    import torch

    if not copy_model:
        return model.to(torch.bfloat16)
    memo: dict[int, Any] = {}
    with torch.no_grad():
        for param in model.parameters():
            if param.is_floating_point() and id(param) not in memo:
                memo[id(param)] = torch.nn.Parameter(
                    param.detach().to(torch.bfloat16, copy=True), requires_grad=param.requires_grad
                )
    clone = copy.deepcopy(model, memo)
    return clone.to(torch.bfloat16)


@dataclass(frozen=True)
class Passage:
    """A slice of a document: ``text[start:end]`` (character offsets), number ``index`` of ``count``."""

    start: int
    end: int
    index: int
    count: int


def tokenizer_lowercases(tok: Any) -> bool:
    """Whether a tokenizer lowercases its input (training and search must normalise alike)."""
    if getattr(tok, "do_lower_case", False):
        return True
    try:
        return tok("A")["input_ids"] == tok("a")["input_ids"]
    except Exception:  # noqa: BLE001 - an odd tokenizer: assume it keeps case
        return False


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
    ) -> None:
        self.model_id = model_id
        self.precision = resolve_precision(precision)
        if batch_size < 1:
            raise InputError(f"batch size {batch_size} must be >= 1")
        if query_backend not in QUERY_BACKENDS:
            raise InputError(f"query backend {query_backend!r} is not one of {', '.join(QUERY_BACKENDS)}")
        self.batch_size = batch_size
        self.query_backend = query_backend
        self._onnx: Any = None
        self._onnx_state = "unset"  # unset | ready | failed
        self._onnx_lock = threading.Lock()
        if self.precision == "bf16":
            # The fingerprint names the weights as loaded (fp32 or fp16 on disk), not their bf16 cast.
            self.__dict__["fingerprint"] = weights_fingerprint(model)
            model = to_bf16(model, copy_model=copy_model)
        self.model = model
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
        loader: str | None = None,
        query_backend: str = "auto",
    ) -> Encoder:
        """Load by registered name, local directory or hub id (see :func:`tase_search.models.resolve`).

        ``loader`` (default ``$TASE_SEARCH_LOADER``, else ``auto``): ``auto`` loads a plain
        sentence-transformers directory with :class:`LightSentenceModel` (no sentence-transformers
        import, seconds faster cold) and everything else with sentence-transformers; ``st`` always
        uses sentence-transformers; ``light`` requires the light loader (ModelError saying why not).
        Both give the same vectors and the same :attr:`fingerprint`.
        """
        choice = loader_choice(loader)
        model_id, location = resolve(spec)
        model: Any = None
        if choice != "st":
            layout, reason = inspect_light_layout(location)
            if layout is not None and trust_remote_code:
                layout, reason = None, "trust_remote_code was asked for"
            if layout is None:
                if choice == "light":
                    raise ModelError(f"model {location!r} cannot use the light loader: {reason}")
                log.debug("loading %s with sentence-transformers: %s", location, reason)
            else:
                try:
                    model = LightSentenceModel.from_layout(layout, device=device)
                except Exception as exc:  # broken files: let sentence-transformers load or explain
                    if choice == "light":
                        first = (str(exc).strip().splitlines() or [""])[0]
                        raise ModelError(
                            f"could not load model {location!r}: {type(exc).__name__}: {first[:300]}"
                        ) from exc
                    log.debug("light loader failed on %s (%s); using sentence-transformers", location, exc)
        if model is None:
            model = load_sentence_transformer(location, device=device, trust_remote_code=trust_remote_code)
        return cls(
            model,
            model_id,
            precision=precision,
            batch_size=batch_size,
            max_seq_length=max_seq_length,
            copy_model=False,  # ours: cast in place, no second copy of the weights
            query_backend=query_backend,
        )

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

    # ---------------------------------------------------------------- encoding
    @property
    def query_prompt(self) -> str | None:
        """The text put before every query (e5: ``"query: "``), or None."""
        return self._prompts.get("query") or None

    @property
    def passage_prompt(self) -> str | None:
        """The text put before every document or passage (e5: ``"passage: "``), or None."""
        return self._prompts.get("document") or self._prompts.get("passage") or None

    def encode_query(self, texts: str | Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """Encode search queries (uses the model's ``query`` prompt if it defines one).

        With :attr:`query_backend` ``auto`` (the default), batches of up to 16 queries run through
        ONNX Runtime when it is installed (:mod:`tase_search.onnx_query`: 7.0 vs 8.5 ms p50 for one
        query in ``bench/end_to_end.py``); the first such call exports or opens the cached graph and checks it against
        PyTorch. Anything that stops that path leaves the encoder on PyTorch, logged once.
        """
        items = _as_list(texts)
        prompt = self._prompts.get("query")
        if items and self.query_backend != "torch" and (
            self.query_backend == "onnx" or len(items) <= ONNX_MAX_BATCH
        ):
            runner = self.onnx_query_encoder()
            if runner is not None:
                try:
                    return self._encode_onnx(runner, items, prompt, batch_size=batch_size)
                except Exception as exc:  # noqa: BLE001 - a runtime failure must not cost the answer
                    if self.query_backend == "onnx":
                        raise ModelError(f"ONNX Runtime failed on a query: {type(exc).__name__}: {exc}") from exc
                    log.warning("ONNX Runtime failed on a query (%s); queries stay on PyTorch", exc)
                    with self._onnx_lock:
                        self._onnx, self._onnx_state = None, "failed"
        return self._encode(items, prompt, batch_size=batch_size)

    def onnx_query_encoder(self) -> Any:
        """The checked ONNX Runtime query path (:class:`~tase_search.onnx_query.OnnxQueryEncoder`),
        prepared on first use; None when :attr:`query_backend` is ``torch`` or, under ``auto``, when
        it cannot be used (ModelError under ``onnx``). Call it up front to keep that one-time cost
        (opening the cached graph, ~0.2 s; exporting it the first time, a few seconds) off the first
        query."""
        if self.query_backend == "torch":
            return None
        with self._onnx_lock:
            if self._onnx_state == "unset":
                try:
                    self._onnx = self._prepare_onnx()
                    self._onnx_state = "ready"
                except ModelError as exc:
                    self._onnx_state = "failed"
                    if self.query_backend == "onnx":
                        raise
                    log.info("queries stay on PyTorch: %s", exc)
            elif self._onnx_state == "failed" and self.query_backend == "onnx":  # pragma: no cover
                raise ModelError("the onnx query backend failed earlier in this process (see the log)")
            return self._onnx

    def _prepare_onnx(self) -> Any:
        from .onnx_query import open_or_export

        runner = open_or_export(self.model, self.fingerprint)
        worst = self._onnx_agreement(runner)
        if worst < MIN_PROBE_COSINE:  # a stale or wrong graph: export once more, then give up
            log.warning("ONNX graph %s disagrees with PyTorch (cosine %.4f); exporting again", runner.path, worst)
            with contextlib.suppress(OSError):
                runner.path.unlink()
            runner = open_or_export(self.model, self.fingerprint)
            worst = self._onnx_agreement(runner)
            if worst < MIN_PROBE_COSINE:
                raise ModelError(
                    f"the ONNX export of {self.model_id} disagrees with PyTorch on probe texts (cosine "
                    f"{worst:.4f} < {MIN_PROBE_COSINE}); use --query-backend torch"
                )
        self._write_query_bundle(runner)
        return runner

    def _write_query_bundle(self, runner: Any) -> None:
        """Let later processes answer queries for these weights without torch (onnx_query.LightQueryEncoder)."""
        from .onnx_query import write_bundle

        prompt = self._prompts.get("query")
        try:
            write_bundle(
                runner,
                self.tokenizer,
                model_id=self.model_id,
                fingerprint=self.fingerprint,
                dimension=self.dimension,
                max_seq_length=self.max_seq_length,
                lowercase=self.lowercases,
                prompt=prompt,
                passage_prompt=self.passage_prompt,
                reference=lambda texts: self._encode_onnx(runner, list(texts), prompt),
            )
        except Exception as exc:  # noqa: BLE001 - only an optimisation for later processes
            log.info("no torch-free query bundle for %s: %s: %s", self.model_id, type(exc).__name__, exc)

    def _onnx_agreement(self, runner: Any) -> float:
        """Worst cosine between ONNX and PyTorch embeddings of the probe texts, one by one and batched."""
        probes = list(PROBE_TEXTS)
        ref = self._encode(probes, None)
        got = np.vstack([self._encode_onnx(runner, [p], None) for p in probes])
        batched = self._encode_onnx(runner, probes, None)
        if not (np.isfinite(got).all() and np.isfinite(batched).all()):
            return -1.0
        return float(min((ref * got).sum(1).min(), (ref * batched).sum(1).min()))

    def _prepare(self, texts: list[str], prompt: str | None) -> list[str]:
        prepared = [normalize_for_model(t, lowercase=self.lowercases) for t in texts]
        if prompt:
            prepared = [prompt + t for t in prepared]
        return prepared

    def _encode_onnx(
        self, runner: Any, texts: list[str], prompt: str | None, *, batch_size: int | None = None
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
        prompt = self.passage_prompt
        if not prompt:
            return 0
        return len(self.tokenizer(prompt, add_special_tokens=False, verbose=False)["input_ids"])

    def _iter_passages(self, text: str, overlap: int) -> Iterator[Passage]:
        # room for the special tokens ([CLS]/[SEP] or <s>/</s>) and the passage prompt
        limit = max(8, self.max_seq_length - 2 - self._passage_prompt_tokens)
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
