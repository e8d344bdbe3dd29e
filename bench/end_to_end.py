#!/usr/bin/env python
"""End to end: indexing a corpus with the CLI, and query latency cold (CLI) and warm (Retriever, stdin).

Measured in one run:

* **indexing**: ``tase-search index CORPUS --index TMP --overwrite --json`` in a subprocess
  (documents/s as the CLI reports it, wall time including process start and model load, and the
  child's peak RSS from ``wait4``) against pure ``Encoder.encode_document`` on the same texts in
  this process, interleaved (index, encode, index, encode, ...). The ratio
  ``index_docs_per_s / encode_docs_per_s`` is what indexing keeps of raw encoding speed
  (target: >= 0.85, i.e. indexing within 15% of pure encoding).
* **start-up**: ``tase-search --help``, ``tase-search info`` and a cold
  ``tase-search query "..." --index X`` (process start to printed answer; the default path, which
  uses the torch-free query bundle, and ``--query-backend torch``), several runs each, median; plus
  which heavy modules ``--help`` imports, and ``python -c pass`` / ``import torch`` for reference.
* **warm queries**: a long-lived ``Retriever`` (encode + search + fetch text, one query at a
  time, p50/p99) with the default query backend (ONNX Runtime) and with ``torch``, alternated query
  by query; and the CLI's stdin mode (``tase-search query - --index X``) fed many queries (time per
  answer once the model is loaded), both backends.

For large corpora (``bench/make_corpus.py`` writes 1,000,000 documents): ``--encode-sample N``
measures pure encoding on a random sample of N documents instead of the whole corpus,
``--no-inprocess-build`` skips the in-process ``Retriever.build`` (a second full indexing), and
``--workdir DIR --skip-build`` measures start-up and queries against the index an earlier run left
in ``DIR/index`` without indexing again. The CLI run's peak RSS is compared with the size of the
index it wrote (``peak_rss_vs_index_bytes``; target < 2, meaningful at scale, where the model's
own memory no longer dominates).

    python bench/end_to_end.py /work/shared/data/corpus/ud-turkish-sentences.txt --out runs/bench/e2e.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the same oneDNN kernel-cache cap the CLI sets (tase_search/cli.py), so the in-process encode reference
# runs under the conditions of the `tase-search index` child it is compared with
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")

import _common as C  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "corpus",
        nargs="?",
        default=None,
        help="Corpus .txt (one document per line). Default: the bundled demo corpus.",
    )
    p.add_argument("--model", default="default", help="Model spec (default: the registry default).")
    p.add_argument("--limit", type=int, default=None, help="Use only the first N lines of the corpus.")
    p.add_argument("--rounds", type=int, default=2, help="Index/encode rounds, interleaved (default 2).")
    p.add_argument("--cold-runs", type=int, default=5, help="Runs of each cold CLI command (default 5).")
    p.add_argument("--warm-queries", type=int, default=300, help="Queries for the warm measurements.")
    p.add_argument(
        "--queries",
        default=None,
        help="Query texts (.txt lines or .tsv 'tr' column). Default: the demo queries, then corpus lines.",
    )
    p.add_argument("--batch-size", type=int, default=64, help="Encoding batch size (the CLI default, 64).")
    p.add_argument(
        "--no-reference",
        action="store_true",
        help="Skip the reference start-up times (python, import torch, import sentence_transformers).",
    )
    p.add_argument(
        "--workdir",
        default=None,
        help="Where to build the index, kept afterwards (default: a temp directory, removed).",
    )
    p.add_argument(
        "--skip-build",
        "--reuse-index",
        dest="skip_build",
        action="store_true",
        help="Do not index: measure start-up and queries against WORKDIR/index, built by an "
        "earlier run with the same --workdir.",
    )
    p.add_argument(
        "--encode-sample",
        type=int,
        default=None,
        metavar="N",
        help="Measure pure encoding on a random sample of N documents (seed 0) instead of the "
        "whole corpus; documents/s are compared as rates.",
    )
    p.add_argument(
        "--no-inprocess-build",
        action="store_true",
        help="Skip the in-process Retriever.build (a second full indexing of the corpus).",
    )
    C.add_common_args(p)
    return p


def _cli() -> list[str]:
    exe = Path(sys.executable).parent / "tase-search"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("tase-search")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from tase_search.cli import main; sys.exit(main())"]


_THREADS: int | None = None


def _env() -> dict[str, str]:
    env = dict(os.environ)
    if _THREADS:  # --threads: the CLI children get the same thread count as this process
        env["OMP_NUM_THREADS"] = str(_THREADS)
    env["TASE_SEARCH_NO_PROGRESS"] = "1"
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


# A small launcher between this (large, torch-loaded) process and each measured command: Linux
# carries ru_maxrss over fork+exec, so a child forked from here would report our own peak RSS.
# The launcher is small; the command it starts reports only its own peak, and the launcher times it.
_LAUNCH = (
    "import json, os, subprocess, sys, time\n"
    "cmd = json.loads(sys.argv[1])\n"
    "t0 = time.perf_counter()\n"
    "p = subprocess.Popen(cmd)\n"
    "_, status, ru = os.wait4(p.pid, 0)\n"
    "dt = time.perf_counter() - t0\n"
    "with open(sys.argv[2], 'w') as fh:\n"
    "    json.dump({'seconds': dt, 'rc': os.waitstatus_to_exitcode(status), 'maxrss_kb': ru.ru_maxrss}, fh)\n"
)


def _run_child(cmd: list[str], stdin: str | None = None) -> dict[str, Any]:
    """Run ``cmd``: wall seconds (process start to exit), exit code, stdout, stderr, own peak RSS."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r", suffix=".json") as rep,
    ):
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, json.dumps(cmd), rep.name],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=_env(),
        )
        if stdin is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin.encode("utf-8"))
            proc.stdin.close()
        proc.wait()
        out.seek(0)
        err.seek(0)
        try:
            info = json.loads(Path(rep.name).read_text() or "{}")
        except ValueError:
            info = {}
        return {
            "seconds": float(info.get("seconds", float("nan"))),
            "rc": int(info.get("rc", proc.returncode or 1)),
            "stdout": out.read().decode("utf-8", "replace"),
            "stderr": err.read().decode("utf-8", "replace"),
            "peak_rss_mb": round(info.get("maxrss_kb", 0) / 1024, 1),
        }


def _check(res: dict[str, Any], what: str) -> dict[str, Any]:
    if res["rc"] != 0:
        raise SystemExit(f"{what} failed (exit {res['rc']}):\n{res['stderr'][-3000:]}")
    return res


def _stdin_mode(cmd: list[str], queries: list[str]) -> dict[str, Any]:
    """Feed all queries to ``query -`` at once; time each answer line as it arrives."""
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
        text=True,
        encoding="utf-8",
    )
    t0 = time.perf_counter()
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("".join(q + "\n" for q in queries))
    proc.stdin.close()
    stamps = []
    for line in proc.stdout:
        if line.strip():
            stamps.append(time.perf_counter() - t0)
    proc.wait()
    if proc.returncode != 0:
        raise SystemExit(f"stdin query mode failed:\n{proc.stderr.read()[-3000:] if proc.stderr else ''}")
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return {
        "queries": len(queries),
        "answers": len(stamps),
        "first_answer_seconds": round(stamps[0], 3) if stamps else None,
        "total_seconds": round(stamps[-1], 3) if stamps else None,
        "per_query_after_first": C.percentiles_ms(gaps),
        "queries_per_second_after_first": round(len(gaps) / (stamps[-1] - stamps[0]), 1)
        if len(stamps) > 1
        else None,
    }


# The one-off query maps the vector file: its RSS counts the index pages the kernel mapped for the
# search (file-backed, shared with the page cache and every other process searching the index; how many
# depends on what is cached), beside the process's own (anonymous) memory. /proc tells them apart.
_QUERY_MEMORY = (
    "import json, sys\n"
    "from pathlib import Path\n"
    "sys.path.insert(0, sys.argv[3])\n"
    "import _common as C\n"
    "from tase_search import Retriever\n"
    "index = Path(sys.argv[2])\n"
    "r = Retriever.load(index, mmap=True)  # what `query` does: the index's query bundle where it has one\n"
    "r.search(sys.argv[1], k=5)\n"
    "keys = ('VmHWM', 'VmRSS', 'RssAnon', 'RssFile', 'RssShmem')  # before close: mapped pages still count\n"
    "print(json.dumps({k: v for k in keys if (v := C._status_mb(k)) is not None}), file=sys.stderr)\n"
)


def _query_memory(probe: str, index_dir: Path) -> dict[str, float] | None:
    """The CLI's one-off query path run in a child; its memory after the search, anonymous vs file-backed."""
    if not Path("/proc/self/status").is_file():
        return None
    out = subprocess.run(
        [sys.executable, "-c", _QUERY_MEMORY, probe, str(index_dir), str(Path(__file__).resolve().parent)],
        capture_output=True,
        text=True,
        env=_env(),
    )
    try:
        return json.loads(out.stderr.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def _imports_of_help() -> dict[str, bool]:
    code = (
        "import sys, io, contextlib\n"
        "from tase_search.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
        "import json; print(json.dumps({m: m in sys.modules for m in "
        "['numpy', 'torch', 'faiss', 'sentence_transformers', 'transformers', 'tqdm']}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env())
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}


def _index_bytes(index_dir: Path) -> int:
    from tase_search.retriever import Retriever

    return int(Retriever.load(index_dir).info()["bytes_on_disk"])


def _indexing(
    args: argparse.Namespace,
    corpus: Path,
    workdir: Path,
    index_dir: Path,
    cli: list[str],
    encoder: Any,
    overlap: int,
) -> dict[str, Any]:
    """CLI index runs, pure encoding (all documents or --encode-sample of them) and in-process builds,
    interleaved per round."""
    from tase_search.documents.readers import read_corpus
    from tase_search.retriever import Retriever

    inprocess = not args.no_inprocess_build
    docs = list(read_corpus(str(corpus)))
    texts = [d.text for d in docs]
    if not inprocess:
        del docs  # only texts are needed from here on
        docs = []
    index_cmd = cli + [
        "index",
        str(corpus),
        "--index",
        str(index_dir),
        "--overwrite",
        "--json",
        "--batch-size",
        str(args.batch_size),
    ]
    if args.model != "default":
        index_cmd += ["--model", args.model]
    sample = texts
    if args.encode_sample and args.encode_sample < len(texts):
        sample = random.Random(0).sample(texts, args.encode_sample)
    # the passages the index will hold for those documents (long documents are split to fit the model)
    passages = [t[p.start : p.end] for t in sample for p in encoder.split_passages(t, overlap=overlap)]
    encoder.encode_document(passages[: 2 * args.batch_size])  # warm
    # encode the reference the way indexing does: calls of CHUNK_DOCS documents (one call over a whole
    # large sample measured 10-25% slower here, which made the reference slower than the CLI itself)
    from tase_search.retriever import CHUNK_DOCS

    def encode_reference() -> None:
        for start in range(0, len(passages), CHUNK_DOCS):
            encoder.encode_document(passages[start : start + CHUNK_DOCS])

    index_runs, build_runs, encode_runs = [], [], []
    for _ in range(max(1, args.rounds)):
        res = _check(_run_child(index_cmd), "tase-search index")
        summary = json.loads(res["stdout"].strip().splitlines()[-1])
        index_runs.append(
            {
                "wall_seconds": round(res["seconds"], 3),
                "cli_seconds": summary["seconds"],
                "docs_per_second": summary["docs_per_second"],
                "documents": summary["documents"],
                "passages": summary["passages"],
                "factory": summary["factory"],
                "peak_rss_mb": res["peak_rss_mb"],
                "index_bytes": _index_bytes(index_dir),
            }
        )
        t0 = time.perf_counter()
        encode_reference()
        s = time.perf_counter() - t0
        encode_runs.append({"seconds": round(s, 3), "docs_per_second": round(len(sample) / s, 1)})
        if inprocess:
            t0 = time.perf_counter()
            Retriever.build(
                docs, model=encoder, path=workdir / "index-inprocess", overwrite=True, overlap=overlap
            )
            s = time.perf_counter() - t0
            build_runs.append({"seconds": round(s, 3), "docs_per_second": round(len(docs) / s, 1)})
    idx_dps = C.median(r["docs_per_second"] for r in index_runs)
    enc_dps = C.median(r["docs_per_second"] for r in encode_runs)
    bld_dps = C.median(r["docs_per_second"] for r in build_runs) if build_runs else None
    pair_ratios = [i["docs_per_second"] / e["docs_per_second"] for i, e in zip(index_runs, encode_runs)]
    build_ratios = [b["docs_per_second"] / e["docs_per_second"] for b, e in zip(build_runs, encode_runs)]
    peak_mb = max(r["peak_rss_mb"] for r in index_runs)
    index_bytes = index_runs[-1]["index_bytes"]
    rss_ratio = round(peak_mb * 2**20 / index_bytes, 3) if index_bytes else None
    return {
        "_texts": texts,
        "documents": len(texts),
        "encode_sample_documents": len(sample),
        "encode_sample_passages": len(passages),
        "cli_index_runs": index_runs,
        "inprocess_build_runs": build_runs,
        "pure_encode_runs": encode_runs,
        "cli_docs_per_second": idx_dps,
        "inprocess_build_docs_per_second": bld_dps,
        "encode_docs_per_second": enc_dps,
        "ratio_cli_vs_encode": round(idx_dps / enc_dps, 4),
        "ratio_cli_per_round": [round(x, 3) for x in pair_ratios],
        "ratio_build_vs_encode": round(bld_dps / enc_dps, 3) if bld_dps else None,
        "ratio_build_per_round": [round(x, 3) for x in build_ratios],
        "cli_peak_rss_mb": peak_mb,
        "index_bytes_on_disk": index_bytes,
        "peak_rss_vs_index_bytes": rss_ratio,
        "notes": "cli: `tase-search index` as the CLI reports it (its clock starts before the model "
        "loads, so it includes loading); build: Retriever.build with the already-loaded encoder; "
        "encode: Encoder.encode_document on the passages of the same documents (or of a random sample of "
        "--encode-sample of them; documents/s compared as rates). Runs interleaved cli, encode, build. "
        "peak_rss_vs_index_bytes: the CLI's peak RSS over the bytes of the index it wrote (FAISS + SQLite).",
        "target": "ratio >= 0.85 (indexing within 15% of pure encoding); peak RSS < 2x the index size at scale",
        "meets_target": {
            "cli": idx_dps / enc_dps >= 0.85,
            "build": None if bld_dps is None else bld_dps / enc_dps >= 0.85,
            "peak_rss_below_2x_index": None if rss_ratio is None else rss_ratio < 2,
        },
    }


def run(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    if args.quick:
        args.limit = min(args.limit or 200, 200)
        args.rounds = 1
        args.cold_runs = 1
        args.warm_queries = min(args.warm_queries, 10)
        args.no_reference = True
    if args.skip_build and not args.workdir:
        raise SystemExit("--skip-build needs --workdir DIR (the directory an earlier run indexed into)")
    import numpy as np  # noqa: F401 - imported before timing anything

    from tase_search.documents.readers import read_corpus
    from tase_search.encoding.encoder import Encoder
    from tase_search.retriever import Retriever

    global _THREADS
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        _THREADS = args.threads
    machine = C.machine_facts()
    if args.corpus:
        corpus = Path(args.corpus)
    elif C.DEMO_CORPUS.is_file():
        corpus = C.DEMO_CORPUS
    else:
        corpus = None
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="tase-bench-e2e-"))
    own_tmp = None if args.workdir else workdir
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if corpus is None:
            corpus = workdir / "corpus.txt"
            corpus.write_text("\n".join(C.FALLBACK_SENTENCES) + "\n", encoding="utf-8")
        if args.limit:
            lines = C.read_lines(corpus, args.limit)
            corpus = workdir / "corpus-limited.txt"
            corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
        index_dir = workdir / "index"
        cli = _cli()
        encoder = Encoder.load(args.model, precision="auto", batch_size=args.batch_size)
        overlap = 32
        indexing: dict[str, Any]
        if args.skip_build:
            if not Retriever.exists(index_dir):
                raise SystemExit(
                    f"--skip-build: no index at {index_dir}; run once without it (same --workdir)"
                )
            # only enough of the corpus to pad the queries
            texts = [
                d.text for d in itertools.islice(read_corpus(str(corpus)), max(1000, 4 * args.warm_queries))
            ]
            n_docs = Retriever.load(index_dir).info()["documents"]
            indexing = {"skipped": True, "index": str(index_dir), "documents": n_docs}
        else:
            indexing = _indexing(args, corpus, workdir, index_dir, cli, encoder, overlap)
            texts = indexing.pop("_texts")
            n_docs = len(texts)

        # ------------------------------------------------------------- cold CLI
        if args.queries:
            qp = Path(args.queries)
            queries = (
                [r["tr"] for r in C.read_tsv(qp, ["tr"]) if r["tr"]]
                if qp.suffix == ".tsv"
                else C.read_lines(qp)
            )
        elif C.DEMO_QUERIES.is_file():
            queries = C.read_lines(C.DEMO_QUERIES)
        else:
            queries = []
        # pad with corpus sentences cut short (a query-like prefix), so there are enough
        queries = queries + [" ".join(t.split()[:6]) for t in texts if len(t.split()) >= 3]
        queries = C.cycle_to(queries, args.warm_queries)
        probe = queries[0]
        cold: dict[str, list[float]] = {
            "python -c pass": [],
            "python -c 'import torch'": [],
            "python -c 'import sentence_transformers'": [],
            "tase-search --help": [],
            "tase-search info": [],
            "tase-search query": [],
            "tase-search query --query-backend torch": [],
        }
        # `tase-search index` leaves the torch-free query bundle in the index; make sure it is there with
        # --skip-build too (an index from before the bundle lived in the index).
        Retriever.load(index_dir, model=encoder).write_query_bundle()
        query_rss: list[float] = []
        query_rss_torch: list[float] = []
        if args.no_reference:
            cold = {k: v for k, v in cold.items() if k.startswith("tase-search")}
        for _ in range(max(1, args.cold_runs)):
            for code in [] if args.no_reference else ["pass", "import torch", "import sentence_transformers"]:
                key = "python -c pass" if code == "pass" else f"python -c '{code}'"
                cold[key].append(_check(_run_child([sys.executable, "-c", code]), key)["seconds"])
            cold["tase-search --help"].append(_check(_run_child(cli + ["--help"]), "--help")["seconds"])
            cold["tase-search info"].append(
                _check(_run_child(cli + ["info", "--index", str(index_dir)]), "info")["seconds"]
            )
            r = _check(_run_child(cli + ["query", probe, "--index", str(index_dir), "-k", "5"]), "query")
            cold["tase-search query"].append(r["seconds"])
            query_rss.append(r["peak_rss_mb"])
            r = _check(
                _run_child(
                    cli + ["query", probe, "--index", str(index_dir), "-k", "5", "--query-backend", "torch"]
                ),
                "query --query-backend torch",
            )
            cold["tase-search query --query-backend torch"].append(r["seconds"])
            query_rss_torch.append(r["peak_rss_mb"])
        cold_out = {
            k: {"median_seconds": round(C.median(v), 3), "runs": [round(x, 3) for x in v]}
            for k, v in cold.items()
        }
        cold_out["tase-search query"]["peak_rss_mb"] = max(query_rss)
        cold_out["tase-search query"]["memory_after_search_mb"] = _query_memory(probe, index_dir)
        cold_out["tase-search query --query-backend torch"]["peak_rss_mb"] = max(query_rss_torch)

        # ------------------------------------------------------------- warm
        # The default query path (``auto``: ONNX Runtime for a single query) against PyTorch, each in
        # its own long-lived Retriever, alternating query by query so both see the same machine load.
        torch_encoder = Encoder.load(
            args.model, precision="auto", batch_size=args.batch_size, query_backend="torch"
        )
        paths = {
            "auto": Retriever.load(index_dir, model=encoder).warm_up(),
            "torch": Retriever.load(index_dir, model=torch_encoder).warm_up(),
        }
        backend_used = "torch" if type(paths["auto"].query_encoder) is Encoder else "onnx"
        for r in paths.values():
            r.search(queries[0], k=10)  # warm kernels
        lat: dict[str, list[float]] = {name: [] for name in paths}
        enc_lat: dict[str, list[float]] = {name: [] for name in paths}
        for q in queries:
            for name, r in paths.items():
                t0 = time.perf_counter()
                r.search(q, k=10)
                lat[name].append(time.perf_counter() - t0)
        for q in queries[: min(len(queries), 100)]:
            for name, enc in (("auto", paths["auto"].query_encoder), ("torch", torch_encoder)):
                t0 = time.perf_counter()
                enc.encode_query([q])
                enc_lat[name].append(time.perf_counter() - t0)
        for r in paths.values():
            r.close()
        stdin_cmd = cli + ["query", "-", "--index", str(index_dir), "-k", "1", "--json"]
        stdin = _stdin_mode(stdin_cmd, queries)
        stdin_torch = _stdin_mode(stdin_cmd + ["--query-backend", "torch"], queries)
        warm = {
            "query_backend": backend_used,
            "retriever_search": C.percentiles_ms(lat["auto"]),
            "encode_query_only": C.percentiles_ms(enc_lat["auto"]),
            "retriever_search_torch": C.percentiles_ms(lat["torch"]),
            "encode_query_only_torch": C.percentiles_ms(enc_lat["torch"]),
            "cli_stdin": stdin,
            "cli_stdin_torch": stdin_torch,
            "notes": "retriever_search: Retriever.search(q, k=10) with the default query backend (auto: ONNX "
            "Runtime when installed), one query at a time, end to end (encode + search + fetch text); "
            "*_torch: the same with query_backend='torch', alternated query by query in one process.",
            "target": "retriever_search p50 <= 10 ms at 1M documents",
        }
        p50_search = warm["retriever_search"]["p50_ms"]
        p50_enc = warm["encode_query_only"]["p50_ms"]
        warm["search_minus_encode_p50_ms"] = round(p50_search - p50_enc, 3)
        warm["speedup_p50_vs_torch"] = round(warm["retriever_search_torch"]["p50_ms"] / p50_search, 3)
        warm["meets_target"] = p50_search <= 10.0
    finally:
        if own_tmp is not None:
            shutil.rmtree(own_tmp, ignore_errors=True)

    machine["torch_threads"] = __import__("torch").get_num_threads()
    ix = indexing if not indexing.get("skipped") else None
    result = {
        "benchmark": "end_to_end",
        "machine": machine,
        "config": {
            "corpus": str(args.corpus or C.DEMO_CORPUS),
            "documents": n_docs,
            "mean_chars": round(sum(map(len, texts)) / max(1, len(texts)), 1),
            "model": encoder.model_id,
            "precision": encoder.precision,
            "batch_size": args.batch_size,
            "rounds": args.rounds,
            "cold_runs": args.cold_runs,
            "warm_queries": len(queries),
            "cli": cli,
            "quick": args.quick,
            "encode_sample": args.encode_sample,
            "skip_build": args.skip_build,
            "inprocess_build": not args.no_inprocess_build and not args.skip_build,
        },
        "indexing": indexing,
        "cold_start": cold_out,
        "help_imports": _imports_of_help(),
        "warm": warm,
    }
    if ix is None:
        head = f"end_to_end: indexing skipped ({n_docs} documents in {index_dir}); "
    else:
        bld = ix["inprocess_build_docs_per_second"]
        head = (
            f"end_to_end: CLI index {ix['cli_docs_per_second']:.0f} docs/s, "
            f"in-process build {'-' if bld is None else f'{bld:.0f}'}, "
            f"pure encode {ix['encode_docs_per_second']:.0f} (ratios {ix['ratio_cli_vs_encode']:.2f} / "
            f"{'-' if bld is None else ix['ratio_build_vs_encode']}); peak RSS {ix['cli_peak_rss_mb']} MB = "
            f"{ix['peak_rss_vs_index_bytes']}x the index; "
        )
    summary = (
        head + f"cold query {cold_out['tase-search query']['median_seconds']}s "
        f"(torch {cold_out['tase-search query --query-backend torch']['median_seconds']}s), --help {cold_out['tase-search --help']['median_seconds']}s, "
        f"info {cold_out['tase-search info']['median_seconds']}s; warm search ({warm['query_backend']}) p50 "
        f"{warm['retriever_search']['p50_ms']}ms p99 {warm['retriever_search']['p99_ms']}ms "
        f"(torch p50 {warm['retriever_search_torch']['p50_ms']}ms, {warm['speedup_p50_vs_torch']}x); "
        f"stdin {stdin['queries_per_second_after_first']} q/s (torch {stdin_torch['queries_per_second_after_first']}); "
        f"load {machine['loadavg_before']}"
    )
    return C.finish(result, args.out, summary)


if __name__ == "__main__":
    run()
