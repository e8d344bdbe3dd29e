#!/usr/bin/env python
"""Indexing speed by thread count: ``tase-search index --threads N`` against the automatic default.

Why: torch starts one thread per core, and on a machine where another process keeps a core busy its
threads wait on each other (the reason ``tase_search/runtime/threads.py`` picks the free CPUs by default).
This runs the real CLI on the first ``--lines`` lines of a corpus once per setting and round,
interleaved (``1, 2, auto, 1, 2, auto, ...``) so a change in the machine's load hits every setting
alike, and reports per setting the CLI's own indexing time (``seconds``: reading, embedding, saving;
no model load), its docs/s, the wall time of the whole command, and the thread count ``auto`` chose,
with the CPUs other processes kept busy just before each run.

Children run with ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` removed (so ``auto`` decides), under
``nice`` +10, with ``--query-backend torch`` (no ONNX export after indexing) and a throwaway index.

    nice -n 10 python bench/threads.py /work/shared/data/corpus/ud-turkish-sentences.txt --lines 2000 \\
        --rounds 2 --out runs/bench/threads.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import finish, machine_facts  # noqa: E402

from tase_search.runtime.threads import available_cpus, busy_cpus  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", help="a .txt corpus (one document per line)")
    p.add_argument("--lines", type=int, default=2000, help="index the first N lines (default 2000)")
    p.add_argument(
        "--threads", default="1,2,auto", help="settings to compare, comma-separated (default 1,2,auto)"
    )
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    p.add_argument("--model", default=None, help="model for --model (default: the shipped default)")
    p.add_argument("--out", default=None, help="also write the JSON result here")
    p.add_argument(
        "--quick", action="store_true", help="a smoke run: 20 lines, one round (not a measurement)"
    )
    return p


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env = {k: v for k, v in env.items() if not k.startswith("TASE_SEARCH_") or k == "TASE_SEARCH_CACHE_DIR"}
    env.update(TASE_SEARCH_QUERY_BACKEND="torch", TOKENIZERS_PARALLELISM="false")
    return env


def _index_once(corpus: Path, work: Path, setting: str, model: str | None) -> dict[str, Any]:
    cli = [sys.executable, "-c", "import sys; from tase_search.cli import main; sys.exit(main())"]
    cmd = [*cli, "index", str(corpus), "--index", str(work / f"ix-{setting}")]
    cmd += ["--overwrite", "--json", "--quiet"]
    if setting != "auto":
        cmd += ["--threads", setting]
    if model:
        cmd += ["--model", model]
    busy = busy_cpus(sample=0.5)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), preexec_fn=lambda: os.nice(10))
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "setting": setting,
        "threads": summary["threads"],
        "seconds": summary["seconds"],
        "docs_per_second": summary["docs_per_second"],
        "wall_seconds": round(wall, 2),
        "busy_cpus_before": round(busy, 2),
    }


def run(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    if args.quick:
        args.lines, args.rounds = min(args.lines, 20), 1
    settings = [s.strip() for s in args.threads.split(",") if s.strip()]
    facts = machine_facts()
    with tempfile.TemporaryDirectory(prefix="tase-bench-threads-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus.txt"
        with open(args.corpus, encoding="utf-8") as src, open(corpus, "w", encoding="utf-8") as dst:
            for i, line in enumerate(src):
                if i >= args.lines:
                    break
                dst.write(line)
        runs = [_index_once(corpus, work, s, args.model) for _ in range(args.rounds) for s in settings]
    per: dict[str, Any] = {}
    for s in settings:
        mine = [r for r in runs if r["setting"] == s]
        per[s] = {
            "threads": sorted({r["threads"] for r in mine}),
            "seconds_median": round(statistics.median(r["seconds"] for r in mine), 2),
            "docs_per_second_median": round(statistics.median(r["docs_per_second"] for r in mine), 1),
            "wall_seconds_median": round(statistics.median(r["wall_seconds"] for r in mine), 2),
        }
    result = {
        "benchmark": "threads",
        "corpus": str(args.corpus),
        "lines": args.lines,
        "usable_cpus": available_cpus(),
        "settings": per,
        "runs": runs,
        "machine": facts,
    }
    summary = "; ".join(
        f"{s}: {v['seconds_median']} s ({v['docs_per_second_median']} docs/s, threads {v['threads']})"
        for s, v in per.items()
    )
    return finish(result, args.out, f"index {args.lines} lines: {summary}")


if __name__ == "__main__":
    run()
