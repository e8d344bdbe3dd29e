"""Tiny random-init sentence-transformers models, built offline in well under a second.

A 2-layer BERT (hidden 32) or T5 encoder with a small WordPiece vocabulary of Turkish and English
words, saved as a SentenceTransformer directory (Transformer + mean Pooling): the real encoder code
paths run (tokenizer offsets, passage splitting, fingerprints, ONNX export) without a model hub.
torch and sentence-transformers are imported only when a model is built.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

__all__ = [
    "TINY_MAX_SEQ_LENGTH",
    "build_tiny_model",
    "build_tiny_reranker",
    "build_tiny_t5",
    "write_tiny_vocab",
]

TINY_MAX_SEQ_LENGTH = 32

_LETTERS = list("abcçdefgğhıijklmnoöpqrsştuüvwxyz0123456789.,;:'\"-!?()")
_WORDS = (
    "futbol maç maçı galatasaray fenerbahçe istanbul ankara izmir yağmur hava deprem ekonomi "
    "şehir kedi köpek okul öğrenci çay kahve ışık iğne şarkı müzik bilgisayar yazılım "
    "football match weather rain city cat dog school music computer the and of is "
    "ve bir bu da de ile için çok güzel yarın bugün"
).split()
_SUFFIXES = ["##lar", "##ler", "##da", "##de", "##ın", "##in", "##ı", "##i", "##dır", "##dir"]


def write_tiny_vocab(path: Path) -> list[str]:
    """Write the tiny WordPiece vocabulary (special tokens, letters, words, suffixes) to ``path``."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_LETTERS]
    vocab += ["##" + c for c in _LETTERS] + _WORDS + _SUFFIXES
    seen: set[str] = set()
    vocab = [v for v in vocab if not (v in seen or seen.add(v))]  # type: ignore[func-returns-value]
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return vocab


def _st_modules() -> tuple[Any, Any]:
    """sentence-transformers' Transformer and Pooling (their home moved in 6.0)."""
    try:
        from sentence_transformers.base.modules import Transformer
        from sentence_transformers.sentence_transformer.modules import Pooling
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Pooling, Transformer  # type: ignore[no-redef]
    return Transformer, Pooling


def _tiny_tokenizer(raw: Path) -> tuple[Any, list[str]]:
    from transformers import BertTokenizerFast

    vocab = write_tiny_vocab(raw / "vocab.txt")
    vocab_arg = (
        "vocab" if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters else "vocab_file"
    )
    tokenizer = BertTokenizerFast(
        **{vocab_arg: str(raw / "vocab.txt")}, do_lower_case=True, strip_accents=False
    )
    if len(tokenizer) != len(vocab):
        raise RuntimeError(f"the tiny vocabulary in {raw} was not loaded: {len(tokenizer)} != {len(vocab)}")
    return tokenizer, vocab


def _save(out: Path, raw: Path, max_seq_length: int) -> Path:
    from sentence_transformers import SentenceTransformer

    transformer_cls, pooling_cls = _st_modules()
    transformer = transformer_cls(str(raw), max_seq_length=max_seq_length)
    pooling = pooling_cls(32, pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(out))
    return out


def _tiny_bert_config(vocab_size: int, **extra: Any) -> Any:
    """The tiny BERT shape every tiny model shares: 2 layers, hidden 32, 64 positions."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        **extra,
    )


def build_tiny_model(out: Path, *, seed: int = 0) -> Path:
    """Save a tiny random-init BERT sentence-transformer to ``out`` and return ``out``.

    The same ``seed`` gives the same weights (and fingerprint); another seed, another model of the
    same shape. The Hugging Face checkpoint it wraps is written beside it (``<out>-hf``).
    """
    import torch
    from transformers import BertModel

    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
    raw = out.parent / (out.name + "-hf")
    raw.mkdir(parents=True, exist_ok=True)
    tokenizer, vocab = _tiny_tokenizer(raw)
    torch.manual_seed(seed)
    BertModel(_tiny_bert_config(len(vocab))).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    return _save(out, raw, TINY_MAX_SEQ_LENGTH)


def build_tiny_t5(out: Path, *, max_seq_length: int = 16) -> Path:
    """Save a tiny random-init T5 sentence-transformer (T5 encoder + mean pooling, the paper's
    architecture) to ``out`` and return ``out``."""
    import torch
    from transformers import T5Config, T5Model

    raw = out.parent / (out.name + "-hf")
    raw.mkdir(parents=True, exist_ok=True)
    tokenizer, vocab = _tiny_tokenizer(raw)
    tokenizer.model_input_names = ["input_ids", "attention_mask"]
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=len(vocab), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=2)
    T5Model(cfg).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    return _save(out, raw, max_seq_length)


def build_tiny_reranker(out: Path, *, seed: int = 0) -> Path:
    """Save a tiny random-init cross-encoder (BERT with one output, the tiny vocabulary) to ``out``.

    The shape of a real reranker (``BertForSequenceClassification``, ``num_labels=1``), so
    :class:`tase_search.query.rerank.Reranker` runs its real code paths without a model hub.
    """
    import torch
    from transformers import BertForSequenceClassification

    out.mkdir(parents=True, exist_ok=True)
    tokenizer, vocab = _tiny_tokenizer(out)
    torch.manual_seed(seed)
    BertForSequenceClassification(_tiny_bert_config(len(vocab), num_labels=1)).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
