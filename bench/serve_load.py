#!/usr/bin/env python
"""Load check of ``tase-search serve``: requests/s and latency over loopback, bounded.

Builds an index from CORPUS (default: the bundled demo corpus) with ``--model``, starts the real
``tase-search serve`` on it in a child process on 127.0.0.1 (a free port), and measures from this
process, with ``--concurrency`` client threads each sending one request at a time:

* **search**: ``GET /indexes/bench/search?q=...&k=10`` (Turkish and English queries, cycled), for each
  concurrency level in turn, ``--requests`` requests or ``--seconds`` seconds, whichever ends first;
* **search during writes**: the same at the highest level while one more client adds documents
  (``POST /documents``, ``--write-batch`` per request) without pause, so read latency under a
  committing writer is measured too; no read may fail and every write must land.

Per phase: requests, errors (non-200), requests/s, client-side p50/p90/p99 latency (connection
reused; includes HTTP and JSON), and the server's own ``took_ms`` p50 (encode + search). Client and
server share the machine's cores: on a small machine the numbers bound the server from below.

    nice -n 10 python bench/serve_load.py --concurrency 1,4 --requests 400 --out runs/bench/serve.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

ENGLISH = [
    "football match result",
    "heavy rain tomorrow",
    "earthquake",
    "central bank interest rates",
    "concert",
]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", nargs="?", default=None, help="Corpus .txt (default: the bundled demo corpus).")
    p.add_argument(
        "--model", default="default", help="Model spec for the index (default: the shipped model)."
    )
    p.add_argument("--concurrency", default="1,4", help="Client threads per search phase, comma-separated.")
    p.add_argument("--requests", type=int, default=400, help="Requests per phase at most (default 400).")
    p.add_argument("--seconds", type=float, default=30.0, help="Seconds per phase at most (default 30).")
    p.add_argument("--k", type=int, default=10, help="Hits per search (default 10).")
    p.add_argument("--write-batch", type=int, default=10, help="Documents per add in the write phase.")
    p.add_argument("--no-write-phase", action="store_true", help="Skip the search-during-writes phase.")
    C.add_common_args(p)
    return p


def _start_server(index: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    cmd = [
        sys.executable,
        "-c",
        "from tase_search.cli import main; main()",
        "serve",
        "--index",
        f"bench={index}",
        "--port",
        "0",
        "--log-level",
        "warning",
    ]
    env = {**os.environ, "TASE_SEARCH_API_KEY": ""}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    fh = open(log, "w", encoding="utf-8")  # noqa: SIM115 - the drain thread below keeps writing to it
    for line in proc.stderr:
        fh.write(line)
        if line.startswith("serving "):
            # keep reading the child's log, so a full pipe never blocks it
            threading.Thread(target=shutil.copyfileobj, args=(proc.stderr, fh), daemon=True).start()
            return proc, line.split(" at ", 1)[1].split(" ", 1)[0]
    fh.close()
    raise SystemExit(f"tase-search serve exited ({proc.wait()}) before listening; see {log}")


def _phase(
    url: str, queries: list[str], workers: int, requests: int, seconds: float, k: int, writer: Any = None
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    took: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(requests))
    deadline = time.perf_counter() + seconds
    stop = threading.Event()

    def client(offset: int) -> None:
        nonlocal errors
        with httpx.Client(base_url=url, timeout=60) as c:
            for i in counter:
                if time.perf_counter() > deadline or stop.is_set():
                    return
                q = queries[(i + offset) % len(queries)]
                t0 = time.perf_counter()
                r = c.get("/indexes/bench/search", params={"q": q, "k": k})
                dt = time.perf_counter() - t0
                with lock:
                    if r.status_code == 200:
                        latencies.append(dt)
                        took.append(r.json()["took_ms"])
                    else:
                        errors += 1

    threads = [threading.Thread(target=client, args=(w * 7,)) for w in range(workers)]
    wthread = threading.Thread(target=writer, args=(stop,)) if writer else None
    t0 = time.perf_counter()
    if wthread:
        wthread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    stop.set()
    if wthread:
        wthread.join()
    return {
        "concurrency": workers,
        "requests": len(latencies) + errors,
        "errors": errors,
        "seconds": round(wall, 3),
        "requests_per_s": round(len(latencies) / wall, 1) if wall > 0 else None,
        "latency": C.percentiles_ms(latencies),
        "server_took_p50_ms": round(C.median(took), 3) if took else None,
    }


def run(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    if args.quick:
        args.requests, args.seconds, args.concurrency = 20, 10.0, "1,2"
    levels = [int(x) for x in str(args.concurrency).split(",") if x.strip()]
    texts, source = (C.read_texts(args.corpus), args.corpus) if args.corpus else C.default_texts()
    queries = [q for q in C.read_lines(C.DEMO_QUERIES)] if C.DEMO_QUERIES.is_file() else []
    queries = C.dedupe(queries + ENGLISH + [t[:60] for t in texts[:40]])
    result: dict[str, Any] = {
        "benchmark": "serve_load",
        "machine": C.machine_facts(),
        "corpus": source,
        "documents": len(texts),
        "model": args.model,
        "k": args.k,
        "phases": [],
    }
    work = Path(tempfile.mkdtemp(prefix="tase-search-serve-bench-"))
    proc = None
    try:
        from tase_search.retriever import Retriever

        with C.Timer() as t:
            Retriever.build(texts, model=args.model, path=work / "index")
        result["build_seconds"] = round(t.seconds, 2)
        with C.Timer() as t:
            proc, url = _start_server(work / "index", work / "server.log")
        result["server_start_seconds"] = round(t.seconds, 2)
        import httpx

        with httpx.Client(base_url=url) as c:  # warm-up: first queries pay one-time costs
            for q in queries[:5]:
                c.get("/indexes/bench/search", params={"q": q, "k": args.k}).raise_for_status()
            docs_before = c.get("/indexes/bench").json()["documents"]
        result["documents"] = docs_before
        for n in levels:
            result["phases"].append(
                {"phase": "search", **_phase(url, queries, n, args.requests, args.seconds, args.k)}
            )
        if not args.no_write_phase:
            written: list[str] = []
            write_errors: list[str] = []

            def writer(stop: threading.Event) -> None:
                with httpx.Client(base_url=url, timeout=120) as c:
                    b = 0
                    while not stop.is_set():
                        docs = [
                            {"id": f"bench-w{b}-{i}", "text": f"{texts[(b * 13 + i) % len(texts)]} ({b}.{i})"}
                            for i in range(args.write_batch)
                        ]
                        r = c.post("/indexes/bench/documents", json={"documents": docs})
                        if r.status_code == 200:
                            written.extend(d["id"] for d in docs)
                        else:
                            write_errors.append(r.text[:200])
                        b += 1

            phase = _phase(url, queries, max(levels), args.requests, args.seconds, args.k, writer=writer)
            with httpx.Client(base_url=url) as c:
                missing = [i for i in written if c.get(f"/indexes/bench/documents/{i}").status_code != 200]
                docs_after = c.get("/indexes/bench").json()["documents"]
            phase.update(
                phase="search_during_writes",
                documents_written=len(written),
                write_errors=len(write_errors),
                written_but_missing=len(missing),
                documents_after=docs_after,
                nothing_lost=not missing and not write_errors and docs_after == docs_before + len(written),
            )
            result["phases"].append(phase)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    summary = "; ".join(
        f"{p['phase']} x{p['concurrency']}: {p['requests_per_s']} req/s, p50 {p['latency'].get('p50_ms')} ms, "
        f"p99 {p['latency'].get('p99_ms')} ms"
        for p in result["phases"]
    )
    return C.finish(result, args.out, summary or "no phases run")


if __name__ == "__main__":
    run()
