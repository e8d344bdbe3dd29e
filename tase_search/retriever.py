"""Retriever: build, load, add to, delete from and search an index. The only place the pieces meet.

    >>> from tase_search import Retriever
    >>> r = Retriever.build(["Galatasaray maçı 2-1 kazandı.", "Yarın İstanbul'da yağmur bekleniyor."],
    ...                     path="indexes/demo")                      # doctest: +SKIP
    >>> r.search("football match", k=1)[0].text                      # doctest: +SKIP
    'Galatasaray maçı 2-1 kazandı.'

An index is a directory: ``manifest.json`` (the commit point) and immutable generation
directories ``gen-NNNNNN/`` holding ``vectors.faiss`` and ``docs.sqlite``. A write builds the
next generation in a temporary directory under the writer lock and publishes it by atomically
replacing the manifest, so a crash, Ctrl-C or full disk at any point leaves the previous index
loadable and intact, and readers never see half-written state.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import ingest as _ingest
from . import modes as _modes
from .encoder import Encoder
from .encoding import query_bundle as _bundle
from .errors import (
    IndexCorrupt,
    IndexExists,
    InputError,
)
from .fusion import FUSIONS, fuse
from .ingest import CHUNK_DOCS, ON_DUPLICATE  # noqa: F401 - re-exports
from .inputs import DocLike, normalize_filter, scrub
from .language import corpus_language, detect_language
from .paths import resolve_index_path
from .results import AddResult, Hit, PassageRef
from .store import commit as _commit
from .store import fields as _fields
from .store import generation as _gen
from .store import retype as _retype
from .store.commit import NothingChanged
from .store.commit import VectorSlot as _Slot
from .store.docs import DocStore
from .store.layout import DOCS_FILE, MANIFEST_NAME, TMP_PREFIX  # noqa: F401 - TMP_PREFIX: re-export
from .store.manifest import (
    Manifest,
    ModelInfo,
    check_compatible,
    read_existing,
    read_manifest_safe,  # noqa: F401 - re-export
)
from .store.vectors import get_backend, validate_factory
from .text import clean_document, is_blank

MAX_K = 10_000
#: Loading checks file sizes and the vector count always; when the index files are at most this big
#: together it also recomputes their SHA-256 and compares SQLite's counts with the manifest (under
#: 0.1 s). Larger indexes skip those two (they would add seconds): ``tase-search verify`` does them.
VERIFY_ON_LOAD_BYTES = 64 << 20
_UNKNOWN = object()  # not looked at yet


# ----------------------------------------------------------------------------- retriever
class Retriever:
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
    ) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self._search_mode = None if search_mode is None else _modes.check_search_mode(search_mode)
        self._sparse_stale: str | None = None  # why the keyword part cannot be searched (None: it can)
        self._corpus_language: object = _UNKNOWN  # the documents' language, sampled when first needed
        self._encoder = encoder
        self._query_encoder: Any = None  # chosen at the first query (query_encoder)
        #: why queries load the full encoder when the index's torch-free query path was wanted (else None)
        self.query_path_note: str | None = None
        self._model_spec = model
        self._precision = precision
        self._batch_size = batch_size
        self._query_backend = query_backend
        self._mmap = mmap
        self._vectors: Any = None
        self._docs: DocStore | None = None
        self._deny: np.ndarray | None = None
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
        """Create a new index at ``path`` (default ``indexes/default``) from ``docs``.

        ``docs`` are strings, :class:`Document` objects or dicts with ``text`` (and optional ``id``;
        other keys become metadata). ``factory`` forces a FAISS factory string (``"HNSW32,Flat"``);
        by default the type follows the corpus size (Flat, then HNSW, then IVF). ``query_backend``
        is as for :meth:`load`. What the ingest did (documents added, unchanged, ...) is left in
        :attr:`last_add`. A build that fails on a directory it created removes that directory again.
        ``progress(n)`` is told of documents as they are embedded; an object that also has a
        ``stage(name)`` method (:class:`tase_search.progress.Progress`) hears of building and saving too.
        ``sparse`` (default on) also builds the keyword (BM25) part that the ``sparse`` and ``hybrid``
        search modes use, in the same write.
        """
        index_dir = resolve_index_path(path)
        _commit.refuse_foreign(index_dir)  # path checks first: loading a model takes seconds
        if (index_dir / MANIFEST_NAME).exists() and not overwrite:
            raise IndexExists(
                f"an index already exists at {index_dir}; add to it with Retriever.load(...).add(...) "
                "(CLI: tase-search index appends), or pass overwrite=True (--overwrite) to replace it"
            )
        if factory:
            get_backend(backend)
            if backend == "faiss":
                validate_factory(factory)
        encoder = (
            Encoder.load(model, precision=precision, batch_size=batch_size, query_backend=query_backend)
            if isinstance(model, str)
            else model
        )
        manifest = Manifest(
            model=ModelInfo(
                id=encoder.model_id,
                fingerprint=encoder.fingerprint,
                dimension=encoder.dimension,
                max_seq_length=encoder.max_seq_length,
                query_prompt=getattr(encoder, "query_prompt", None),
                passage_prompt=getattr(encoder, "passage_prompt", None),
            ),
            factory=factory or "Flat",
            index_type="custom" if factory else "auto",
            backend=backend,
            overlap_tokens=overlap,
        )
        r = cls(index_dir, manifest, encoder=encoder)
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
    ) -> Retriever:
        """Open an existing index. The model defaults to the one recorded in its manifest.

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
        setting, itself ``auto`` unless configured; see :mod:`tase_search.modes`).
        """
        index_dir = resolve_index_path(path)
        manifest = read_existing(index_dir)
        if model is not None and not isinstance(model, str):  # an Encoder (or any DocumentEncoder)
            return cls(
                index_dir,
                manifest,
                encoder=model,
                precision=precision,
                batch_size=batch_size,
                mmap=mmap,
                search_mode=search_mode,
            )
        return cls(
            index_dir,
            manifest,
            model=model,
            precision=precision,
            batch_size=batch_size,
            query_backend=query_backend,
            mmap=mmap,
            search_mode=search_mode,
        )

    @classmethod
    def exists(cls, path: str | os.PathLike[str] | None) -> bool:
        return (resolve_index_path(path) / MANIFEST_NAME).is_file()

    # ------------------------------------------------------------------ encoder
    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
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
        check_compatible(
            self.manifest,
            model_id=encoder.model_id,
            fingerprint=encoder.fingerprint,
            dimension=encoder.dimension,
            prompts=_prompts_of(encoder),
        )

    # ------------------------------------------------------------------ reading
    def _open(self) -> None:
        """Open the current generation's files.

        A writer may publish newer generations and remove this one while we open it: files then
        vanish mid-open, and we retry with the newest manifest. A failure while the manifest still
        names the same generation is real damage and is raised (:class:`IndexCorrupt`).
        """
        if self._vectors is not None:
            return
        for attempt in range(10):
            gen_dir = self.path / self.manifest.generation_dir
            try:
                self._open_generation(gen_dir)
                return
            except (FileNotFoundError, IndexCorrupt) as exc:
                newest = read_existing(self.path)
                if newest.generation == self.manifest.generation or attempt == 9:
                    if isinstance(exc, IndexCorrupt):
                        raise
                    raise IndexCorrupt(
                        f"generation {gen_dir} named by the manifest is missing; the index is damaged "
                        "(run `tase-search verify`)"
                    ) from None
                self.manifest = newest
                if self._encoder is not None:
                    self._check(self._encoder)

    def _open_generation(self, gen_dir: Path) -> None:
        m = self.manifest
        backend = get_backend(m.backend)
        vec_path = gen_dir / ("vectors" + backend.suffix)
        gen_dir = _gen.generation_path(self.path, m)  # FileNotFoundError: a writer may have just removed it
        small = sum(int(i["bytes"]) for i in m.files.values()) <= VERIFY_ON_LOAD_BYTES
        # the listed files, confined to the generation, sizes always; small index: checksums (milliseconds)
        _gen.check_files(gen_dir, m, checksum=small)
        docs = DocStore(gen_dir / DOCS_FILE, readonly=True)
        recorded = docs.model_fingerprint()
        if recorded is not None and recorded != m.model.fingerprint:
            docs.close()
            raise IndexCorrupt(
                f"the manifest of {self.path} names model weights {m.model.fingerprint[:12]} but its documents "
                f"were indexed with {recorded[:12]}; the index is damaged (run `tase-search verify`)"
            )
        try:
            vectors = backend.load(vec_path, m.factory, m.model.dimension, m.search_params, mmap=self._mmap)
        except BaseException:
            docs.close()
            raise
        if vectors.ntotal != m.rows + m.tombstones:
            docs.close()
            raise IndexCorrupt(
                f"vector index holds {vectors.ntotal} rows but the manifest says {m.rows + m.tombstones}; damaged"
            )
        tomb = docs.tombstones()
        counts = (*docs.counts(), len(tomb)) if small else (m.documents, m.rows, m.tombstones)
        if counts != (m.documents, m.rows, m.tombstones):
            docs.close()
            raise IndexCorrupt(
                f"document store {gen_dir / DOCS_FILE} holds {counts} documents/passages/tombstones but the "
                f"manifest says {(m.documents, m.rows, m.tombstones)}; the index is damaged (run `tase-search verify`)"
            )
        self._deny = np.asarray(tomb, dtype=np.int64) if tomb else None
        self._corpus_language = _UNKNOWN
        try:
            self._sparse_stale = (
                docs.sparse_stale_reason(m.rows) if docs.sparse else "it has no keyword (sparse) part"
            )
        except BaseException:
            docs.close()
            raise
        self._vectors, self._docs = vectors, docs

    def refresh(self) -> bool:
        """Pick up a newer generation written by another process; True if it changed."""
        newest = read_existing(self.path)
        if newest.generation == self.manifest.generation:
            return False
        self.close()
        self.manifest = newest
        if self._encoder is not None:
            self._check(self._encoder)
        return True

    def close(self) -> None:
        if self._docs is not None:
            self._docs.close()
        self._docs, self._vectors, self._deny = None, None, None

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
            from .config import load_settings

            self._search_mode = load_settings().search_mode
        return self._search_mode

    @property
    def sparse_note(self) -> str | None:
        """One line telling a user that this index is searched by meaning only and how to add keyword
        search; None when its keyword part can be searched."""
        self._open()
        return None if self._sparse_stale is None else _modes.unavailable_note(self.path, self._sparse_stale)

    def search(
        self,
        query: str | Sequence[str],
        k: int = 10,
        filter: Mapping[str, str] | None = None,  # noqa: A002 - the natural name for users
        mode: str | None = None,
        *,
        fusion: str | None = None,
        dense_weight: float | None = None,
    ) -> list[Hit] | list[list[Hit]]:
        """Top-``k`` documents for a query (a list of hits) or for each of several queries.

        ``filter`` keeps documents whose metadata field equals the value (``{"topic": "spor"}``);
        the keys ``id`` and ``source`` match those columns. One hit per document: its best passage.

        ``mode``: ``dense`` (vectors: meaning, also across languages), ``sparse`` (BM25 over
        Turkish-aware keywords: names, numbers, rare words), ``hybrid`` (both, fused), or ``auto`` (per
        query, the mode measured best for a query in the corpus's language or in another:
        :data:`tase_search.modes.AUTO`, now hybrid and dense); None is :attr:`search_mode`. On an index
        without a keyword part, ``auto`` and the configured default search dense, and asking for
        ``sparse`` or ``hybrid`` is an error that says how to add one.

        Hybrid fuses by ``fusion``: ``weighted`` (min-max scaled scores, the measured default) or
        ``rrf`` (reciprocal rank fusion); ``dense_weight`` is the dense side's share (0..1), by default
        :func:`tase_search.modes.dense_weight` of the query's and the corpus's languages. A hit's
        ``score`` is its cosine (dense), BM25 score (sparse) or fused score in 0..1 (hybrid).
        """
        single = isinstance(query, str)
        if not single and (isinstance(query, (bytes, Mapping)) or not isinstance(query, Iterable)):
            raise InputError(f"query is {type(query).__name__}: give a str or a list of str")
        queries = [query] if single else list(query)
        if not queries:
            return []
        for i, q in enumerate(queries):
            if not isinstance(q, str):
                raise InputError(f"query #{i} is {type(q).__name__}, not str")
            if is_blank(q):  # blank, or only control, zero-width or bidi characters
                raise InputError("query is empty: give some text to search for")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InputError(f"k={k!r} is not valid: give a whole number >= 1")
        requested = self.search_mode if mode is None else _modes.check_search_mode(mode)
        fusion = _modes.FUSION if fusion is None else fusion
        if fusion not in FUSIONS:
            raise InputError(f"fusion {fusion!r} is not one of {', '.join(FUSIONS)}")
        if dense_weight is not None:
            weight_ok = isinstance(dense_weight, (int, float)) and not isinstance(dense_weight, bool)
            if not (weight_ok and 0 <= dense_weight <= 1):
                raise InputError(f"dense_weight={dense_weight!r} is not valid: give a number from 0 to 1")
        k = min(k, MAX_K)
        if requested != "sparse":
            self.query_encoder  # noqa: B018 - load and check the model before the index files
        self._open()
        cleaned = [clean_document(q) for q in queries]
        languages = [detect_language(q) for q in cleaned] if requested in ("auto", "hybrid") else []
        chosen = [
            self._mode_for(languages[i] if languages else None, requested, explicit=mode is not None)
            for i in range(len(cleaned))
        ]
        weights = [
            (self._dense_weight(languages[i]) if dense_weight is None else float(dense_weight))
            if m == "hybrid"
            else 1.0
            for i, m in enumerate(chosen)
        ]
        results = self._search_modes(cleaned, chosen, weights, k, filter, fusion)
        return results[0] if single else results

    def _language(self) -> str | None:
        """The corpus's language, from a sample of its documents (once per opened generation)."""
        if self._corpus_language is _UNKNOWN:
            assert self._docs is not None
            self._corpus_language = corpus_language(self._docs.sample_texts(_modes.CORPUS_SAMPLE))
        return self._corpus_language  # type: ignore[return-value]

    def _dense_weight(self, query_language: str | None) -> float:
        """The dense share of a hybrid query: by whether it is in the corpus's language."""
        return _modes.dense_weight(query_language, self._language())

    def _mode_for(self, query_language: str | None, requested: str, *, explicit: bool) -> str:
        """The mode one query is searched in: ``auto`` resolved by its language against the corpus's,
        and dense where the keyword part cannot be searched (an error when the caller asked for another
        mode by name)."""
        if self._sparse_stale is not None:  # no keyword part to search
            if explicit and requested in ("sparse", "hybrid"):
                raise InputError(_modes.unavailable_error(requested, self.path, self._sparse_stale))
            return "dense"
        return _modes.auto_mode(query_language, self._language()) if requested == "auto" else requested

    def _search_modes(
        self,
        queries: Sequence[str],
        modes: Sequence[str],
        weights: Sequence[float],
        k: int,
        filter: Mapping[str, str] | None,  # noqa: A002
        fusion: str,
    ) -> list[list[Hit]]:
        """Each query in its mode: dense and sparse candidates (``HYBRID_DEPTH`` documents each for
        hybrid), fused per document, then the top ``k`` read back."""
        assert self._docs is not None
        flt = normalize_filter(filter) if filter else None
        allow = None
        if flt:
            allow = np.asarray(self._docs.pids_matching(flt), dtype=np.int64)
            if len(allow) == 0:
                return [[] for _ in queries]
        depth = max(k, _modes.HYBRID_DEPTH)
        groups: list[list[tuple[int, float]]] = [[] for _ in queries]
        dense_at = [i for i, m in enumerate(modes) if m != "sparse"]
        if dense_at:
            qv = self.query_encoder.encode_query([queries[i] for i in dense_at])
            n = depth if any(modes[i] == "hybrid" for i in dense_at) else k
            for i, g in zip(dense_at, self._dense_groups(qv, n, allow)):
                groups[i] = g
        for i, m in enumerate(modes):
            if m == "dense":
                continue
            found = self._sparse_groups(queries[i], k if m == "sparse" else depth, flt)
            groups[i] = found if m == "sparse" else self._fuse(groups[i], found, fusion, weights[i])
        return self._hits(groups, k)

    def _dense_groups(
        self, qv: np.ndarray, k: int, allow: np.ndarray | None
    ) -> list[list[tuple[int, float]]]:
        """The best ``k`` documents of each query vector as ``(best passage id, cosine)``, best first."""
        assert self._vectors is not None
        total = self._vectors.ntotal
        if total == 0:
            return [[] for _ in range(len(qv))]
        n_docs = self.manifest.documents if allow is None else len(allow)
        want = min(k, n_docs)
        k_search = min(total, max(k * 2, k + 8))
        with _one_search_thread(len(qv) == 1 and self.manifest.backend == "faiss"):
            while True:
                scores, ids = self._vectors.search(qv, k_search, allow=allow, deny=self._deny)
                grouped = [self._group(scores[i], ids[i]) for i in range(len(qv))]
                if all(len(g) >= want for g in grouped) or k_search >= total:
                    break
                k_search = min(total, k_search * 4)
        return [g[:k] for g in grouped]

    def _sparse_groups(self, query: str, k: int, flt: dict[str, str] | None) -> list[tuple[int, float]]:
        """The best ``k`` documents for ``query`` by BM25 as ``(best passage id, score)``, best first."""
        assert self._docs is not None
        limit = max(k * 2, k + 8)
        while True:
            rows = self._docs.search_sparse(query, limit, flt)
            grouped = self._group([s for _, s in rows], [p for p, _ in rows])
            if len(grouped) >= k or len(rows) < limit:
                return grouped[:k]
            limit *= 4

    def _fuse(
        self,
        dense: list[tuple[int, float]],
        sparse: list[tuple[int, float]],
        fusion: str,
        dense_weight: float,
    ) -> list[tuple[int, float]]:
        """Fuse two per-document rankings of passage ids; a document keeps the passage of the ranking
        it stands higher in (dense on a tie)."""
        assert self._docs is not None
        doc_of = self._docs.doc_keys([p for p, _ in dense] + [p for p, _ in sparse])
        passage: dict[int, tuple[int, int]] = {}  # document -> (rank, passage id)
        for ranking in (dense, sparse):
            for rank, (pid, _) in enumerate(ranking):
                dk = doc_of.get(pid)
                if dk is not None and (dk not in passage or rank < passage[dk][0]):
                    passage[dk] = (rank, pid)
        by_doc = [[(doc_of[p], s) for p, s in ranking if p in doc_of] for ranking in (dense, sparse)]
        return [(passage[dk][1], score) for dk, score in fuse(by_doc[0], by_doc[1], fusion, dense_weight)]

    def _hits(self, groups: list[list[tuple[int, float]]], k: int) -> list[list[Hit]]:
        """Read the top ``k`` of each ranking back from the document store as hits."""
        assert self._docs is not None
        wanted = sorted({pid for g in groups for pid, _ in g[:k]})
        stored = self._docs.fetch(wanted)
        out: list[list[Hit]] = []
        for g in groups:
            hits = []
            for pid, score in g:
                sp = stored.get(pid)
                if sp is None:
                    continue
                hits.append(
                    Hit(
                        id=sp.doc_id,
                        score=float(score),
                        text=sp.text,
                        metadata=sp.metadata,
                        source=sp.source,
                        rank=len(hits) + 1,
                        passage=PassageRef(sp.index, sp.count, sp.start, sp.end, sp.text[sp.start : sp.end]),
                    )
                )
                if len(hits) == k:
                    break
            out.append(hits)
        return out

    def _group(self, scores: Sequence[float], ids: Sequence[int]) -> list[tuple[int, float]]:
        """Best passage per document, in score order (documents are resolved later by passage id)."""
        assert self._docs is not None
        seen_docs: dict[int, None] = {}
        out = []
        valid = [(int(i), float(s)) for i, s in zip(ids, scores) if i >= 0]
        doc_of = self._docs.doc_keys([i for i, _ in valid])
        for pid, score in valid:
            dk = doc_of.get(pid)
            if dk is None or dk in seen_docs:
                continue
            seen_docs[dk] = None
            out.append((pid, score))
        return out

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
        _ingest.check_on_duplicate(on_duplicate)
        encoder = self.encoder  # load and check before taking the lock
        try:
            result = self._write(
                lambda store, slot, m: _ingest.add_documents(
                    docs, encoder, store, slot, m, on_duplicate, progress, noop_if_unchanged=True
                )
            )
        except NothingChanged as nothing:  # every document was unchanged or skipped: no new generation
            result = nothing.result
        _bundle.keep_bundle(encoder, self.path, progress)  # also when unchanged: a missing or stale one
        return result

    def add_encoded(
        self,
        batches: Iterable[_ingest.EncodedBatch],
        *,
        on_duplicate: str = "error",
        progress: Callable[[int], None] | None = None,
    ) -> AddResult:
        """Append documents whose passages and vectors were computed elsewhere (by this index's model:
        :class:`tase_search.ingest.EncodedBatch`), in one write, with the same rules as :meth:`add`."""
        _ingest.check_on_duplicate(on_duplicate)
        try:
            return self._write(
                lambda store, slot, m: _ingest.add_encoded(
                    batches, store, slot, m, on_duplicate, progress, noop_if_unchanged=True
                )
            )
        except NothingChanged as nothing:
            return nothing.result

    def delete(self, ids: Iterable[str]) -> list[str]:
        """Delete documents by id; returns the ids that were present (missing ids are ignored)."""
        wanted = [scrub(str(i)) for i in ids]
        if not wanted:
            return []

        def mutate(store: DocStore, slot: _Slot, m: Manifest) -> list[str]:
            deleted, pids = store.delete(wanted)
            if pids and not slot.vectors.remove(np.asarray(pids, dtype=np.int64)):
                store.add_tombstones(pids)
            return deleted

        return self._write(mutate)

    def build_sparse(self) -> int:
        """Give this index a keyword (sparse) part, made from the stored text without re-embedding,
        through the same crash-safe write as any other change (a rebuild if it has a stale one).
        Returns the passages indexed; 0, writing nothing, when the keyword part is already current."""
        self._open()
        if self._sparse_stale is None:
            return 0
        self.close()

        def mutate(store: DocStore, slot: _Slot, m: Manifest) -> int:
            if not store.sparse:
                return store.build_sparse()
            if store.sparse_built is not None:  # it was stale: this write rebuilt it already
                return store.sparse_built
            raise NothingChanged(AddResult())  # another writer built it since we looked

        try:
            return self._write(mutate)
        except NothingChanged:
            return 0

    def _write(self, mutate: Callable[[DocStore, _Slot, Manifest], Any], *, fresh: bool = False) -> Any:
        """One crash-safe write (:func:`tase_search.store.commit.commit`): ``mutate``, then the index-type
        policy (:meth:`_maybe_retype`), published as the next generation."""

        def then_retype(store: DocStore, slot: _Slot, m: Manifest) -> Any:
            result = mutate(store, slot, m)
            _retype.maybe_retype(m, slot, store)
            return result

        def check(current: Manifest) -> None:
            if self._encoder is not None:
                check_compatible(
                    current,
                    model_id=self._encoder.model_id,
                    fingerprint=self._encoder.fingerprint,
                    dimension=self._encoder.dimension,
                    prompts=_prompts_of(self._encoder),
                )

        def published(manifest: Manifest) -> None:
            self.close()
            self.manifest = manifest

        return _commit.commit(
            self.path, then_retype, new=self.manifest if fresh else None, check=check, on_commit=published
        )

    # ------------------------------------------------------------------ info
    def info(self) -> dict[str, Any]:
        """What the index holds (no model is loaded). Sizes count the generation's own regular files
        (never a link's target); a damaged document store leaves ``sources`` empty (``verify`` says why)."""
        m = self.manifest
        gen_dir = self.path / m.generation_dir
        size = 0
        with contextlib.suppress(OSError, IndexCorrupt):
            gen_dir = _gen.generation_path(self.path, m)
            size = sum(st.st_size for p in gen_dir.iterdir() if stat.S_ISREG((st := p.lstat()).st_mode))
        sources: list[tuple[str, int]] = []
        sparse = "unknown (the document store could not be read)"
        try:
            store = DocStore(gen_dir / DOCS_FILE, readonly=True)
            try:
                sources = store.sources()
                stale = store.sparse_stale_reason(m.rows) if store.sparse else "none"
                sparse = "current" if stale is None else stale
            finally:
                store.close()
        except IndexCorrupt:
            pass
        return {
            "path": str(self.path),
            "documents": m.documents,
            "passages": m.rows,
            "tombstones": m.tombstones,
            "model": m.model.id,
            "model_fingerprint": m.model.fingerprint,
            "dimension": m.model.dimension,
            "max_seq_length": m.model.max_seq_length,
            "metric": m.metric,
            "normalized": m.model.normalized,
            "backend": m.backend,
            "factory": m.factory,
            "index_type": m.index_type,
            "search_params": m.search_params,
            "generation": m.generation,
            "bytes_on_disk": size,
            "created": m.created,
            "updated": m.updated,
            "format_version": m.format_version,
            "versions": m.versions,
            "sources": dict(sources),
            "sparse": sparse,
        }

    def get(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """Stored documents by id (missing ids are left out)."""
        self._open()
        assert self._docs is not None
        return self._docs.get_documents([scrub(str(i)) for i in ids])

    def missing_filter_keys(self, filter: Mapping[str, str]) -> tuple[list[str], list[str]]:  # noqa: A002
        """``(keys of filter that no document has, some field names that do exist)``: what to tell a
        user whose filtered search found nothing. Scans the documents, so call it only then."""
        self._open()
        assert self._docs is not None
        conn = self._docs.conn
        missing = [k for k in normalize_filter(filter) if not _fields.has_field(conn, k)]
        return missing, (_fields.some_fields(conn) if missing else [])


# ----------------------------------------------------------------------------- helpers
def _prompts_of(encoder: Any) -> tuple[str | None, str | None]:
    """The encoder's (query, passage) prompts, as the manifest records them."""
    return getattr(encoder, "query_prompt", None), getattr(encoder, "passage_prompt", None)


@contextlib.contextmanager
def _one_search_thread(active: bool) -> Iterator[None]:
    """Run FAISS with one OpenMP thread for a single-query search.

    FAISS parallelises Flat, HNSW and IVF searches over queries, so one query gains nothing from a
    thread team, but still pays for waking it: bench/index.py measured HNSW32 at 100k vectors
    p50 0.32 ms with one thread vs 8 ms with two on a busy 2-core machine (Flat 10 vs 48 ms).
    Per calling thread (an OpenMP ICV), restored afterwards; batches keep all threads.
    """
    if not active:
        yield
        return
    import faiss

    prev = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(prev)


__all__ = ["AddResult", "Hit", "PassageRef", "Retriever", "resolve_index_path"]
