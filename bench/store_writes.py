#!/usr/bin/env python
"""What a write costs by index size, now that an index is a list of segments.

A write adds one segment (or, for a delete, one deletions file), so its cost should follow what it
changes, not what the index holds. This builds indexes of ``--sizes`` random unit vectors (one short
document each, through :meth:`Retriever.build_from_vectors`: no model runs), then times, through the
public :class:`Retriever`, ``--ops`` one-document adds and ``--ops`` one-document deletes (median and
p90, merges the policy runs after a write included), and a long run of small adds: ``--small-adds``
adds of ``--small-size`` documents against one add of the same number of documents, with the segments
and merges each leaves (and an :func:`~tase_search.store.merge.optimize` after both, timed apart), and
the same small adds through :meth:`Retriever.writer` (a commit per 1,000 documents, and one at the end).

    nice -n 10 python bench/store_writes.py --sizes 10000,100000 --dim 384 --out runs/bench/store_writes.json
    python bench/store_writes.py --sizes 10000,1000000 --small-adds 0 --out runs/bench/store_writes-1m.json

The indexes are built ``--factory Flat`` unless told otherwise: a write adds a Flat segment whatever the
big one is, so the index type does not change what a write costs, and building an HNSW graph of a
million random vectors takes hours. Merges are timed apart (``*_without_merges``, ``*_merges_s``).

Run the same command with ``PYTHONPATH`` pointing at a checkout of an older store for its numbers
(it times the same public calls; ``optimize`` is skipped where the store has none).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import add_common_args, finish, machine_facts  # noqa: E402

from tase_search.documents.document import Document  # noqa: E402
from tase_search.retriever import Retriever  # noqa: E402


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _docs(start: int, n: int) -> list[Document]:
    return [
        Document(id=f"d{i}", text=f"belge {i} kayıt {i % 97}", metadata={"n": i % 100}, source="b", line=i)
        for i in range(start, start + n)
    ]


def _segments(path: Path) -> int:
    m = json.loads((path / "manifest.json").read_text())
    return len(m.get("segments") or [None])


class _MergeClock:
    """Time spent in merges (:func:`tase_search.store.merge.merge_segments`, which a write runs after
    its own commit when the policy calls for one), so a write's own cost and its merges are told apart."""

    def __init__(self) -> None:
        self.seconds, self.count = 0.0, 0
        try:
            from tase_search.store import merge
        except ImportError:  # an older store: no merges
            self._module = None
            return
        self._module, self._real = merge, merge.merge_segments

        def timed(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return self._real(*a, **k)
            finally:
                self.seconds += time.perf_counter() - t
                self.count += 1

        merge.merge_segments = timed

    def lap(self) -> float:
        """Merge seconds since the last lap."""
        s, self.seconds = self.seconds, 0.0
        return s

    def close(self) -> None:
        if self._module is not None:
            self._module.merge_segments = self._real


def _optimize(path: Path) -> float | None:
    try:
        from tase_search.store.merge import optimize
    except ImportError:
        return None
    t = time.perf_counter()
    optimize(path)
    return time.perf_counter() - t


def _stats(seconds: list[float]) -> dict[str, float]:
    xs = sorted(seconds)
    return {
        "median_ms": round(1000 * statistics.median(xs), 2),
        "p90_ms": round(1000 * xs[int(0.9 * (len(xs) - 1))], 2),
        "mean_ms": round(1000 * statistics.fmean(xs), 2),
    }


def by_size(
    root: Path, n: int, dim: int, ops: int, rng: np.random.Generator, factory: str | None, clock: _MergeClock
) -> dict[str, Any]:
    path = root / f"ix-{n}"
    t = time.perf_counter()
    r = Retriever.build_from_vectors(_docs(0, n), _unit(rng, n, dim), "random", path, factory=factory)
    build = time.perf_counter() - t
    adds, deletes, own_adds, own_deletes = [], [], [], []
    clock.lap()
    for i in range(ops):
        doc, vec = _docs(n + i, 1), _unit(rng, 1, dim)
        t = time.perf_counter()
        r.add_vectors(doc, vec)
        adds.append(time.perf_counter() - t)
        own_adds.append(adds[-1] - clock.lap())
    for i in range(ops):
        t = time.perf_counter()
        r.delete([f"d{i * 7}"])
        deletes.append(time.perf_counter() - t)
        own_deletes.append(deletes[-1] - clock.lap())
    out = {"build_s": round(build, 2), "factory": r.manifest.factory}
    out.update(add_one=_stats(adds), delete_one=_stats(deletes))
    out.update(add_one_without_merges=_stats(own_adds), delete_one_without_merges=_stats(own_deletes))
    out["segments_after"] = _segments(path)
    r.close()
    return out


def small_adds(
    root: Path, count: int, size: int, dim: int, rng: np.random.Generator, clock: _MergeClock
) -> dict[str, Any]:
    total = count * size
    vecs = _unit(rng, total + 1, dim)
    one = root / "one-add"
    r = Retriever.build_from_vectors(_docs(10**9, 1), vecs[-1:], "random", one)
    clock.lap()
    t = time.perf_counter()
    r.add_vectors(_docs(0, total), vecs[:total])
    single = time.perf_counter() - t
    single_merges = clock.lap()
    many = root / "small-adds"
    r2 = Retriever.build_from_vectors(_docs(10**9, 1), vecs[-1:], "random", many)
    clock.lap()
    merges_before = clock.count
    t = time.perf_counter()
    for i in range(count):
        r2.add_vectors(_docs(i * size, size), vecs[i * size : (i + 1) * size])
    runs = time.perf_counter() - t
    merges = clock.lap()
    segs = _segments(many)
    buffered = _buffered_adds(root, count, size, vecs, clock, single - single_merges)
    opt_many = _optimize(many)
    opt_one = _optimize(one)
    return {
        "buffered": buffered,
        "one_add_s": round(single, 3),
        "one_add_merges_s": round(single_merges, 3),
        "small_adds_s": round(runs, 3),
        "small_adds_writes_s": round(runs - merges, 3),
        "small_adds_merges_s": round(merges, 3),
        "small_adds_merges": clock.count - merges_before,
        "ratio": round(runs / single, 2),
        "ratio_without_merges": round((runs - merges) / (single - single_merges), 2),
        "segments_after_small_adds": segs,
        "optimize_after_small_adds_s": None if opt_many is None else round(opt_many, 3),
        "optimize_after_one_add_s": None if opt_one is None else round(opt_one, 3),
        "ratio_with_optimize": None
        if opt_many is None
        else round((runs + opt_many) / (single + (opt_one or 0.0)), 2),
    }


def _buffered_adds(
    root: Path, count: int, size: int, vecs: np.ndarray, clock: _MergeClock, single_own: float
) -> dict[str, Any]:
    """The same small adds through :meth:`Retriever.writer` (group commit: a commit per ``flush_docs``
    documents), for each flush size that fits the run; the ratio is against the one large add's own
    write (merges apart)."""
    out: dict[str, Any] = {}
    total = count * size
    for flush_docs in sorted({min(1000, total), total}):
        if not hasattr(Retriever, "writer"):  # an older store: no buffered writer
            return out
        path = root / f"buffered-{flush_docs}"
        r = Retriever.build_from_vectors(_docs(10**9, 1), vecs[-1:], "random", path)
        clock.lap()
        merges_before = clock.count
        t = time.perf_counter()
        with r.writer(flush_docs=flush_docs, flush_seconds=None) as w:
            for i in range(count):
                w.add_vectors(_docs(i * size, size), vecs[i * size : (i + 1) * size])
        runs = time.perf_counter() - t
        merges = clock.lap()
        assert len(r) == total + 1, (len(r), total)
        out[str(flush_docs)] = {
            "seconds": round(runs, 3),
            "merges_s": round(merges, 3),
            "merges": clock.count - merges_before,
            "ratio_without_merges": round((runs - merges) / single_own, 2),
            "segments_after": _segments(path),
        }
        r.close()
    return out


def run(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--ops", type=int, default=20)
    p.add_argument("--small-adds", type=int, default=1000)
    p.add_argument("--small-size", type=int, default=10)
    p.add_argument(
        "--factory", default="Flat", help="the built indexes' FAISS factory ('auto': as an index chooses)"
    )
    add_common_args(p)
    a = p.parse_args(argv)
    if a.quick:
        a.sizes, a.ops, a.small_adds, a.small_size = "300,1000", 3, 20, 5
    rng = np.random.default_rng(0)
    sizes = [int(s) for s in a.sizes.split(",")]
    factory = None if a.factory == "auto" else a.factory
    result: dict[str, Any] = {"machine": machine_facts(), "dim": a.dim, "ops": a.ops, "by_size": {}}
    result["factory"] = a.factory
    clock = _MergeClock()
    try:
        with tempfile.TemporaryDirectory(prefix="store-writes-") as tmp:
            root = Path(tmp)
            for n in sizes:
                result["by_size"][str(n)] = by_size(root, n, a.dim, a.ops, rng, factory, clock)
                print(f"{n}: {result['by_size'][str(n)]}", file=sys.stderr, flush=True)
            if a.small_adds:
                result["small_adds"] = {
                    "count": a.small_adds,
                    "size": a.small_size,
                    **small_adds(root, a.small_adds, a.small_size, a.dim, rng, clock),
                }
    finally:
        clock.close()
    lo, hi = str(sizes[0]), str(sizes[-1])
    by = result["by_size"]
    result["add_growth"] = round(by[hi]["add_one"]["median_ms"] / by[lo]["add_one"]["median_ms"], 2)
    result["delete_growth"] = round(by[hi]["delete_one"]["median_ms"] / by[lo]["delete_one"]["median_ms"], 2)
    summary = (
        f"add one at {hi}: {by[hi]['add_one']['median_ms']} ms (x{result['add_growth']} of {lo}); delete one: "
        f"{by[hi]['delete_one']['median_ms']} ms"
    )
    if "small_adds" in result:
        s = result["small_adds"]
        summary += (
            f"; {a.small_adds} adds of {a.small_size}: x{s['ratio']} of one add "
            f"(x{s['ratio_without_merges']} without their {s['small_adds_merges_s']} s of merges)"
        )
        for flush, b in s.get("buffered", {}).items():
            summary += f"; through a writer committing every {flush}: x{b['ratio_without_merges']}"
    return finish(result, a.out, summary)


if __name__ == "__main__":
    run()
