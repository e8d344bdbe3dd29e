"""A sentence-transformers Transformer -> Pooling [-> Normalize] stack rebuilt on transformers alone.

Why: importing sentence-transformers costs seconds (it pulls in sklearn and more) on every cold
``tase-search query``; for the directories :func:`.light_layout.inspect_light_layout` accepts, this
loads the same weights and gives the same vectors without it.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import ModelError
from .light_layout import LIGHT_POOLING_MODES, LightLayout, inspect_light_layout
from .st_loader import quiet_transformers

_T5_ENCODERS = (
    ("T5Config", "T5EncoderModel"),
    ("MT5Config", "MT5EncoderModel"),
    ("UMT5Config", "UMT5EncoderModel"),
)
# Feature keys that are sentence-transformers bookkeeping, never model inputs.
_NON_MODEL_FEATURES = frozenset(
    {"modality", "prompt_length", "num_images_per_sample", "num_videos_per_sample"}
)
_FORWARD_SAFETY_NET = frozenset(
    {"input_ids", "attention_mask", "token_type_ids", "inputs_embeds", "return_dict"}
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
        if pooling_mode not in LIGHT_POOLING_MODES:
            raise ValueError(f"pooling mode {pooling_mode!r} is not one of {LIGHT_POOLING_MODES}")
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

        quiet_transformers()
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
