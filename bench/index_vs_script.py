#!/usr/bin/env python
"""End to end: ``tase-search index`` against the obvious script, process start included.

The obvious script is what a user writes without tase-search: load the model with
sentence-transformers, ``model.encode(lines, batch_size=32, normalize_embeddings=True)`` with the
model's passage prompt, put the vectors in a ``faiss.IndexFlatIP`` and write it to disk. Both run as
fresh processes on the same lines, interleaved (A, B, B, A, ...), each timed from process start to
exit; ``ratio`` is the script's summed wall time over the CLI's. The CLI runs with its defaults
(``--backend auto``: the document backend chosen for this CPU) unless ``--backend`` is given; its
one-off conversion is done before timing (``tase-search model export``), as a second index run would
find it.

    python bench/index_vs_script.py /work/shared/data/corpus/ud-turkish-sentences.txt --limit 800
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

SCRIPT = """
import sys
import faiss
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[1], device="cpu")
lines = [l.strip() for l in open(sys.argv[2], encoding="utf-8") if l.strip()]
prompt = "passage" if "passage" in (model.prompts or {}) else None
emb = model.encode(lines, batch_size=32, normalize_embeddings=True, prompt_name=prompt, show_progress_bar=False)
index = faiss.IndexFlatIP(emb.shape[1])
index.add(emb)
faiss.write_index(index, sys.argv[3])
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", nargs="?", default=None, help="Lines to index (default: the demo corpus).")
    p.add_argument("--limit", type=int, default=800, help="First N non-empty lines (default 800).")
    p.add_argument("--rounds", type=int, default=2, help="Interleaved rounds (default 2).")
    p.add_argument("--model", default="default")
    p.add_argument("--backend", default=None, help="The CLI's --backend (default: its own default).")
    p.add_argument(
        "--no-warmup",
        action="store_true",
        help="Skip the untimed first run of each (which "
        "otherwise fills the page cache with the libraries and the model for both alike).",
    )
    C.add_common_args(p)
    return p


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed ({res.returncode}): {res.stderr[-2000:]}")
    return took, res.stdout


def run(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    from tase_search.models import resolve

    limit = 12 if args.quick else args.limit
    source = Path(args.corpus) if args.corpus else C.DEMO_CORPUS
    lines = [t for t in C.read_lines(source) if t.strip()][:limit]
    work = Path(tempfile.mkdtemp(prefix="tase-bench-e2e-"))
    corpus = work / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, location = resolve(args.model)
    env = dict(os.environ)
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    cli = [sys.executable, "-c", "from tase_search.cli import main; main()"]
    threads = ["--threads", str(args.threads)] if args.threads else []
    backend = ["--backend", args.backend] if args.backend else []
    if args.backend in (None, "auto", "ct2-int8") and not args.quick:
        subprocess.run([*cli, "model", "export", "-m", args.model], env=env, capture_output=True, check=False)
    machine = C.machine_facts()
    took: dict[str, list[float]] = {"tase-search index": [], "obvious script": []}
    summary: dict[str, Any] = {}
    rounds = [-1, *range(args.rounds)] if not (args.no_warmup or args.quick) else list(range(args.rounds))
    for r in rounds:
        order = ["tase-search index", "obvious script"]
        for name in order if r % 2 == 0 else order[::-1]:
            if name == "obvious script":
                cmd = [sys.executable, "-c", SCRIPT, str(location), str(corpus), str(work / "flat.faiss")]
                seconds = _timed(cmd, env)[0]
                if r >= 0:
                    took[name].append(seconds)
            else:
                cmd = [*cli, "index", str(corpus), "--index", str(work / "idx"), "--overwrite", "--json",
                       "-m", args.model, *threads, *backend]  # fmt: skip
                seconds, out = _timed(cmd, env)
                if r >= 0:
                    took[name].append(seconds)
                    summary = json.loads(out.strip().splitlines()[-1])
    total = {k: sum(v) for k, v in took.items()}
    result = {
        "benchmark": "index_vs_script",
        "machine": machine,
        "config": {
            "corpus": str(source),
            "lines": len(lines),
            "rounds": args.rounds,
            "model": args.model,
            "backend": args.backend or "(CLI default)",
            "warmup": rounds[0] < 0,
            "script": SCRIPT.strip(),
        },  # fmt: skip
        "wall_seconds": {k: [round(x, 2) for x in v] for k, v in took.items()},
        "docs_per_second_wall": {k: round(len(lines) * len(v) / total[k], 1) for k, v in took.items()},
        "ratio_script_over_cli": round(total["obvious script"] / total["tase-search index"], 3),
        "cli_summary": {
            k: summary.get(k) for k in ("document_backend", "threads", "docs_per_second", "seconds")
        },
    }
    line = (f"index_vs_script: tase-search index {result['ratio_script_over_cli']}x the obvious script "
            f"({result['docs_per_second_wall']}), backend {summary.get('document_backend')}")  # fmt: skip
    return C.finish(result, args.out, line)


if __name__ == "__main__":
    run()
