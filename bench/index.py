#!/usr/bin/env python
"""Vector-index benchmark on real sentence embeddings: Flat vs HNSW vs IVF vs compressed IVF.

What ships is what is measured: every index is a :class:`tase_search.store.vectors.FaissIndex`
(the ``IDMap2``-wrapped FAISS index the store writes), built, saved and searched through it.

Vectors: real embeddings (tase-search Encoder, auto precision) of every text given with
``--texts`` (deduplicated, shuffled with a fixed seed, cached as .npy blocks under
``--cache-dir``). When ``--n`` is more than the real texts available, the rest are synthetic:
``normalise(w * a + (1 - w) * b + e)`` with ``a``, ``b`` two random real vectors,
``w ~ U(0.5, 1)`` and ``e`` a Gaussian of expected norm ``--noise`` (0.25): each synthetic vector
sits near a real one, towards another, like a paraphrase or a related sentence. Queries are
embeddings of held-out real queries (``--queries``; by default ``--nq`` texts held out of the
corpus), never part of the base set. Ground truth is exact inner-product search.

Each index type is measured in its own subprocess so peak RSS is per type: build time
(train + add), peak RSS (and its increase over the loaded vectors), bytes on disk, load time,
then, for each search setting (HNSW efSearch, IVF nprobe), single-query latency p50/p99 (one
query at a time, search only), batched QPS (all queries in one call) and recall@k against exact
search.

    python bench/index.py --n 100000 --texts /work/shared/data/corpus/ud-turkish-sentences.txt \
        /work/shared/data/bitext/train/*.tsv /work/shared/data/tquad/*.json \
        --queries /work/shared/data/bitext/dev/tatoeba-dev-tur-eng.tsv --out runs/bench/index.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

TYPES = ("flat", "hnsw", "ivf", "ivf-sq8", "ivf-sq6", "ivf-sq4", "ivf-pq", "opq-ivf-pq", "hnsw-sq8")
DEFAULT_TYPES = "flat,hnsw,ivf,ivf-sq8,ivf-pq"
BLOCK = 4096  # texts per cached embedding block


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=100_000, help="Vectors in the index (default 100000).")
    p.add_argument(
        "--texts",
        nargs="*",
        default=None,
        help="Real texts to embed: .txt (lines), .tsv (tr and en columns), .json (TQuAD paragraphs and "
        "questions). Default: the bundled demo corpus.",
    )
    p.add_argument(
        "--queries",
        default=None,
        help="Query texts (.txt lines or .tsv 'tr' column). Default: --nq texts held out of --texts.",
    )
    p.add_argument("--nq", type=int, default=1000, help="Number of queries (default 1000).")
    p.add_argument("--max-real", type=int, default=None, help="Embed at most this many real texts.")
    p.add_argument("--noise", type=float, default=0.25, help="Expected norm of the synthetic perturbation.")
    p.add_argument("--model", default="default", help="Model used to embed (default: the registry default).")
    p.add_argument("--cache-dir", default=str(C.REPO / "runs" / "bench-cache"), help="Embedding cache.")
    p.add_argument("--types", default=DEFAULT_TYPES, help=f"Comma-separated, of: {', '.join(TYPES)}.")
    p.add_argument("--ef", default="16,32,48,64,96,128,256", help="HNSW efSearch values.")
    p.add_argument("--nprobe", default="1,4,8,16,32,64,128", help="IVF nprobe values.")
    p.add_argument("--k", type=int, default=10, help="Recall@k (default 10).")
    p.add_argument("--latency-queries", type=int, default=500, help="Queries timed one at a time.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=128, help="Embedding batch size.")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    C.add_common_args(p)
    return p


# ----------------------------------------------------------------------------- factories
def nlist_for(n: int) -> int:
    """Inverted lists: the power of two nearest 4*sqrt(n), as the store's auto choice does."""
    return max(1, 2 ** int(round(math.log2(4 * math.sqrt(max(n, 1))))))


def pq_m(dim: int) -> int:
    """PQ sub-quantizers: 8 dimensions each (384-d -> 48 bytes per vector)."""
    for sub in (8, 4, 2, 1):
        if dim % sub == 0:
            return dim // sub
    return dim


def factory_for(kind: str, n: int, dim: int) -> str:
    nl = nlist_for(n)
    m = pq_m(dim)
    return {
        "flat": "Flat",
        "hnsw": "HNSW32,Flat",
        "hnsw-sq8": "HNSW32,SQ8",
        "ivf": f"IVF{nl},Flat",
        "ivf-sq8": f"IVF{nl},SQ8",
        # 6 and 4 bits per dimension: at 1M vectors the IVF lists' ids (8 B/vector) and the coarse
        # quantizer make SQ8 land just above a quarter of Flat's bytes; SQ6 is the step below it.
        "ivf-sq6": f"IVF{nl},SQ6",
        "ivf-sq4": f"IVF{nl},SQ4",
        "ivf-pq": f"IVF{nl},PQ{m}",
        "opq-ivf-pq": f"OPQ{m},IVF{nl},PQ{m}",
    }[kind]


# ----------------------------------------------------------------------------- data
def _collect_texts(args: argparse.Namespace) -> tuple[list[str], list[str], dict[str, Any]]:
    """(base texts, query texts, description). Base is deduplicated, shuffled, without the queries."""
    import numpy as np

    sources: dict[str, int] = {}
    raw: list[str] = []
    if args.texts:
        for path in args.texts:
            t = C.read_texts(path)
            sources[str(path)] = len(t)
            raw.extend(t)
    else:
        t, src = C.default_texts()
        sources[src] = len(t)
        raw.extend(t)
    base = C.dedupe(raw)
    rng = np.random.default_rng(args.seed)
    base = [base[i] for i in rng.permutation(len(base))]
    if args.queries:
        qp = Path(args.queries)
        if qp.suffix == ".tsv":
            queries = C.dedupe(r["tr"] for r in C.read_tsv(qp, ["tr"]))
        else:
            queries = C.dedupe(C.read_texts(qp))
        queries = queries[: args.nq]
        qset = set(queries)
        base = [t for t in base if t not in qset]
        qsrc = str(qp)
    else:
        nq = min(args.nq, max(1, len(base) // 5))
        queries, base = base[:nq], base[nq:]
        qsrc = "held out of --texts"
    cap = min(args.n, args.max_real or args.n)
    base = base[:cap]
    desc = {"sources": sources, "unique_texts": len(C.dedupe(raw)), "queries_from": qsrc}
    return base, queries, desc


def _embed_cached(texts: list[str], encoder: Any, cache: Path, role: str, bs: int) -> Any:
    """Embeddings of ``texts`` in blocks, each cached as .npy keyed by model fingerprint and content."""
    import numpy as np

    cache.mkdir(parents=True, exist_ok=True)
    out = []
    done = 0
    t0 = time.perf_counter()
    for i in range(0, len(texts), BLOCK):
        block = texts[i : i + BLOCK]
        h = hashlib.sha1(f"{encoder.fingerprint}|{role}|{encoder.precision}".encode())
        for t in block:
            h.update(t.encode("utf-8"))
            h.update(b"\0")
        path = cache / f"emb-{role}-{h.hexdigest()[:20]}.npy"
        if path.is_file():
            out.append(np.load(path))
        else:
            fn = encoder.encode_query if role == "query" else encoder.encode_document
            e = fn(block, batch_size=bs)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, e)
            os.replace(tmp, path)
            out.append(e)
            done += len(block)
            rate = done / (time.perf_counter() - t0)
            print(f"  embedded {i + len(block)}/{len(texts)} {role} texts ({rate:.0f}/s)", file=sys.stderr)
    if not out:
        return np.zeros((0, encoder.dimension), np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


def _synthesize(real: Any, n_extra: int, noise: float, seed: int) -> Any:
    """``n_extra`` vectors near the real ones (see the module docstring)."""
    import numpy as np

    rng = np.random.default_rng(seed + 1)
    d = real.shape[1]
    out = np.empty((n_extra, d), np.float32)
    for s in range(0, n_extra, 65536):
        m = min(65536, n_extra - s)
        a = real[rng.integers(0, len(real), m)]
        b = real[rng.integers(0, len(real), m)]
        w = rng.uniform(0.5, 1.0, (m, 1)).astype(np.float32)
        e = rng.standard_normal((m, d), dtype=np.float32) * (noise / math.sqrt(d))
        v = w * a + (1 - w) * b + e
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[s : s + m] = v
    return out


def _exact_topk(base: Any, queries: Any, k: int) -> Any:
    import faiss
    import numpy as np

    idx = faiss.IndexFlatIP(base.shape[1])
    for s in range(0, len(base), 262144):
        idx.add(np.ascontiguousarray(base[s : s + 262144]))
    _, ids = idx.search(np.ascontiguousarray(queries), k)
    return ids


# ----------------------------------------------------------------------------- worker
def _worker(spec_path: str) -> None:
    """Build one index type and measure it; print one JSON object (run in its own process)."""
    import faiss
    import numpy as np

    from tase_search.store.vectors import FaissIndex

    spec = json.loads(Path(spec_path).read_text())
    omp_default = faiss.omp_get_max_threads()
    rss0 = C.current_rss_mb()
    base = np.load(spec["base"])
    queries = np.load(spec["queries"])
    gt = np.load(spec["gt"])
    rss_loaded = C.current_rss_mb()
    n, d = base.shape
    k = spec["k"]
    factory = spec["factory"]
    out: dict[str, Any] = {
        "type": spec["kind"],
        "factory": factory,
        "faiss_omp_threads": omp_default,
        "loadavg_before": C.loadavg(),
    }

    t0 = time.perf_counter()
    fi = FaissIndex.create(factory, d)
    train_s = 0.0
    if fi.needs_training:
        # the same sample size the store trains on (TRAIN_SAMPLE, Retriever._retype)
        from tase_search.store.vectors import TRAIN_SAMPLE

        sample = base[np.random.default_rng(0).permutation(n)[:TRAIN_SAMPLE]]
        t1 = time.perf_counter()
        fi.train(sample)
        train_s = time.perf_counter() - t1
        del sample
    ids = np.arange(n, dtype=np.int64)
    for s in range(0, n, 65536):
        fi.add(base[s : s + 65536], ids[s : s + 65536])
    out["build_seconds"] = round(time.perf_counter() - t0, 3)
    out["train_seconds"] = round(train_s, 3)
    out["rss_mb"] = {
        "start": rss0,
        "vectors_loaded": rss_loaded,
        "after_build": C.current_rss_mb(),
        "peak": C.peak_rss_mb(),
        "peak_minus_loaded": round(C.peak_rss_mb() - rss_loaded, 1),
    }
    with tempfile.TemporaryDirectory(dir=spec.get("tmp")) as tmp:
        path = Path(tmp) / ("vectors" + FaissIndex.suffix)
        t1 = time.perf_counter()
        fi.save(path)
        out["save_seconds"] = round(time.perf_counter() - t1, 3)
        out["bytes_on_disk"] = path.stat().st_size
        out["bytes_per_vector"] = round(path.stat().st_size / n, 1)
        t1 = time.perf_counter()
        FaissIndex.load(path, factory, d)
        out["load_seconds"] = round(time.perf_counter() - t1, 3)

    if "HNSW" in factory:
        settings = [f"efSearch={v}" for v in spec["ef"]]
    elif "IVF" in factory:
        nl = int(factory.split("IVF")[1].split(",")[0])
        settings = [f"nprobe={v}" for v in spec["nprobe"] if v <= nl]
    else:
        settings = [""]
    lq = min(spec["latency_queries"], len(queries))
    if factory == "Flat" and n > 200_000:  # exact search of one query costs O(n): keep the loop short
        lq = min(lq, 100)
    out["latency_queries_used"] = lq
    sweeps = []
    for params in settings:
        idx = FaissIndex(fi.index, factory, d, params)
        idx.search(queries[:8], k)  # warm
        lat, lat1 = [], []
        for i in range(lq):
            q = queries[i : i + 1]
            t1 = time.perf_counter()
            idx.search(q, k)
            lat.append(time.perf_counter() - t1)
        # the same with one OpenMP thread: a single query gains nothing from a thread team, and
        # on a busy machine waking one costs a scheduler time slice
        faiss.omp_set_num_threads(1)
        for i in range(lq):
            q = queries[i : i + 1]
            t1 = time.perf_counter()
            idx.search(q, k)
            lat1.append(time.perf_counter() - t1)
        faiss.omp_set_num_threads(omp_default)
        qps = []
        for _ in range(3):
            t1 = time.perf_counter()
            _, got = idx.search(queries, k)
            qps.append(len(queries) / (time.perf_counter() - t1))
        hits = sum(len(set(got[i].tolist()) & set(gt[i, :k].tolist())) for i in range(len(queries)))
        sweeps.append(
            {
                "params": params or default_params(factory),
                "latency": C.percentiles_ms(lat),
                "latency_omp1": C.percentiles_ms(lat1),
                "batch_qps": round(C.median(qps), 1),
                f"recall@{k}": round(hits / (k * len(queries)), 4),
            }
        )
    out["search"] = sweeps
    out["loadavg_after"] = C.loadavg()
    print(json.dumps(out))


def default_params(factory: str) -> str:
    from tase_search.store.vectors import default_search_params

    return default_search_params(factory) or "-"


# ----------------------------------------------------------------------------- main
def run(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    if args.worker:
        _worker(args.worker)
        return {}
    if args.quick:
        args.n = min(args.n, 2000)
        args.nq = min(args.nq, 50)
        args.latency_queries = min(args.latency_queries, 20)
        args.ef = "16,64"
        args.nprobe = "1,8"
    import numpy as np

    from tase_search.encoding.encoder import Encoder
    from tase_search.store.vectors import (
        HNSW_EF_SEARCH,
        IVF_NPROBE,
        choose_factory,
        default_search_params,
    )

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    machine = C.machine_facts()
    kinds = [t.strip() for t in args.types.split(",") if t.strip()]
    for t in kinds:
        if t not in TYPES:
            raise SystemExit(f"unknown index type {t!r}; choose from {', '.join(TYPES)}")

    base_texts, query_texts, data_desc = _collect_texts(args)
    t0 = time.perf_counter()
    encoder = Encoder.load(args.model, precision="auto", batch_size=args.batch_size)
    cache = Path(args.cache_dir)
    real = _embed_cached(base_texts, encoder, cache, "document", args.batch_size)
    queries = _embed_cached(query_texts, encoder, cache, "query", args.batch_size)
    embed_s = time.perf_counter() - t0
    n_real = len(real)
    n_syn = max(0, args.n - n_real)
    if n_syn and n_real == 0:
        raise SystemExit("no real texts to build synthetic vectors from")
    base = np.concatenate([real, _synthesize(real, n_syn, args.noise, args.seed)]) if n_syn else real
    n, dim = base.shape
    t1 = time.perf_counter()
    gt = _exact_topk(base, queries, args.k)
    gt_s = time.perf_counter() - t1

    results = []
    with tempfile.TemporaryDirectory(prefix="tase-bench-index-") as tmp:
        np.save(Path(tmp) / "base.npy", base)
        np.save(Path(tmp) / "queries.npy", queries)
        np.save(Path(tmp) / "gt.npy", gt)
        del base
        for kind in kinds:
            spec = {
                "kind": kind,
                "factory": factory_for(kind, n, dim),
                "base": str(Path(tmp) / "base.npy"),
                "queries": str(Path(tmp) / "queries.npy"),
                "gt": str(Path(tmp) / "gt.npy"),
                "k": args.k,
                "ef": [int(x) for x in args.ef.split(",") if x],
                "nprobe": [int(x) for x in args.nprobe.split(",") if x],
                "latency_queries": args.latency_queries,
                "tmp": tmp,
            }
            sp = Path(tmp) / f"spec-{kind}.json"
            sp.write_text(json.dumps(spec))
            print(f"  index {kind} ({spec['factory']}) ...", file=sys.stderr)
            proc = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--worker", str(sp)],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                results.append({"type": kind, "factory": spec["factory"], "error": proc.stderr[-2000:]})
                continue
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    # ratios against exact Flat search, measured in the same run
    flat = next((r for r in results if r.get("type") == "flat" and "search" in r), None)
    if flat:
        f_lat = flat["search"][0]["latency"]["p50_ms"]
        f_qps = flat["search"][0]["batch_qps"]
        for r in results:
            for s in r.get("search", []):
                s["p50_speedup_vs_flat"] = (
                    round(f_lat / s["latency"]["p50_ms"], 2) if s["latency"]["p50_ms"] else None
                )
                s["qps_vs_flat"] = round(s["batch_qps"] / f_qps, 2) if f_qps else None
    recall_key = f"recall@{args.k}"
    pick = None
    for r in results:
        if r.get("type") == "hnsw" and "search" in r:

            def smallest(lat_key: str, r: dict[str, Any] = r) -> int | None:
                ok = [s for s in r["search"] if s[recall_key] >= 0.95 and s[lat_key]["p50_ms"] <= 1.0]
                return int(ok[0]["params"].split("=")[1]) if ok else None

            pick = {
                "rule": f"smallest efSearch with {recall_key} >= 0.95 and p50 <= 1 ms",
                "efSearch_one_thread": smallest("latency_omp1"),
                "efSearch_default_threads": smallest("latency"),
                "shipped_default": HNSW_EF_SEARCH,
                "note": "Retriever searches a single query with one OpenMP thread (latency_omp1)",
            }
    auto = choose_factory(n)
    machine["torch_threads"] = __import__("torch").get_num_threads()
    result = {
        "benchmark": "index",
        "machine": machine,
        "config": {
            "n": n,
            "dim": dim,
            "k": args.k,
            "model": encoder.model_id,
            "precision": encoder.precision,
            "quick": args.quick,
            "auto_factory_at_n": auto,
            "auto_search_params": default_search_params(auto),
            "shipped_defaults": {"hnsw_efSearch": HNSW_EF_SEARCH, "ivf_nprobe": IVF_NPROBE},
            "latency_queries": args.latency_queries,
            "ivf_training_sample": "min(n, TRAIN_SAMPLE = 262144) vectors, as Retriever._retype",
        },
        "data": {
            **data_desc,
            "real_vectors": n_real,
            "synthetic_vectors": n_syn,
            "queries": len(queries),
            "embed_seconds_including_cache": round(embed_s, 2),
            "exact_ground_truth_seconds": round(gt_s, 2),
            "synthetic_construction": (
                f"v = normalise(w*a + (1-w)*b + e): a, b uniform random real vectors, w ~ U(0.5, 1), "
                f"e ~ N(0, ({args.noise}/sqrt(d))^2 I) (expected norm {args.noise}); seed {args.seed}"
            )
            if n_syn
            else None,
            "queries_held_out": "query texts are removed from the base set before embedding",
        },
        "indexes": results,
        "hnsw_efsearch_pick": pick,
    }
    parts = []
    for r in results:
        if "search" not in r:
            parts.append(f"{r['type']} ERROR")
            continue
        best = max(r["search"], key=lambda s: (s[recall_key] >= 0.95, -s["latency"]["p50_ms"]))
        parts.append(
            f"{r['type']} build {r['build_seconds']}s {r['bytes_per_vector']}B/vec "
            f"[{best['params']}] p50 {best['latency']['p50_ms']}ms R@{args.k} {best[recall_key]}"
        )
    summary = f"index n={n} ({n_real} real, {n_syn} synthetic): " + "; ".join(parts)
    return C.finish(result, args.out, summary)


if __name__ == "__main__":
    run()
