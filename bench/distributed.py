#!/usr/bin/env python
"""Indexing on Ray: documents/s against the number of encoder workers, and memory per worker.

For each worker count (``--workers 1 2``) a fresh local Ray instance (``workers + 1`` CPUs, a 500 MB
object store) builds the index of the first ``--n`` lines of the corpus with
:func:`tase_search.distributed.index_corpus`, one CPU and one torch thread per worker. Measured per
run: the whole call (Ray start not included, actor start-up and the commit included); the pipeline's
rate (documents over the window from the first batch an actor starts to the last it finishes: actor
start-up and model load are outside it); each worker's own rate (its documents over the seconds it
spent in batches); the commit (merge) time; and each encoder actor's peak RSS (``VmHWM``, sampled from
``/proc`` during the run) and the driver's. The local engine with one torch thread on the same corpus is
the reference per core (``Retriever.build``, model load not included).

    nice -n 5 python bench/distributed.py /work/shared/data/corpus/ud-turkish-sentences.txt --n 2000 \
        --workers 1 2 --out runs/bench/distributed.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


class WorkerMemory:
    """Peak RSS of the encoder actors (processes whose title names ``EncodeActor``), sampled."""

    def __init__(self, every: float = 0.5) -> None:
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._every = every
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    self._sample(int(pid))

    def _sample(self, pid: int) -> None:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"EncodeActor" not in cmd:
                return
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    mb = int(line.split()[1]) / 1024
                    self.peaks[pid] = max(self.peaks.get(pid, 0.0), round(mb, 1))
        except (OSError, ValueError):
            pass


def run_ray(corpus: Path, workers: int, model: str, shard_bytes: int, work: Path) -> dict[str, Any]:
    import logging

    import ray

    from tase_search.distributed import index_corpus

    t0 = time.perf_counter()
    ray.init(
        num_cpus=workers + 1,
        object_store_memory=500 << 20,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    started = time.perf_counter() - t0
    try:
        with WorkerMemory() as memory:
            t1 = time.perf_counter()
            run = index_corpus(
                [str(corpus)],
                work / f"ray-{workers}",
                model,
                workers=workers,
                cpus_per_worker=1,
                shard_bytes=shard_bytes,
            )
            total = time.perf_counter() - t1
    finally:
        ray.shutdown()
    docs = run.added.added + run.added.unchanged
    window = run.work["window_s"]
    per_worker = [round(w["documents"] / w["busy_s"], 1) for w in run.work["workers"].values() if w["busy_s"]]
    peaks = sorted(memory.peaks.values())
    return {
        "workers": workers,
        "ray_start_s": round(started, 1),
        "shards": run.shards,
        "documents": docs,
        "passages": run.added.passages,
        "seconds": round(total, 1),
        "docs_per_s_whole_call": round(docs / total, 1),
        "docs_per_s_pipeline": round(docs / window, 1) if window else None,
        "docs_per_s_each_worker": per_worker,
        "workers_busy": run.work["workers"],
        "window_s": window,
        "embed_s": round(run.timings["embed"], 1),
        "commit_s": round(run.timings["commit"], 2),
        "worker_peak_rss_mb": peaks,
        "driver_peak_rss_mb": C.peak_rss_mb(),
    }


def run_local(corpus: Path, model: str, work: Path) -> dict[str, Any]:
    """The local engine, one torch thread: the per-core reference."""
    from tase_search.documents.readers import read_corpus
    from tase_search.encoding.encoder import Encoder
    from tase_search.retriever import Retriever
    from tase_search.runtime.threads import apply_threads

    apply_threads(1)
    encoder = Encoder.load(model)
    t0 = time.perf_counter()
    r = Retriever.build(read_corpus(str(corpus)), model=encoder, path=work / "local")
    seconds = time.perf_counter() - t0
    docs = r.last_add.added + r.last_add.unchanged
    return {"documents": docs, "seconds": round(seconds, 1), "docs_per_s": round(docs / seconds, 1)}


def run(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", nargs="?", default=str(C.DEMO_CORPUS))
    ap.add_argument("--n", type=int, default=2000, help="First N lines of the corpus.")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--model", default="default")
    ap.add_argument("--shard-bytes", type=int, default=16 << 10, help="Shard size (small: many shards).")
    ap.add_argument("--no-local", action="store_true", help="Skip the local reference run.")
    C.add_common_args(ap)
    args = ap.parse_args(argv)
    n = 60 if args.quick else args.n
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus.txt"
        corpus.write_text("\n".join(C.read_lines(args.corpus, n)) + "\n", encoding="utf-8")
        result: dict[str, Any] = {"machine": C.machine_facts(), "corpus": args.corpus, "n": n}
        result["runs"] = [run_ray(corpus, w, args.model, args.shard_bytes, work) for w in args.workers]
        if not args.no_local:
            result["local_1_thread"] = run_local(corpus, args.model, work)
    rates = ", ".join(f"{r['workers']}w {r['docs_per_s_pipeline']} docs/s" for r in result["runs"])
    return C.finish(result, args.out, f"pipeline rate: {rates}")


if __name__ == "__main__":
    run()
