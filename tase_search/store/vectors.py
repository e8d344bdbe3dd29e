"""Vector index backends behind one small Protocol, with a name registry.

``faiss`` is the real backend (any FAISS factory string, wrapped in ``IDMap2`` so vector ids
are passage ids); ``numpy`` is exact brute force, used as the reference in differential tests
and handy for tiny indexes. Vectors are unit-length, so inner product == cosine.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

from ..errors import IndexCorrupt, IndexWriteError, InputError
from . import gather as _gather
from .faiss_errors import faiss_message
from .faiss_guard import check_faiss_file
from .safeio import CHUNK, Digest, HashingReader, write_file

#: Corpus sizes (vectors) at which ``auto`` moves to the next index type.
FLAT_MAX = 50_000
HNSW_MAX = 5_000_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96
IVF_NPROBE = 32
#: Vectors an index that needs training (IVF, PQ, SQ) is trained on. A write holds back new vectors only
#: until it has this many (or its input ends), trains once, then adds every further vector straight in;
#: changing type trains on a random sample of this size. 256 per list for IVF1024, like FAISS's cap.
TRAIN_SAMPLE = 256 * 1024
#: Rows moved per step when an index changes type (reconstructed from the old one, added to the new one),
#: so a change of type never holds a second full copy of the vectors.
MOVE_BATCH = 65_536
#: The numpy backend reads its whole file into memory (it is the tests' reference, for small indexes).
MAX_NPZ_BYTES = 1 << 30

T = TypeVar("T")
_FACTORY_RE = re.compile(r"^[A-Za-z0-9_,.=x]+$")


def choose_factory(n_vectors: int) -> str:
    """Pick the index type for a corpus size: exact Flat, then HNSW, then IVF with 8-bit codes."""
    if n_vectors < FLAT_MAX:
        return "Flat"
    if n_vectors < HNSW_MAX:
        return f"HNSW{HNSW_M},Flat"
    nlist = 2 ** int(round(math.log2(4 * math.sqrt(n_vectors))))
    return f"IVF{nlist},SQ8"


def default_search_params(factory: str) -> str:
    params = []
    if "HNSW" in factory:
        params.append(f"efSearch={HNSW_EF_SEARCH}")
    if factory.startswith("IVF") or ",IVF" in factory:
        params.append(f"nprobe={IVF_NPROBE}")
    return ",".join(params)


@runtime_checkable
class VectorIndex(Protocol):
    """What the store needs from a vector index."""

    factory: str
    dimension: int

    @property
    def ntotal(self) -> int: ...

    @property
    def needs_training(self) -> bool: ...

    def train(self, vectors: np.ndarray) -> None: ...

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> bool:
        """Remove ids; False when this index type cannot remove (the store then keeps tombstones)."""
        ...

    def search(
        self, queries: np.ndarray, k: int, *, allow: np.ndarray | None = None, deny: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k inner products. ``allow``/``deny``: id arrays restricting the candidates. ids -1 = none."""
        ...

    def reconstruct_all(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything stored: used to change index type without re-embedding."""
        ...

    def iter_rows(self, batch: int = MOVE_BATCH) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of everything stored, ``batch`` rows at a time, in storage order."""
        ...

    def save(self, path: Path) -> Digest:
        """Write a new file at ``path``; its size and SHA-256, checked against the disk."""
        ...


# --------------------------------------------------------------------------- FAISS
class FaissIndex:
    """A FAISS index (``IDMap2`` around the factory string), inner-product metric."""

    suffix = ".faiss"

    def __init__(
        self, index: object, factory: str, dimension: int, search_params: str = "", *, read_only: bool = False
    ) -> None:
        self.index = index
        self.factory = factory
        self.dimension = dimension
        self.search_params = search_params or default_search_params(factory)
        self.read_only = read_only
        self._apply_params()

    def _check_writable(self, what: str) -> None:
        # a memory-mapped FAISS index aborts the whole process (a C++ assertion) when its storage is
        # resized, so writes on one must stop here with an error instead
        if self.read_only:
            raise IndexWriteError(
                f"cannot {what}: this vector index was opened read-only (memory-mapped) for searching; "
                "writes go through Retriever.add / delete, which open their own copy"
            )

    @classmethod
    def create(cls, factory: str, dimension: int, search_params: str = "") -> FaissIndex:
        import faiss

        validate_factory(factory)
        try:
            inner = faiss.index_factory(dimension, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise InputError(
                f"FAISS factory string {factory!r} was refused by FAISS: {_faiss_msg(exc)}. "
                "Examples: Flat, HNSW32,Flat, IVF1024,Flat, IVF1024,SQ8, OPQ16,IVF1024,PQ16"
            ) from exc
        if "HNSW" in factory:
            hnsw = _find_hnsw(inner)
            if hnsw is not None:
                hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return cls(faiss.IndexIDMap2(inner), factory, dimension, search_params)

    @classmethod
    def load(
        cls,
        path: Path,
        factory: str,
        dimension: int,
        search_params: str = "",
        *,
        mmap: bool = False,
        expect: Digest | None = None,
    ) -> FaissIndex:
        """Read an index file. ``mmap=True`` (searching only) maps the stored vectors instead of reading
        them: a cold open of a 1M-vector HNSW index drops from seconds to ~0.1 s, and processes that
        search the same index share its pages through the page cache. Safe because a generation's
        files never change once published (writers make a new generation). The result is read-only.

        The file's structure is checked first (:func:`check_faiss_file`), so damage is an error, never
        an allocation of whatever size the file claims. ``expect`` (what a write is about to carry
        over) reads the file through a hash, in the same pass, and refuses it unless it matches."""
        import faiss

        check_faiss_file(path, f"vector index {path}")
        try:
            if expect is not None:
                index = read_hashed(
                    path,
                    f"vector index {path}",
                    lambda reader: faiss.read_index(faiss.PyCallbackIOReader(reader.read, CHUNK)),
                    expect,
                )[0]
            elif mmap:
                try:
                    index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
                except RuntimeError:  # a type FAISS cannot map: read it the ordinary way
                    index = faiss.read_index(str(path))
            else:
                index = faiss.read_index(str(path))
        except (RuntimeError, MemoryError) as exc:
            raise IndexCorrupt(
                f"vector index {path} could not be read ({_faiss_msg(exc)}); the index is damaged"
            ) from exc
        if index.d != dimension:
            raise IndexCorrupt(f"vector index {path} has dimension {index.d}, manifest says {dimension}")
        return cls(index, factory, dimension, search_params, read_only=mmap)

    def _apply_params(self) -> None:
        import faiss

        if self.search_params:
            try:
                faiss.ParameterSpace().set_index_parameters(self.index, self.search_params)
            except RuntimeError as exc:
                raise InputError(
                    f"search parameters {self.search_params!r} do not apply to {self.factory}"
                ) from exc

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def needs_training(self) -> bool:
        return not self.index.is_trained

    def train(self, vectors: np.ndarray) -> None:
        self._check_writable("train")
        self.index.train(np.ascontiguousarray(vectors, dtype=np.float32))

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        self._check_writable("add vectors")
        if len(ids) == 0:
            return
        self.index.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64)
        )

    def remove(self, ids: np.ndarray) -> bool:
        import faiss

        self._check_writable("remove vectors")
        if len(ids) == 0:
            return True
        sel = faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))
        try:
            self.index.remove_ids(sel)
        except RuntimeError:
            return False
        return True

    def search(
        self, queries: np.ndarray, k: int, *, allow: np.ndarray | None = None, deny: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        q = check_queries(queries, self.dimension)
        k = max(1, min(k, max(self.ntotal, 1)))
        if allow is None and deny is None:
            scores, ids = self.index.search(q, k)
            return scores, ids
        if allow is not None and self._exact_storage() and len(allow) <= max(GATHER_MAX, self.ntotal // 20):
            found = self._gathered(q, k, np.asarray(allow, np.int64), deny)
            if found is not None:
                return found
        keep: list[object] = []
        sel: object | None = None
        if allow is not None:
            arr = np.ascontiguousarray(allow, dtype=np.int64)
            keep.append(arr)
            sel = faiss.IDSelectorBatch(arr)
            keep.append(sel)
        if deny is not None and len(deny):
            arr = np.ascontiguousarray(deny, dtype=np.int64)
            keep.append(arr)
            dsel = faiss.IDSelectorBatch(arr)
            keep.append(dsel)
            notsel = faiss.IDSelectorNot(dsel)
            keep.append(notsel)
            if sel is None:
                sel = notsel
            else:
                both = faiss.IDSelectorAnd(sel, notsel)
                keep.append(both)
                sel = both
        params = self._params_with(sel)
        scores, ids = self.index.search(q, k, params=params)
        del keep
        return scores, ids

    def _exact_storage(self) -> bool:
        return self.factory == "Flat" or self.factory.endswith(",Flat")

    def _gathered(
        self, q: np.ndarray, k: int, allow: np.ndarray, deny: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """A selective filter on vectors stored as they are: the allowed rows scored where they are stored
        (exact), instead of a scan of every row through an id selector. None when an allowed id is not
        stored here (the selector path then answers)."""
        ids = allow if _gather.strictly_increasing(allow) else np.unique(allow)
        if deny is not None and len(deny):
            ids = np.setdiff1d(ids, np.asarray(deny, np.int64), assume_unique=True)
        out_s = np.full((len(q), k), -np.inf, np.float32)
        out_i = np.full((len(q), k), -1, np.int64)
        if not len(ids):
            return out_s, out_i
        view = self._flat_view()
        if view is None:
            return None
        scores = _gather.BLOCKS.scores(self, view, q, ids)
        if scores is None:
            return None  # an id this index does not hold
        n = min(k, len(ids))
        top = (
            np.argpartition(-scores, n - 1, axis=1)[:, :n]
            if n < len(ids)
            else np.tile(np.arange(len(ids)), (len(q), 1))
        )
        part = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-part, axis=1, kind="stable")
        out_s[:, :n] = np.take_along_axis(part, order, axis=1)
        out_i[:, :n] = ids[np.take_along_axis(top, order, axis=1)]
        return out_s, out_i

    def _flat_view(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(stored ids sorted, their storage rows, the stored vectors without a copy) of a flat index, kept
        while the row count is unchanged; None for other types."""
        import faiss

        cached = getattr(self, "_view", None)
        if cached is not None and cached[0] == self.ntotal:
            return cached[1]
        inner = faiss.downcast_index(self.index.index)
        if not isinstance(inner, faiss.IndexFlat) or not hasattr(self.index, "id_map"):
            return None
        n = int(inner.ntotal)
        xb = faiss.rev_swig_ptr(inner.get_xb(), n * self.dimension).reshape(n, self.dimension)
        ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        order = np.argsort(ids, kind="stable")
        view = (ids[order], order, xb)
        self._view = (self.ntotal, view)
        return view

    def _params_with(self, sel: object | None) -> object:
        import faiss

        inner = faiss.downcast_index(self.index.index)
        kwargs = dict(p.split("=") for p in self.search_params.split(",") if p)
        if "HNSW" in self.factory and isinstance(inner, faiss.IndexHNSW):
            params = faiss.SearchParametersHNSW()
            params.efSearch = int(kwargs.get("efSearch", HNSW_EF_SEARCH))
        elif hasattr(faiss, "IndexIVF") and isinstance(_ivf_of(inner), faiss.IndexIVF):
            params = faiss.SearchParametersIVF()
            params.nprobe = int(kwargs.get("nprobe", IVF_NPROBE))
        else:
            params = faiss.SearchParameters()
        params.sel = sel
        return params

    def reconstruct_all(self) -> tuple[np.ndarray, np.ndarray]:
        parts = list(self.iter_rows())
        if not parts:
            return np.zeros(0, np.int64), np.zeros((0, self.dimension), np.float32)
        return np.concatenate([i for i, _ in parts]), np.concatenate([v for _, v in parts])

    def iter_rows(self, batch: int = MOVE_BATCH) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        import faiss

        ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        inner = faiss.downcast_index(self.index.index)
        ivf = _ivf_of(inner)
        if ivf is not None:
            ivf.make_direct_map()
        n = int(inner.ntotal)
        for start in range(0, n, max(1, batch)):
            stop = min(n, start + batch)
            yield ids[start:stop], np.asarray(inner.reconstruct_n(start, stop - start), dtype=np.float32)

    def save(self, path: Path) -> Digest:
        """Through :class:`CheckedWriter`, not FAISS's own file writer: that one reports a failed close
        (a full disk) only on stderr, and its file may be short."""
        import faiss

        return write_file(
            path, lambda w: faiss.write_index(self.index, faiss.PyCallbackIOWriter(w.write, CHUNK))
        )


def _find_hnsw(index: object) -> object | None:
    import faiss

    idx = faiss.downcast_index(index)
    return getattr(idx, "hnsw", None)


def _ivf_of(index: object) -> object | None:
    import faiss

    try:
        return faiss.extract_index_ivf(index)
    except (RuntimeError, AttributeError):
        return None


def _faiss_msg(exc: Exception) -> str:
    return faiss_message(exc)


def check_factory(factory: str | None, backend: str) -> None:
    """Refuse an unknown backend or a malformed FAISS factory string before anything is loaded."""
    if factory:
        get_backend(backend)
        if backend == "faiss":
            validate_factory(factory)


def validate_factory(factory: str) -> None:
    if not factory or not _FACTORY_RE.match(factory):
        raise InputError(
            f"FAISS factory string {factory!r} is not valid; examples: Flat, HNSW32,Flat, IVF1024,SQ8"
        )
    if factory.startswith("IDMap"):
        raise InputError("leave out IDMap/IDMap2 from the factory string: tase-search adds it")


# --------------------------------------------------------------------------- NumPy
class NumpyIndex:
    """Exact brute-force search in NumPy: the reference implementation for differential tests."""

    suffix = ".npz"

    def __init__(
        self, dimension: int, ids: np.ndarray | None = None, vectors: np.ndarray | None = None
    ) -> None:
        self.factory = "numpy"
        self.dimension = dimension
        self.ids = np.zeros(0, np.int64) if ids is None else ids.astype(np.int64)
        self.vectors = np.zeros((0, dimension), np.float32) if vectors is None else vectors.astype(np.float32)

    @classmethod
    def create(cls, factory: str, dimension: int, search_params: str = "") -> NumpyIndex:
        return cls(dimension)

    @classmethod
    def load(
        cls,
        path: Path,
        factory: str,
        dimension: int,
        search_params: str = "",
        *,
        mmap: bool = False,
        expect: Digest | None = None,
    ) -> NumpyIndex:
        """``mmap`` is accepted for the common signature; the arrays are read (this backend is for tests).
        ``expect``: as for :meth:`FaissIndex.load`."""
        import io

        def read_capped(reader: HashingReader) -> bytes:
            parts: list[bytes] = []
            while (chunk := reader.read(CHUNK)) and reader.bytes <= MAX_NPZ_BYTES:
                parts.append(chunk)
            return b"".join(parts)

        raw, got = read_hashed(path, f"vector file {path}", read_capped, expect)
        if got.bytes > MAX_NPZ_BYTES:
            raise IndexCorrupt(
                f"vector file {path} is over {MAX_NPZ_BYTES} bytes; the numpy backend is for small indexes"
            )
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as data:
                ids, vectors = data["ids"], data["vectors"]
        except (OSError, ValueError, KeyError, EOFError, MemoryError) as exc:
            raise IndexCorrupt(f"vector file {path} could not be read ({exc}); the index is damaged") from exc
        if ids.ndim != 1 or vectors.shape != (len(ids), dimension):
            raise IndexCorrupt(f"vector file {path} holds arrays of the wrong shape; the index is damaged")
        return cls(dimension, ids, vectors)

    @property
    def ntotal(self) -> int:
        return int(len(self.ids))

    @property
    def needs_training(self) -> bool:
        return False

    def train(self, vectors: np.ndarray) -> None:
        return None

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        self.vectors = np.concatenate([self.vectors, np.asarray(vectors, np.float32)])
        self.ids = np.concatenate([self.ids, np.asarray(ids, np.int64)])

    def remove(self, ids: np.ndarray) -> bool:
        keep = ~np.isin(self.ids, ids)
        self.ids, self.vectors = self.ids[keep], self.vectors[keep]
        return True

    def search(
        self, queries: np.ndarray, k: int, *, allow: np.ndarray | None = None, deny: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        q = check_queries(queries, self.dimension)
        mask = np.ones(len(self.ids), bool)
        if allow is not None:
            mask &= np.isin(self.ids, allow)
        if deny is not None:
            mask &= ~np.isin(self.ids, deny)
        ids, vecs = self.ids[mask], self.vectors[mask]
        k = max(1, k)
        scores = q @ vecs.T if len(ids) else np.zeros((len(q), 0), np.float32)
        out_s = np.full((len(q), k), -np.inf, np.float32)
        out_i = np.full((len(q), k), -1, np.int64)
        n = min(k, len(ids))
        if n:
            top = np.argsort(-scores, axis=1, kind="stable")[:, :n]
            out_s[:, :n] = np.take_along_axis(scores, top, axis=1)
            out_i[:, :n] = ids[top]
        return out_s, out_i

    def reconstruct_all(self) -> tuple[np.ndarray, np.ndarray]:
        return self.ids.copy(), self.vectors.copy()

    def iter_rows(self, batch: int = MOVE_BATCH) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(self.ids), max(1, batch)):
            yield self.ids[start : start + batch].copy(), self.vectors[start : start + batch].copy()

    def save(self, path: Path) -> Digest:
        import io

        buf = io.BytesIO()
        np.savez(buf, ids=self.ids, vectors=self.vectors)
        return write_file(path, lambda w: w.write(buf.getbuffer()))


def read_hashed(
    path: Path, what: str, consume: Callable[[HashingReader], T], expect: Digest | None
) -> tuple[T, Digest]:
    """What ``consume`` makes of the file, read through a hash (no link followed), and the file's digest.
    With ``expect``, a file of another size or checksum is refused (IndexCorrupt): a write carrying a
    file over checks it in the same pass as the load."""
    reader = HashingReader(path, what)
    try:
        out = consume(reader)
        got = reader.finish()
    finally:
        reader.close()
    if expect is not None and got != expect:
        raise IndexCorrupt(
            f"{what} does not match its size and checksum in the manifest; the index is damaged"
        )
    return out, got


BACKENDS: dict[str, type] = {"faiss": FaissIndex, "numpy": NumpyIndex}


#: A filter allowing at most this many rows (or a twentieth of the index) is searched by gathering its
#: rows (:meth:`FaissIndex._gathered`); more are scanned through an id selector.
GATHER_MAX = 50_000


def check_queries(queries: np.ndarray, dimension: int) -> np.ndarray:
    """Query vectors as a C-contiguous float32 matrix of the index's width; InputError otherwise (a
    vector of another width would trip an assertion deep in FAISS)."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if q.ndim != 2 or q.shape[1] != dimension:
        raise InputError(
            f"query vectors of shape {q.shape} cannot search this index: it holds {dimension}-dimensional "
            f"vectors (give one row of {dimension} numbers per query, from the index's model)"
        )
    return q


def get_backend(name: str) -> type:
    try:
        return BACKENDS[name]
    except KeyError:
        raise InputError(
            f"vector backend {name!r} is unknown; choose one of {', '.join(sorted(BACKENDS))}"
        ) from None
