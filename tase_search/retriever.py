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
import json
import math
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import modes as _modes
from .encoder import Encoder
from .errors import (
    IndexCorrupt,
    IndexExists,
    InputError,
)
from .fusion import FUSIONS, fuse
from .language import corpus_language, detect_language
from .progress import stage_of
from .readers import Document
from .store import commit as _commit
from .store import content as _content
from .store import fields as _fields
from .store import generation as _gen
from .store import vectors as _vec
from .store.commit import NothingChanged
from .store.commit import VectorSlot as _Slot
from .store.docs import DocStore
from .store.faiss_errors import faiss_message
from .store.layout import DOCS_FILE, MANIFEST_NAME, TMP_PREFIX  # noqa: F401 - TMP_PREFIX: re-export
from .store.manifest import (
    Manifest,
    ModelInfo,
    check_compatible,
    read_existing,
    read_manifest_safe,  # noqa: F401 - re-export
)
from .store.vectors import choose_factory, get_backend, validate_factory
from .text import clean_document, is_blank

CHUNK_DOCS = 2048
MAX_K = 10_000
ON_DUPLICATE = ("error", "skip", "replace")
#: Loading checks file sizes and the vector count always; when the index files are at most this big
#: together it also recomputes their SHA-256 and compares SQLite's counts with the manifest (under
#: 0.1 s). Larger indexes skip those two (they would add seconds): ``tase-search verify`` does them.
VERIFY_ON_LOAD_BYTES = 64 << 20
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_UNKNOWN = object()  # not looked at yet

DocLike = str | Document | Mapping[str, Any]


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class PassageRef:
    """Which part of the document matched: passage ``index`` of ``count``, characters ``start:end``."""

    index: int
    count: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Hit:
    """One search result: a document and the passage of it that matched best."""

    id: str
    score: float
    text: str
    metadata: dict[str, Any]
    passage: PassageRef
    source: str | None = None
    rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "id": self.id,
            "score": round(float(self.score), 6),
            "text": self.text,
            "metadata": self.metadata,
            "source": self.source,
            "passage": {
                "index": self.passage.index,
                "count": self.passage.count,
                "start": self.passage.start,
                "end": self.passage.end,
                "text": self.passage.text,
            },
        }


@dataclass
class AddResult:
    """What an add did."""

    added: int = 0
    passages: int = 0
    skipped_duplicate: int = 0
    replaced: int = 0
    skipped_empty: int = 0
    unchanged: int = 0  # identical to a document already indexed (or earlier in the input): not stored again
    seconds: float = 0.0
    ids: list[str] = field(default_factory=list, repr=False)


class _BackgroundAdds:
    """Vector-index adds on one worker thread, so chunk N's add overlaps chunk N+1's encoding.

    Why: indexing is encode-bound, but an HNSW insert costs ~0.2-0.5 ms and grows with the graph,
    so run in line the adds are 4-10% of a large build. FAISS releases the GIL and the encoder's
    tokenisation and pooling leave a core idle at times, so the add can hide in those gaps. At most
    one add is in flight and every add waits for the previous one, so rows enter the index in the
    same order as in line (the result is the same index). The worker limits FAISS to one OpenMP
    thread so it does not fight the encoder's threads. Anything that reads or changes the index
    (remove, retype, train, save) calls :meth:`wait` first; an add's exception surfaces there.
    """

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="tase-search-add", initializer=_one_omp_thread)
        self._future: Any = None

    def submit(self, vectors: Any, emb: np.ndarray, ids: np.ndarray) -> None:
        self.wait()
        self._future = self._pool.submit(vectors.add, emb, ids)

    def wait(self) -> None:
        future, self._future = self._future, None
        if future is not None:
            future.result()

    def close(self, *, quiet: bool = False) -> None:
        """Wait for the add in flight and stop the worker; ``quiet`` drops the add's error (used while
        another error is already propagating, which is the one the caller should see)."""
        try:
            self.wait()
        except BaseException:
            if not quiet:
                raise
        finally:
            self._pool.shutdown(wait=True)


class _PassageShare:
    """Turns the encoder's per-batch passage counts into document counts for a progress reporter, so a
    chunk of 2,048 documents moves the count (and the docs/s and ETA) while it is embedded, not only
    when it is done. ``finish`` reports what is left of the chunk (skipped documents included)."""

    def __init__(self, report: Callable[[int], None], passages: int, docs: int) -> None:
        self.report, self.passages, self.docs = report, max(1, passages), docs
        self.seen = self.told = 0

    def __call__(self, n: int) -> None:
        self.seen += n
        due = min(self.docs, self.docs * self.seen // self.passages)
        if due > self.told:
            self.report(due - self.told)
            self.told = due

    def finish(self) -> None:
        if self.docs > self.told:
            self.report(self.docs - self.told)
            self.told = self.docs


def _one_omp_thread() -> None:
    import sys

    faiss = sys.modules.get("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(1)  # OpenMP's thread count is per calling thread: this worker only


# ----------------------------------------------------------------------------- paths
def resolve_index_path(
    name_or_path: str | os.PathLike[str] | None, root: str | os.PathLike[str] | None = None
) -> Path:
    """An index name lives under ``root``; anything with a path separator (or ``.``) is a path.

    ``root`` defaults to the ``index_root`` setting (``TASE_SEARCH_INDEX_ROOT``, the config file, else
    the user data directory: :func:`tase_search.home.default_index_root`), as for the CLI.
    """
    if name_or_path is None or str(name_or_path) == "":
        name_or_path = "default"
    s = str(name_or_path)
    if isinstance(name_or_path, Path) or os.sep in s or s.startswith(".") or s.startswith("~"):
        return _expand(s)
    if not _NAME_RE.match(s):
        raise InputError(
            f"index name {s!r} is not valid: use letters, digits, '.', '_' and '-' (or give a path with a '/')"
        )
    if root is None:
        from .config import load_settings

        root = load_settings().index_root
    return _expand(str(root)) / s


def _expand(path: str) -> Path:
    if "\x00" in path:
        # the OS cannot name such a file, and "~user\0" makes the home-directory lookup raise ValueError
        raise InputError(f"index path {path!r} contains a NUL character; give a path without it")
    try:
        return Path(path).expanduser()
    except RuntimeError:  # "~nosuchuser": no home directory to expand to
        raise InputError(f"cannot expand {path!r}: no such user's home directory") from None


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
                return r._ingest(docs, store, slot, m, on_duplicate, progress)

            r.last_add = r._write(ingest, fresh=True)
        except BaseException:
            if unborn:
                _commit.remove_unborn(index_dir)
            raise
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
        if model is not None and not isinstance(model, str):  # an Encoder (or any EncoderLike)
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

    def warm_up(self) -> Retriever:
        """Load the encoder, its query path (the ONNX graph under ``auto``) and the index files now,
        so the first :meth:`search` costs what every later one does. Returns ``self``."""
        encoder = self.encoder
        prepare = getattr(encoder, "onnx_query_encoder", None)
        if prepare is not None:
            prepare()
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
            self.encoder  # noqa: B018 - load and check the model before the index files
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
        flt = _normalize_filter(filter) if filter else None
        allow = None
        if flt:
            allow = np.asarray(self._docs.pids_matching(flt), dtype=np.int64)
            if len(allow) == 0:
                return [[] for _ in queries]
        depth = max(k, _modes.HYBRID_DEPTH)
        groups: list[list[tuple[int, float]]] = [[] for _ in queries]
        dense_at = [i for i, m in enumerate(modes) if m != "sparse"]
        if dense_at:
            qv = self.encoder.encode_query([queries[i] for i in dense_at])
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
        if on_duplicate not in ON_DUPLICATE:
            raise InputError(f"on_duplicate={on_duplicate!r} is not one of {', '.join(ON_DUPLICATE)}")
        self.encoder  # noqa: B018 - load and check before taking the lock
        try:
            return self._write(
                lambda store, slot, m: self._ingest(
                    docs, store, slot, m, on_duplicate, progress, noop_if_unchanged=True
                )
            )
        except NothingChanged as nothing:  # every document was unchanged or skipped: no new generation
            return nothing.result

    def delete(self, ids: Iterable[str]) -> list[str]:
        """Delete documents by id; returns the ids that were present (missing ids are ignored)."""
        wanted = [_scrub(str(i)) for i in ids]
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
            self._maybe_retype(m, slot, store)
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

    def _maybe_retype(self, m: Manifest, slot: _Slot, store: DocStore) -> None:
        """Under ``auto``, move to the index type the corpus size calls for (without re-embedding).

        Also compacts away tombstones once they exceed a fifth of the rows. A build or a large add
        has usually changed type already, while it ingested (:meth:`_grow_if_due`).
        """
        n = slot.vectors.ntotal
        tomb = store.tombstones()
        wanted = (
            choose_factory(n - len(tomb)) if m.index_type == "auto" and m.backend == "faiss" else slot.factory
        )
        grow = _size_class(wanted) > _size_class(slot.factory)
        compact = len(tomb) > 0 and len(tomb) * 5 > n
        if not grow and not compact:
            return
        self._retype(m, slot, store, wanted if grow else slot.factory, tomb)

    def _grow_if_due(self, m: Manifest, slot: _Slot, store: DocStore) -> None:
        """During an ingest into an ``auto`` index: change type as soon as the size calls for it, so a
        large build fills its final type (HNSW) instead of a Flat copy of everything re-typed at the end."""
        live = slot.vectors.ntotal - store.tombstone_count()
        if self._growth_due(m, slot, live):
            self._retype(m, slot, store, choose_factory(live), store.tombstones())

    @staticmethod
    def _growth_due(m: Manifest, slot: _Slot, live_rows: int) -> bool:
        """Whether an ``auto`` index of ``live_rows`` rows calls for a bigger type than ``slot``'s."""
        if m.index_type != "auto" or m.backend != "faiss":
            return False
        return _size_class(choose_factory(live_rows)) > _size_class(slot.factory)

    def _retype(self, m: Manifest, slot: _Slot, store: DocStore, factory: str, tomb: Sequence[int]) -> None:
        """Replace ``slot``'s index by a ``factory`` one holding the same rows minus tombstones.

        Rows move in slices of ``MOVE_BATCH`` (reconstructed from the old index, added to the new one),
        so the peak is the two indexes, never a third full copy of the vectors; a type that needs
        training is trained first on a random sample of ``TRAIN_SAMPLE`` rows.
        """
        old = slot.vectors
        drop = np.asarray(tomb, dtype=np.int64)
        batch = _vec.MOVE_BATCH
        new = get_backend(m.backend).create(factory, m.model.dimension, "")
        if new.needs_training:
            new.train(_training_sample(old, drop, _vec.TRAIN_SAMPLE, batch))
        for ids, vecs in old.iter_rows(batch):
            if len(drop):
                keep = ~np.isin(ids, drop)
                ids, vecs = ids[keep], vecs[keep]
            new.add(vecs, ids)
        if len(drop):
            store.clear_tombstones()
        slot.vectors, slot.factory = new, factory
        del old

    def _train_and_add(self, slot: _Slot, held: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Train ``slot``'s index once on the held-back vectors, then add them. Empties ``held`` as it
        copies, so the vectors are in memory once (plus one chunk)."""
        n = sum(len(i) for _, i in held)
        allv = np.empty((n, held[0][0].shape[1]), dtype=np.float32)
        alli = np.empty(n, dtype=np.int64)
        pos = 0
        while held:
            e, i = held.pop(0)
            allv[pos : pos + len(i)], alli[pos : pos + len(i)] = e, i
            pos += len(i)
            del e, i
        try:
            slot.vectors.train(allv)
        except RuntimeError as exc:
            raise InputError(
                f"index type {slot.factory!r} could not be trained on {n} vectors ({faiss_message(exc)}); "
                "use a smaller IVF list count or the automatic index type"
            ) from exc
        slot.vectors.add(allv, alli)

    def _ingest(
        self,
        docs: Iterable[DocLike],
        store: DocStore,
        slot: _Slot,
        m: Manifest,
        on_duplicate: str,
        progress: Callable[[int], None] | None,
        *,
        noop_if_unchanged: bool = False,
    ) -> AddResult:
        """Embed and store ``docs``, streaming their vectors into ``slot``'s index chunk by chunk.

        An index that needs training holds back vectors only until it has ``TRAIN_SAMPLE`` of them
        (or the input ends), trains once and adds everything after that directly. An ``auto`` index
        changes type as soon as it outgrows the current one (:meth:`_grow_if_due`).

        A document identical to one already stored (text and metadata; the same id too, if it has one)
        or to an earlier one in the input is *unchanged*: counted, not stored again. With
        ``noop_if_unchanged`` a write that would change nothing raises :class:`NothingChanged`, so no
        new generation is committed. ``progress(n)`` hears of documents as they are embedded and, if it
        has a ``stage(name)`` method, of building and saving.
        """
        if on_duplicate not in ON_DUPLICATE:
            raise InputError(f"on_duplicate={on_duplicate!r} is not one of {', '.join(ON_DUPLICATE)}")
        t0 = time.perf_counter()
        res = AddResult()
        encoder = self.encoder
        report = progress if progress is not None else (lambda _n: None)
        stage = stage_of(progress)
        report(0)  # starts the clock of a docs/s reporter
        _content.ensure_column(store.conn)
        auto_id = store.next_auto_id()
        held: list[tuple[np.ndarray, np.ndarray]] = []  # vectors waiting for the index to be trained
        held_rows = 0
        overlap = m.overlap_tokens
        adds = _BackgroundAdds()
        try:
            total = slot.vectors.ntotal  # rows in the index once the add in flight lands
            for chunk in _chunks(_as_documents(docs, res), CHUNK_DOCS):
                rows, ids_in_chunk = [], set()
                keys = [_content.content_key(d.text, d.metadata) for d in chunk]
                explicit = [d.id for d in chunk if d.id is not None]
                stored_by_id = _content.keys_by_id(store.conn, explicit) if explicit else {}
                existing = set(stored_by_id)
                anonymous = [_content.content_hash(d.text, d.metadata) for d in chunk if d.id is None]
                known = _content.known_keys(store.conn, anonymous) if anonymous else set()
                key_of_id: dict[str, str] = {}  # ids of this chunk -> their content
                for d, key in zip(chunk, keys):
                    doc_id = d.id
                    if (doc_id is None and key in known) or (
                        doc_id is not None and key in (stored_by_id.get(doc_id), key_of_id.get(doc_id))
                    ):
                        res.unchanged += 1
                        continue
                    if doc_id is None:
                        while True:
                            doc_id = str(auto_id)
                            auto_id += 1
                            if doc_id not in ids_in_chunk and not store.existing_ids([doc_id]):
                                break
                    elif doc_id in existing or doc_id in ids_in_chunk:
                        if on_duplicate == "error":
                            raise InputError(
                                f"document id {doc_id!r} ({d.source}:{d.line}) is already in the index or earlier "
                                "in the input, with other text or metadata; choose --on-duplicate skip or replace, "
                                "or give unique ids"
                            )
                        if on_duplicate == "skip":
                            res.skipped_duplicate += 1
                            continue
                        if doc_id in ids_in_chunk:  # replace an earlier row of this same chunk
                            rows = [r for r in rows if r[0] != doc_id]
                        else:
                            _, pids = store.delete([doc_id])
                            gone = np.asarray(pids, dtype=np.int64)
                            if held and len(gone):  # its vectors still wait for training: drop them
                                in_held = np.isin(gone, np.concatenate([i for _, i in held]))
                                held = [(e[keep], i[keep]) for e, i in held for keep in [~np.isin(i, gone)]]
                                held_rows = sum(len(i) for _, i in held)
                                gone = gone[~in_held]
                            if len(gone):
                                adds.wait()
                                if not slot.vectors.remove(gone):
                                    store.add_tombstones(gone.tolist())
                                total = slot.vectors.ntotal
                            existing.discard(doc_id)
                        res.replaced += 1
                    ids_in_chunk.add(doc_id)
                    key_of_id[doc_id] = key
                    known.add(key)  # a later copy in the input is unchanged too
                    rows.append((doc_id, d))
                if not rows:
                    report(len(chunk))
                    continue
                parts = [encoder.split_passages(d.text, overlap=overlap) for _, d in rows]
                texts = [d.text[p.start : p.end] for (_, d), ps in zip(rows, parts) for p in ps]
                share = _PassageShare(report, len(texts), len(chunk))
                emb = encoder.encode_document(texts, progress=share)
                share.finish()
                pids = store.insert(
                    [(doc_id, d.text, d.metadata, d.source, d.line) for doc_id, d in rows],
                    [[(p.index, p.count, p.start, p.end) for p in ps] for ps in parts],
                    store.next_pid(),
                    next_auto_id=auto_id,
                )
                _content.set_hashes(
                    store.conn, [(_content.content_hash(d.text, d.metadata), doc_id) for doc_id, d in rows]
                )
                ids_arr = np.asarray(pids, dtype=np.int64)
                if slot.vectors.needs_training:
                    held.append((emb, ids_arr))
                    held_rows += len(ids_arr)
                    del emb
                    if held_rows >= _vec.TRAIN_SAMPLE:
                        stage(f"building the index: training {slot.factory} on {held_rows:,} vectors")
                        self._train_and_add(slot, held)
                        held_rows = 0
                else:
                    adds.submit(slot.vectors, emb, ids_arr)
                    total += len(ids_arr)
                    del emb
                    if self._growth_due(m, slot, total - store.tombstone_count()):
                        adds.wait()
                        live = slot.vectors.ntotal - store.tombstone_count()
                        stage(f"building the index: moving {live:,} vectors to {choose_factory(live)}")
                        self._grow_if_due(m, slot, store)
                        total = slot.vectors.ntotal
                res.added += len(rows)
                res.passages += len(texts)
                res.ids.extend(doc_id for doc_id, _ in rows)
            adds.wait()
            if held:
                stage(f"building the index: training {slot.factory} on {held_rows:,} vectors")
                self._train_and_add(slot, held)
        except BaseException:
            adds.close(quiet=True)  # the error already propagating is the one to report
            raise
        adds.close()
        res.seconds = time.perf_counter() - t0
        if noop_if_unchanged and not (res.added or res.replaced):
            raise NothingChanged(res)
        stage("saving the index")
        return res

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
        return self._docs.get_documents([_scrub(str(i)) for i in ids])

    def missing_filter_keys(self, filter: Mapping[str, str]) -> tuple[list[str], list[str]]:  # noqa: A002
        """``(keys of filter that no document has, some field names that do exist)``: what to tell a
        user whose filtered search found nothing. Scans the documents, so call it only then."""
        self._open()
        assert self._docs is not None
        conn = self._docs.conn
        missing = [k for k in _normalize_filter(filter) if not _fields.has_field(conn, k)]
        return missing, (_fields.some_fields(conn) if missing else [])


# ----------------------------------------------------------------------------- helpers
def _prompts_of(encoder: Any) -> tuple[str | None, str | None]:
    """The encoder's (query, passage) prompts, as the manifest records them."""
    return getattr(encoder, "query_prompt", None), getattr(encoder, "passage_prompt", None)


def _training_sample(vectors: Any, drop: np.ndarray, size: int, batch: int) -> np.ndarray:
    """Up to ``size`` rows of ``vectors`` drawn at random (seed 0), leaving out ids in ``drop``, read in
    one pass of ``batch``-row slices."""
    n = vectors.ntotal
    take = np.sort(np.random.default_rng(0).permutation(n)[:size]) if n > size else None
    parts = []
    for start, (ids, vecs) in zip(range(0, n, batch), vectors.iter_rows(batch)):
        if take is not None:
            lo, hi = np.searchsorted(take, [start, start + len(ids)])
            ids, vecs = ids[take[lo:hi] - start], vecs[take[lo:hi] - start]
        if len(drop):
            keep = ~np.isin(ids, drop)
            vecs = vecs[keep]
        parts.append(vecs)
    return np.concatenate(parts) if parts else np.zeros((0, getattr(vectors, "dimension", 0)), np.float32)


def _size_class(factory: str) -> int:
    if factory.startswith("IVF") or ",IVF" in factory:
        return 2
    if "HNSW" in factory:
        return 1
    return 0


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


def _chunks(it: Iterable[Document], n: int) -> Iterator[list[Document]]:
    buf: list[Document] = []
    for x in it:
        buf.append(x)
        if len(buf) >= n:
            yield buf
            buf = []
    if buf:
        yield buf


def _as_documents(docs: Iterable[DocLike], res: AddResult) -> Iterator[Document]:
    if isinstance(docs, (str, bytes)):
        raise InputError("docs must be a list or iterable of documents, not a single string")
    for i, d in enumerate(docs):
        if isinstance(d, Document):
            doc = d
        elif isinstance(d, str):
            doc = Document(id=None, text=d, metadata={}, source="<python>", line=i + 1)
        elif isinstance(d, Mapping):
            if "text" not in d or not isinstance(d["text"], str):
                raise InputError(f"document #{i} has no string 'text' field (keys: {', '.join(map(str, d))})")
            meta = {str(k): v for k, v in d.items() if k not in ("text", "id")}
            doc_id = d.get("id")
            doc = Document(
                id=None if doc_id is None else str(doc_id),
                text=d["text"],
                metadata=meta,
                source="<python>",
                line=i + 1,
            )
        else:
            raise InputError(f"document #{i} is {type(d).__name__}; give str, dict with 'text', or Document")
        text = clean_document(doc.text)
        if not text:
            res.skipped_empty += 1
            continue
        if doc.id is not None and not str(doc.id).strip():
            raise InputError(f"document #{i} ({doc.source}:{doc.line}) has an empty id")
        doc_id, meta, source = _scrub(doc.id), _scrub(doc.metadata), _scrub(doc.source)
        try:
            json.dumps(meta, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"document #{i} ({doc.source}:{doc.line}): metadata is not JSON-serialisable ({exc})"
            ) from None
        if text != doc.text or (doc_id, meta, source) != (doc.id, doc.metadata, doc.source):
            doc = Document(id=doc_id, text=text, metadata=meta, source=source, line=doc.line)
        yield doc


_SURROGATES = re.compile("[\ud800-\udfff]")


def _scrub(value: Any) -> Any:
    """Make a value storable: lone surrogates (JSON ``"\\ud800"`` escapes, undecodable file names) are not
    UTF-8 and become U+FFFD; NaN and ±Infinity are not JSON (SQLite's JSON functions reject them) and
    become null."""
    if isinstance(value, str):
        return _SURROGATES.sub("\ufffd", value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {_scrub(str(k)): _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    return value


def _normalize_filter(filter: Mapping[str, str]) -> dict[str, str]:  # noqa: A002
    out = {}
    for key, value in filter.items():
        if not isinstance(key, str) or not key:
            raise InputError(f"filter key {key!r} must be a non-empty string")
        out[_scrub(key)] = _scrub(str(value))
    return out


__all__ = ["AddResult", "Hit", "PassageRef", "Retriever", "resolve_index_path"]
