#!/usr/bin/env python
"""Highlight quality and cost: does the named sentence hold the answer, and what does naming it cost.

TQuAD dev: each question's own paragraph is split into sentences (``tase_search.text.sentence_spans``)
and a sentence chosen by each method; it is right when it holds the answer's start (TQuAD gives the
answer's offset). Methods: ``first`` (the first sentence: the floor), ``words`` (the most query words,
the first of ties: what sparse searches use), ``encoder`` (closest by the query-side encoder alone) and
``words+encoder`` (the shipped rule: the most query words, ties and no-word cases by the encoder).
Cost: the questions searched through a real index (``Retriever.build``, the model's default paths, the
torch-free query path) with ``k`` hits, with and without ``highlight=True``; the difference per query.

    python bench/highlight.py --model default --tquad /path/to/data/tquad/dev-v0.1.json --limit 300 \\
        --out runs/bench/highlight.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


def _questions(path: Path, limit: int | None) -> tuple[list[str], list[tuple[str, int, int]]]:
    """The paragraphs, and ``(question, paragraph index, answer start)`` triples."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    paragraphs: list[str] = []
    out: list[tuple[str, int, int]] = []
    for article in data:
        for para in article["paragraphs"]:
            text = para["context"]
            if not text.strip():
                continue
            paragraphs.append(text)
            for q in para["qas"]:
                if q["question"].strip() and q.get("answers"):
                    out.append(
                        (q["question"].strip(), len(paragraphs) - 1, int(q["answers"][0]["answer_start"]))
                    )
    return paragraphs, out[:limit] if limit else out


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default")
    p.add_argument("--tquad", type=Path, required=True, help="TQuAD (SQuAD v1.1) dev JSON.")
    p.add_argument("--limit", type=int, default=300, help="First N questions.")
    p.add_argument("-k", type=int, default=10, help="Hits per query in the cost measurement.")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    import numpy as np

    from tase_search.encoding.encoder import Encoder
    from tase_search.retriever import Retriever
    from tase_search.text import highlight as H
    from tase_search.text.normalize import sentence_spans

    paragraphs, qs = _questions(a.tquad, a.limit)
    encoder = Encoder.load(a.model)
    result: dict[str, Any] = {"machine": C.machine_facts(), "model": a.model, "questions": len(qs), "k": a.k}
    with tempfile.TemporaryDirectory(prefix="tase-highlight-") as tmp:
        docs = [{"id": str(i), "text": t} for i, t in enumerate(paragraphs)]
        r = Retriever.build(docs, model=encoder, path=Path(tmp) / "ix", factory="Flat", progress="off")
        r.warm_up()
        encode = r.query_encoder.encode_query
        right = {"first": 0, "words": 0, "encoder": 0, "words+encoder": 0}
        encoded = 0
        sentences = []
        for q, pi, start in qs:
            text = paragraphs[pi]
            spans = sentence_spans(text)
            sentences.append(len(spans))

            def holds(span: tuple[int, int] | None, start: int = start) -> bool:
                return span is not None and span[0] <= start < span[1]

            right["first"] += holds(spans[0] if spans else None)
            right["words"] += holds(H.best_sentences(q, [text], None)[0])
            right["encoder"] += holds(H.best_sentences(q, [text], encode, words=False)[0])

            def counted(texts: list[str]) -> Any:
                nonlocal encoded
                encoded += len(texts) - 1
                return encode(texts)

            right["words+encoder"] += holds(H.best_sentences(q, [text], counted)[0])
        result["accuracy"] = {m: round(n / len(qs), 4) for m, n in right.items()}
        result["sentences_per_paragraph"] = round(float(np.mean(sentences)), 2)
        result["encoded_sentences_per_paragraph"] = round(encoded / len(qs), 2)
        questions = [q for q, _, _ in qs]
        timings: dict[str, list[float]] = {}
        for mode in ("hybrid", "sparse"):
            for light in (False, True, False, True):  # interleaved, the second pair kept (warm)
                times = []
                for q in questions:
                    t0 = time.perf_counter()
                    r.search(q, k=a.k, mode=mode, highlight=light)
                    times.append(time.perf_counter() - t0)
                timings[f"{mode}{'+highlight' if light else ''}"] = times
        result["latency_ms"] = {m: C.percentiles_ms(t) for m, t in timings.items()}
        result["highlight_cost_ms_p50"] = {
            mode: round(
                result["latency_ms"][f"{mode}+highlight"]["p50_ms"] - result["latency_ms"][mode]["p50_ms"], 2
            )
            for mode in ("hybrid", "sparse")
        }
        r.close()
    summary = (
        "| method | answer in the named sentence |\n|---|---|\n"
        + "\n".join(f"| {m} | {v:.3f} |" for m, v in result["accuracy"].items())
        + f"\n\nhighlight cost per query (p50, k={a.k}): {result['highlight_cost_ms_p50']}"
    )
    return C.finish(result, a.out, summary)


if __name__ == "__main__":
    run()
