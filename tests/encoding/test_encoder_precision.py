"""Encoder precisions: bf16 weights (the fast path), bf16 autocast (the old one) and fp32.

The bf16 path casts the model's weights, so three things must hold: the weights fingerprint
(recorded in index manifests) is that of the weights as loaded, whatever the precision; a model
handed to ``Encoder(model, ...)`` is never modified; and vectors stay float32, unit length and
close to fp32's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tase_search.encoding.precision as E
from tase_search.encoding.encoder import Encoder
from tase_search.encoding.fingerprint import weights_fingerprint

TEXTS = [
    "futbol maçı",
    "Yarın İstanbul'da hava yağmurlu ve soğuk olacak, okul öğrencileri çay içecek.",
    "Kedi ve köpek parkta.",
    "galatasaray fenerbahçe maçı istanbul'da yarın yağmur " * 12,  # truncated at 32 tokens
    "THE CAT AND THE DOG",
    "müzik bilgisayar yazılım ekonomi deprem",
]
LOADERS = ["light", "st"]


def _dtypes(model) -> set:
    return {p.dtype for p in model.parameters() if p.is_floating_point()}


def _snapshot(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module", params=LOADERS)
def fp32_encoder(request, tiny_model_dir: Path) -> Encoder:
    return Encoder.load(str(tiny_model_dir), precision="fp32", loader=request.param)


# ------------------------------------------------------------------------------ fingerprint
@pytest.mark.parametrize("loader", LOADERS)
def test_fingerprint_is_the_same_for_every_precision(tiny_model_dir: Path, loader: str) -> None:
    import torch

    encs = {
        p: Encoder.load(str(tiny_model_dir), precision=p, loader=loader)
        for p in ("fp32", "bf16", "bf16-autocast")
    }
    assert _dtypes(encs["fp32"].model) == _dtypes(encs["bf16-autocast"].model) == {torch.float32}
    assert _dtypes(encs["bf16"].model) == {torch.bfloat16}  # the weights really were cast
    fps = {p: e.fingerprint for p, e in encs.items()}
    assert len(set(fps.values())) == 1, fps
    # ... and it is not a hash of the bf16 weights: those differ, so the fingerprint was taken before the cast
    assert weights_fingerprint(encs["bf16"].model) != fps["fp32"]
    # the light loader and sentence-transformers still agree on it
    other = Encoder.load(str(tiny_model_dir), precision="bf16", loader="st" if loader == "light" else "light")
    assert other.fingerprint == fps["fp32"]


def test_index_built_with_bf16_opens_with_fp32_and_back(tmp_path: Path, tiny_model_dir: Path) -> None:
    from tase_search.retriever import Retriever

    docs = [{"id": str(i), "text": t} for i, t in enumerate(TEXTS)]
    bf16 = Encoder.load(str(tiny_model_dir), precision="bf16")
    fp32 = Encoder.load(str(tiny_model_dir), precision="fp32")
    Retriever.build(docs, model=bf16, path=tmp_path / "a")
    Retriever.build(docs, model=fp32, path=tmp_path / "b")
    assert Retriever.load(tmp_path / "a", model=fp32).search(TEXTS[2], k=1)[0].id == "2"
    assert Retriever.load(tmp_path / "b", model=bf16).search(TEXTS[2], k=1)[0].id == "2"
    # by the manifest's model id (a path), as `tase-search query --precision ...` does
    assert Retriever.load(tmp_path / "a", precision="fp32").search(TEXTS[0], k=1)[0].id == "0"
    assert Retriever.load(tmp_path / "b", precision="bf16").search(TEXTS[0], k=1)[0].id == "0"


# ------------------------------------------------------------------------------ ownership
@pytest.mark.parametrize("precision", ["bf16", "bf16-autocast", "fp32"])
def test_a_model_handed_in_is_not_modified(fp32_encoder: Encoder, precision: str) -> None:
    import torch

    model = fp32_encoder.model
    before = _snapshot(model)
    enc = Encoder(model, "tiny", precision=precision)
    enc.encode_document(TEXTS)
    assert _dtypes(model) == {torch.float32}
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert enc.fingerprint == fp32_encoder.fingerprint
    if precision == "bf16":
        assert enc.model is not model and _dtypes(enc.model) == {torch.bfloat16}
        assert enc.loader == fp32_encoder.loader  # a copy of the same kind of model
        # the copy does not share storage with the caller's fp32 weights
        ours = {p.data_ptr() for p in enc.model.parameters()}
        assert not ours & {p.data_ptr() for p in model.parameters()}
    else:
        assert enc.model is model  # nothing to cast: no copy
    # the caller's encoder still gives its fp32 vectors
    np.testing.assert_array_equal(
        fp32_encoder.encode_document(TEXTS[:2]),
        Encoder(model, "t", precision="fp32").encode_document(TEXTS[:2]),
    )


def test_copy_keeps_tied_weights_tied() -> None:
    import torch

    emb = torch.nn.Embedding(10, 4)
    head = torch.nn.Linear(4, 10, bias=False)
    head.weight = emb.weight
    model = torch.nn.Sequential(emb, head)
    clone = E.to_bf16(model)
    assert clone[0].weight is clone[1].weight and clone[0].weight.dtype == torch.bfloat16
    assert model[0].weight.dtype == torch.float32 and model[0].weight is model[1].weight
    assert E.to_bf16(model, copy_model=False) is model and model[0].weight.dtype == torch.bfloat16


# ------------------------------------------------------------------------------ fidelity
@pytest.mark.parametrize("precision", ["bf16", "bf16-autocast"])
def test_bf16_vectors_stay_close_to_fp32(fp32_encoder: Encoder, precision: str) -> None:
    """On the tiny random-init model bf16 measured cosine >= 0.99999 to fp32 (the shipped model
    >= 0.9998 over 2,000 sentences); 0.999 leaves room for other torch kernels and still catches a
    broken path (wrong pooling dtype, unnormalised output, autocast and cast both missing)."""
    fast = Encoder(fp32_encoder.model, "tiny", precision=precision)
    for fn in ("encode_query", "encode_document"):
        want = getattr(fp32_encoder, fn)(TEXTS)
        got = getattr(fast, fn)(TEXTS, batch_size=2)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        cos = (got * want).sum(axis=1)
        assert cos.min() >= 0.999, cos
        assert not np.array_equal(got, want)  # bf16 really ran


def test_autocast_context_only_for_bf16_autocast(fp32_encoder: Encoder) -> None:
    import torch

    assert isinstance(Encoder(fp32_encoder.model, "t", precision="bf16-autocast").autocast(), torch.autocast)
    for precision in ("bf16", "fp32"):
        assert not isinstance(
            Encoder(fp32_encoder.model, "t", precision=precision).autocast(), torch.autocast
        )


# ------------------------------------------------------------------------------ auto
def test_auto_without_native_bf16_is_fp32(monkeypatch: pytest.MonkeyPatch, fp32_encoder: Encoder) -> None:
    import torch

    monkeypatch.setattr(E, "cpu_supports_bf16", lambda: False)
    enc = Encoder(fp32_encoder.model, "tiny", precision="auto")
    assert enc.precision == "fp32" and enc.model is fp32_encoder.model
    assert _dtypes(enc.model) == {torch.float32}
    np.testing.assert_array_equal(enc.encode_document(TEXTS), fp32_encoder.encode_document(TEXTS))


def test_auto_with_native_bf16_is_bf16_weights(monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path) -> None:
    import torch

    monkeypatch.setattr(E, "cpu_supports_bf16", lambda: True)
    enc = Encoder.load(str(tiny_model_dir), precision="auto")
    assert enc.precision == "bf16" and _dtypes(enc.model) == {torch.bfloat16}
    assert enc.encode_query("futbol maçı").dtype == np.float32


def test_force_no_bf16_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASE_SEARCH_FORCE_NO_BF16", "1")
    assert E.resolve_precision("auto") == "fp32"
    assert E.resolve_precision("bf16") == "bf16" and E.resolve_precision("bf16-autocast") == "bf16-autocast"


def test_unknown_precision_refused(fp32_encoder: Encoder) -> None:
    from tase_search.errors import InputError

    with pytest.raises(InputError, match="bf16-autocast"):
        Encoder(fp32_encoder.model, "t", precision="fp8")
