"""Training rows for the reranker: (query, passage, label) with hard negatives mined by an encoder.

Why mined negatives: a cross-encoder reranks the encoder's top passages, so it must learn to tell
the gold passage from the ones the encoder already confuses with it; random negatives alone teach
it only topic. One random negative per query is kept as well, so off-topic passages get a low
probability too (scores are thresholded by users). A candidate that contains a gold answer or
repeats the gold text is never used as a negative (it would be a false negative).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tase_search.errors import DataError

from . import data as tdata

log = logging.getLogger("training.rerank")


@dataclass(frozen=True)
class Group:
    """One query with its positive passage and the pool of passages negatives are drawn from."""

    query: str
    positive: int  # index into the source's passage pool
    forbidden: tuple[str, ...] = ()  # strings whose presence makes a passage a (possible) positive


@dataclass(frozen=True)
class Source:
    name: str
    passages: list[str]
    groups: list[Group]


def read_squad_source(path: str | Path, name: str = "squad") -> Source:
    """SQuAD JSON: each question with its paragraph; answers are forbidden in negatives."""
    p = tdata.check_data_file(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{p}: not SQuAD JSON: {exc}") from exc
    passages: list[str] = []
    groups: list[Group] = []
    for article in raw.get("data", []):
        for para in article.get("paragraphs", []):
            context = " ".join(str(para.get("context", "")).split())
            if not context:
                continue
            passages.append(context)
            for qa in para.get("qas", []):
                question = " ".join(str(qa.get("question", "")).split())
                answers = tuple(
                    " ".join(str(a.get("text", "")).split()).lower()
                    for a in qa.get("answers", [])
                    if isinstance(a, dict) and len(str(a.get("text", "")).strip()) >= 3
                )
                if question:
                    groups.append(Group(question, len(passages) - 1, answers))
    if not groups:
        raise DataError(f"{p}: no questions found in the SQuAD JSON")
    return Source(name, passages, groups)


def read_pair_source(
    paths: Sequence[str | Path], columns: Sequence[str], *, limit: int | None, seed: int, name: str
) -> Source:
    """Pairs (query column, passage column) from TSV files; a sample of ``limit`` pairs."""
    ds = tdata.read_pairs(list(paths), columns)
    rows = list(zip(ds[columns[0]], ds[columns[1]], strict=True))
    random.Random(seed).shuffle(rows)
    passages: list[str] = []
    seen: dict[str, int] = {}
    groups: list[Group] = []
    for q, d in rows:
        q, d = " ".join(str(q).split()), " ".join(str(d).split())
        if not q or not d or q == d:
            continue
        if d not in seen:
            seen[d] = len(passages)
            passages.append(d)
        groups.append(Group(q, seen[d], (d.lower(),)))
    if limit:
        # keep the pool whole (negatives come from it) but train on `limit` queries
        groups = groups[:limit]
    return Source(name, passages, groups)


def mine(
    source: Source,
    encoder: Any,
    *,
    hard: int,
    random_count: int,
    candidates: int,
    seed: int,
    batch_size: int = 64,
) -> list[dict[str, Any]]:
    """Rows for ``source``: each group's positive (label 1), ``hard`` mined and ``random_count`` random negatives."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    if hard:
        log.info(
            "mining %s: encoding %d passages, %d queries",
            source.name,
            len(source.passages),
            len(source.groups),
        )
        pv = encoder.encode_document(source.passages, batch_size=batch_size)
        qv = encoder.encode_query([g.query for g in source.groups], batch_size=batch_size)
        k = min(len(source.passages), candidates + 8)
    for gi, g in enumerate(source.groups):
        gold = source.passages[g.positive]
        rows.append({"query": g.query, "passage": gold, "label": 1.0, "source": source.name})
        used = {g.positive}

        def usable(j: int, used: set[int] = used, g: Group = g, gold: str = gold) -> bool:
            text = source.passages[j]
            low = text.lower()
            return j not in used and text != gold and not any(a and a in low for a in g.forbidden)

        if hard:
            scores = pv @ qv[gi]
            top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
            top = top[np.argsort(-scores[top])]
            pool = [int(j) for j in top if usable(int(j))][:candidates]
            for j in rng.sample(pool, min(hard, len(pool))):
                used.add(j)
                rows.append(
                    {"query": g.query, "passage": source.passages[j], "label": 0.0, "source": source.name}
                )
        for _ in range(random_count):
            for _try in range(10):
                j = rng.randrange(len(source.passages))
                if usable(j):
                    used.add(j)
                    rows.append(
                        {"query": g.query, "passage": source.passages[j], "label": 0.0, "source": source.name}
                    )
                    break
    return rows


def build_rows(config: dict[str, Any], encoder: Any, cache: Path) -> list[dict[str, Any]]:
    """Every source's rows, mined once and cached in ``cache`` (JSON lines) for resumed runs."""
    if cache.is_file():
        rows = [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines() if line]
        log.info("using %d cached rows from %s", len(rows), cache)
        return rows
    seed = int(config.get("seed", 42))
    mining = config.get("mining", {})
    rows: list[dict[str, Any]] = []
    for i, spec in enumerate(config["sources"]):
        kind = spec.get("type")
        if kind == "squad":
            src = read_squad_source(spec["path"], spec.get("name", "squad"))
        elif kind == "pairs":
            src = read_pair_source(
                spec["paths"],
                spec["columns"],
                limit=spec.get("limit"),
                seed=seed + i,
                name=spec.get("name", "pairs"),
            )
        else:
            raise DataError(f"reranker source type {kind!r} is not one of squad, pairs")
        rows.extend(
            mine(
                src,
                encoder,
                hard=int(spec.get("hard_negatives", 3)),
                random_count=int(spec.get("random_negatives", 0)),
                candidates=int(mining.get("candidates", 15)),
                seed=seed + i,
            )
        )
    random.Random(seed).shuffle(rows)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(cache)
    return rows


__all__ = ["Group", "Source", "build_rows", "mine", "read_pair_source", "read_squad_source"]
