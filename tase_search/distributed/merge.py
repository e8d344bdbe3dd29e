"""Committing staged shards: every shard's documents and vectors enter the index in one write.

The staged documents go through the same ingest as a local build, in corpus order, so ids (automatic
ones included), deduplication of unchanged documents, ``on_duplicate``, the ``auto`` index type's
growth (Flat, HNSW, IVF), IVF training (once, on the first ``TRAIN_SAMPLE`` vectors) and the keyword
part come out as a local build of the same corpus gives them, and the write is the store's copy-on-write
commit: a failure or a kill before its commit point leaves the previous index as it was. Only the
encoding differs: :class:`StagedEncoder` hands the ingest the vectors the cluster computed instead of
running a model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..encoder import Passage
from ..errors import IndexWriteError, InputError
from ..readers import Document, ReadStats
from .staging import StagedShard, Staging


class StagedEncoder:
    """An encoder (``EncoderLike``) that replays staged passages and vectors.

    :meth:`offer` registers a document's passages and vectors as the document is handed to the ingest;
    the ingest then asks :meth:`split_passages` for the documents it keeps, in order, and
    :meth:`encode_document` for their passages' vectors, which come back in the same order. Documents
    the ingest leaves out (unchanged, skipped) are dropped at the next :meth:`encode_document`, so what
    is held is about one ingest chunk.
    """

    def __init__(self, model: dict[str, Any]) -> None:
        self.model_id = str(model["id"])
        self.fingerprint = str(model["fingerprint"])
        self.dimension = int(model["dimension"])
        self.max_seq_length = int(model["max_seq_length"])
        self.query_prompt = model.get("query_prompt")
        self.passage_prompt = model.get("passage_prompt")
        self._offered: dict[str, tuple[list[Passage], np.ndarray]] = {}
        self._split: list[tuple[str, list[Passage], np.ndarray]] = []

    def offer(self, text: str, passages: Sequence[tuple[int, int, int, int]], vectors: np.ndarray) -> None:
        self._offered.setdefault(text, ([Passage(s, e, i, c) for s, e, i, c in passages], vectors))

    def split_passages(self, text: str, *, overlap: int = 32) -> list[Passage]:
        passages, vectors = self._offered[text]
        self._split.append((text, passages, vectors))
        return list(passages)

    def encode_document(
        self, texts: Any, *, batch_size: int | None = None, progress: Any = None
    ) -> np.ndarray:
        split, self._split, self._offered = self._split, [], {}
        expected = [text[p.start : p.end] for text, ps, _ in split for p in ps]
        if list(texts) != expected:
            raise RuntimeError("staged vectors were asked for passages in another order than they were split")
        if progress is not None:
            progress(len(expected))
        if not split:
            return np.zeros((0, self.dimension), np.float32)
        return np.concatenate([v for _, _, v in split]).astype(np.float32, copy=False)

    def encode_query(self, texts: Any, *, batch_size: int | None = None) -> np.ndarray:
        raise InputError(
            "an index committed from staged shards searches with its model: load it with Retriever.load"
        )


def staged_documents(
    keys: Sequence[str], staging: Staging, encoder: StagedEncoder | None = None
) -> Iterator[Document]:
    """The staged shards' documents in order, each offered to ``encoder`` as it is yielded."""
    for key in keys:
        shard = load_staged(staging, key)
        at = 0
        for (doc_id, text, meta, source, line), passages in zip(shard.docs, shard.passages):
            if encoder is not None:
                encoder.offer(text, passages, shard.vectors[at : at + len(passages)])
            at += len(passages)
            yield Document(doc_id, text, meta, source, line)


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
    """Commit the staged shards ``keys`` (in corpus order) to the index at ``path`` in one write; returns
    the ingest's :class:`~tase_search.retriever.AddResult`."""
    from ..retriever import Retriever

    encoder = StagedEncoder(model_of(records(keys, staging), staging))
    docs = staged_documents(keys, staging, encoder)
    if append:
        return Retriever.load(path, model=encoder).add(docs, on_duplicate=on_duplicate, progress=progress)
    r = Retriever.build(
        docs,
        model=encoder,
        path=path,
        factory=factory,
        overwrite=overwrite,
        overlap=overlap,
        on_duplicate=on_duplicate,
        progress=progress,
        sparse=sparse,
    )
    return r.last_add
