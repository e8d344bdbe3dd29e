"""Which model directories the light loader reproduces exactly, read from a few JSON files.

Why allowlists of sentence-transformers' config keys: the light loader (:mod:`.light_model`) must give
the vectors sentence-transformers gives, so it accepts only directories whose every setting it knows
to be the default it mirrors; anything else (a key it has not seen, another pooling, custom code)
loads through sentence-transformers instead. The keys are those of the pinned sentence-transformers
range (pyproject.toml); ``tests/encoding/test_light_loader.py`` checks the agreement on every accepted layout.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

#: Values of ``TASE_SEARCH_LOADER`` / ``Encoder.load(loader=...)``: ``auto`` uses the light loader when
#: the model directory allows it and sentence-transformers otherwise; ``st`` always uses
#: sentence-transformers; ``light`` requires the light loader (a ModelError says why it cannot).
LOADERS = ("auto", "st", "light")
LOADER_ENV = "TASE_SEARCH_LOADER"

#: The pooling modes the light loader reproduces (sentence-transformers' Pooling code, padded inputs).
LIGHT_POOLING_MODES = ("mean", "cls", "max")
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


def read_json(path: Path) -> Any:
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
    modules = read_json(root / "modules.json")
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
        norm = read_json(ndir / "config.json")
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
        sbert = read_json(tdir / "sentence_bert_config.json")
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
    config = read_json(tdir / "config.json")
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
        tok_cfg = read_json(tdir / "tokenizer_config.json")
        if not isinstance(tok_cfg, dict) or "auto_map" in tok_cfg or tok_cfg.get("processor_class"):
            return None, "tokenizer_config.json names custom code or a processor"

    # -- the Pooling module
    if not (pdir / "config.json").is_file():
        return None, "no pooling config"
    pool = dict(read_json(pdir / "config.json"))
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
    if mode not in LIGHT_POOLING_MODES:
        return None, f"pooling mode {mode!r}"
    if pool.get("include_prompt", True) is not True:
        return None, "pooling excludes the prompt"
    dim = pool.get("embedding_dimension")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0:
        return None, "pooling config has no embedding dimension"

    # -- model-level settings
    prompts: dict[str, str] = {}
    if (root / "config_sentence_transformers.json").is_file():
        top = read_json(root / "config_sentence_transformers.json")
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
