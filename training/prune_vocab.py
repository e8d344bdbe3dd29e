"""Prune a multilingual Unigram vocabulary to the pieces Turkish and English need.

multilingual-e5-small spends 96M of its 118M parameters on a 250k-piece embedding table, most of
it for scripts and languages a Turkish search tool never sees: in fp16 the model is 235 MB, of
which the transformer is 43 MB. Keeping

* the special tokens,
* every piece the tokenizer produces on the given Turkish and English text (training text only),
* every single-character piece of the Latin, Greek and Cyrillic scripts, digits, punctuation and
  symbols (so such a character still has a piece, never ``<unk>``),
* the pieces of an English word list (each word as written, capitalised and upper-cased), since
  English queries and names reach far beyond any training text, and
* the most probable remaining pieces written only in the Turkish + English alphabet, up to a
  budget (so Turkish and English words absent from the given text still segment as before),

and dropping the rest leaves the ids of every kept piece's text unchanged in meaning: the
embedding rows move with their pieces, and the Unigram model re-segments only words whose
pieces were dropped. :func:`prune_model` reports how many tokens a probe text gains.
"""

from __future__ import annotations

import json
import shutil
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tase_search.errors import ModelError

#: Letters of Turkish and English (both cases) and the circumflex vowels of Turkish loanwords.
ALPHABET = set("abcçdefgğhıijklmnoöpqrsştuüvwxyzâîû" + "ABCÇDEFGĞHIİJKLMNOÖPQRSŞTUÜVWXYZÂÎÛ")
_KEEP_CATEGORIES = ("L", "M", "N", "P", "S", "Z")
#: Scripts whose letters keep a single-character piece (others would only ever be <unk>-like noise here).
_SCRIPTS = ("LATIN", "GREEK", "CYRILLIC", "COMBINING")


@dataclass(frozen=True)
class PruneReport:
    old_size: int
    new_size: int
    from_text: int
    lexicon: int
    single_chars: int
    alphabet_fill: int
    probe_tokens_before: float
    probe_tokens_after: float
    probe_changed_fraction: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _in_alphabet(piece: str) -> bool:
    body = piece.lstrip("▁")
    return bool(body) and all(
        ch in ALPHABET or ch.isdigit() or (ch.isascii() and not ch.isalnum()) for ch in body
    )


def _single_char(piece: str) -> bool:
    body = piece[1:] if piece.startswith("▁") and len(piece) > 1 else piece
    if len(body) != 1:
        return False
    cat = unicodedata.category(body)[0]
    if cat in ("L", "M"):
        return unicodedata.name(body, "").startswith(_SCRIPTS)
    return cat in _KEEP_CATEGORIES and ord(body) < 0x3000  # punctuation, digits, symbols; no CJK forms


def select_pieces(
    tokenizer_json: dict[str, Any],
    used_ids: Iterable[int],
    *,
    budget: int,
) -> tuple[list[int], dict[str, int]]:
    """Old ids to keep, in their original order, and how many each rule contributed."""
    vocab = tokenizer_json["model"]["vocab"]
    special = {t["id"] for t in tokenizer_json.get("added_tokens", [])}
    keep = set(special) | set(used_ids)
    n_text = len(keep)
    singles = {i for i, (p, _) in enumerate(vocab) if _single_char(p)} - keep
    keep |= singles
    fill = 0
    by_score = sorted(
        (i for i, (p, _) in enumerate(vocab) if i not in keep and _in_alphabet(p)), key=lambda i: -vocab[i][1]
    )
    for i in by_score:
        if len(keep) >= budget:
            break
        keep.add(i)
        fill += 1
    return sorted(keep), {"from_text": n_text, "single_chars": len(singles), "alphabet_fill": fill}


def pruned_tokenizer_json(tokenizer_json: dict[str, Any], keep: Sequence[int]) -> dict[str, Any]:
    """The same tokenizer with only ``keep`` (old ids, ascending); special ids are remapped."""
    remap = {old: new for new, old in enumerate(keep)}
    tj = json.loads(json.dumps(tokenizer_json))
    vocab = tj["model"]["vocab"]
    tj["model"]["vocab"] = [vocab[i] for i in keep]
    unk = tj["model"].get("unk_id")
    if unk is not None:
        if unk not in remap:
            raise ModelError("the unknown-token piece must be kept")
        tj["model"]["unk_id"] = remap[unk]
    for tok in tj.get("added_tokens", []):
        tok["id"] = remap[tok["id"]]
    post = tj.get("post_processor") or {}
    for spec in (post.get("special_tokens") or {}).values():
        spec["ids"] = [remap[i] for i in spec["ids"]]
    return tj


def token_ids(tokenizer_json: dict[str, Any], texts: Iterable[str], prefix: str = "") -> set[int]:
    """Every id the tokenizer produces on ``texts`` (with ``prefix``, e.g. the model's prompt)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(json.dumps(tokenizer_json))
    tok.no_truncation()
    tok.no_padding()
    seen: set[int] = set()
    batch: list[str] = []
    for t in texts:
        batch.append(prefix + t)
        if len(batch) == 2048:
            for enc in tok.encode_batch(batch):
                seen.update(enc.ids)
            batch = []
    for enc in tok.encode_batch(batch):
        seen.update(enc.ids)
    return seen


def prune_model(
    model_dir: str | Path,
    out_dir: str | Path,
    texts: Sequence[str],
    *,
    budget: int = 44000,
    lexicon: Sequence[str] = (),
    probe: Sequence[str] = (),
    prompts: Sequence[str] = ("query: ", "passage: "),
) -> PruneReport:
    """Write a copy of the sentence-transformers model at ``model_dir`` with a pruned vocabulary.

    ``texts`` must be training text (never dev/test); ``probe`` is text whose tokenisation change
    is reported (a dev-free sample is fine); ``lexicon`` is a word list whose pieces are kept.
    """
    import torch
    from safetensors.torch import load_file, save_file
    from tokenizers import Tokenizer

    src, out = Path(model_dir), Path(out_dir)
    tj = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    if (tj.get("model") or {}).get("type") != "Unigram":
        raise ModelError(
            f"{src}: vocabulary pruning supports Unigram tokenizers, not {tj['model'].get('type')}"
        )
    used: set[int] = set()
    for p in ("", *prompts):
        used |= token_ids(tj, texts if p == "" else texts[:1], p)
    n_text = len(used)
    words = sorted({v for w in lexicon if w.isalpha() for v in (w, w.capitalize(), w.upper())})
    used |= token_ids(tj, words)
    keep, counts = select_pieces(tj, used, budget=budget)
    counts["lexicon"] = counts["from_text"] - n_text
    counts["from_text"] = n_text
    new_tj = pruned_tokenizer_json(tj, keep)

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("model.safetensors", "tokenizer.json"))
    state = load_file(str(src / "model.safetensors"))
    key = next(k for k in state if k.endswith("word_embeddings.weight"))
    state[key] = state[key][torch.tensor(keep)].contiguous()
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "tokenizer.json").write_text(json.dumps(new_tj, ensure_ascii=False), encoding="utf-8")
    cfg = json.loads((out / "config.json").read_text())
    cfg["vocab_size"] = len(keep)
    remap = {old: new for new, old in enumerate(keep)}
    for k in ("pad_token_id", "bos_token_id", "eos_token_id"):
        if cfg.get(k) is not None:
            cfg[k] = remap[cfg[k]]
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")

    old_tok, new_tok = Tokenizer.from_str(json.dumps(tj)), Tokenizer.from_str(json.dumps(new_tj))
    before = after = changed = 0
    for t in probe:
        a = [tj["model"]["vocab"][i][0] for i in old_tok.encode(t).ids]
        b = [new_tj["model"]["vocab"][i][0] for i in new_tok.encode(t).ids]
        before, after, changed = before + len(a), after + len(b), changed + (a != b)
    n = max(1, len(probe))
    report = PruneReport(
        old_size=len(tj["model"]["vocab"]),
        new_size=len(keep),
        probe_tokens_before=round(before / n, 3),
        probe_tokens_after=round(after / n, 3),
        probe_changed_fraction=round(changed / n, 4),
        **counts,
    )
    (out / "vocab_pruning.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return report
