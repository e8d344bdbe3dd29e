"""Training data: local pair/triplet/STS/SQuAD files and hub corpora → ``datasets.Dataset``; batch samplers.

Every loader returns a ``datasets.Dataset`` whose columns are in the order the losses expect
(anchor, positive[, negative][, label]). Local readers fail with :class:`DataError` naming the file
and line, because a bad row found 40 minutes into a CPU run is expensive. Hub loaders
(NLI-TR, parallel corpora) call ``datasets.load_dataset`` only in thin wrappers; their row
handling is pure functions so it is testable offline on in-memory fixtures.

The batch sampler matters as much as the data on CPU: MNRL uses the other rows of a batch as
negatives, so a duplicated text in a batch is a false negative; and padding to the longest row
makes a batch mixing 8-token Tatoeba pairs with 120-token news pairs an order of magnitude slower.
:class:`BucketedNoDuplicatesBatchSampler` fixes both.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tase_search.errors import DataError
from tase_search.evaluation import labelled_data as formats
from tase_search.text.normalize import nfc

__all__ = [
    "BucketedNoDuplicatesBatchSampler",
    "check_data_file",
    "dedup_rows",
    "file_sha256",
    "load_nli_tr",
    "load_parallel_hub",
    "nli_rows_to_examples",
    "parallel_rows_to_pairs",
    "read_pairs",
    "read_squad",
    "read_sts",
    "read_table",
    "split_sentences",
    "sts_positive_pairs",
]


# --------------------------------------------------------------------------- files
def file_sha256(path: str | Path) -> str:
    """sha256 of a file, recorded in run.json so a run can be tied to the exact data it saw."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_data_file(path: str | Path) -> Path:
    """``path`` when it is a non-empty file; the error points at ``--set data_root=...``."""
    try:
        p = formats.check_file(path, "training data")
    except DataError as exc:
        raise DataError(f"{exc} (or --set data_root=...)") from None
    if p.stat().st_size == 0:
        raise DataError(f"{p}: training data file is empty; give a file with a header row and data rows")
    return p


def read_table(
    path: str | Path, columns: Sequence[str], *, fmt: str | None = None, limit: int | None = None
) -> list[tuple[str, ...]]:
    """``columns`` of every row of a tsv/csv/jsonl file with a header row, as tuples of strings.

    The one table reader of :mod:`tase_search.evaluation.labelled_data` (linear TSV: quotes are ordinary
    characters; csv: RFC 4180). An empty required field is an error naming ``file:line``.
    """
    p = check_data_file(path)
    rows = formats.read_table(p, columns, what="training data", fmt=fmt, limit=limit)
    return [tuple(r[c] for c in columns) for r in rows]


def dedup_rows(rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Drop exact duplicate rows, keeping first occurrences (Anki exports repeat pairs)."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for r in rows:
        key = tuple(r)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _to_dataset(rows: Sequence[tuple[Any, ...]], names: Sequence[str]) -> Any:
    from datasets import Dataset

    return Dataset.from_dict({n: [r[i] for r in rows] for i, n in enumerate(names)})


def read_pairs(
    paths: str | Path | Sequence[str | Path],
    columns: Sequence[str] = ("tr", "en"),
    *,
    names: Sequence[str] | None = None,
    fmt: str | None = None,
    limit: int | None = None,
    dedup: bool = True,
) -> Any:
    """Pairs (or triplets: give three columns) from one or more local files → Dataset.

    ``names`` renames the output columns (default: the input column names).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise DataError("no data files given")
    rows: list[tuple[str, ...]] = []
    for p in paths:
        rows.extend(read_table(p, columns, fmt=fmt))
    if dedup:
        rows = dedup_rows(rows)
    if limit:
        rows = rows[:limit]
    return _to_dataset(rows, names or columns)


# --------------------------------------------------------------------------- STS
def read_sts(path: str | Path, *, max_score: float = 5.0, limit: int | None = None) -> Any:
    """STS file → Dataset(sentence1, sentence2, score in [0, 1]) for CoSENT / cosine losses."""
    pairs = formats.read_sts(check_data_file(path), limit=limit)
    for i, score in enumerate(pairs.scores, 1):
        if not 0.0 <= score <= max_score:
            raise DataError(
                f"{path}: pair {i}: score {score} outside [0, {max_score}]; check the score column"
            )
    rows = [
        (a, b, s / max_score)
        for a, b, s in zip(pairs.sentences1, pairs.sentences2, pairs.scores, strict=True)
    ]
    return _to_dataset(rows, ("sentence1", "sentence2", "score"))


def sts_positive_pairs(path: str | Path, *, min_score: float = 4.0) -> Any:
    """High-scoring STS pairs (score ≥ ``min_score`` on the 0-5 scale) → Dataset(anchor, positive) for MNRL."""
    pairs = formats.read_sts(check_data_file(path))
    out = [
        (a, b)
        for a, b, s in zip(pairs.sentences1, pairs.sentences2, pairs.scores, strict=True)
        if s >= min_score
    ]
    if not out:
        raise DataError(f"{path}: no pair scores >= {min_score}; lower min_score")
    return _to_dataset(dedup_rows(out), ("anchor", "positive"))


# --------------------------------------------------------------------------- SQuAD
_SENT_END = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+(?=[\"'“‘(]?[A-ZÇĞİÖŞÜ0-9])")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans of ``text`` (character offsets): a light rule-based splitter, enough to find the
    sentence holding a SQuAD answer (abbreviations may split wrongly; the cost is a shorter positive)."""
    spans = []
    start = 0
    for m in _SENT_END.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def read_squad(
    path: str | Path, *, target: str = "paragraph", max_chars: int | None = None, limit: int | None = None
) -> Any:
    """SQuAD-format JSON → Dataset(anchor=question, positive=paragraph | answer sentence).

    ``target="sentence"`` uses the sentence containing the first answer's start (short positives
    train faster and teach the question→evidence match; questions without an answer offset are
    left out); ``"paragraph"`` uses the whole context, cut to ``max_chars`` at a word boundary (the
    model's token cap truncates anyway).
    """
    if target not in ("paragraph", "sentence"):
        raise DataError(f"SQuAD target must be 'paragraph' or 'sentence', got {target!r}")
    squad = formats.read_squad(check_data_file(path), what="SQuAD training data")
    spans: dict[int, list[tuple[int, int]]] = {}
    rows: list[tuple[str, str]] = []
    for q in squad.questions:
        if target == "sentence":
            raw = squad.raw_paragraphs[q.paragraph]
            if q.answer_start is None:
                continue
            if q.paragraph not in spans:
                spans[q.paragraph] = split_sentences(raw)
            pos = next((nfc(raw[a:b]).strip() for a, b in spans[q.paragraph] if a <= q.answer_start < b), "")
            if not pos:
                continue
        else:
            pos = squad.paragraphs[q.paragraph]
            if max_chars and len(pos) > max_chars:
                cut = pos.rfind(" ", 0, max_chars)
                pos = pos[: cut if cut > 0 else max_chars]
        rows.append((q.question, pos))
        if limit and len(rows) >= limit:
            break
    if not rows:
        raise DataError(f"{path}: no question/{target} pairs found; check the answers' answer_start offsets")
    return _to_dataset(dedup_rows(rows), ("anchor", "positive"))


# --------------------------------------------------------------------------- hub: NLI-TR
NLI_ENTAILMENT, NLI_NEUTRAL, NLI_CONTRADICTION = 0, 1, 2


def nli_rows_to_examples(
    rows: Iterable[dict[str, Any]], *, hard_negatives: bool = True
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """NLI rows (premise, hypothesis, label; 0 = entailment, 2 = contradiction, -1 = no gold) → examples.

    Returns ``(triplets, pairs)``: for every entailment (premise, hypothesis) a triplet with a
    contradiction hypothesis of the same premise as hard negative when one exists (and
    ``hard_negatives``), else a plain pair. This is the SNLI/MNLI recipe of SimCSE/SBERT.
    """
    entail: dict[str, list[str]] = {}
    contra: dict[str, list[str]] = {}
    order: list[str] = []
    for r in rows:
        prem = (r.get("premise") or "").strip()
        hyp = (r.get("hypothesis") or "").strip()
        label = r.get("label")
        if not prem or not hyp or label is None:
            continue
        if label == NLI_ENTAILMENT:
            if prem not in entail:
                entail[prem] = []
                order.append(prem)
            if hyp not in entail[prem]:
                entail[prem].append(hyp)
        elif label == NLI_CONTRADICTION:
            contra.setdefault(prem, []).append(hyp)
    triplets: list[tuple[str, str, str]] = []
    pairs: list[tuple[str, str]] = []
    for prem in order:
        negs = contra.get(prem, []) if hard_negatives else []
        for i, hyp in enumerate(entail[prem]):
            if negs:
                triplets.append((prem, hyp, negs[i % len(negs)]))
            else:
                pairs.append((prem, hyp))
    return triplets, pairs


def load_nli_tr(
    configs: Sequence[str] = ("snli_tr", "multinli_tr"),
    *,
    split: str = "train",
    hub_id: str = "boun-tabi/nli_tr",
    hard_negatives: bool = True,
    limit: int | None = None,
    loader: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """NLI-TR from the hub → ``{"triplets": Dataset(anchor, positive, negative), "pairs": Dataset(anchor, positive)}``.

    Needs network (or a warm datasets cache). ``loader`` defaults to ``datasets.load_dataset``;
    tests pass a function returning in-memory datasets. Empty parts are omitted from the dict.
    """
    if loader is None:
        from datasets import load_dataset as loader  # type: ignore[no-redef]
    rows: list[dict[str, Any]] = []
    for cfg in configs:
        try:
            ds = loader(hub_id, cfg, split=split)
        except Exception as exc:  # noqa: BLE001 - network / hub errors vary by datasets version
            raise DataError(
                f"could not load {hub_id} ({cfg}, {split}): {exc}. This needs network access."
            ) from exc
        rows.extend(ds)
        if limit and len(rows) >= limit:
            rows = rows[:limit]
            break
    triplets, pairs = nli_rows_to_examples(rows, hard_negatives=hard_negatives)
    out: dict[str, Any] = {}
    if triplets:
        out["triplets"] = _to_dataset(triplets, ("anchor", "positive", "negative"))
    if pairs:
        out["pairs"] = _to_dataset(pairs, ("anchor", "positive"))
    if not out:
        raise DataError(f"{hub_id} {list(configs)}: no entailment pairs found")
    return out


# --------------------------------------------------------------------------- hub: parallel corpora
def _get_path(row: dict[str, Any], key: str) -> Any:
    """``row[key]``, where ``key`` may be dotted for nested columns (OPUS style ``translation.tr``)."""
    cur: Any = row
    for part in key.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def parallel_rows_to_pairs(
    rows: Iterable[dict[str, Any]], source: str, target: str, *, max_chars: int | None = None
) -> list[tuple[str, str]]:
    """Rows of a parallel corpus → deduplicated (source, target) pairs, dropping empty or over-long ones."""
    out = []
    for r in rows:
        a, b = _get_path(r, source), _get_path(r, target)
        if not isinstance(a, str) or not isinstance(b, str):
            continue
        a, b = a.strip(), b.strip()
        if not a or not b:
            continue
        if max_chars and (len(a) > max_chars or len(b) > max_chars):
            continue
        out.append((a, b))
    return dedup_rows(out)


def load_parallel_hub(
    hub_id: str,
    source: str = "tr",
    target: str = "en",
    *,
    config: str | None = None,
    split: str = "train",
    max_chars: int | None = 1000,
    limit: int | None = None,
    loader: Callable[..., Any] | None = None,
) -> Any:
    """A parallel corpus on the hub (``hub_id`` + column names, dotted for nested) → Dataset(source, target)."""
    if loader is None:
        from datasets import load_dataset as loader  # type: ignore[no-redef]
    try:
        ds = loader(hub_id, config, split=split) if config else loader(hub_id, split=split)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"could not load {hub_id} ({config or 'default'}, {split}): {exc}") from exc
    pairs = parallel_rows_to_pairs(ds, source, target, max_chars=max_chars)
    if limit:
        pairs = pairs[:limit]
    if not pairs:
        raise DataError(f"{hub_id}: no ({source}, {target}) pairs found; check the column names")
    names = (source.split(".")[-1], target.split(".")[-1])
    if names[0] == names[1]:
        names = ("anchor", "positive")
    return _to_dataset(pairs, names)


# --------------------------------------------------------------------------- sampler
try:  # the trainer requires a DefaultBatchSampler subclass; fall back to torch's for plain use
    from sentence_transformers.base.sampler import DefaultBatchSampler as _BaseSampler
except ImportError:  # pragma: no cover - sentence-transformers < 6
    try:
        from sentence_transformers.sampler import DefaultBatchSampler as _BaseSampler  # type: ignore[no-redef]
    except ImportError:
        from torch.utils.data import BatchSampler as _BaseSampler  # type: ignore[no-redef,assignment]

_LABEL_COLUMNS = ("label", "score", "labels", "scores")


class BucketedNoDuplicatesBatchSampler(_BaseSampler):  # type: ignore[misc,valid-type]
    """Shuffled batches of similar length where no text appears twice in a batch.

    Rows are shuffled (per epoch), grouped into windows of ``bucket_batches`` batches, sorted by
    length inside a window and cut into batches, whose order is then shuffled: batches stay
    random but each one pads little. A row whose text is already in the batch being built waits
    for a later batch (a duplicate would be a false in-batch negative for MNRL). Label columns
    (teacher embeddings, scores) are ignored for both length and duplicates.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool = False,
        valid_label_columns: list[str] | None = None,
        generator: Any = None,
        seed: int = 0,
        bucket_batches: int = 32,
        dedup: bool = True,
    ) -> None:
        try:
            super().__init__(
                dataset,
                batch_size=batch_size,
                drop_last=drop_last,
                valid_label_columns=valid_label_columns,
                generator=generator,
                seed=seed,
            )
        except TypeError:  # torch BatchSampler fallback
            super().__init__(range(len(dataset)), batch_size=batch_size, drop_last=drop_last)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = getattr(self, "epoch", 0)
        self.bucket_batches = max(1, bucket_batches)
        self.dedup = dedup
        skip = set(_LABEL_COLUMNS) | set(valid_label_columns or ())
        cols = [c for c in dataset.column_names if c not in skip]
        data = [dataset[c] for c in cols]
        n = len(dataset)
        self._texts: list[tuple[str, ...]] = [tuple(str(col[i]) for col in data) for i in range(n)]
        self._lengths = [max((len(t) for t in row), default=0) for row in self._texts]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _cached_batches(self) -> list[list[int]]:
        key = (self.seed, self.epoch)
        if getattr(self, "_cache_key", None) != key:
            self._cache = self._batches()
            self._cache_key = key
        return self._cache

    def _batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        order = list(range(len(self._texts)))
        rng.shuffle(order)
        window = self.batch_size * self.bucket_batches
        batches: list[list[int]] = []
        pending: list[int] = []
        for w in range(0, len(order), window):
            chunk = pending + order[w : w + window]
            chunk.sort(key=lambda i: self._lengths[i])
            pending = []
            cur: list[int] = []
            seen: set[str] = set()
            for i in chunk:
                texts = self._texts[i]
                if self.dedup and any(t in seen for t in texts):
                    pending.append(i)
                    continue
                cur.append(i)
                seen.update(texts)
                if len(cur) == self.batch_size:
                    batches.append(cur)
                    cur, seen = [], set()
            pending = cur + pending  # leftovers join the next window
        # whatever is left: pack greedily, still without duplicates
        while pending:
            cur, seen, rest = [], set(), []
            for i in pending:
                texts = self._texts[i]
                if len(cur) < self.batch_size and not (self.dedup and any(t in seen for t in texts)):
                    cur.append(i)
                    seen.update(texts)
                else:
                    rest.append(i)
            if len(cur) == self.batch_size or not self.drop_last:
                batches.append(cur)
            pending = rest if len(rest) < len(pending) else []
        rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._cached_batches()

    def __len__(self) -> int:
        """The exact number of batches this epoch (deduplication can add a few beyond n / batch_size)."""
        return len(self._cached_batches())
