"""Retriever: build, load, add to, delete from and search an index; a facade over the modules that do it.

    >>> from tase_search import Retriever
    >>> r = Retriever.build(["Galatasaray maçı 2-1 kazandı.", "Yarın İstanbul'da yağmur bekleniyor."],
    ...                     path="indexes/demo")                      # ./indexes/demo  # doctest: +SKIP
    >>> r.search("football match", k=1)[0].text                      # doctest: +SKIP
    'Galatasaray maçı 2-1 kazandı.'

An index is a directory (:mod:`.store.layout`): ``manifest.json``, the commit point, naming one
immutable generation directory. What each part does:

- every write goes through :func:`.store.commit.commit` (copy-on-write under the writer lock, published
  by replacing the manifest: a crash, Ctrl-C or full disk leaves the previous index intact), with the
  index-type policy of :mod:`.store.retype` applied before it is saved;
- :mod:`.ingest` is what an add does inside a write (coercion by :mod:`.inputs`, dedup, embedding,
  hold-back for training, background adds), also for vectors computed elsewhere (:meth:`add_encoded`);
- reads open a generation through :mod:`.store.snapshot` (the load-time checks ``verify`` also makes)
  and search it with :mod:`.search`;
- names become paths in :mod:`.paths`; :mod:`.results` holds what calls return.

This class keeps the state between calls: the manifest it last saw, the encoder (loaded lazily and
checked against the manifest) and the opened generation."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .arguments import (
    check_bool,
    check_docs,
    check_int,
    check_load_options,
    close_progress,
    id_list,
    model_arg,
    progress_arg,
)
from .documents import ingest as _ingest
from .documents.ingest import CHUNK_DOCS, ON_DUPLICATE  # noqa: F401 - re-exports
from .documents.inputs import DocLike, scrub
from .encoding import external as _external
from .encoding import query_bundle as _bundle
from .encoding.encoder import Encoder
from .errors import InputError
from .query import calibration as _calibration
from .query import modes as _modes
from .query import rerank as _rerank
from .query import searcher as _search
from .query.by_vector import VectorMethods
from .query.filters import Filter, parse_filter_argument
from .query.searcher import MAX_K  # noqa: F401 - re-export
from .results import AddResult, Hit, PassageRef
from .runtime.paths import api_index_path, resolve_index_path
from .store import commit as _commit
from .store import layout
from .store import retype as _retype
from .store import snapshot as _snapshot
from .store import vectors as _vec
from .store.commit import NothingChanged
from .store.commit import VectorSlot as _Slot
from .store.docs import DocStore
from .store.layout import DOCS_FILE, MANIFEST_NAME, TMP_PREFIX  # noqa: F401 - re-exports
from .store.manifest import (
    Manifest,
    check_encoder,
    new_manifest,
    read_existing,
    read_manifest_safe,  # noqa: F401 - re-export
)
from .store.snapshot import VERIFY_ON_LOAD_BYTES  # noqa: F401 - re-export (read-only: set it on store.snapshot)
from .writes import Written, build_or_append, will_append  # noqa: F401 - re-exports: the one build-or-append


# ----------------------------------------------------------------------------- retriever
class Retriever(VectorMethods):
    """Semantic search over one index directory."""

    #: What the ingest of :meth:`build` did (None for a retriever that was loaded).
    last_add: AddResult | None = None

    def __init__(
        self,
        path: Path,
        manifest: Manifest,
        *,
        encoder: Encoder | None = None,
        model: str | None = None,
        precision: str = "auto",
        batch_size: int = 64,
        query_backend: str = "auto",
        mmap: bool = False,
        search_mode: str | None = None,
        reranker: Any = None,
    ) -> None:
        self.path = Path(path)
        self._reranker_spec = (
            reranker  # a spec (name, directory, hub id) or a loaded Reranker; None: settings
        )
        self._reranker: Any = None
        self._default_rerank: int | None = None
        self.manifest = manifest
        self._search_mode = None if search_mode is None else _modes.check_search_mode(search_mode)
        self._encoder = encoder
        self._query_encoder: Any = None  # chosen at the first query (query_encoder)
        #: why queries load the full encoder when the index's torch-free query path was wanted (else None)
        self.query_path_note: str | None = None
        self._model_spec = model
        self._precision = precision
        self._batch_size = batch_size
        self._query_backend = query_backend
        self._mmap = mmap
        self._searcher: _search.Searcher | None = None  # over the opened generation (None until a read)
        if encoder is not None:
            self._check(encoder)

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        docs: Iterable[DocLike],
        model: str | Encoder = "default",
        path: str | os.PathLike[str] | None = None,
        *,
        factory: str | None = None,
        backend: str = "faiss",
        overwrite: bool = False,
        overlap: int = 32,
        on_duplicate: str = "error",
        precision: str = "auto",
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
        query_backend: str = "auto",
        sparse: bool = True,
    ) -> Retriever:
        """Create a new index in directory ``path`` from ``docs``.

        ``path`` is a filesystem path, relative to the working directory (``"cmp_api"`` is ``./cmp_api``);
        None is the index named ``default`` under the index root (``tase-search list`` shows it), the
        one the CLI uses without ``--index``. Arguments are checked before the model is loaded; a bad one
        is an :class:`~tase_search.errors.InputError` naming it and what to give.

        ``docs`` are strings, :class:`Document` objects or dicts with ``text`` (and optional ``id``;
        other keys become metadata). ``factory`` forces a FAISS factory string (``"HNSW32,Flat"``);
        by default the type follows the corpus size (Flat, then HNSW, then IVF). ``query_backend``
        is as for :meth:`load`. What the ingest did (documents added, unchanged, ...) is left in
        :attr:`last_add`. A build that fails on a directory it created removes that directory again.
        ``progress(n)`` is told of documents as they are embedded; an object that also has a
        ``stage(name)`` method (:class:`tase_search.runtime.progress.Progress`) hears of building and saving too;
        a mode name (``"auto"``, ``"bar"``, ``"log"``, ``"off"``) reports on stderr as the CLI does.
        ``sparse`` (default on) also builds the keyword (BM25) part that the ``sparse`` and ``hybrid``
        search modes use, in the same write.
        """
        check_docs(docs)
        model = model_arg(model)
        index_dir = api_index_path(path)
        _commit.check_new_index(index_dir, overwrite=overwrite)  # path checks first: a model takes seconds
        _vec.check_factory(factory, backend)
        _ingest.check_on_duplicate(on_duplicate)
        check_int("overlap", overlap, 0, 65536)
        check_bool("overwrite", overwrite)
        check_bool("sparse", sparse)
        check_load_options(precision, batch_size, query_backend)
        progress = progress_arg(progress)
        encoder = (
            Encoder.load(model, precision=precision, batch_size=batch_size, query_backend=query_backend)
            if isinstance(model, str)
            else model
        )
        r = cls(index_dir, new_manifest(encoder, factory, backend, overlap), encoder=encoder)
        unborn = not index_dir.exists()
        try:

            def ingest(store: DocStore, slot: _Slot, m: Manifest) -> AddResult:
                if sparse:
                    store.build_sparse()  # empty: filled as the documents go in
                return _ingest.add_documents(docs, r.encoder, store, slot, m, on_duplicate, progress)

            r.last_add = r._write(ingest, fresh=True)
        except BaseException:
            if unborn:
                _commit.remove_unborn(index_dir)
            raise
        _bundle.keep_bundle(encoder, index_dir, progress)
        close_progress(progress)
        return r

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        model: str | Encoder | None = None,
        precision: str = "auto",
        batch_size: int = 64,
        query_backend: str = "auto",
        mmap: bool = False,
        search_mode: str | None = None,
        reranker: Any = None,
    ) -> Retriever:
        """Open the index in directory ``path`` (as for :meth:`build`). The model defaults to the one
        recorded in its manifest. ``reranker``: the cross-encoder of ``search(..., rerank=N)`` (a name,
        directory or hub id, or a loaded :class:`~tase_search.query.rerank.Reranker`; default the
        ``reranker`` setting, ``tase-rerank-tr``), loaded at the first reranked search.

        The encoder is loaded lazily (``info`` needs none) and checked against the manifest's
        weights fingerprint before the first query or write. ``query_backend`` (``auto``, ``torch``,
        ``onnx``; see :meth:`Encoder.encode_query`) applies to the encoder loaded here, not to one
        passed in as ``model``. :meth:`warm_up` loads everything a query needs ahead of the first.

        ``mmap=True`` maps the vector file instead of reading it (FAISS ``IO_FLAG_MMAP_IFC``): the
        right choice for a few queries and then exit — a cold one-off query on a 1M-document index
        went from 2.4 s to 1.0 s — but a long-lived searcher then pays page faults while its pages
        come in (at 1M, on a cold page cache, p50 87 ms over the first 300 queries), so the default
        reads the file once for steady latency. Writes never use the mapped copy.

        ``search_mode`` is the mode of a :meth:`search` that names none (default: the ``search_mode``
        setting, itself ``auto`` unless configured; see :mod:`tase_search.query.modes`).
        """
        if model is not None:
            model = model_arg(model)
        check_load_options(precision, batch_size, query_backend)
        check_bool("mmap", mmap)
        if search_mode is not None:
            _modes.check_search_mode(search_mode)
        index_dir = api_index_path(path)
        manifest = read_existing(index_dir)
        given = (
            None if model is None or isinstance(model, str) else model
        )  # an Encoder (or any DocumentEncoder)
        return cls(
            index_dir,
            manifest,
            encoder=given,
            model=model if given is None else None,
            precision=precision,
            batch_size=batch_size,
            query_backend=query_backend if given is None else "auto",
            mmap=mmap,
            search_mode=search_mode,
            reranker=reranker,
        )

    @classmethod
    def exists(cls, path: str | os.PathLike[str] | None) -> bool:
        return layout.has_manifest(api_index_path(path))

    # ------------------------------------------------------------------ encoder
    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            if self._model_spec is None and _external.is_external(self.manifest.model.id):
                raise InputError(_external.needs_embedder(self.path, self.manifest.model))
            spec = self._model_spec or self.manifest.model.id
            enc = Encoder.load(
                spec,
                precision=self._precision,
                batch_size=self._batch_size,
                query_backend=self._query_backend,
            )
            self._check(enc)
            self._encoder = enc
        return self._encoder

    @property
    def query_encoder(self) -> Any:
        """What queries are encoded with, chosen at the first query: the index's torch-free query bundle
        when it can be used (:func:`tase_search.encoding.query_bundle.bundle_for_queries`), else
        :attr:`encoder`. A :class:`~tase_search.encoding.QueryEncoder`."""
        if self._query_encoder is None:
            light, self.query_path_note = _bundle.bundle_for_queries(
                self.path,
                self.manifest.model,
                encoder=self._encoder,
                query_backend=self._query_backend,
                model_spec=self._model_spec,
            )
            self._query_encoder = light if light is not None else self.encoder
        return self._query_encoder

    def write_query_bundle(self) -> Path | None:
        """Write the torch-free query path for the index's model into the index directory, unless a good
        one is there (every build and add does this; call it for an index made before it existed). None
        for an encoder that has no model to export (a test double) or with ``query_backend="torch"``."""
        write = getattr(self.encoder, "write_query_bundle", None)
        path = write(self.path) if write is not None else None
        self._query_encoder = None  # the next query looks again
        return path

    def warm_up(self) -> Retriever:
        """Load the query encoder and the index files now, so the first :meth:`search` costs what every
        later one does. Returns ``self``."""
        self.query_encoder  # noqa: B018 - load and check now
        self._open()
        return self

    def _check(self, encoder: Encoder) -> None:
        adopt = getattr(encoder, "adopt", None)  # an ExternalEmbedder learns the index's dimension
        if adopt is not None:
            adopt(self.manifest.model)
        check_encoder(self.manifest, encoder)

    # ------------------------------------------------------------------ reading
    def _open(self) -> _search.Searcher:
        """Open the current generation's files (once), checked as :mod:`tase_search.store.snapshot` says;
        a generation a writer removed meanwhile is followed to the newest one."""
        if self._searcher is None:
            snap = _snapshot.open_current(self.path, self.manifest, mmap=self._mmap, on_newer=self._adopt)
            self._searcher = _search.Searcher(
                self.path,
                snap,
                lambda queries: self.query_encoder.encode_query(queries),
                calibration=_calibration.for_model(self.manifest.model.id, self.manifest.model.fingerprint),
                keyword_calibration=_calibration.keyword_only(),
            )
        return self._searcher

    @property
    def _vectors(self) -> Any:
        """The opened generation's vector index (None before the first read)."""
        return None if self._searcher is None else self._searcher.snap.vectors

    def refresh(self) -> bool:
        """Pick up a newer generation written by another process; True if it changed."""
        newest = read_existing(self.path)
        if newest.generation == self.manifest.generation:
            return False
        self.close()
        self._adopt(newest)
        return True

    def _adopt(self, manifest: Manifest) -> None:
        """Follow a newer manifest (another process wrote), refusing it if the encoder no longer fits."""
        self.manifest = manifest
        if self._encoder is not None:
            self._check(self._encoder)

    def close(self) -> None:
        if self._searcher is not None:
            self._searcher.snap.close()
        self._searcher = None

    def __enter__(self) -> Retriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self.manifest.documents

    # ------------------------------------------------------------------ search
    @property
    def search_mode(self) -> str:
        """The mode of a :meth:`search` that names none: as given to :meth:`load`, else the
        ``search_mode`` setting (``auto`` unless configured)."""
        if self._search_mode is None:
            from .runtime.config import load_settings

            self._search_mode = load_settings().search_mode
        return self._search_mode

    @property
    def reranker(self) -> Any:
        """The reranker of ``search(..., rerank=N)``, loaded on first use (see :meth:`load`)."""
        if self._reranker is None:
            self._reranker = _rerank.resolve_reranker(self._reranker_spec, precision=self._precision)
        return self._reranker

    @property
    def sparse_note(self) -> str | None:
        """One line telling a user that this index is searched by meaning only and how to add keyword
        search; None when its keyword part can be searched."""
        stale = self._open().snap.sparse_stale
        return None if stale is None else _modes.unavailable_note(self.path, stale)

    def search(
        self,
        query: str | Sequence[str],
        k: int = 10,
        filter: Mapping[str, Any] | Filter | None = None,  # noqa: A002 - the natural name for users
        mode: str | None = None,
        *,
        fusion: str | None = None,
        dense_weight: float | None = None,
        min_score: float | None = None,
        highlight: bool = False,
        rerank: int | None = None,
    ) -> list[Hit] | list[list[Hit]]:
        """Top-``k`` documents for a query (a list of hits) or for each of several queries.

        ``filter`` keeps the documents a metadata filter matches: ``{"topic": "spor"}``, or with
        operators, ``{"year": {"$gte": 2020}, "$or": [...]}`` (docs/filters.md; values compare by type);
        the keys ``id`` and ``source`` match those columns. One hit per document: its best passage.

        ``mode``: ``dense`` (vectors: meaning, also across languages), ``sparse`` (BM25 over
        Turkish-aware keywords: names, numbers, rare words), ``hybrid`` (both, fused), or ``auto`` (per
        query, the mode measured best for a query in the corpus's language or in another:
        :data:`tase_search.query.modes.AUTO`, now hybrid and dense); None is :attr:`search_mode`. On an index
        without a keyword part, ``auto`` and the configured default search dense, and asking for
        ``sparse`` or ``hybrid`` is an error that says how to add one.

        A hit's ``score`` is, with a calibrated model (the bundled one), the estimated probability that
        its passage is relevant to the query, in every mode (:mod:`tase_search.query.calibration`: 0.5 and up
        probably relevant, under 0.2 probably not); ``score_kind`` says when it is something else (a
        cosine for a model without calibration). ``mode`` names the mode that ran, ``dense_score`` (the
        cosine) and ``keyword_score`` (BM25 normalised by the query) the raw parts (None where a part
        did not run). ``min_score`` leaves out hits scoring below it. ``highlight`` names in each hit the
        sentence of its passage that best answers the query (:mod:`tase_search.text.highlight`).

        Hybrid fuses by ``fusion``: ``weighted`` (min-max scaled scores, the measured default) or
        ``rrf`` (reciprocal rank fusion); ``dense_weight`` is the dense side's share (0..1), by default
        :func:`tase_search.query.modes.dense_weight` of the query's and the corpus's languages. Calibration
        does not change the ranking: a hybrid hit's probability is capped at the score of the hit above
        it; without calibration a hybrid hit scores by the fused value (``score_kind`` ``fused``).

        ``rerank=N`` reads the first ``max(N, k)`` hits again with the :attr:`reranker` (a cross-encoder
        that sees query and passage together) and returns its top ``k``; each hit's ``score`` (and
        ``rerank_score``) is then the reranker's probability that the passage answers the query.
        None: the ``rerank`` setting (0, off, unless configured). ``min_score`` applies after reranking.
        """
        filter = parse_filter_argument(filter)  # noqa: A001
        req = _search.parse_request(query, k, mode, fusion, dense_weight, lambda: self.search_mode)
        if not req.queries:
            return []
        if min_score is not None:
            ok = isinstance(min_score, (int, float)) and not isinstance(min_score, bool)
            if not ok or min_score != min_score:
                raise InputError(
                    f"min_score={min_score!r} is not valid: give a number (0.5: probably relevant)"
                )
        check_bool("highlight", highlight)
        req = dataclasses.replace(req, min_score=min_score, highlight=highlight)
        rerank = self._rerank_default() if rerank is None else _rerank.check_rerank(rerank)
        if rerank:
            req = dataclasses.replace(req, rerank=rerank, reranker=self.reranker)
        if req.mode != "sparse":
            self.query_encoder  # noqa: B018 - load and check the model before the index files
        results = self._open().search(req, filter)
        return results[0] if req.single else results

    def _rerank_default(self) -> int:
        if self._default_rerank is None:
            self._default_rerank = _rerank.default_rerank()
        return self._default_rerank

    # ------------------------------------------------------------------ writing
    def add(
        self,
        docs: Iterable[DocLike],
        *,
        on_duplicate: str = "error",
        progress: Callable[[int], None] | None = None,
    ) -> AddResult:
        """Append documents (only the new ones are embedded).

        A document identical to an indexed one (same text and metadata, and the same id if it has one)
        is left out and counted in :attr:`AddResult.unchanged`, so adding the same file twice adds
        nothing; when nothing changes at all, no new version of the index is written. An id that is
        already indexed with other content: ``on_duplicate`` error, skip or replace.
        """
        check_docs(docs)
        _ingest.check_on_duplicate(on_duplicate)
        progress = progress_arg(progress)
        encoder = self.encoder  # load and check before taking the lock
        result = self._write_unless_unchanged(
            lambda store, slot, m: _ingest.add_documents(
                docs, encoder, store, slot, m, on_duplicate, progress, noop_if_unchanged=True
            )
        )
        _bundle.keep_bundle(encoder, self.path, progress)  # also when unchanged: a missing or stale one
        close_progress(progress)
        return result

    def add_encoded(
        self,
        batches: Iterable[_ingest.EncodedBatch],
        *,
        on_duplicate: str = "error",
        progress: Callable[[int], None] | None = None,
    ) -> AddResult:
        """Append documents whose passages and vectors were computed elsewhere (by this index's model:
        :class:`tase_search.documents.ingest.EncodedBatch`), in one write, with the same rules as :meth:`add`."""
        _ingest.check_on_duplicate(on_duplicate)
        progress = progress_arg(progress)
        return self._write_unless_unchanged(
            lambda store, slot, m: _ingest.add_encoded(
                batches, store, slot, m, on_duplicate, progress, noop_if_unchanged=True
            )
        )

    def writer(self, *, flush_docs: int = 10_000, flush_seconds: float | None = 1.0) -> Any:
        """A :class:`~tase_search.writer.BufferedWriter` on this index: adds held and committed in
        groups of ``flush_docs`` (or when the oldest held is ``flush_seconds`` old), so many small adds
        cost about what one large add costs. What it holds is not searchable or durable until it flushes;
        leaving its ``with`` block flushes."""
        from .writer import BufferedWriter

        return BufferedWriter(self, flush_docs=flush_docs, flush_seconds=flush_seconds)

    def delete(self, ids: Iterable[str]) -> list[str]:
        """Delete documents by id; returns the ids that were present (missing ids are ignored). When none
        is present nothing is written: no new version of the index, and ``[]`` comes back."""
        wanted = [scrub(str(i)) for i in id_list(ids, "delete")]
        if not wanted:
            return []

        def mutate(store: DocStore, slot: _Slot, m: Manifest) -> list[str]:
            deleted = _ingest.remove_documents(wanted, store, slot)
            if not deleted:
                raise NothingChanged([])
            return deleted

        return self._write_unless_unchanged(mutate)

    def build_sparse(self) -> int:
        """Give this index a keyword (sparse) part, made from the stored text without re-embedding,
        through the same crash-safe write as any other change (a rebuild if it has a stale one; on a
        segmented index, a write and a merge of every segment). Returns the passages indexed; 0,
        writing nothing, when the keyword part is already current."""
        if self._open().snap.sparse_stale is None:
            return 0
        self.close()

        def mutate(store: DocStore, slot: _Slot, m: Manifest) -> int:
            if not store.sparse:
                return store.build_sparse()
            if store.sparse_built is not None:  # it was stale: this write rebuilt it already
                return store.sparse_built
            raise NothingChanged(0)  # another writer built it since we looked

        return self._write_unless_unchanged(mutate)

    def optimize(self) -> dict[str, int]:
        """Merge every segment into one, dropping deleted rows (``tase-search optimize``); returns
        ``segments_before``, ``segments_after`` and ``generation`` (:func:`.store.merge.optimize`)."""
        from .store.merge import optimize

        self.close()
        done = optimize(self.path)
        self.refresh()
        return done

    def _write_unless_unchanged(self, mutate: Callable[[DocStore, _Slot, Manifest], Any]) -> Any:
        """A write whose ``mutate`` may find nothing to change (:class:`NothingChanged`): then no new
        generation is written and what it found is the result."""
        try:
            return self._write(mutate)
        except NothingChanged as nothing:
            return nothing.result

    def _write(self, mutate: Callable[[DocStore, _Slot, Manifest], Any], *, fresh: bool = False) -> Any:
        """One crash-safe write (:func:`tase_search.store.commit.commit`): ``mutate``, then the index-type
        policy (:meth:`_maybe_retype`), published as the next generation."""

        def then_retype(store: DocStore, slot: _Slot, m: Manifest) -> Any:
            result = mutate(store, slot, m)
            _retype.maybe_retype(m, slot, store)
            return result

        def check(current: Manifest) -> None:
            if self._encoder is not None:
                check_encoder(current, self._encoder)

        def published(manifest: Manifest) -> None:
            self.close()
            self.manifest = manifest

        return _commit.commit(
            self.path, then_retype, new=self.manifest if fresh else None, check=check, on_commit=published
        )

    # ------------------------------------------------------------------ info
    def info(self) -> dict[str, Any]:
        """What the index holds (no model is loaded): :func:`tase_search.store.snapshot.describe`, with
        ``bytes_on_disk`` for the whole index directory (:func:`tase_search.runtime.disk.tree_bytes`, as
        ``tase-search list`` shows it)."""
        from .runtime.disk import tree_bytes

        info = _snapshot.describe(self.path, self.manifest)
        info["bytes_on_disk"] = tree_bytes(self.path)
        return info

    def get(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Stored documents by id (missing ids are left out)."""
        return self._open().snap.docs.get_documents([scrub(str(i)) for i in id_list(ids, "get")])

    def missing_filter_keys(self, filter: Mapping[str, Any] | Filter | None) -> tuple[list[str], list[str]]:  # noqa: A002
        """``(keys of filter that no document has, some field names that do exist)``: what to tell a
        user whose filtered search found nothing. Scans the documents, so call it only then."""
        return self._open().missing_filter_keys(parse_filter_argument(filter))


__all__ = ["AddResult", "Hit", "PassageRef", "Retriever", "resolve_index_path"]
