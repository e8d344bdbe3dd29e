"""Check a FAISS index file's structure before FAISS reads it.

Why: FAISS sizes its buffers from counts stored in the file and allocates before it reads, so a
damaged or crafted file (an IVF with ``nlist`` 10^9, a vector claiming 2^39 entries) ends in
``std::bad_alloc`` or the OOM killer instead of an error. :func:`check_faiss_file` walks the
layout of the index types tase-search builds (IDMap2 around Flat, HNSW, IVF, SQ, PQ and
pre-transforms, as written by ``faiss/impl/index_write.cpp``), reading only headers and
seeking over data, and refuses any count the file's remaining bytes cannot hold. It costs a
few small reads. A type it does not know is left to FAISS (whose allocation failure the loader
still turns into an error).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from ..errors import IndexCorrupt
from .safeio import open_regular

#: Largest inverted-list count accepted when the coarse quantizer holds no centroids yet (an untrained
#: IVF): a trained IVF must have exactly one centroid per list.
MAX_UNTRAINED_NLIST = 1 << 20
MAX_DIM = 65_536
MAX_DEPTH = 8


class _Bad(Exception):
    """The file cannot be a valid index: a count beyond the file, an impossible value."""


class _Unknown(Exception):
    """A structure this checker does not model; FAISS is left to read it."""


class _Reader:
    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size, self.pos = fd, size, 0

    def left(self) -> int:
        return self.size - self.pos

    def take(self, n: int) -> bytes:
        if n > self.left():
            raise _Bad(f"{n} bytes needed at offset {self.pos}, the file ends {self.left()} bytes later")
        out = os.pread(self.fd, n, self.pos)
        if len(out) != n:
            raise _Bad(f"short read at offset {self.pos}")
        self.pos += n
        return out

    def skip(self, n: int) -> None:
        if n > self.left():
            raise _Bad(f"{n} bytes claimed at offset {self.pos}, the file ends {self.left()} bytes later")
        self.pos += n

    def unpack(self, fmt: str) -> int | float:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0]

    def fourcc(self) -> str:
        return self.take(4).decode("latin-1")

    def vector(self, item: int, what: str) -> int:
        """A FAISS vector (u64 count, then the items): checks and skips it, returns the count."""
        n = int(self.unpack("Q"))
        if n * item > self.left():
            raise _Bad(f"{what} claims {n} entries, more than the rest of the file holds")
        self.skip(n * item)
        return n

    def array(self, item: str, what: str) -> np.ndarray:
        n = int(self.unpack("Q"))
        size = np.dtype(item).itemsize
        if n * size > self.left():
            raise _Bad(f"{what} claims {n} entries, more than the rest of the file holds")
        return np.frombuffer(self.take(n * size), dtype="<" + item)


def check_faiss_file(path: Path, what: str) -> None:
    """Raise :class:`IndexCorrupt` when ``path`` cannot be a FAISS index file; return when it is
    plausible (every count fits the file) or of a type not modelled here."""
    fd = open_regular(path, what)
    try:
        r = _Reader(fd, os.fstat(fd).st_size)
        try:
            _index(r, 0)
        except _Unknown:
            return
        except (_Bad, struct.error) as exc:
            raise IndexCorrupt(f"{what} is not a valid vector index ({exc}); the index is damaged") from None
        if r.left():
            raise IndexCorrupt(
                f"{what} has {r.left()} bytes after the vector index ends; the index is damaged"
            )
    finally:
        os.close(fd)


def _header(r: _Reader) -> tuple[int, int, bool]:
    d = int(r.unpack("i"))
    ntotal = int(r.unpack("q"))
    r.skip(16)  # two unused int64 fields
    trained = bool(r.unpack("B"))
    metric = int(r.unpack("i"))
    if metric > 1:
        r.skip(4)  # metric_arg
    if not 0 <= d <= MAX_DIM or ntotal < 0:
        raise _Bad(f"dimension {d} / {ntotal} vectors is impossible")
    return d, ntotal, trained


def _index(r: _Reader, depth: int) -> int:
    """Walk one index; returns its vector count."""
    if depth > MAX_DEPTH:
        raise _Bad("indexes nested too deeply")
    h = r.fourcc()
    if h == "null":
        return 0
    if h in ("IxFI", "IxF2", "IxFl"):
        d, ntotal, _ = _header(r)
        n = r.vector(4, "flat codes")  # counted in 4-byte units
        if n != ntotal * d:
            raise _Bad(f"flat index holds {n} floats for {ntotal} vectors of dimension {d}")
        return ntotal
    if h in ("IxM2", "IxMp"):
        _, ntotal, _ = _header(r)
        inner = _index(r, depth + 1)
        if r.vector(8, "id map") != ntotal or inner != ntotal:
            raise _Bad(f"id map does not match its {ntotal} vectors")
        return ntotal
    if h in ("IHNf", "IHNs", "IHNp", "IHN2"):
        _, ntotal, _ = _header(r)
        r.vector(8, "HNSW level probabilities")
        r.vector(4, "HNSW neighbours per level")
        r.vector(4, "HNSW levels")
        r.vector(8, "HNSW offsets")
        r.vector(4, "HNSW neighbours")
        r.skip(20)  # entry_point, max_level, efConstruction, efSearch, an unused int
        _index(r, depth + 1)  # the storage
        return ntotal
    if h in ("IwFl", "IwSq", "IwSQ", "IwPQ"):
        ntotal, nlist = _ivf_header(r, depth)
        if h == "IwSq" or h == "IwSQ":
            _scalar_quantizer(r)
            code_size = int(r.unpack("Q"))
            if h == "IwSq":
                r.skip(1)  # by_residual
        elif h == "IwPQ":
            r.skip(1)  # by_residual
            code_size = int(r.unpack("Q"))
            _product_quantizer(r)
        else:
            code_size = -1
        _inverted_lists(r, nlist, code_size, ntotal)
        return ntotal
    if h == "IxSQ":
        _, ntotal, _ = _header(r)
        _scalar_quantizer(r)
        r.vector(1, "scalar-quantizer codes")
        return ntotal
    if h in ("IxPq", "IxPQ", "IxPo"):
        _, ntotal, _ = _header(r)
        _product_quantizer(r)
        r.vector(1, "PQ codes")
        if h != "IxPQ":
            r.skip(9)  # search_type, encode_signs, polysemous_ht
        return ntotal
    if h == "IxPT":
        _, ntotal, _ = _header(r)
        nt = int(r.unpack("i"))
        if not 0 <= nt <= 16:
            raise _Bad(f"{nt} vector transforms")
        for _ in range(nt):
            _vector_transform(r)
        _index(r, depth + 1)
        return ntotal
    raise _Unknown(h)


def _ivf_header(r: _Reader, depth: int) -> tuple[int, int]:
    _, ntotal, trained = _header(r)
    nlist = int(r.unpack("Q"))
    r.skip(8)  # nprobe
    centroids = _index(r, depth + 1)
    if nlist < 1 or (nlist != centroids and (trained or centroids or nlist > MAX_UNTRAINED_NLIST)):
        raise _Bad(f"IVF with {nlist} lists but {centroids} centroids")
    kind = int(r.unpack("B"))
    r.vector(8, "IVF direct map")
    if kind == 2:
        r.vector(16, "IVF direct-map hash table")
    return ntotal, nlist


def _inverted_lists(r: _Reader, nlist: int, code_size: int, ntotal: int) -> None:
    h = r.fourcc()
    if h == "il00":
        return
    if h != "ilar":
        raise _Unknown(h)
    n2 = int(r.unpack("Q"))
    cs = int(r.unpack("Q"))
    if n2 != nlist or not 0 < cs <= 4 * MAX_DIM or (code_size >= 0 and cs != code_size):
        raise _Bad(f"inverted lists ({n2} lists, code size {cs}) do not match the IVF header")
    kind = r.fourcc()
    if kind == "full":
        sizes = r.array("Q", "inverted list sizes")
        if len(sizes) != nlist:
            raise _Bad(f"{len(sizes)} list sizes for {nlist} lists")
    elif kind == "sprs":
        pairs = r.array("Q", "inverted list sizes")
        if len(pairs) % 2 or (len(pairs) and int(pairs[0::2].max()) >= nlist):
            raise _Bad("sparse list sizes name lists that do not exist")
        sizes = pairs[1::2]
    else:
        raise _Bad(f"inverted list size format {kind!r}")
    total = sum(sizes.tolist())  # Python ints: a crafted size cannot wrap around
    if total * (cs + 8) > r.left():
        raise _Bad(f"inverted lists claim {total} entries, more than the rest of the file holds")
    if total != ntotal:
        raise _Bad(f"inverted lists hold {total} entries, the index header says {ntotal}")
    r.skip(total * (cs + 8))


def _scalar_quantizer(r: _Reader) -> None:
    r.skip(12)  # qtype, rangestat, rangestat_arg
    d = int(r.unpack("Q"))
    code_size = int(r.unpack("Q"))
    if not 0 < d <= MAX_DIM or not 0 < code_size <= 4 * MAX_DIM:
        raise _Bad(f"scalar quantizer of dimension {d}, code size {code_size}")
    r.vector(4, "scalar-quantizer ranges")


def _product_quantizer(r: _Reader) -> None:
    d, m, nbits = (int(r.unpack("Q")) for _ in range(3))
    if not (0 < m <= d <= MAX_DIM and d % m == 0 and 0 < nbits <= 16):
        raise _Bad(f"product quantizer d={d} M={m} nbits={nbits}")
    if r.vector(4, "PQ centroids") != d << nbits:
        raise _Bad("PQ centroid table does not match d and nbits")


def _vector_transform(r: _Reader) -> None:
    h = r.fourcc()
    if h in ("rrot", "LTra"):
        r.skip(1)  # have_bias
        r.vector(4, "transform matrix")
        r.vector(4, "transform bias")
    elif h == "RmDT":
        r.vector(4, "dimension map")
    elif h == "VNrm":
        r.skip(4)
    elif h == "VCnt":
        r.vector(4, "centring mean")
    else:
        raise _Unknown(h)
    d_in, d_out = int(r.unpack("i")), int(r.unpack("i"))
    r.skip(1)  # is_trained
    if not (0 < d_in <= MAX_DIM and 0 < d_out <= MAX_DIM):
        raise _Bad(f"vector transform {d_in} -> {d_out}")
