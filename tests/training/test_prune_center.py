"""Vocabulary pruning and centering: each checked against the unmodified model it came from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

META = "\u2581"
WORDS = ["ev", "evler", "kedi", "köpek", "house", "cat", "dog", "日本", "мир", "query:", "passage:"]


def _tiny_unigram_model(out: Path) -> Path:
    """A random tiny BERT behind a Unigram tokenizer (the e5 layout), saved as a sentence-transformers dir."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    pieces = ["<s>", "<pad>", "</s>", "<unk>", META]
    for w in WORDS:
        pieces += [META + w, w]
    pieces += sorted({c for w in WORDS for c in w}) + ["ler", META + "ev", "x", "y"]
    pieces = list(dict.fromkeys(pieces))
    vocab = [(p, 0.0 if i < 4 else -float(len(pieces) - i) / 10) for i, p in enumerate(pieces)]
    tok = Tokenizer(Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    from tokenizers import AddedToken

    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in pieces[:4]])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        cls_token="<s>",
        sep_token="</s>",
    )
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(pieces),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        pad_token_id=1,
    )
    raw = out / "raw"
    BertModel(cfg, add_pooling_layer=False).save_pretrained(raw)
    fast.save_pretrained(raw)
    tr = Transformer(str(raw), max_seq_length=32)
    model = SentenceTransformer(modules=[tr, Pooling(16, "mean"), Normalize()], device="cpu")
    model.save(str(out / "model"))
    return out / "model"


@pytest.fixture(scope="module")
def tiny_unigram(tmp_path_factory) -> Path:
    return _tiny_unigram_model(tmp_path_factory.mktemp("unigram"))


def _encode(path: Path, texts: list[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu").encode(texts, convert_to_numpy=True)


def test_pruning_keeps_what_the_text_needs_and_gives_identical_embeddings(tiny_unigram, tmp_path):
    from tase_search.training.prune_vocab import prune_model

    texts = ["evler kedi", "house cat", "ev köpek"]
    report = prune_model(
        tiny_unigram, tmp_path / "pruned", texts, budget=0, lexicon=["dog"], prompts=("query: ",), probe=texts
    )
    tj = json.loads((tmp_path / "pruned" / "tokenizer.json").read_text())
    kept = [p for p, _ in tj["model"]["vocab"]]
    assert kept[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert META + "dog" in kept  # from the lexicon
    assert META + "日本" not in kept and "本" not in kept  # other scripts go, single characters too
    assert "м" in kept  # a Cyrillic letter keeps its single-character piece
    assert report.new_size == len(kept) < report.old_size and report.probe_changed_fraction == 0
    cfg = json.loads((tmp_path / "pruned" / "config.json").read_text())
    assert cfg["vocab_size"] == len(kept) and cfg["pad_token_id"] == 1
    # every piece of these texts survived, with its embedding row: the vectors are the same
    assert np.allclose(_encode(tiny_unigram, texts), _encode(tmp_path / "pruned", texts), atol=1e-6)


def test_alphabet_fill_respects_the_budget(tiny_unigram, tmp_path):
    from tase_search.training.prune_vocab import prune_model

    small = prune_model(tiny_unigram, tmp_path / "a", ["ev"], budget=0)
    big = prune_model(tiny_unigram, tmp_path / "b", ["ev"], budget=small.new_size + 3)
    assert big.new_size == small.new_size + 3 and big.alphabet_fill == 3


def test_centering_equals_subtracting_the_pooled_mean(tiny_unigram, tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from tase_search.training.center import center_model

    texts = ["evler kedi", "house cat", "ev köpek", "dog dog cat"]
    info = center_model(tiny_unigram, tmp_path / "c", texts, strength=1.0)
    tok = AutoTokenizer.from_pretrained(str(tiny_unigram))
    model = AutoModel.from_pretrained(str(tiny_unigram))
    with torch.inference_mode():
        enc = tok(texts, padding=True, return_tensors="pt")
        h = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        pooled = ((h * m).sum(1) / m.sum(1)).numpy()
    c = pooled.mean(0)
    ref = pooled - c
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    assert np.allclose(_encode(tmp_path / "c", texts), ref, atol=1e-5)
    assert info["parameter"].endswith("layer.1.output.LayerNorm.bias")
    assert json.loads((tmp_path / "c" / "centering.json").read_text())["texts"] == 4
