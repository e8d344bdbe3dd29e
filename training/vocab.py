"""Extend a BERT WordPiece vocabulary with Turkish subwords, keeping the old model's knowledge.

Why: the uncased English WordPiece of all-MiniLM-L6-v2 strips accents (ş→s, ğ→g, so "şoför" and
"soför" collide) and shreds Turkish into characters ('kırmızı' → k ##ı ##rm ##ı ##z ##ı). Long
token sequences cost quadratic attention and padding on CPU, and characters carry no meaning the
model could reuse. We train a Turkish WordPiece on Turkish *training* text, append the subwords
the old vocabulary lacks (old ids stay where they are, so English is tokenised as before), turn
accent stripping off (lowercasing stays on) and start each new token's embedding at the mean of
the old embeddings of the pieces the old tokenizer would have produced - so the extended model
begins where the old one was, not from noise.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tase_search.errors import ModelError
from tase_search.text.normalize import normalize_for_model

log = logging.getLogger(__name__)

__all__ = ["VocabReport", "extend_model_vocab", "extend_wordpiece", "mean_tokens", "train_turkish_wordpiece"]

#: Letters whose absence from the vocabulary would turn a whole word into [UNK] once accents are kept.
EXTRA_CHARS = "çğıöşüâîûéèêëáàäíìïóòôúùñ" + "".join(chr(c) for c in range(0x100, 0x180))


@dataclass
class VocabReport:
    """What an extension did: how many tokens were added and how sequence lengths changed."""

    old_size: int
    new_size: int
    added: int
    tr_tokens_before: float
    tr_tokens_after: float
    en_tokens_before: float
    en_tokens_after: float
    en_changed_fraction: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def train_turkish_wordpiece(
    texts: Iterable[str], vocab_size: int = 16000, min_frequency: int = 3
) -> list[str]:
    """Train a WordPiece (lowercased, accents kept) on ``texts``; return its vocabulary, most useful first.

    The trainer is BPE-style, so token ids follow merge order: earlier = more frequent, and the
    caller can cut the list to a budget without losing the common subwords.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        continuing_subword_prefix="##",
        show_progress=False,
    )
    tok.train_from_iterator((normalize_for_model(t, lowercase=True) for t in texts), trainer=trainer)
    vocab = tok.get_vocab()
    return [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]


def extend_wordpiece(
    tokenizer_json: dict[str, Any], candidates: Sequence[str], max_new: int
) -> tuple[dict[str, Any], list[str]]:
    """Return a copy of a BERT ``tokenizer.json`` with up to ``max_new`` new tokens appended.

    Single characters (and their ``##`` forms) from :data:`EXTRA_CHARS` and from the candidates
    are always added first: with accents kept, a word containing a letter the vocabulary lacks
    would become [UNK] as a whole. Accent stripping is switched off; lowercasing stays.
    """
    tj = json.loads(json.dumps(tokenizer_json))
    model = tj.get("model", {})
    if model.get("type") != "WordPiece":
        raise ModelError(f"vocabulary extension needs a WordPiece tokenizer, got {model.get('type')!r}")
    vocab: dict[str, int] = model["vocab"]
    added: list[str] = []

    def add(token: str) -> None:
        if token and token not in vocab:
            vocab[token] = len(vocab)
            added.append(token)

    chars = set(EXTRA_CHARS)
    for c in candidates:
        base = c[2:] if c.startswith("##") else c
        if len(base) == 1:
            chars.add(base)
    for ch in sorted(chars):
        if ch.lower() != ch or unicodedata.category(ch)[0] not in "LN":
            continue
        add(ch)
        add("##" + ch)
    for c in candidates:
        if len(added) >= max_new:
            break
        if c.startswith("[") and c.endswith("]"):
            continue
        add(c)
    norm = tj.get("normalizer") or {}
    if norm.get("type") == "BertNormalizer":
        norm["strip_accents"] = False
        norm["lowercase"] = True
    else:
        raise ModelError("vocabulary extension expects a BertNormalizer (uncased BERT-style tokenizer)")
    # With accents kept, lowercasing İ gives i + U+0307 and the stray dot makes the word [UNK];
    # map İ to i first (what tase_search.text.normalize_for_model does) so raw callers are safe too.
    tj["normalizer"] = {
        "type": "Sequence",
        "normalizers": [{"type": "Replace", "pattern": {"String": "\u0130"}, "content": "i"}, norm],
    }
    return tj, added


def _old_pieces(old_tok: Any, token: str) -> list[int]:
    """Ids the old tokenizer gives the text of ``token`` (a ``##`` token is looked up as a continuation)."""
    cont = token.startswith("##")
    text = token[2:] if cont else token
    ids = old_tok(text, add_special_tokens=False)["input_ids"]
    if cont and ids:
        first = old_tok.convert_ids_to_tokens(ids[0])
        alt = old_tok.convert_tokens_to_ids("##" + first)
        if isinstance(alt, int) and alt != old_tok.unk_token_id:
            ids = [alt, *ids[1:]]
    return [i for i in ids if i != old_tok.unk_token_id]


def mean_tokens(tok: Any, texts: Sequence[str]) -> float:
    """Average number of tokens (no special tokens) per text, after the encoder's normalisation."""
    if not texts:
        return 0.0
    enc = tok([normalize_for_model(t, lowercase=True) for t in texts], add_special_tokens=False)["input_ids"]
    return sum(len(x) for x in enc) / len(texts)


def extend_model_vocab(
    model_dir: str | Path,
    out_dir: str | Path,
    turkish_texts: Sequence[str],
    *,
    english_probe: Sequence[str] = (),
    vocab_size: int = 16000,
    max_new: int = 8000,
    min_frequency: int = 3,
) -> VocabReport:
    """Write a copy of the SentenceTransformer at ``model_dir`` with a Turkish-extended vocabulary.

    ``turkish_texts`` must be training text only (never dev/test). ``english_probe`` sentences
    measure how much English tokenisation changed (it should be ~0: old ids are kept and only
    subwords absent from the old vocabulary are added, but a longer new match can occasionally
    win inside an English word).
    """
    import torch
    from transformers import PreTrainedTokenizerFast

    from tase_search.encoding.st_loader import load_sentence_transformer

    model = load_sentence_transformer(str(model_dir))
    transformer = model[0]
    old_tok = transformer.tokenizer
    backend = getattr(old_tok, "backend_tokenizer", None)
    if backend is None:
        raise ModelError(f"{model_dir}: vocabulary extension needs a fast (tokenizers) tokenizer")
    tj = json.loads(backend.to_str())
    candidates = train_turkish_wordpiece(turkish_texts, vocab_size=vocab_size, min_frequency=min_frequency)
    new_tj, added = extend_wordpiece(tj, candidates, max_new)

    from tokenizers import Tokenizer

    new_backend = Tokenizer.from_str(json.dumps(new_tj))
    new_tok = PreTrainedTokenizerFast(
        tokenizer_object=new_backend,
        unk_token=old_tok.unk_token,
        sep_token=old_tok.sep_token,
        pad_token=old_tok.pad_token,
        cls_token=old_tok.cls_token,
        mask_token=old_tok.mask_token,
        model_max_length=old_tok.model_max_length,
        do_lower_case=True,
        strip_accents=False,
    )
    emb = transformer.auto_model.get_input_embeddings()
    old_weight = emb.weight.detach().clone()
    old_size = old_weight.shape[0]
    transformer.auto_model.resize_token_embeddings(len(new_tok))
    weight = transformer.auto_model.get_input_embeddings().weight
    vocab = new_tok.get_vocab()
    with torch.no_grad():
        fallback = old_weight.mean(0)
        for token in added:
            ids = _old_pieces(old_tok, token)
            weight[vocab[token]] = old_weight[ids].mean(0) if ids else fallback
    if hasattr(type(transformer), "processor") or hasattr(transformer, "processor"):
        transformer.processor = new_tok  # sentence-transformers >= 6: tokenizer is read from the processor
    else:  # pragma: no cover - sentence-transformers 3.x - 5.x
        transformer.tokenizer = new_tok
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))

    tr_probe = list(turkish_texts[:2000])
    en_probe = list(english_probe[:2000])
    en_changed = 0
    for t in en_probe:
        a = old_tok(normalize_for_model(t, lowercase=True), add_special_tokens=False)["input_ids"]
        b = new_tok(normalize_for_model(t, lowercase=True), add_special_tokens=False)["input_ids"]
        en_changed += a != b
    report = VocabReport(
        old_size=old_size,
        new_size=len(new_tok),
        added=len(added),
        tr_tokens_before=mean_tokens(old_tok, tr_probe),
        tr_tokens_after=mean_tokens(new_tok, tr_probe),
        en_tokens_before=mean_tokens(old_tok, en_probe),
        en_tokens_after=mean_tokens(new_tok, en_probe),
        en_changed_fraction=en_changed / max(1, len(en_probe)),
    )
    (out / "vocab_extension.json").write_text(json.dumps(report.as_dict(), indent=2))
    log.info("vocabulary extended: %s", report.as_dict())
    return report
