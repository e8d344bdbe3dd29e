"""Committing staged shards: every shard's documents and vectors enter the index in one write.

The staged shards go, in corpus order, through :func:`tase_search.documents.ingest.add_encoded` inside one
copy-on-write commit (:func:`tase_search.store.commit.commit`), so ids (automatic ones included),
deduplication of unchanged documents, ``on_duplicate``, the ``auto`` index type's growth and the keyword
part come out as a local build of the same corpus gives them, and a failure or a kill before the commit
point leaves the previous index as it was. A new IVF-family index is trained first, once, on a sample
drawn across the shards, and filled through :class:`~.ivf.ParallelIVFAdds`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..documents.document import Document, ReadStats
from ..documents.ingest import EncodedBatch, add_encoded
from ..encoding.passages import Passage
from ..errors import IndexExists, IndexWriteError, InputError
from ..store import commit as _commit
from ..store import retype as _retype
from ..store.docs import DocStore
from ..store.manifest import Manifest, ModelInfo
from ..store.vectors import validate_factory
from . import ivf as _ivf
from .staging import StagedShard, Staging


class StagedModel:
    """The model the shards were embedded with, as the index checks it (no weights: nothing is encoded
    here)."""

    def __init__(self, model: dict[str, Any]) -> None:
        self.model_id = str(model["id"])
        self.fingerprint = str(model["fingerprint"])
        self.dimension = int(model["dimension"])
        self.max_seq_length = int(model["max_seq_length"])
        self.query_prompt = model.get("query_prompt")
        self.passage_prompt = model.get("passage_prompt")

    def info(self) -> ModelInfo:
        return ModelInfo(
            id=self.model_id,
            fingerprint=self.fingerprint,
            dimension=self.dimension,
            max_seq_length=self.max_seq_length,
            query_prompt=self.query_prompt,
            passage_prompt=self.passage_prompt,
        )


def staged_batches(keys: Sequence[str], staging: Staging) -> Iterator[EncodedBatch]:
    """One batch per staged shard, in order."""
    for key in keys:
        shard = load_staged(staging, key)
        docs = [Document(doc_id, text, meta, source, line) for doc_id, text, meta, source, line in shard.docs]
        passages = [[Passage(s, e, i, c) for s, e, i, c in ps] for ps in shard.passages]
        yield EncodedBatch(docs, passages, shard.vectors)


def load_staged(staging: Staging, key: str) -> StagedShard:
    shard = staging.read(key)
    if shard is None:
        staging.path(key).unlink(missing_ok=True)
        raise IndexWriteError(
            f"staged shard {staging.path(key)} is missing or damaged (now removed); run the same command again "
            "to encode that shard anew (the other staged shards are kept); the index is unchanged"
        )
    return shard


def records(keys: Sequence[str], staging: Staging) -> list[dict[str, Any]]:
    """Each staged shard's record; a missing or damaged one raises, saying how to recover."""
    out = []
    for key in keys:
        rec = staging.record(key)
        if rec is None:
            load_staged(staging, key)  # raises, saying what to do
        out.append(rec)
    return out


def model_of(recs: Sequence[dict[str, Any]], staging: Staging) -> dict[str, Any]:
    """The model every staged shard was embedded with (they must agree)."""
    models = {r["model"]["fingerprint"]: r["model"] for r in recs}
    if len(models) != 1:
        raise InputError(
            f"the staged shards in {staging.root} were embedded with {len(models)} different model weights; "
            "remove that directory and run again"
        )
    return next(iter(models.values()))


def read_stats(recs: Sequence[dict[str, Any]]) -> ReadStats:
    """The corpus's read statistics, added up over the shards."""
    stats = ReadStats()
    for r in recs:
        stats.read += int(r["documents"])
        stats.skipped_empty += int(r["skipped_empty"])
        stats.replaced_encoding += int(r["replaced_encoding"])
    return stats


def commit_staged(
    keys: Sequence[str],
    staging: Staging,
    path: Any,
    *,
    append: bool,
    factory: str | None,
    overwrite: bool,
    overlap: int,
    on_duplicate: str,
    sparse: bool,
    progress: Callable[[int], None] | None = None,
) -> Any:
    """Commit the staged shards ``keys`` (in corpus order) to the index at ``path`` in one write, built
    or appended to by :func:`tase_search.writes.build_or_append` (``append``: its decision, made when the
    model was chosen); returns its :class:`~tase_search.writes.Written` (retriever None)."""
    from .. import writes as _writes
    from ..retriever import Retriever

    model = StagedModel(model_of(records(keys, staging), staging))
    batches = staged_batches(keys, staging)

    def build() -> tuple[None, Any]:
        args = (factory, overwrite, overlap, on_duplicate, sparse, progress)
        return None, _build(keys, staging, path, model, batches, *args)

    def add() -> tuple[None, Any]:  # the index's own checks: the same weights, prompts and dimension
        r = Retriever.load(path, model=model)
        return None, r.add_encoded(batches, on_duplicate=on_duplicate, progress=progress)

    return _writes.build_or_append(path, build=build, append=add, overwrite=overwrite, appending=append)


def _build(
    keys: Sequence[str],
    staging: Staging,
    path: Any,
    model: StagedModel,
    batches: Iterator[EncodedBatch],
    factory: str | None,
    overwrite: bool,
    overlap: int,
    on_duplicate: str,
    sparse: bool,
    progress: Callable[[int], None] | None,
) -> Any:
    """A new index (replacing one only with ``overwrite``), as :meth:`Retriever.build` makes it."""
    from ..retriever import resolve_index_path

    index_dir = resolve_index_path(path)
    _commit.refuse_foreign(index_dir)
    if (index_dir / "manifest.json").exists() and not overwrite:
        raise IndexExists(f"an index already exists at {index_dir}; append to it, or pass overwrite=True")
    if factory:
        validate_factory(factory)
    manifest = Manifest(
        model=model.info(),
        factory=factory or "Flat",
        index_type="custom" if factory else "auto",
        backend="faiss",
        overlap_tokens=overlap,
    )

    def mutate(store: DocStore, slot: _commit.VectorSlot, m: Manifest) -> Any:
        if sparse:
            store.build_sparse()  # empty: filled as the documents go in
        parallel = None
        if _ivf.is_ivf(factory) and slot.vectors.needs_training:
            slot.vectors.train(_ivf.training_sample(staging, keys, _ivf.sample_size(factory)))
            if on_duplicate != "replace":  # a replace may remove rows added earlier in this write
                parallel = _ivf.ParallelIVFAdds(slot.vectors, os.cpu_count() or 1)
                slot.vectors = parallel
        try:
            result = add_encoded(batches, store, slot, m, on_duplicate, progress)
        finally:
            if parallel is not None:
                slot.vectors = parallel.merged()
        _retype.maybe_retype(m, slot, store)
        return result

    unborn = not index_dir.exists()
    try:
        return _commit.commit(index_dir, mutate, new=manifest)
    except BaseException:
        if unborn:
            _commit.remove_unborn(index_dir)
        raise
