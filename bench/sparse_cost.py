#!/usr/bin/env python
"""What the keyword (sparse) part costs: indexing time, bytes on disk and query latency, at scale.

No model: documents get random 8-dimensional vectors (the ``numpy`` backend), so what is timed is the
write path and the keyword part, never an encoder. For each ``--n``:

* **build**: ``Retriever.build`` of the first N lines of CORPUS without the keyword part and with it
  (``sparse=False`` / ``True``); the difference is what the keyword part adds to indexing (analysis,
  FTS5 inserts, the larger ``docs.sqlite`` written, synced and hashed), and ``docs.sqlite`` sizes;
* **append**: adding ``--add`` more documents to each (a write's incremental cost);
* **sparse build**: then ``Retriever.build_sparse`` on the index built without one (``tase-search
  sparse build``: from the stored text, through the crash-safe write);
* **queries**: ``search(..., mode="sparse")`` one query at a time, TQuAD dev questions (``--tquad``) and
  its article titles (names), p50/p90/p99, plus the same with a metadata filter.

    python bench/make_corpus.py --output runs/bench/corpus-1m.txt --n 1000000 \\
        /work/shared/data/corpus/ud-turkish-sentences.txt /work/shared/data/bitext/train/*.tsv \\
        /work/shared/data/tquad/*.json
    python bench/sparse_cost.py runs/bench/corpus-1m.txt --n 100000 1000000 \\
        --tquad /work/shared/data/tquad/dev-v0.1.json --out runs/bench/sparse_cost.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


class RandomVectors:
    """An encoder stand-in: random unit vectors, one passage per document, instantly."""

    model_id = "random-vectors"
    fingerprint = hashlib.blake2b(b"random-vectors", digest_size=16).hexdigest()
    dimension = 8
    max_seq_length = 512
    query_prompt = None
    passage_prompt = None

    def __init__(self) -> None:
        self._rng = np.random.default_rng(0)

    def _vectors(self, n: int) -> np.ndarray:
        v = self._rng.standard_normal((n, self.dimension)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def encode_document(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        if progress is not None:
            progress(len(texts))
        return self._vectors(len(texts))

    def encode_query(self, texts: Sequence[str] | str, *, batch_size: int | None = None) -> np.ndarray:
        return self._vectors(1 if isinstance(texts, str) else len(texts))

    def split_passages(self, text: str, overlap: int = 32) -> list[Any]:
        from tase_search.encoding.passages import Passage

        return [Passage(0, len(text), 0, 1)]


def _queries(path: Path | None) -> dict[str, list[str]]:
    if path is None:
        return {"demo": [line for line in C.read_lines(C.DEMO_QUERIES)]}
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    questions = [q["question"] for a in data for p in a["paragraphs"] for q in p["qas"]]
    return {"questions": questions[:300], "titles": [a["title"] for a in data]}


def _docs(lines: Sequence[str]) -> list[dict[str, str]]:
    return [{"id": str(i), "text": t, "part": str(i % 10)} for i, t in enumerate(lines)]


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - t0, 3)


def _docs_bytes(r: Any) -> int:
    """``docs.sqlite`` over every segment (one for an index of the older format)."""
    m = r.manifest
    entries = m.segments or [{"files": m.files}]
    return sum(int(s["files"]["docs.sqlite"]["bytes"]) for s in entries)


def _measure(lines: list[str], extra: list[str], queries: dict[str, list[str]], tmp: Path) -> dict[str, Any]:
    from tase_search.retriever import Retriever

    enc = RandomVectors()
    out: dict[str, Any] = {"docs": len(lines)}
    plain, t_plain = _timed(
        lambda: Retriever.build(_docs(lines), model=enc, path=tmp / "plain", backend="numpy", sparse=False)
    )
    kw, t_kw = _timed(lambda: Retriever.build(_docs(lines), model=enc, path=tmp / "kw", backend="numpy"))
    out["build_seconds"] = {
        "without_sparse": t_plain,
        "with_sparse": t_kw,
        "sparse_share": round(t_kw - t_plain, 3),
    }
    out["docs_sqlite_bytes"] = {"without_sparse": _docs_bytes(plain), "with_sparse": _docs_bytes(kw)}
    out["docs_sqlite_bytes"]["sparse_share"] = _docs_bytes(kw) - _docs_bytes(plain)
    more = [{"id": f"x{i}", "text": t, "part": "x"} for i, t in enumerate(extra)]
    _, t_add_plain = _timed(lambda: plain.add(more))
    _, t_add_kw = _timed(lambda: kw.add(more))
    out["append_seconds"] = {"docs": len(more), "without_sparse": t_add_plain, "with_sparse": t_add_kw}
    n, t_rebuild = _timed(plain.build_sparse)
    out["sparse_build_seconds"] = t_rebuild
    out["sparse_build_passages"] = n
    r = Retriever.load(kw.path, model=enc)
    r.search("ısınma turu", k=10, mode="sparse")  # open the files outside the timing
    out["query"] = {}
    for name, qs in queries.items():
        for label, flt in ((name, None), (f"{name}+filter", {"part": "3"})):
            times = []
            for q in qs:
                t0 = time.perf_counter()
                r.search(q, k=10, mode="sparse", filter=flt)
                times.append(time.perf_counter() - t0)
            out["query"][label] = C.percentiles_ms(times)
    r.close()
    for x in (plain, kw):
        x.close()
    return out


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "corpus", nargs="?", type=Path, default=None, help="One document per line (default: the demo)."
    )
    p.add_argument("--n", type=int, nargs="+", default=[100_000], help="Corpus sizes to measure.")
    p.add_argument("--add", type=int, default=1000, help="Documents appended in the append step.")
    p.add_argument("--tquad", type=Path, default=None, help="TQuAD dev JSON for the queries.")
    p.add_argument("--workdir", type=Path, default=None, help="Where the indexes go (default: a temp dir).")
    p.add_argument("--quick", action="store_true", help="A smoke run: 200 documents.")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    sizes = [200] if a.quick else a.n
    lines = C.read_lines(a.corpus or C.DEMO_CORPUS, max(sizes) + a.add)
    queries = _queries(a.tquad)
    result: dict[str, Any] = {
        "machine": C.machine_facts(),
        "corpus": str(a.corpus or C.DEMO_CORPUS),
        "sizes": {},
    }
    for n in sizes:
        docs, extra = lines[:n], lines[n : n + a.add] or lines[: a.add]
        with tempfile.TemporaryDirectory(prefix="tase-sparse-cost-", dir=a.workdir) as tmp:
            result["sizes"][str(len(docs))] = _measure(docs, extra, queries, Path(tmp))
        print(
            f"{len(docs):,} docs: {json.dumps(result['sizes'][str(len(docs))])}", file=sys.stderr, flush=True
        )
    summary = []
    for n, s in result["sizes"].items():
        q = s["query"]
        summary.append(
            f"{int(n):,} docs: build +{s['build_seconds']['sparse_share']}s for the keyword part "
            f"({s['build_seconds']['without_sparse']}s -> {s['build_seconds']['with_sparse']}s), "
            f"+{s['docs_sqlite_bytes']['sparse_share'] / 1e6:.1f} MB; sparse build {s['sparse_build_seconds']}s; "
            + ", ".join(f"{k} p50 {v['p50_ms']} ms" for k, v in q.items())
        )
    return C.finish(result, a.out, "\n".join(summary))


if __name__ == "__main__":
    run()
