"""Shared fixtures: a deterministic fake encoder and a real, tiny, offline sentence-transformers model.

The tiny model is a random-init 2-layer BERT (hidden 32) with a small WordPiece vocabulary,
saved as a SentenceTransformer directory (Transformer + mean Pooling) with ``max_seq_length`` 32,
so the real encoder code paths run (tokenizer offsets, passage splitting, fingerprints) in well
under a second per call and without network access.
"""

from __future__ import annotations

import atexit
import inspect
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ["TASE_SEARCH_NO_PROGRESS"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models on a small (often shared) CI machine: one intra-op thread is many times faster than
# OpenMP threads spinning against each other. Set before torch is imported; subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# Exported ONNX query graphs (tase_search/onnx_query.py) go to a throwaway cache, never ~/.cache.
_CACHE = tempfile.mkdtemp(prefix="tase-search-test-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
os.environ.setdefault("TASE_SEARCH_CACHE_DIR", _CACHE)

from fakes import FakeEncoder  # noqa: E402

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
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_LETTERS]
    vocab += ["##" + c for c in _LETTERS] + _WORDS + _SUFFIXES
    seen: set[str] = set()
    vocab = [v for v in vocab if not (v in seen or seen.add(v))]  # type: ignore[func-returns-value]
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return vocab


def build_tiny_model(out: Path, *, seed: int = 0) -> Path:
    """Save a tiny random-init BERT sentence-transformer to ``out`` and return ``out``."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    try:
        from sentence_transformers.base.modules import Transformer
        from sentence_transformers.sentence_transformer.modules import Pooling
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Pooling, Transformer  # type: ignore[no-redef]

    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
    raw = out.parent / (out.name + "-hf")
    raw.mkdir(parents=True, exist_ok=True)
    vocab = write_tiny_vocab(raw / "vocab.txt")
    vocab_arg = (
        "vocab" if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters else "vocab_file"
    )
    tokenizer = BertTokenizerFast(
        **{vocab_arg: str(raw / "vocab.txt")}, do_lower_case=True, strip_accents=False
    )
    assert len(tokenizer) == len(vocab), "the tiny vocabulary was not loaded"
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=TINY_MAX_SEQ_LENGTH)
    pooling = Pooling(32, pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(out))
    return out


def build_tiny_t5(out: Path, *, max_seq_length: int = 16) -> Path:
    """Save a tiny random-init T5 sentence-transformer (T5 encoder + mean pooling, the paper's
    architecture) to ``out`` and return ``out``."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import BertTokenizerFast, T5Config, T5Model

    try:
        from sentence_transformers.base.modules import Transformer
        from sentence_transformers.sentence_transformer.modules import Pooling
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Pooling, Transformer  # type: ignore[no-redef]

    raw = out.parent / (out.name + "-hf")
    raw.mkdir(parents=True, exist_ok=True)
    vocab = write_tiny_vocab(raw / "vocab.txt")
    tok = BertTokenizerFast(vocab=str(raw / "vocab.txt"), do_lower_case=True, strip_accents=False)
    tok.model_input_names = ["input_ids", "attention_mask"]
    torch.manual_seed(0)
    cfg = T5Config(vocab_size=len(vocab), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=2)
    T5Model(cfg).save_pretrained(raw)
    tok.save_pretrained(raw)
    SentenceTransformer(
        modules=[Transformer(str(raw), max_seq_length=max_seq_length), Pooling(32, pooling_mode="mean")],
        device="cpu",
    ).save(str(out))
    return out


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model", seed=0)


@pytest.fixture(scope="session")
def other_tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same architecture and vocabulary, other weights: a different fingerprint."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model-other") / "model", seed=1)


@pytest.fixture(scope="session")
def tiny_encoder(tiny_model_dir: Path):  # noqa: ANN201 - Encoder (imported lazily)
    from tase_search.encoder import Encoder

    return Encoder.load(str(tiny_model_dir), precision="fp32")
