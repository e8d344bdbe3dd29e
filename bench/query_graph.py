#!/usr/bin/env python
"""The query path and what an index weighs: the int8 query graph kept in the user's graph store, against
the fp32 graph that used to be copied into every index and against PyTorch, in one run.

Measured with the shipped model (``default``) unless ``--model`` names another:

* **footprint**: bytes of a 4-document index (everything in its directory) and of the graph in the
  store; the fp32 graph's size for comparison (what each index used to carry).
* **agreement**: cosine of int8-graph query vectors to fp32-graph ones over the queries (mean, lowest).
* **warm queries**: one query at a time through the torch-free encoder with the int8 graph, with the
  fp32 graph, and through the full encoder (PyTorch), interleaved query by query; p50/p90/p99.
* **cold query**: ``tase-search query`` in a fresh process (start to answer), median of ``--cold`` runs.
* **writes from a long-lived process**: ``Retriever.add`` of one short document into a ``--docs``-document
  index (what an HTTP add costs once the model is warm), p50 of ``--adds``.

    python bench/query_graph.py --queries /path/to/data/bitext/dev/tatoeba-dev-tur-eng.tsv --out runs/bench/query_graph.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    FALLBACK_SENTENCES,
    add_common_args,
    cycle_to,
    finish,
    machine_facts,
    median,
    percentiles_ms,
    read_tsv,
)


def _queries(path: str | None, n: int) -> list[str]:
    if path:
        rows = read_tsv(path)
        return [r[next(iter(r))] for r in rows][:n]
    return cycle_to(FALLBACK_SENTENCES, n)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", help="a TSV whose first column holds queries (default: built-in sentences)")
    ap.add_argument("--model", default="default")
    ap.add_argument("--n", type=int, default=200, help="queries for the warm and agreement figures")
    ap.add_argument("--cold", type=int, default=5, help="cold CLI queries")
    ap.add_argument("--docs", type=int, default=2000, help="documents in the index the adds go to")
    ap.add_argument("--adds", type=int, default=10)
    add_common_args(ap)
    a = ap.parse_args(argv)
    if a.quick:
        a.n, a.cold, a.docs, a.adds = 8, 1, 20, 2

    work = Path(tempfile.mkdtemp(prefix="bench-query-graph-"))
    os.environ["TASE_SEARCH_QUERY_GRAPHS"] = str(work / "graphs")
    os.environ.setdefault("TASE_SEARCH_NO_PROGRESS", "1")
    import numpy as np

    from tase_search.encoding import onnx_runtime
    from tase_search.encoding import query_bundle as qb
    from tase_search.encoding.encoder import Encoder
    from tase_search.retriever import Retriever
    from tase_search.runtime.disk import tree_bytes

    try:
        queries = _queries(a.queries, a.n)
        enc = Encoder.load(a.model)
        small = work / "four"
        Retriever.build(queries[:4], model=enc, path=small)
        bundle = qb.read_bundle_file(small / qb.BUNDLE_DIR)
        light = Retriever.load(small).query_encoder
        assert isinstance(light, qb.LightQueryEncoder), "no torch-free query path"
        fp32_graph = onnx_runtime.export_guarded(enc.model)
        fp32 = qb.LightQueryEncoder(
            bundle, small / qb.BUNDLE_DIR, runner=onnx_runtime.OnnxQueryEncoder(fp32_graph)
        )
        footprint = {
            "index_4_documents_bytes": tree_bytes(small),
            "graph_in_store_bytes": bundle["graph_bytes"],
            "graph_precision": bundle["graph_precision"],
            "fp32_graph_bytes": len(fp32_graph),
        }
        a8 = np.vstack([light.encode_query([q]) for q in queries])
        a32 = np.vstack([fp32.encode_query([q]) for q in queries])
        cos = (a8 * a32).sum(1)
        agreement = {
            "queries": len(queries),
            "cosine_mean": float(cos.mean()),
            "cosine_min": float(cos.min()),
        }

        times: dict[str, list[float]] = {"int8_graph": [], "fp32_graph": [], "torch": []}
        paths = {"int8_graph": light.encode_query, "fp32_graph": fp32.encode_query, "torch": enc.encode_query}
        for f in paths.values():  # first calls build kernels
            f([queries[0]])
        for q in queries:
            for name, f in paths.items():
                t0 = time.perf_counter()
                f([q])
                times[name].append(time.perf_counter() - t0)
        warm = {k: percentiles_ms(v) for k, v in times.items()}

        cold = []
        exe = shutil.which("tase-search") or "tase-search"
        for i in range(a.cold):
            t0 = time.perf_counter()
            subprocess.run(
                [exe, "query", queries[i % len(queries)], "--index", str(small)],
                check=True,
                capture_output=True,
            )
            cold.append(time.perf_counter() - t0)

        big = work / "adds"
        r = Retriever.build(cycle_to(queries, a.docs), model=enc, path=big, on_duplicate="skip")
        r.add([f"ısınma belgesi {time.time_ns()}"])  # the bundle checked once, as a server's first add
        adds = []
        for i in range(a.adds):
            t0 = time.perf_counter()
            r.add([f"yeni kısa belge {i} {time.time_ns()}"])
            adds.append(time.perf_counter() - t0)
        result = {
            "machine": machine_facts(),
            "model": a.model,
            "footprint": footprint,
            "agreement": agreement,
            "warm_query_ms": warm,
            "warm_speedup_int8_vs_fp32_graph": warm["fp32_graph"]["p50_ms"] / warm["int8_graph"]["p50_ms"],
            "warm_speedup_int8_vs_torch": warm["torch"]["p50_ms"] / warm["int8_graph"]["p50_ms"],
            "cold_cli_query_s": {"median": median(cold), "runs": cold},
            "add_one_document_s": {"index_documents": len(r), "p50": median(adds), "runs": adds},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = (
        f"4-doc index {footprint['index_4_documents_bytes'] / 1e6:.1f} MB (fp32 graph was "
        f"{footprint['fp32_graph_bytes'] / 1e6:.0f} MB); warm p50 int8 {warm['int8_graph']['p50_ms']:.1f} ms, "
        f"fp32 graph {warm['fp32_graph']['p50_ms']:.1f} ms, torch {warm['torch']['p50_ms']:.1f} ms; cold "
        f"{median(cold):.2f} s; add 1 doc {median(adds) * 1000:.0f} ms; cosine {agreement['cosine_mean']:.4f} "
        f"(min {agreement['cosine_min']:.4f})"
    )
    return finish(result, a.out, summary)


if __name__ == "__main__":
    main()
