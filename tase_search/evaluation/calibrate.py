"""Fitting a model's score calibration (:mod:`tase_search.query.calibration`) and measuring it on dev data.

Why dev data: a model trained on TQuAD train (the bundled one is) gives its train questions higher
cosines than it gives new questions, so a calibration fitted there is under-confident on anything
else (bench/README.md: fitted there, dev hits predicted 0.4-0.5 were relevant 61-71% of the time).
The dev set was not trained on; it is split in two by article, each half's regressions fitted on the
other half, and the
reliability table and calibration error are measured out of fold, through the search itself. The
shipped file is fitted on all of it. ``fit_on="train"`` fits on TQuAD train instead (for a model that
never saw it) and measures on the whole dev set.

Queries: TQuAD questions, of which those of every fifth article have their paragraphs left out of the
index (a question about something the corpus does not hold), and everyday questions from the TaPaCo
paraphrase train file (``paraphrase/tqp-train.tsv``: "Yarın ne yapacaksın?"), which no encyclopedia
answers. Each is searched as users search (``k`` hits per mode, hybrid with its default fusion), a
hit labelled relevant when it is the question's paragraph. A hit's dense gap is measured from the mean
vector of 200 sentences of ``corpus/ud-turkish-sentences.txt`` (generic Turkish text, no TQuAD),
written to the file with the regressions. Reported too: the top score of
:data:`OFF_TOPIC` questions (never fitted on) against the median top score of answerable questions.
"""

from __future__ import annotations

import csv
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..query.calibration import (
    PROBABLY_NOT_RELEVANT,
    PROBABLY_RELEVANT,
    Calibration,
    Logistic,
    fit_logistic,
    reliability,
)

__all__ = ["OFF_TOPIC", "SquadSplit", "read_everyday_questions", "read_squad", "run"]

#: Questions about cooking, shopping, phones and daily life: nothing in an encyclopedia answers them.
OFF_TOPIC = [
    "pizza hamuru nasıl yapılır",
    "mercimek çorbası tarifi",
    "en ucuz buzdolabı hangisi",
    "telefonumun şarjı çabuk bitiyor ne yapmalıyım",
    "kargo takip numarası nereden öğrenilir",
    "kek neden ortası çöker",
    "çamaşır makinesi su almıyor",
    "internet faturası nasıl ödenir",
    "bulaşık makinesinde hangi deterjan kullanılır",
    "yeni bir akıllı telefon almak istiyorum önerin",
    "menemen soğanlı mı olur soğansız mı",
    "indirimli ayakkabı nereden alınır",
    "kahve makinesi nasıl temizlenir",
    "saç dökülmesine ne iyi gelir",
    "kira sözleşmesi nasıl yapılır",
    "kulaklığın bir tarafı ses vermiyor",
    "köfte harcına ne konur",
    "online alışverişte iade süresi kaç gün",
    "wifi şifresi nasıl değiştirilir",
    "bebek arabası tavsiyesi",
]
MODES = ("dense", "sparse", "hybrid")
#: The features each mode's regression takes (:data:`tase_search.query.calibration.FEATURES`).
MODE_FEATURES = {
    "dense": ("dense", "dense_lead", "dense_gap", "top"),
    "sparse": ("keyword", "keyword_lead", "coverage"),
    "hybrid": ("dense", "keyword", "dense_lead", "keyword_lead", "dense_gap", "coverage", "top"),
}
K = 10
#: Everyday questions added to the fitting queries (none of them has an answer in an encyclopedia).
EVERYDAY = 300
#: Generic Turkish sentences (UD treebanks: news, tourism, fiction) a query's background cosine is
#: measured against (:attr:`tase_search.query.calibration.Calibration.background`).
BACKGROUND = 200


@dataclass
class SquadSplit:
    """Questions, the index of their paragraph among ``paragraphs`` (None: not indexed), and the article
    each comes from (the folds split by it)."""

    paragraphs: list[str]
    questions: list[str]
    relevant: list[int | None]
    article: list[int] = field(default_factory=list)

    def extended(self, questions: Sequence[str], start: int) -> SquadSplit:
        """These questions and ``questions`` (without answers, articles ``start``, ``start + 1``, ...)."""
        n = len(questions)
        return SquadSplit(
            self.paragraphs,
            self.questions + list(questions),
            self.relevant + [None] * n,
            self.article + list(range(start, start + n)),
        )

    def subset(self, keep: Sequence[bool]) -> SquadSplit:
        pick = [i for i, k in enumerate(keep) if k]
        return SquadSplit(
            self.paragraphs,
            [self.questions[i] for i in pick],
            [self.relevant[i] for i in pick],
            [self.article[i] for i in pick],
        )


def read_squad(path: Path, *, held_out_every: int = 5) -> SquadSplit:
    """A SQuAD v1.1 file as a :class:`SquadSplit`, every ``held_out_every``-th article's paragraphs
    left out of the corpus (its questions kept, with no relevant paragraph)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    split = SquadSplit([], [], [], [])
    for a, article in enumerate(data):
        held_out = held_out_every > 0 and a % held_out_every == held_out_every - 1
        for para in article["paragraphs"]:
            text = para["context"].strip()
            if not text:
                continue
            at: int | None = None
            if not held_out:
                split.paragraphs.append(text)
                at = len(split.paragraphs) - 1
            for q in para["qas"]:
                if q["question"].strip():
                    split.questions.append(q["question"].strip())
                    split.relevant.append(at)
                    split.article.append(a)
    return split


def read_everyday_questions(path: Path, n: int = EVERYDAY, seed: int = 0) -> list[str]:
    """``n`` distinct questions of four words or more from a paraphrase TSV's ``sentence1`` column."""
    found: set[str] = set()
    with Path(path).open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            text = (row.get("sentence1") or "").strip()
            if text.endswith("?") and len(text.split()) >= 4:
                found.add(text)
    questions = sorted(found)
    random.Random(seed).shuffle(questions)
    return questions[:n]


class _CachedQueries:
    """A query encoder whose vectors are computed once per text (every mode asks for the same)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._cache: dict[str, np.ndarray] = {}

    def encode_query(self, texts: Sequence[str] | str, **kw: Any) -> np.ndarray:
        items = [texts] if isinstance(texts, str) else list(texts)
        missing = list(dict.fromkeys(t for t in items if t not in self._cache))
        if missing:
            for t, v in zip(missing, self._inner.encode_query(missing, **kw)):
                self._cache[t] = np.asarray(v, dtype=np.float32)
        return np.stack([self._cache[t] for t in items]).astype(np.float32)


def _index(encoder: Any, split: SquadSplit, path: Path) -> Any:
    from ..retriever import Retriever

    docs = [{"id": str(i), "text": t} for i, t in enumerate(split.paragraphs)]
    r = Retriever.build(docs, model=encoder, path=path, factory="Flat", progress="off")
    r._query_encoder = _CachedQueries(r.query_encoder)
    return r


def _labels(hits: Sequence[Any], rel: int | None) -> list[int]:
    return [int(rel is not None and h.id == str(rel)) for h in hits]


def _searched(r: Any, split: SquadSplit, mode: str, k: int = K) -> list[list[Any]]:
    return r.search(split.questions, k=k, mode=mode) if split.questions else []


def _rows(r: Any, split: SquadSplit, mode: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The features of every hit of ``mode`` (as the search computes them) and their labels."""
    names = MODE_FEATURES[mode]
    with r._open().recording_features() as found:
        _searched(r, split, mode, k)
    x = [[feats.get(n, 0.0) for n in names] for per_query in found for _, feats in per_query]
    y = [
        int(rel is not None and doc == str(rel))
        for per_query, rel in zip(found, split.relevant)
        for doc, _ in per_query
    ]
    return np.asarray(x, dtype=np.float64).reshape(len(x), len(names)), np.asarray(y)


def fit(
    r: Any, split: SquadSplit, k: int = K, background: Sequence[float] | None = None
) -> tuple[dict[str, Logistic], dict[str, int]]:
    """Each mode's regression, fitted on ``split`` searched in ``r`` (gaps measured from
    ``background``; without one the gap is 0 and weighs nothing); and the hits each was fitted on."""
    searcher = r._open()
    searcher.calibration, searcher.keyword_calibration = None, None  # raw parts, own rankings
    searcher.background = None if background is None else np.asarray(background, dtype=np.float32)
    modes: dict[str, Logistic] = {}
    counts: dict[str, int] = {}
    try:
        for mode in MODES:
            x, y = _rows(r, split, mode, k)
            w, b = fit_logistic(x, y)
            modes[mode] = Logistic(b, **{f: float(v) for f, v in zip(MODE_FEATURES[mode], w)})
            counts[mode] = len(y)
    finally:
        searcher.background = None
    return modes, counts


def read_background(path: Path, n: int = BACKGROUND, seed: int = 0) -> list[str]:
    """``n`` sentences of four words or more drawn from a corpus file (one text per line)."""
    lines = sorted(
        {t for t in (line.strip() for line in Path(path).open(encoding="utf-8")) if len(t.split()) >= 4}
    )
    random.Random(seed).shuffle(lines)
    return lines[:n]


def background_vector(encoder: Any, texts: Sequence[str]) -> tuple[float, ...] | None:
    """The mean of the texts' document vectors: a query's mean cosine to them is its dot product
    with it (unit vectors), so one vector stands for the whole background."""
    if not texts:
        return None
    vectors = np.asarray(encoder.encode_document(list(texts)), dtype=np.float64)
    return tuple(float(v) for v in vectors.mean(axis=0))


def _measure(
    r: Any, folds: Sequence[tuple[SquadSplit, Calibration]], final: Calibration, k: int
) -> dict[str, Any]:
    """Each fold searched with its calibration (out of fold); the reliability over all their hits."""
    searcher = r._open()
    out: dict[str, Any] = {}
    for mode in (*MODES, "auto"):
        p: list[float] = []
        y: list[int] = []
        tops: list[float] = []
        for split, cal in folds:
            searcher.calibration, searcher.keyword_calibration = cal, cal.modes["sparse"]
            for hits, rel in zip(_searched(r, split, mode, k), split.relevant):
                p += [h.score for h in hits]
                y += _labels(hits, rel)
                if rel is not None and hits:
                    tops.append(hits[0].score)
        searcher.calibration, searcher.keyword_calibration = final, final.modes["sparse"]
        off = [hits[0].score if hits else 0.0 for hits in r.search(OFF_TOPIC, k=1, mode=mode)]
        table, ece = reliability(p, y)
        out[mode] = {
            "hits": len(p),
            "ece": round(ece, 4),
            "reliability": [
                {**row, "predicted": round(row["predicted"], 3), "observed": round(row["observed"], 3)}
                for row in table
            ],
            "real_top_median": round(statistics.median(tops), 3) if tops else None,
            "real_top_share_relevant": round(float(np.mean([t >= PROBABLY_RELEVANT for t in tops])), 3)
            if tops
            else None,
            "off_topic_top_max": round(max(off), 3),
            "off_topic_below_not_relevant": sum(s < PROBABLY_NOT_RELEVANT for s in off),
        }
    return out


def run(
    encoder: Any,
    data_root: Path,
    *,
    fit_on: str = "dev",
    k: int = K,
    progress: Callable[[str], None] = lambda _line: None,
) -> tuple[Calibration, dict[str, Any]]:
    """Fit and measure (see the module docstring); the calibration and the report."""
    t0 = time.perf_counter()
    dev_path = Path(data_root) / "tquad" / "dev-v0.1.json"
    train_path = Path(data_root) / "tquad" / "train-v0.1.json"
    everyday_path = Path(data_root) / "paraphrase" / "tqp-train.tsv"
    everyday = read_everyday_questions(everyday_path) if everyday_path.is_file() else []
    background_path = Path(data_root) / "corpus" / "ud-turkish-sentences.txt"
    background_texts = read_background(background_path) if background_path.is_file() else []
    fingerprint = getattr(encoder, "fingerprint", None)
    report: dict[str, Any] = {
        "k": k,
        "fit_on": fit_on,
        "everyday_questions": len(everyday),
        "background_sentences": len(background_texts),
    }
    progress(f"encoding {len(background_texts)} background sentences")
    bg = background_vector(encoder, background_texts)
    with tempfile.TemporaryDirectory(prefix="tase-calibrate-") as tmp:
        dev = read_squad(dev_path)
        progress(f"indexing {len(dev.paragraphs)} dev paragraphs")
        rd = _index(encoder, dev, Path(tmp) / "dev")
        if fit_on == "train":
            train = read_squad(train_path)
            train = train.extended(everyday, start=max(train.article, default=0) + 1)
            progress(f"indexing {len(train.paragraphs)} train paragraphs")
            rt = _index(encoder, train, Path(tmp) / "train")
            progress(f"searching {len(train.questions)} train questions")
            modes, counts = fit(rt, train, k, bg)
            rt.close()
            final = Calibration(modes, fingerprint, background=bg)
            folds = [(dev, final)]
            fitted = {"data": f"{train_path.name} + {len(everyday)} {everyday_path.name}", "hits": counts}
        else:
            both = dev.extended(everyday, start=max(dev.article, default=0) + 1)
            halves = [both.subset([a % 2 == f for a in both.article]) for f in (0, 1)]
            progress(f"searching {len(both.questions)} questions (dev and everyday)")
            fold_cals = [
                Calibration(fit(rd, halves[1 - f], k, bg)[0], fingerprint, background=bg) for f in (0, 1)
            ]
            modes, counts = fit(rd, both, k, bg)
            final = Calibration(modes, fingerprint, background=bg)
            folds = [(dev.subset([a % 2 == f for a in dev.article]), fold_cals[f]) for f in (0, 1)]
            fitted = {"data": f"{dev_path.name} + {len(everyday)} {everyday_path.name}", "hits": counts}
        progress("measuring on dev")
        report["dev"] = {
            "data": dev_path.name,
            "questions": len(dev.questions),
            "answerable": sum(x is not None for x in dev.relevant),
            "paragraphs": len(dev.paragraphs),
            "measured": "out of fold (2 folds by article)" if fit_on == "dev" else "held out",
            "modes": _measure(rd, folds, final, k),
        }
        rd.close()
    final.meta.update(
        {
            "fitted_on": {**fitted, "k": k, "background": f"{len(background_texts)} {background_path.name}"},
            "dev_ece": {m: v["ece"] for m, v in report["dev"]["modes"].items()},
        }
    )
    report["seconds"] = round(time.perf_counter() - t0, 1)
    return final, report


def reliability_markdown(report: dict[str, Any]) -> str:
    """The dev reliability tables side by side: bin, then predicted / observed (hits) per mode."""
    modes = report["modes"]
    bins = sorted({row["bin"] for m in modes.values() for row in m["reliability"]})
    lines = ["| predicted | " + " | ".join(modes) + " |", "|---|" + "---|" * len(modes)]
    for b in bins:
        cells = []
        for m in modes.values():
            row = next((r for r in m["reliability"] if r["bin"] == b), None)
            cells.append(
                "—" if row is None else f"{row['predicted']:.2f} / {row['observed']:.2f} ({row['n']})"
            )
        lines.append(f"| {b} | " + " | ".join(cells) + " |")
    lines.append("| **ECE** | " + " | ".join(f"**{m['ece']:.3f}**" for m in modes.values()) + " |")
    lines.append(
        f"| off-topic ({len(OFF_TOPIC)}): highest top score, below 0.2 | "
        + " | ".join(
            f"{m['off_topic_top_max']:.3f} ({m['off_topic_below_not_relevant']}/{len(OFF_TOPIC)})"
            for m in modes.values()
        )
        + " |"
    )
    lines.append(
        "| answerable: median top score (share ≥ 0.5) | "
        + " | ".join(
            f"{m['real_top_median']:.3f} ({m['real_top_share_relevant']:.2f})" for m in modes.values()
        )
        + " |"
    )
    return "\n".join(lines)
