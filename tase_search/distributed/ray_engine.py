"""Embedding a corpus on a Ray cluster: Ray Data reads the shards, an actor pool runs the encoder.

The pipeline: one row per shard (:mod:`.shards`) -> ``flat_map`` reads the shard's documents with the
local readers (one row per document, and one closing row per shard that carries its document count and
read statistics) -> ``map_batches`` with an actor pool of ``workers`` actors, each loading the model
once, splits every document into passages and embeds them -> the driver collects each shard's rows and
stages the shard (:mod:`.staging`) once all of its documents have come back. Nothing here touches the
index; :mod:`.merge` commits the staged shards in one write.

Ray is imported only here, so the core install does not need it (``pip install 'tase-search[ray]'``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..documents.document import ReadStats
from ..errors import InputError
from .shards import ReadOptions, Shard, read_shard
from .staging import StagedShard, Staging

#: The object store of a Ray instance started here: the rows in flight are small (a batch of documents
#: and their vectors), so a modest store leaves the memory to the encoders.
OBJECT_STORE_BYTES = 500 << 20
#: Documents per encoder call in an actor: enough to fill the encoder's batches, small enough that a
#: batch's vectors (256 x 384 floats = 0.4 MB) flow through the object store quickly.
BATCH_DOCS = 256


@dataclass(frozen=True)
class EncoderSpec:
    """How each actor loads its encoder: the arguments of :meth:`tase_search.encoding.encoder.Encoder.load`,
    the passage overlap and the torch threads of one actor."""

    model: str = "default"
    precision: str = "auto"
    batch_size: int = 64
    max_seq_length: int | None = None
    overlap: int = 32
    threads: int = 1
    device: str = "cpu"

    def job(self) -> list[Any]:
        """What a shard's vectors depend on besides its bytes (the staging directory's key)."""
        return [self.model, self.precision, self.max_seq_length, self.overlap]


@dataclass(frozen=True)
class RayOptions:
    """``address``: ``auto``, ``HOST:PORT`` of a running cluster, or None to start a Ray instance here
    with ``workers x cpus_per_worker`` CPUs (plus one for reading). ``workers``: encoder actors, each
    holding ``cpus_per_worker`` CPUs and ``gpus_per_worker`` GPUs (a GPU actor runs the model on CUDA)."""

    address: str | None = None
    workers: int = 2
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    batch_docs: int = BATCH_DOCS

    def __post_init__(self) -> None:
        if not isinstance(self.workers, int) or self.workers < 1:
            raise InputError(f"workers={self.workers!r} is not valid: give a whole number >= 1")
        if not self.cpus_per_worker > 0:
            raise InputError(f"cpus_per_worker={self.cpus_per_worker!r} is not valid: give a number > 0")


def import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is the part this engine needs
    except ImportError:
        raise InputError(
            "the ray engine needs Ray Data, which is not installed; install it with "
            "pip install 'tase-search[ray]' (or use --engine local)"
        ) from None
    return ray


class ReadRows:
    """Ray Data ``flat_map``: a shard row -> its document rows and one closing row."""

    def __init__(self, options: ReadOptions) -> None:
        self.options = options

    def __call__(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        shard = Shard(**json.loads(row["shard"]))
        stats = ReadStats()
        out = []
        for seq, doc in enumerate(read_shard(shard, self.options, stats)):
            out.append(_row(shard.number, seq, "doc", doc.id, doc.text, doc.metadata, doc.source, doc.line))
        closing = _row(shard.number, len(out), "end", None, "", {}, shard.source, 0)
        closing["skipped"], closing["replaced"] = stats.skipped_empty, stats.replaced_encoding
        out.append(closing)
        return out


def _row(shard: int, seq: int, kind: str, doc_id: str | None, text: str, meta: Any, source: str, line: int):
    return {
        "shard": shard,
        "seq": seq,
        "kind": kind,
        "has_id": doc_id is not None,
        "id": doc_id or "",
        "text": text,
        "meta": json.dumps(meta, ensure_ascii=False),
        "source": source,
        "line": line,
        "skipped": 0,
        "replaced": 0,
    }


class EncodeActor:
    """Ray Data ``map_batches`` actor: loads the model once, then embeds batches of document rows."""

    def __init__(self, spec: EncoderSpec) -> None:
        from ..encoding.encoder import Encoder
        from ..runtime.threads import apply_threads

        apply_threads(spec.threads)
        self.spec = spec
        self.encoder = Encoder.load(
            spec.model,
            precision=spec.precision,
            device=spec.device,
            batch_size=spec.batch_size,
            max_seq_length=spec.max_seq_length,
        )
        enc = self.encoder
        self.model = json.dumps(
            {
                "id": enc.model_id,
                "fingerprint": enc.fingerprint,
                "dimension": enc.dimension,
                "max_seq_length": enc.max_seq_length,
                "query_prompt": getattr(enc, "query_prompt", None),
                "passage_prompt": getattr(enc, "passage_prompt", None),
            }
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        start = time.time()  # wall clock: compared across the actors' processes
        n = len(batch["kind"])
        parts = [
            self.encoder.split_passages(str(batch["text"][i]), overlap=self.spec.overlap)
            if batch["kind"][i] == "doc"
            else []
            for i in range(n)
        ]
        texts = [str(batch["text"][i])[p.start : p.end] for i in range(n) for p in parts[i]]
        emb = self.encoder.encode_document(texts)
        vectors, spans, at = [], [], 0
        for ps in parts:
            vectors.append(np.ascontiguousarray(emb[at : at + len(ps)], dtype=np.float32).tobytes())
            spans.append(np.asarray([(p.start, p.end, p.index, p.count) for p in ps], np.int64).tobytes())
            at += len(ps)
        out = dict(batch)
        out["vectors"] = np.asarray(vectors, dtype=object)
        out["spans"] = np.asarray(spans, dtype=object)
        out["model"] = np.asarray([self.model] * n, dtype=object)
        out["worker"] = np.full(n, os.getpid(), dtype=np.int64)
        out["started"] = np.full(n, start)
        out["ended"] = np.full(n, time.time())
        return out


class WorkLog:
    """When the actors were busy: per worker the seconds spent in batches and the documents embedded,
    and the window from the first batch's start to the last one's end (actor start-up and model load
    are outside it). What the documents/s of a run are measured from."""

    def __init__(self) -> None:
        self.batches: dict[tuple[int, float], tuple[float, int]] = {}

    def note(self, batch: dict[str, np.ndarray]) -> None:
        docs = batch["kind"] == "doc"
        for worker, start, end in {
            (int(w), float(a), float(b))
            for w, a, b in zip(*(batch[k] for k in ("worker", "started", "ended")))
        }:
            mine = (batch["worker"] == worker) & (batch["started"] == start)
            old = self.batches.get((worker, start), (end, 0))
            self.batches[(worker, start)] = (end, old[1] + int((mine & docs).sum()))

    def summary(self) -> dict[str, Any]:
        if not self.batches:
            return {"window_s": 0.0, "workers": {}}
        busy: dict[int, list[float]] = {}
        for (worker, start), (end, docs) in self.batches.items():
            w = busy.setdefault(worker, [0.0, 0])
            w[0] += end - start
            w[1] += docs
        first = min(s for _, s in self.batches)
        last = max(e for e, _ in self.batches.values())
        workers = {str(k): {"busy_s": round(v[0], 2), "documents": int(v[1])} for k, v in busy.items()}
        return {"window_s": round(last - first, 2), "workers": workers}


class Collector:
    """Gathers each shard's rows as they come back and stages the shard once it is complete."""

    def __init__(self, keys: dict[int, str], staging: Staging, report: Callable[[int], None]) -> None:
        self.keys, self.staging, self.report = keys, staging, report
        self.rows: dict[int, dict[int, tuple[Any, ...]]] = {}
        self.ends: dict[int, tuple[int, int, int, str]] = {}
        self.staged = 0
        self.work = WorkLog()

    def add(self, batch: dict[str, np.ndarray]) -> None:
        self.work.note(batch)
        for i in range(len(batch["kind"])):
            shard, seq = int(batch["shard"][i]), int(batch["seq"][i])
            if batch["kind"][i] == "end":
                self.ends[shard] = (
                    seq,
                    int(batch["skipped"][i]),
                    int(batch["replaced"][i]),
                    batch["model"][i],
                )
            else:
                doc = (
                    str(batch["id"][i]) if batch["has_id"][i] else None,
                    str(batch["text"][i]),
                    json.loads(batch["meta"][i]),
                    str(batch["source"][i]),
                    int(batch["line"][i]),
                )
                self.rows.setdefault(shard, {})[seq] = (doc, batch["spans"][i], batch["vectors"][i])
            self._maybe_stage(shard)

    def _maybe_stage(self, shard: int) -> None:
        end = self.ends.get(shard)
        rows = self.rows.get(shard, {})
        if end is None or len(rows) < end[0]:
            return
        count, skipped, replaced, model_json = end
        model = json.loads(model_json)
        ordered = [rows[s] for s in range(count)]
        dim = int(model["dimension"])
        vectors = [np.frombuffer(v, dtype=np.float32).reshape(-1, dim) for _, _, v in ordered]
        staged = StagedShard(
            docs=[d for d, _, _ in ordered],
            passages=[
                [tuple(r) for r in np.frombuffer(s, np.int64).reshape(-1, 4).tolist()] for _, s, _ in ordered
            ],
            vectors=np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32),
            model=model,
            skipped_empty=skipped,
            replaced_encoding=replaced,
        )
        self.staging.write(self.keys[shard], staged)
        self.rows.pop(shard, None)
        self.ends.pop(shard, None)
        self.staged += 1
        self.report(count)


def encode_shards(
    shards: Sequence[Shard],
    keys: dict[int, str],
    options: ReadOptions,
    spec: EncoderSpec,
    ray_options: RayOptions,
    staging: Staging,
    report: Callable[[int], None] = lambda _n: None,
) -> dict[str, Any]:
    """Embed ``shards`` on Ray and stage each one under its key; returns when the workers were busy
    (:meth:`WorkLog.summary`)."""
    if not shards:
        return WorkLog().summary()
    ray = import_ray()
    started = _connect(ray, ray_options)
    try:
        ds = _pipeline(ray, shards, options, spec, ray_options)
        collector = Collector(keys, staging, report)
        for batch in ds.iter_batches(batch_format="numpy", batch_size=None):
            collector.add(batch)
        missing = [s.number for s in shards if not staging.has(keys[s.number])]
        if missing:
            raise RuntimeError(f"shards {missing[:5]} came back incomplete from the Ray pipeline")
        return collector.work.summary()
    finally:
        if started:
            ray.shutdown()


def _connect(ray: Any, options: RayOptions) -> bool:
    """Join the cluster at ``options.address`` (or start a local instance); True if it was started
    here (then it is shut down at the end). An already initialised Ray (a caller's) is used as is."""
    if ray.is_initialized():
        return False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if options.address:
        ray.init(address=options.address, log_to_driver=False, logging_level=logging.WARNING)
    else:
        cpus = int(np.ceil(options.workers * options.cpus_per_worker)) + 1
        ray.init(
            num_cpus=cpus,
            object_store_memory=OBJECT_STORE_BYTES,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    return True


def _pipeline(
    ray: Any, shards: Sequence[Shard], options: ReadOptions, spec: EncoderSpec, ro: RayOptions
) -> Any:
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    rows = [{"shard": json.dumps(asdict(s))} for s in shards]
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    # reading is cheap next to encoding: it takes no CPU slot, so the actors can hold them all
    ds = ds.flat_map(ReadRows(options), num_cpus=0)
    return ds.map_batches(
        EncodeActor,
        fn_constructor_kwargs={"spec": spec},
        batch_size=ro.batch_docs,
        batch_format="numpy",
        concurrency=ro.workers,
        num_cpus=ro.cpus_per_worker,
        num_gpus=ro.gpus_per_worker or None,
    )
