"""A cold query's quick way to a graph of the user's graph store: a stamp per verified graph and the graph
already optimised by ONNX Runtime.

Why: of a ~0.7 s cold query, reading and hashing the 39 MB int8 graph cost ~0.05 s and ONNX Runtime's
graph optimisation while creating the session ~0.07 s (it is the same work every time). The store
(:mod:`.graph_store`) is the user's own folder, written only by this user's tase-search and trusted like
the model files the graph was made from, so the write path, which has the graph's bytes in hand and
checked, records next to ``<key>.onnx``:

* ``<key>.stamp.json``: the graph's SHA-256 and size, and its identity on disk (device, inode, size,
  modification and change time, :func:`tase_search.store.stamps.identity`; an edit, copy, replacement
  or ``touch`` changes the change time, which no user can set back);
* ``<key>.ort-<version>.onnx``: the graph as ONNX Runtime ``<version>`` optimises it (extended level:
  fusions of its own CPU kernels, no hardware-specific layouts), checked to give the source graph's
  vectors, with its own SHA-256, size and identity in the stamp.

A query (:func:`load`) asks for the graph by the SHA-256 its bundle records. The stamp vouches only for
that SHA-256 and only while the source graph's identity is the recorded one; then the optimised form
runs when it is unchanged too (or hashes to the stamp's value), else the source graph, unhashed. A
stamp that does not vouch leaves the source graph to be read and hashed as before (refused when the hash
differs).
Nothing here is used for a graph an index carries in its own folder (untrusted input: always hashed),
and a query writes nothing: a missing or stale stamp costs the hash, and the next write renews it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexError_
from ..store import safeio
from ..store.stamps import identity
from .agreement import MIN_BUNDLE_COSINE

log = logging.getLogger(__name__)

STAMP_SUFFIX = ".stamp.json"
_STAMP_FORMAT = 1
_MAX_STAMP_BYTES = 64 << 10


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _stem(name: str) -> str:
    return name.removesuffix(".onnx")


def stamp_name(name: str) -> str:
    return _stem(name) + STAMP_SUFFIX


def optimized_name(name: str, ort_version: str) -> str:
    return f"{_stem(name)}.ort-{ort_version}.onnx"


def _ort_version() -> str:
    from .onnx_runtime import import_onnxruntime

    return str(import_onnxruntime().__version__)


def _read_stamp(root: Path, name: str) -> dict[str, Any] | None:
    try:
        raw = safeio.read_bytes(root / stamp_name(name), "graph stamp", _MAX_STAMP_BYTES)
        stamp = json.loads(raw)
    except (OSError, IndexError_, ValueError, RecursionError):
        return None
    return stamp if isinstance(stamp, dict) and stamp.get("format") == _STAMP_FORMAT else None


def read_whole(path: Path, what: str, limit: int) -> tuple[bytes, list[int], bool]:
    """A regular file's bytes (``O_NOFOLLOW``, at most ``limit``), its identity when opened, and whether
    it stayed the same while read. One read call where the kernel allows: no chunk list to join (a
    copy of the 39 MB graph). ValueError when it is over ``limit``."""
    fd = safeio.open_regular(path, what)
    try:
        st = os.fstat(fd)
        if st.st_size > limit:
            raise ValueError(f"{what} is {st.st_size} bytes, over the {limit}-byte limit")
        parts = [os.read(fd, st.st_size + 1)]
        while parts[-1] and sum(map(len, parts)) <= limit:
            parts.append(os.read(fd, safeio.CHUNK))
        data = parts[0] if len(parts) <= 2 and not parts[-1] else b"".join(parts)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ValueError(f"{what} grew past the {limit}-byte limit while it was read")
    before_id = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    after_id = [after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns, after.st_ctime_ns]
    return data, before_id, before_id == after_id and len(data) == st.st_size


def _verified(path: Path, entry: object, limit: int) -> bytes | None:
    """The bytes of ``path`` if they are the ones ``entry`` (a stamp's ``{sha256, bytes, identity}``)
    recorded: trusted unhashed when the file's identity is the recorded one, else hashed."""
    if not isinstance(entry, dict):
        return None
    try:
        data, ident, steady = read_whole(path, "query graph", limit)
    except (OSError, IndexError_, ValueError):
        return None
    if len(data) != entry.get("bytes"):
        return None
    if steady and ident == entry.get("identity"):
        return data
    return data if _hash(data) == entry.get("sha256") else None


def load(root: Path, name: str, *, digest: str, size: int, limit: int) -> tuple[bytes, bool] | None:
    """``(bytes, optimized)`` of the store's graph ``name`` that hashes to ``digest`` (its optimised form
    when the stamp has one for this ONNX Runtime), or None when the stamp cannot vouch for it (the
    caller then reads and hashes the graph itself)."""
    stamp = _read_stamp(root, name)
    if stamp is None or stamp.get("sha256") != digest or stamp.get("bytes") != size:
        return None
    try:
        source_unchanged = identity(root / name) == stamp.get("identity")
    except OSError:
        return None
    opt = stamp.get("optimized")
    # the optimised form only while its source is unchanged: a damaged source is then refused, and the
    # next write replaces it, instead of staying unnoticed behind its optimised copy
    if source_unchanged and isinstance(opt, dict) and opt.get("ort") == _ort_version():
        data = _verified(root / optimized_name(name, opt["ort"]), opt, limit)
        if data is not None:
            return data, True
    data = _verified(root / name, stamp, limit)
    return None if data is None else (data, False)


def ensure(root: Path, name: str, digest: str, data: bytes | None = None) -> None:
    """After the write path put or found the store's graph ``name`` (checked against the model; its bytes
    ``data`` when in hand, else read and hashed here): renew its stamp and optimised form unless they are
    current. Failures are only logged: the stamp is a cache, and queries without it hash the graph."""
    version = _ort_version()
    if _current(root, name, _read_stamp(root, name), digest, version):
        return
    try:
        if data is None:
            data = read_whole(root / name, "query graph", 4 << 30)[0]
        if _hash(data) != digest:
            return
        source = _entry(root / name, digest, len(data))
        if source is None:  # the file is not (or no longer) these bytes
            return
        optimized = _derive(root, name, data, version) or {"ort": version}  # none: optimised at load
        stamp = {"format": _STAMP_FORMAT, **source, "optimized": optimized}
        safeio.replace_bytes(root / stamp_name(name), json.dumps(stamp, sort_keys=True).encode())
        for old in root.glob(f"{_stem(name)}.ort-*.onnx"):  # forms for another ONNX Runtime
            if old.name != optimized_name(name, version):
                old.unlink(missing_ok=True)
    except (OSError, IndexError_, ValueError) as exc:
        log.warning("query graph %s: no stamp written in %s (%s)", name, root, exc)


def _current(root: Path, name: str, stamp: dict[str, Any] | None, digest: str, version: str) -> bool:
    """Whether ``stamp`` is for ``digest``, the files it names are unchanged, and its optimised form is
    this ONNX Runtime's (or this version could not make one: not tried again on every write)."""
    if stamp is None or stamp.get("sha256") != digest:
        return False
    opt = stamp.get("optimized")
    try:
        if stamp.get("identity") != identity(root / name) or not isinstance(opt, dict):
            return False
        if opt.get("ort") != version:
            return False
        return "identity" not in opt or opt["identity"] == identity(root / optimized_name(name, version))
    except OSError:
        return False


def _entry(path: Path, digest: str, size: int) -> dict[str, Any] | None:
    """``{sha256, bytes, identity}`` of ``path`` if it holds bytes hashing to ``digest`` (read now, so
    the identity recorded is that of the bytes checked)."""
    data, ident, steady = read_whole(path, "query graph", size)
    if not steady or _hash(data) != digest:
        return None
    return {"sha256": digest, "bytes": size, "identity": ident}


def _derive(root: Path, name: str, data: bytes, version: str) -> dict[str, Any] | None:
    """Save ``data`` as ONNX Runtime optimises it, checked against ``data`` on probe inputs; its stamp
    entry, or None when it could not be made or disagrees (queries then optimise at load)."""
    from .onnx_runtime import OnnxQueryEncoder, import_onnxruntime

    ort = import_onnxruntime()
    target = root / optimized_name(name, version)
    tmp = root / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        opts.optimized_model_filepath = str(tmp)
        ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        made, _, _ = read_whole(tmp, "optimised query graph", 4 * len(data) + (64 << 20))
        if not _agree(OnnxQueryEncoder(data), OnnxQueryEncoder(made, optimized=True)):
            log.warning("query graph %s: ONNX Runtime's optimised form disagrees; not kept", name)
            return None
        os.replace(tmp, target)
        entry = _entry(target, _hash(made), len(made))
        return None if entry is None else {**entry, "ort": version}
    except Exception as exc:  # noqa: BLE001 - an optimisation ONNX Runtime cannot save: load-time optimising
        log.warning("query graph %s: no optimised form saved (%s)", name, exc)
        return None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _agree(source: Any, optimized: Any) -> bool:
    """Whether both runners give the same vectors (cosine ≥ the bundle's own bar) on token-id inputs of
    a short and a longer query, alone and batched."""
    rng = np.random.default_rng(0)
    for shape in ((1, 5), (1, 40), (3, 17)):
        ids = rng.integers(5, 100, size=shape, dtype=np.int64)
        feats = {"input_ids": ids, "attention_mask": np.ones(shape, np.int64), "token_type_ids": 0 * ids}
        a, b = source(feats), optimized(feats)
        if a.shape != b.shape:
            return False
        cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
        if not float(cos.min()) >= MIN_BUNDLE_COSINE:
            return False
    return True
