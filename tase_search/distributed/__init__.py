"""Indexing beyond one machine: embed on a Ray cluster, commit the same index format at the end.

    >>> from tase_search.distributed import index_corpus
    >>> result = index_corpus(["news.jsonl"], path="indexes/news", workers=8,
    ...                       address="auto")                                   # doctest: +SKIP
    >>> result.retriever.search("deprem", k=3)                                 # doctest: +SKIP

The corpus is cut into shards (:mod:`.shards`), embedded by an actor pool on Ray (:mod:`.ray_engine`),
staged shard by shard beside the index (:mod:`.staging`, so a re-run resumes) and committed in one write
through the local ingest (:mod:`.merge`): the result is the index a local build of the same corpus
makes, with its manifest and its crash safety. Needs ``pip install 'tase-search[ray]'``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..documents.document import ReadStats
from ..documents.limits import ReaderLimits
from ..documents.read_options import ReadOptions
from ..errors import InputError
from ..runtime.progress import stage_of
from .ray_engine import EncoderSpec, RayOptions, encode_shards
from .shards import TARGET_BYTES, plan_shards
from .staging import Staging, staging_dir

__all__ = ["EncoderSpec", "IndexRun", "RayOptions", "ReadOptions", "index_corpus"]


@dataclass
class IndexRun:
    """What :func:`index_corpus` did: the ingest's result (``added``), the read statistics, how many
    shards there were and how many of them were found staged by an earlier run; ``timings`` (embedding
    and commit seconds) and ``work`` (when the encoder actors were busy: ``ray_engine.WorkLog``)."""

    retriever: Any
    added: Any
    stats: ReadStats
    action: str
    shards: int
    resumed: int
    seconds: float
    workers: int
    timings: dict[str, float] = field(default_factory=dict)
    work: dict[str, Any] = field(default_factory=dict)


def index_corpus(
    corpus: Sequence[str],
    path: str | os.PathLike[str] | None = None,
    model: str | None = None,
    *,
    address: str | None = None,
    workers: int = 2,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    factory: str | None = None,
    overwrite: bool = False,
    on_duplicate: str = "error",
    sparse: bool = True,
    overlap: int = 32,
    precision: str = "auto",
    batch_size: int = 64,
    max_seq_length: int | None = None,
    fmt: str | None = None,
    text_column: str | None = None,
    id_column: str | None = None,
    encoding_errors: str = "strict",
    limits: ReaderLimits | None = None,
    shard_bytes: int = TARGET_BYTES,
    progress: Callable[[int], None] | None = None,
) -> IndexRun:
    """Build the index at ``path`` from corpus files on Ray, or append to it when it exists (unless
    ``overwrite``), like ``tase-search index``. ``address``: ``auto`` or ``HOST:PORT`` of a running
    cluster, None to start Ray here. ``workers``: encoder actors, each with ``cpus_per_worker`` CPUs
    (and ``gpus_per_worker`` GPUs: the model then runs on CUDA) and its own copy of the model. Other arguments are those of :meth:`Retriever.build` and
    :func:`~tase_search.documents.readers.read_corpus`; an append keeps the index's model, passage length and
    overlap. ``progress(n)`` hears of documents as their shards are staged."""
    from ..retriever import Retriever, resolve_index_path
    from ..store.commit import refuse_foreign
    from ..writes import will_append

    t0 = time.perf_counter()
    index_dir = resolve_index_path(path)
    refuse_foreign(index_dir)
    append = will_append(index_dir, overwrite)
    if append:
        m = Retriever.load(index_dir).manifest
        model, max_seq_length, overlap = model or m.model.id, m.model.max_seq_length, m.overlap_tokens
    spec = EncoderSpec(
        model=model or "default",
        precision=precision,
        batch_size=batch_size,
        max_seq_length=max_seq_length,
        overlap=overlap,
        threads=max(1, int(cpus_per_worker)),
        device="cuda" if gpus_per_worker else "cpu",
    )
    ray_options = RayOptions(address, workers, cpus_per_worker, gpus_per_worker)
    options = ReadOptions.with_limits(
        limits, fmt=fmt, text_column=text_column, id_column=id_column, encoding_errors=encoding_errors
    )
    shards, probe = plan_shards(list(corpus), options, shard_bytes)
    if probe.read == 0:
        raise InputError(f"no documents in {', '.join(corpus)}: nothing to index")
    job = hashlib.blake2b(json.dumps(spec.job()).encode(), digest_size=8).hexdigest()
    staging = Staging(staging_dir(index_dir, job))
    keys = [s.key(options, spec.job()) for s in shards]
    todo = [s for s, k in zip(shards, keys) if not staging.has(k)]
    stage = stage_of(progress)
    stage(f"embedding {len(todo)} of {len(shards)} shards on Ray with {workers} workers")
    work = encode_shards(
        todo,
        {s.number: k for s, k in zip(shards, keys)},
        options,
        spec,
        ray_options,
        staging,
        progress or (lambda _n: None),
    )
    t1 = time.perf_counter()
    stage(f"committing {len(shards)} shards")
    from .merge import commit_staged, read_stats, records

    written = commit_staged(
        keys,
        staging,
        index_dir,
        append=append,
        factory=factory,
        overwrite=overwrite,
        overlap=overlap,
        on_duplicate=on_duplicate,
        sparse=sparse,
    )
    stats = read_stats(records(keys, staging))
    staging.remove()
    t2 = time.perf_counter()
    return IndexRun(
        retriever=Retriever.load(index_dir),
        added=written.result,
        stats=stats,
        action=written.action,
        shards=len(shards),
        resumed=len(shards) - len(todo),
        seconds=t2 - t0,
        workers=workers,
        timings={"embed": t1 - t0, "commit": t2 - t1},
        work=work,
    )
