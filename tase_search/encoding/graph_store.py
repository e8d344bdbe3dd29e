"""Query graphs kept once per model in the user's data folder, not copied into every index.

Why: the exported fp32 graph of the shipped encoder is ~150 MB, so a four-document index weighed
149 MB. The graph is quantised (:func:`quantize`: int8 weights, per output channel, for the matrix
multiplies and the embedding table: ~39 MB, 2-3x faster per query) and stored under
``<user data>/tase-search/query-graphs/`` (``TASE_SEARCH_QUERY_GRAPHS`` moves it) by the name its
bundle gives it. An index's ``bundle.json`` records the graph's name, size and SHA-256; a query reads
the graph from the index's own bundle folder when it carries one (an index made portable with
:func:`make_portable` / ``tase-search export --portable``) and from the store otherwise, and uses it
only when the bytes hash to the recorded value (for a graph of the store, a stamp the write path
recorded can vouch for that instead, and hand over the graph already optimised: :mod:`.graph_cache`).
An index copied without its graph still answers (from the model), and its next write puts the graph in
that machine's store.

Reads are bounded reads of regular files, never through a link (:func:`tase_search.store.safeio.read_bytes`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from ..errors import IndexError_, ModelError
from ..store import safeio

STORE_ENV = "TASE_SEARCH_QUERY_GRAPHS"
#: Largest graph read (an fp32 graph of a small encoder is ~150 MB).
MAX_GRAPH_BYTES = 2 << 30


def store_dir() -> Path:
    """``$TASE_SEARCH_QUERY_GRAPHS``, else ``query-graphs`` in the platform's user data folder."""
    env = os.environ.get(STORE_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_path

    return user_data_path("tase-search", appauthor=False) / "query-graphs"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_graph(folder: Path, name: str, *, digest: str, size: int) -> bytes:
    """The graph ``name`` from the index's bundle ``folder`` if it holds one, else from the store; its
    bytes must be ``size`` long and hash to ``digest``. ValueError naming the problem (FileNotFoundError
    when neither place has it)."""
    own = folder / name
    path = own if os.path.lexists(own) else store_dir() / name
    if size > MAX_GRAPH_BYTES:
        raise ValueError(f"its graph is {size} bytes, over the {MAX_GRAPH_BYTES}-byte limit")
    try:
        data = safeio.read_bytes(path, f"query graph {name}", size)
    except IndexError_ as exc:
        raise ValueError(str(exc).split(";")[0]) from None
    if len(data) != size or sha256(data) != digest:
        raise ValueError(f"the query graph {name} is not the one its bundle names (size or SHA-256 differ)")
    return data


def read_for_query(folder: Path, name: str, *, digest: str, size: int) -> tuple[bytes, bool]:
    """``(bytes, optimized)`` of the graph a query runs: as :func:`read_graph`, but a graph of the store
    comes through its stamp when that vouches for it (:mod:`.graph_cache`: unhashed when unchanged since
    the write path checked it, and already optimised by ONNX Runtime). A graph in the index's own folder
    is always hashed."""
    if not os.path.lexists(folder / name) and size <= MAX_GRAPH_BYTES:
        from . import graph_cache

        got = graph_cache.load(store_dir(), name, digest=digest, size=size, limit=MAX_GRAPH_BYTES)
        if got is not None:
            return got
    return read_graph(folder, name, digest=digest, size=size), False


def read_stored(name: str) -> bytes | None:
    """A graph of the store by name (None when it has none, or an unreadable one): the write path
    reuses it after checking it against the model."""
    try:
        return safeio.read_bytes(store_dir() / name, f"query graph {name}", MAX_GRAPH_BYTES)
    except (OSError, IndexError_):
        return None


def put(name: str, data: bytes) -> Path:
    """Store ``data`` as ``name`` (replacing a different file of that name): written to a temporary
    name, synced and renamed, so a reader sees the old graph or the new one; its stamp and optimised
    form renewed (:func:`.graph_cache.ensure`)."""
    root = store_dir()
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    if read_stored(name) != data:
        safeio.replace_bytes(path, data)
    from . import graph_cache

    graph_cache.ensure(root, name, sha256(data), data)
    return path


def quantize(fp32: bytes) -> bytes:
    """``fp32`` (an exported graph) with int8 weights: ONNX Runtime's dynamic quantisation, per output
    channel, of the matrix multiplies and the embedding table. On the shipped model and 500 dev
    sentences: cosine to fp32 0.992 mean (0.979 lowest), Tatoeba tr->en 0.971 vs 0.973, TQuAD MRR@10
    0.762 vs 0.759, ~39 MB instead of ~150 MB."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # its preprocessing hint
    root = store_dir()
    root.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix=".quantize-", dir=root) as tmp:
            src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
            src.write_bytes(fp32)
            quantize_dynamic(
                src,
                dst,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul", "Gather"],
                per_channel=True,
            )
            return dst.read_bytes()
    except OSError as exc:
        raise ModelError(f"could not quantise the query graph in {root}: {exc}") from exc


def make_portable(folder: Path, name: str, *, digest: str, size: int) -> Path:
    """Copy the graph from the store into the index's bundle ``folder``, so the index carries its fast
    path to machines without the store. ModelError when the store does not hold it."""
    target = folder / name
    if os.path.lexists(target):
        read_graph(folder, name, digest=digest, size=size)  # already portable, and intact
        return target
    try:
        data = read_graph(folder, name, digest=digest, size=size)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"the query graph {name} is not in this machine's store ({store_dir()}): {exc}; run "
            "`tase-search index` on the index once (it writes the graph), then export again"
        ) from None
    safeio.replace_bytes(target, data)
    return target


def ensure_stamp(name: str, digest: str) -> None:
    """Renew the stamp and optimised form of the store's graph ``name`` (which must hash to ``digest``)
    unless they are current; nothing when the store lacks it. For the write path."""
    from . import graph_cache

    if os.path.lexists(store_dir() / name):
        graph_cache.ensure(store_dir(), name, digest)
