#!/usr/bin/env python
"""SQLite FTS5 (the keyword part as shipped) against bm25s, on the same analysed terms.

Both get exactly the terms of ``tase_search.text.analysis`` (documents: ``document_terms``; queries:
``query_terms``) and the same BM25 parameters (k1 1.2, b 0.75: FTS5's), so the comparison is of the
engines: indexing time, bytes on disk, query latency and quality. Quality on TQuAD dev (questions ->
their paragraph: hit@1, hit@5, MRR@10); speed and size on TQuAD's paragraphs and on ``--corpus``
(one document per line, first ``--n`` lines; e.g. ``bench/make_corpus.py`` output). bm25s is not a
dependency of tase-search: ``pip install bm25s`` to include it (otherwise only FTS5 is measured).

FTS5 is measured as the keyword part stores it: a table of passage terms keyed by passage id, in a
file, queries ``MATCH`` an OR of quoted terms ordered by ``bm25()``. bm25s is measured as its own
index: ``BM25.index`` over the token lists, ``save`` to a directory, ``retrieve`` one query at a time.

    python bench/sparse_engines.py --tquad /work/shared/data/tquad/dev-v0.1.json \\
        --corpus runs/bench/corpus-1m.txt --n 100000 --out runs/bench/sparse_engines.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


def _tquad(path: Path) -> tuple[list[str], list[tuple[str, int]]]:
    paragraphs: list[str] = []
    questions: list[tuple[str, int]] = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for para in article["paragraphs"]:
            paragraphs.append(para["context"].strip())
            questions += [(q["question"], len(paragraphs) - 1) for q in para["qas"]]
    return paragraphs, questions


def _dir_bytes(path: Path) -> int:
    return (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else path.stat().st_size
    )


class Fts5:
    name = "fts5"

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "fts5.sqlite"

    def index(self, terms: list[str]) -> None:
        from tase_search.store import sparse

        if self.path.exists():
            self.path.unlink()
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.execute("BEGIN")
        sparse.create(conn)
        sparse.insert(conn, enumerate(terms))
        conn.execute("COMMIT")
        conn.close()
        self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)

    def bytes(self) -> int:
        return self.path.stat().st_size

    def search(self, query_terms: list[str], k: int) -> list[int]:
        from tase_search.store import sparse

        if not query_terms:
            return []
        sql = f"SELECT rowid FROM {sparse.TABLE} WHERE {sparse.TABLE} MATCH ? ORDER BY bm25({sparse.TABLE}) LIMIT ?"
        return [r[0] for r in self.conn.execute(sql, (sparse.match_expression(query_terms), k))]


class Bm25s:
    name = "bm25s"

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "bm25s"

    def index(self, terms: list[str]) -> None:
        import bm25s

        self.model = bm25s.BM25(k1=1.2, b=0.75)
        self.model.index([t.split() for t in terms], show_progress=False)
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.model.save(str(self.dir))

    def bytes(self) -> int:
        return _dir_bytes(self.dir)

    def search(self, query_terms: list[str], k: int) -> list[int]:
        vocab = self.model.vocab_dict
        known = [t for t in query_terms if t in vocab]
        if not known:
            return []
        k = min(k, int(self.model.scores["num_docs"]))
        docs, scores = self.model.retrieve([known], k=k, show_progress=False, n_threads=1)
        return [int(d) for d, s in zip(docs[0], scores[0]) if s > 0]


def _measure(
    engine: Any, docs: Sequence[str], queries: Sequence[str], relevant: Sequence[int] | None
) -> dict[str, Any]:
    from tase_search.text.analysis import document_terms, query_terms

    t0 = time.perf_counter()
    terms = [document_terms(d) for d in docs]
    analysis = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine.index(terms)
    indexing = time.perf_counter() - t0
    qterms = [query_terms(q) for q in queries]
    times, ranked = [], []
    for q in qterms:
        t0 = time.perf_counter()
        ranked.append(engine.search(q, 10))
        times.append(time.perf_counter() - t0)
    out: dict[str, Any] = {
        "docs": len(docs),
        "analysis_seconds": round(analysis, 3),
        "index_seconds": round(indexing, 3),
        "bytes": engine.bytes(),
        "query": C.percentiles_ms(times),
    }
    if relevant is not None:
        h1 = h5 = mrr = 0.0
        for ids, rel in zip(ranked, relevant):
            if rel in ids:
                r = ids.index(rel)
                h1, h5, mrr = h1 + (r == 0), h5 + (r < 5), mrr + 1 / (r + 1)
        n = len(relevant)
        out["quality"] = {"hit@1": round(h1 / n, 4), "hit@5": round(h5 / n, 4), "mrr@10": round(mrr / n, 4)}
    return out


def run(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tquad", type=Path, required=True, help="TQuAD (SQuAD v1.1) dev JSON.")
    p.add_argument("--corpus", type=Path, default=None, help="A larger corpus, one document per line.")
    p.add_argument("--n", type=int, default=100_000, help="Documents of --corpus to use.")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    engines = [Fts5]
    try:
        import bm25s  # noqa: F401

        engines.append(Bm25s)
    except ImportError:
        print("bm25s is not installed: measuring FTS5 only", file=sys.stderr)
    paragraphs, questions = _tquad(a.tquad)
    result: dict[str, Any] = {"machine": C.machine_facts(), "tquad": {}, "corpus": {}}
    with tempfile.TemporaryDirectory(prefix="tase-engines-") as tmp:
        for cls in engines:
            e = cls(Path(tmp))
            result["tquad"][e.name] = _measure(
                e, paragraphs, [q for q, _ in questions], [r for _, r in questions]
            )
        if a.corpus:
            docs = C.read_lines(a.corpus, a.n)
            for cls in engines:
                e = cls(Path(tmp))
                result["corpus"][e.name] = _measure(e, docs, [q for q, _ in questions[:300]], None)
                del e
    lines = []
    for part in ("tquad", "corpus"):
        for name, r in result[part].items():
            q = r.get("quality", {})
            lines.append(
                f"{part} {name}: {r['docs']:,} docs, index {r['index_seconds']}s, {r['bytes'] / 1e6:.1f} MB, "
                f"query p50 {r['query']['p50_ms']} ms" + (f", MRR@10 {q['mrr@10']}" if q else "")
            )
    return C.finish(result, a.out, "\n".join(lines))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    run()
