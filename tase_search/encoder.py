"""The encoder's public names at their original import path; the code lives in :mod:`tase_search.encoding`."""

from __future__ import annotations

from .encoding.encoder import Encoder
from .encoding.fingerprint import canonical_parameters, weights_fingerprint
from .encoding.light_layout import LOADER_ENV, LOADERS, LightLayout, inspect_light_layout, loader_choice
from .encoding.light_model import LightSentenceModel
from .encoding.passages import Passage, tokenizer_lowercases
from .encoding.precision import cpu_supports_bf16, resolve_precision, to_bf16
from .encoding.protocols import DocumentEncoder, QueryEncoder
from .encoding.st_loader import load_sentence_transformer

#: The old name of :class:`DocumentEncoder`.
EncoderLike = DocumentEncoder

__all__ = [
    "LOADERS",
    "LOADER_ENV",
    "DocumentEncoder",
    "Encoder",
    "EncoderLike",
    "LightLayout",
    "LightSentenceModel",
    "Passage",
    "QueryEncoder",
    "canonical_parameters",
    "cpu_supports_bf16",
    "inspect_light_layout",
    "load_sentence_transformer",
    "loader_choice",
    "resolve_precision",
    "to_bf16",
    "tokenizer_lowercases",
    "weights_fingerprint",
]
