"""A reranker that borrows its word embeddings and tokenizer from the encoder it was trained from:
written from a full directory, it scores exactly as the full one in fp16, and refuses a changed source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tase_search.errors import ModelError
from tase_search.models import registry
from tase_search.query.rerank import Reranker
from tase_search.query.rerank_bundle import SHARED, write_shared
from tase_search.testing.tiny_models import _tiny_bert_config, _tiny_tokenizer

PASSAGES = ["yarın istanbul yağmur", "galatasaray maç futbol", "kedi ve köpek", "hava güzel bugün"]


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(an fp16 tiny encoder registered as 'tiny-enc', a full fp32 reranker trained from it with the
    word embeddings unchanged)."""
    import torch
    from transformers import BertForSequenceClassification, BertModel

    enc_dir, rr_dir = tmp_path / "enc", tmp_path / "rr"
    enc_dir.mkdir()
    rr_dir.mkdir()
    tokenizer, vocab = _tiny_tokenizer(enc_dir)
    tokenizer.save_pretrained(enc_dir)
    torch.manual_seed(0)
    enc = BertModel(_tiny_bert_config(len(vocab))).half()
    enc.save_pretrained(enc_dir)
    rr = BertForSequenceClassification(_tiny_bert_config(len(vocab), num_labels=1))
    with torch.no_grad():
        rr.bert.embeddings.word_embeddings.weight.copy_(enc.embeddings.word_embeddings.weight.float())
    rr.save_pretrained(rr_dir)
    _tiny_tokenizer(rr_dir)[0].save_pretrained(rr_dir)
    monkeypatch.setitem(
        registry._REGISTRY, "tiny-enc", registry.ModelEntry("tiny-enc", "test", bundled=str(enc_dir))
    )
    return enc_dir, rr_dir


def test_a_shared_reranker_scores_as_the_full_one_in_fp16(pair: tuple[Path, Path], tmp_path: Path) -> None:
    import torch
    from transformers import BertForSequenceClassification

    enc_dir, rr_dir = pair
    out = tmp_path / "shared"
    spec = write_shared(rr_dir, out, "tiny-enc", min_numel=0)
    assert "bert.embeddings.word_embeddings.weight" in spec["tensors"] and spec["tokenizer"] is True
    assert (out / SHARED).is_file() and not (out / "tokenizer.json").exists()
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert "bert.embeddings.word_embeddings.weight" not in set(f.keys())
        assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys())
    full = BertForSequenceClassification.from_pretrained(rr_dir).half().float().eval()
    want = Reranker(full, Reranker.load(str(rr_dir), precision="fp32").tokenizer, "full").score(
        "hava", PASSAGES
    )
    got = Reranker.load(str(out), precision="fp32").score("hava", PASSAGES)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_a_changed_source_tensor_is_refused(pair: tuple[Path, Path], tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    enc_dir, rr_dir = pair
    out = tmp_path / "shared"
    write_shared(rr_dir, out, "tiny-enc", min_numel=0)
    state = load_file(str(enc_dir / "model.safetensors"))
    state["embeddings.word_embeddings.weight"][0, 0] += torch.tensor(1.0, dtype=torch.float16)
    save_file(state, str(enc_dir / "model.safetensors"))
    with pytest.raises(ModelError, match="SHA-256"):
        Reranker.load(str(out), precision="fp32")


def test_nothing_equal_is_nothing_borrowed(pair: tuple[Path, Path], tmp_path: Path) -> None:
    import torch
    from transformers import BertForSequenceClassification

    enc_dir, rr_dir = pair
    rr = BertForSequenceClassification.from_pretrained(rr_dir)
    with torch.no_grad():
        rr.bert.embeddings.word_embeddings.weight.add_(0.5)  # trained: no longer the encoder's
    rr.save_pretrained(rr_dir)
    spec = write_shared(rr_dir, tmp_path / "out", "tiny-enc", min_numel=0)
    assert "bert.embeddings.word_embeddings.weight" not in spec["tensors"]
    got = Reranker.load(str(tmp_path / "out"), precision="fp32").score("hava", PASSAGES)
    assert got.shape == (4,) and np.all((got > 0) & (got < 1))
