"""The query bundle: what a query process needs to encode queries without torch, kept in the index.

Why in the index directory: a bundle is derived from the index's model (its weights and prompts), so
it travels with the index (an index copied to another machine keeps its fast path) and a query never
writes anything to find it. It is written on the write path (:func:`write_bundle`, called when an index
is built or added to) and only read on the query path (:func:`open_bundle`).

Layout under ``<index>/query-bundle/``: ``bundle.json`` (the model id, weights fingerprint, both prompts,
tokenizer padding, probe texts and the vectors they must give, and the graph's name, size and SHA-256)
and ``<key>.tokenizer.json`` (the fast tokenizer's JSON). The graph itself (``<key>.onnx``, int8, see
:mod:`.graph_store`) is kept once per model in the user's graph store, or in this folder for an index
made portable. The key hashes the graph key and the prompts. ``bundle.json`` is replaced last, so a
reader sees an old bundle or a new one.

ONNX files are protobuf and tokenizers JSON, not pickle: loading them runs no Python code.

Everything in the folder is untrusted input (an index may come from anyone): the folder must be a real
directory, never a link; ``bundle.json`` names its two files by the exact pattern the writer uses (no
paths); every file is read with ``O_NOFOLLOW`` as a bounded regular file (a FIFO, a device or a link is
refused, never opened); the graph runs from memory (so it cannot pull in external data files) under a
time limit per call (a graph that loops is stopped, see :data:`.onnx_runtime.RUN_TIME_LIMIT_S`); and the
bundle must agree with the index's manifest (weights fingerprint, prompts, dimension) and reproduce its
probe vectors. A write never follows a link either: a linked ``query-bundle/`` is refused and left alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexError_, ModelError
from ..store import safeio
from ..store.layout import QUERY_BUNDLE_DIR as BUNDLE_DIR
from ..text.normalize import normalize_for_model
from . import graph_store
from . import onnx_runtime as _ort
from .agreement import MIN_BUNDLE_COSINE, MIN_EXPORT_COSINE, MIN_INT8_COSINE, MIN_OPEN_COSINE
from .bundle_fields import TOKENIZER_NAME as _TOKENIZER_NAME
from .bundle_fields import bundle_problem
from .onnx_runtime import MAX_BATCH, PROBE_TEXTS, OnnxQueryEncoder, graph_key, l2_normalize, missing_modules

log = logging.getLogger(__name__)

BUNDLE_FILE = "bundle.json"
#: Bumped when the bundle's fields change (older bundles are then not used, and rewritten on the next add).
BUNDLE_FORMAT = 3
#: Longer than any model window here (~400 tokens), so the bundle's probes exercise truncation too.
LONG_PROBE = " ".join([PROBE_TEXTS[2]] * 8)
#: Probe texts up to this long are run when a query opens the bundle (``deep``: all of them).
_SHORT_PROBE_CHARS = 400
#: How to add a bundle to an index that has none (an older index, or one built with the torch backend).
ADD_HINT = (
    "run `tase-search index` on it once more (an unchanged run adds it too) or call "
    "Retriever.load(path).write_query_bundle()"
)

#: Why a bundle is not used on a machine whose graph store lacks its graph (an index copied here).
NO_GRAPH_HERE = (
    "its query graph is not in this machine's graph store (the index was copied here without "
    "`tase-search export --portable`)"
)
#: Size limits for the bundle's files (the graph's is :data:`.graph_store.MAX_GRAPH_BYTES`).
MAX_BUNDLE_BYTES = 8 << 20
MAX_TOKENIZER_BYTES = 64 << 20
#: The only names the bundle's files may have: what :func:`write_bundle` writes (a hex key, no path).

# graph name -> (graph bytes, precision) this process made and checked: a second index of the same
# model reuses them instead of exporting again (seconds per export)
_WRITTEN: dict[str, tuple[bytes, str]] = {}
# (index folder, keys) -> identities of the bundle files a write last found good: an unchanged bundle is
# not opened and probed again on every write of a long-lived process
_GOOD: dict[tuple[str, str, str, str, int], list[list[int]]] = {}
# index folder -> (what was asked, identities of the bundle files, the encoder opened from them): a
# long-lived process that loads the index again (a server after every write) reuses the checked
# encoder instead of a new session, tokenizer and probe run (~0.4 s) while no file changed
_OPENED: dict[str, tuple[tuple[str, str, str, int | None], list[list[int]], LightQueryEncoder]] = {}
#: How many opened bundles :data:`_OPENED` keeps (the oldest goes first).
MAX_OPENED = 8


def bundle_dir(index_dir: str | os.PathLike[str]) -> Path:
    return Path(index_dir) / BUNDLE_DIR


class LightQueryEncoder:
    """Encodes queries with ONNX Runtime and ``tokenizers`` alone: no torch, no transformers import.

    Why: a one-off query spent ~5 of its ~7 s importing torch and transformers and loading the model,
    to encode one query. A :class:`~.protocols.QueryEncoder` only: documents and passages need the full
    :class:`~.encoder.Encoder`. Made by :func:`open_bundle`.
    """

    def __init__(
        self, bundle: dict[str, Any], folder: Path, *, runner: OnnxQueryEncoder | None = None
    ) -> None:
        from tokenizers import Tokenizer

        self.model_id: str = bundle["model_id"]
        self._fingerprint: str = bundle["fingerprint"]
        self._dimension = int(bundle["dimension"])
        self._max_seq_length = int(bundle["max_seq_length"])
        self.lowercase = bool(bundle["lowercase"])
        self.prompt: str = bundle.get("prompt") or ""
        # an int8 graph quantises activations per call: one text per call keeps a query's vector the
        # same whatever it is sent with (a few ms each; fp32 graphs batch)
        self._one_per_call = bundle.get("graph_precision") == "int8"
        self._passage_prompt: str = bundle.get("passage_prompt") or ""
        #: the graph's name and SHA-256 as the bundle records them
        self.graph_name: str = bundle["graph"]
        self.graph_sha256: str = bundle["graph_sha256"]
        #: whether the session runs the store's ONNX Runtime-optimised form of the graph
        self.graph_optimized = False
        if runner is None:
            graph, self.graph_optimized = graph_store.read_for_query(
                folder, bundle["graph"], digest=bundle["graph_sha256"], size=bundle["graph_bytes"]
            )
            runner = OnnxQueryEncoder(
                graph, time_limit_s=_ort.RUN_TIME_LIMIT_S, optimized=self.graph_optimized
            )
        self.runner = runner
        tok_bytes = safeio.read_bytes(
            folder / bundle["tokenizer"], "the query bundle's tokenizer", MAX_TOKENIZER_BYTES
        )
        tok = Tokenizer.from_str(tok_bytes.decode("utf-8"))
        tok.no_padding()
        tok.no_truncation()
        tok.enable_truncation(max_length=self._max_seq_length, strategy="longest_first")
        tok.enable_padding(
            pad_id=int(bundle["pad_id"]),
            pad_type_id=int(bundle["pad_type_id"]),
            pad_token=bundle["pad_token"],
        )
        self.tokenizer = tok

    #: how this encoder runs queries (for reports: the same vocabulary as Encoder.active_query_backend)
    active_query_backend = "onnx-bundle"

    @property
    def query_prompt(self) -> str | None:
        return self.prompt or None

    @property
    def passage_prompt(self) -> str | None:
        return self._passage_prompt or None

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_seq_length(self) -> int:
        return self._max_seq_length

    def encode_query(self, texts: str | Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """L2-normalised float32 query vectors, as :meth:`Encoder.encode_query` gives them."""
        items = [texts] if isinstance(texts, str) else list(texts)
        if not items:
            return np.zeros((0, self._dimension), dtype=np.float32)
        prepared = [self.prompt + normalize_for_model(t, lowercase=self.lowercase) for t in items]
        bs = 1 if self._one_per_call else max(1, min(batch_size or MAX_BATCH, MAX_BATCH))
        parts = []
        for i in range(0, len(prepared), bs):
            encs = self.tokenizer.encode_batch(prepared[i : i + bs])
            feats = {
                "input_ids": np.asarray([e.ids for e in encs], dtype=np.int64),
                "attention_mask": np.asarray([e.attention_mask for e in encs], dtype=np.int64),
                "token_type_ids": np.asarray([e.type_ids for e in encs], dtype=np.int64),
            }
            out = self.runner(feats)
            if out.ndim != 2 or out.shape != (len(encs), self._dimension):
                raise ModelError(
                    f"the query bundle's graph gave vectors of shape {out.shape}, not "
                    f"({len(encs)}, {self._dimension}); rebuild it: {ADD_HINT}"
                )
            parts.append(out)
        return l2_normalize(np.vstack(parts))


def _one_by_one(encode: Callable[[list[str]], np.ndarray], texts: list[str]) -> np.ndarray:
    """Each probe encoded alone: an int8 graph quantises its activations per batch, so a text's vector
    depends a little on what it is batched with (padding, neighbours); alone, it does not."""
    return np.vstack([encode([t]) for t in texts])


def _probe_cosine(want: np.ndarray, got: np.ndarray) -> float:
    return float((want * got).sum(1).min()) if want.shape == got.shape else -1.0


def folder_problem(folder: Path) -> str | None:
    """Why the bundle folder cannot be used or written (a link, not a directory); None when it can
    (or does not exist yet)."""
    try:
        mode = os.lstat(folder).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode):
        return f"{folder} is a symbolic link (tase-search never reads or writes through a link in an index)"
    if not stat.S_ISDIR(mode):
        return f"{folder} is not a directory"
    return None


def read_bundle_file(folder: Path) -> dict[str, Any]:
    """The parsed ``bundle.json`` of ``folder``: a bounded read of a regular file, never through a link,
    a FIFO or a device. FileNotFoundError when there is none; ValueError naming any other problem."""
    problem = folder_problem(folder)
    if problem:
        raise ValueError(problem)
    try:
        raw = safeio.read_bytes(folder / BUNDLE_FILE, BUNDLE_FILE, MAX_BUNDLE_BYTES)
    except IndexError_ as exc:
        raise ValueError(str(exc).split(";")[0]) from None
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise ValueError(f"{BUNDLE_FILE} is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{BUNDLE_FILE} is not valid JSON ({exc})") from None


def open_bundle(
    index_dir: str | os.PathLike[str],
    *,
    fingerprint: str,
    query_prompt: str | None,
    passage_prompt: str | None,
    dimension: int | None = None,
    deep: bool = False,
) -> tuple[LightQueryEncoder | None, str]:
    """``(encoder, "")`` from the index's bundle for these weights, prompts (and ``dimension``, the
    manifest's), else ``(None, why)``.

    Reads only: a missing, stale, damaged, hostile or disagreeing bundle is left as it is (the next write
    replaces it, or refuses a linked folder) and the caller uses the full encoder. A bundle this process
    opened before, whose files are all unchanged since (device, inode, size, times), gives the same
    encoder back without reading them again (not with ``deep``).
    """
    if "onnxruntime" in missing_modules() or importlib.util.find_spec("tokenizers") is None:
        return None, "onnxruntime is not installed"
    folder = bundle_dir(index_dir)
    asked = (fingerprint, query_prompt or "", passage_prompt or "", dimension)
    where, seen = _opened_before(folder, asked, deep)
    if where and seen is None:
        return _OPENED[where][2], ""
    try:
        bundle = read_bundle_file(folder)
    except FileNotFoundError:
        return None, "the index has no query bundle"
    except (OSError, ValueError) as exc:
        return None, f"its query bundle is unreadable ({exc})"
    if not isinstance(bundle, dict):
        return None, "its query bundle is not a JSON object"
    want = (BUNDLE_FORMAT, fingerprint, query_prompt or "", passage_prompt or "")
    got = (
        bundle.get("format"),
        bundle.get("fingerprint"),
        bundle.get("prompt"),
        bundle.get("passage_prompt"),
    )
    if got != want:
        return None, "its query bundle was made for another format, other weights or other prompts"
    problem = bundle_problem(bundle, dimension)
    if problem:
        return None, f"its query bundle is not usable: {problem}"
    try:
        light = LightQueryEncoder(bundle, folder)
        # a query opens with the short probes (the long one costs a cold query ~0.5 s); verify runs all
        pick = [i for i, t in enumerate(bundle["probe_texts"]) if deep or len(t) <= _SHORT_PROBE_CHARS]
        want_vectors = np.asarray([bundle["probe_vectors"][i] for i in pick], dtype=np.float32)
        worst = _probe_cosine(
            want_vectors, _one_by_one(light.encode_query, [bundle["probe_texts"][i] for i in pick])
        )
    except FileNotFoundError:
        return None, NO_GRAPH_HERE
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign bundle: the full encoder answers
        return None, f"its query bundle is not usable ({type(exc).__name__}: {str(exc)[:300]})"
    if not worst >= MIN_OPEN_COSINE:
        return None, f"its query bundle disagrees with its probe vectors (cosine {worst:.5f})"
    if where and seen:
        _OPENED.pop(where, None)
        while len(_OPENED) >= MAX_OPENED:
            _OPENED.pop(next(iter(_OPENED)))
        _OPENED[where] = (asked, seen, light)
    return light, ""


def _opened_before(
    folder: Path, asked: tuple[str, str, str, int | None], deep: bool
) -> tuple[str, list[list[int]] | None]:
    """``(where, None)`` when this process opened the bundle in ``folder`` for ``asked`` and none of its
    files changed since (:data:`_OPENED` holds the encoder); else ``(where, identities)`` to record once
    it is opened (taken before its files are read, so a change while they are read is seen next time),
    ``where`` empty when it is not to be kept (a ``deep`` check, a link, files that cannot be listed)."""
    if deep or folder_problem(folder) is not None:
        return "", None
    try:
        where = str(folder.resolve())
    except OSError:
        return "", None
    seen = _identities(folder)
    if seen is None:
        return "", None
    hit = _OPENED.get(where)
    if hit is not None and hit[0] == asked and hit[1] == seen:
        return where, None
    return where, seen


def _replace(path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` then rename over ``path``: a reader sees the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bundle(
    encoder: Any, index_dir: str | os.PathLike[str], *, stage: Callable[[str], object] | None = None
) -> Path | None:
    """Make sure ``index_dir`` holds a good query bundle for ``encoder`` (an :class:`~.encoder.Encoder`).

    The write path's half of the bundle: takes the graph from the user's store when it still agrees
    with the model, else exports it, checks it against PyTorch and quantises it (:mod:`.graph_store`);
    checks the torch-free path against the encoder's own ONNX path on the probes, then replaces
    ``bundle.json``. A good bundle is left alone (and, in a long-lived process, not even re-opened
    while its files are unchanged). Returns
    the bundle file, or None when this model cannot have one (its tokenizer has no ``tokenizers``
    backend, or the torch-free path disagrees); ModelError when ONNX cannot be used at all. ``stage(name)``
    hears of the export when one is needed (a progress reporter's stage).
    """
    prompt, passage_prompt = encoder.query_prompt, encoder.passage_prompt
    folder = bundle_dir(index_dir)
    problem = folder_problem(folder)
    if problem:
        raise BundleRefused(
            f"no query bundle written: {problem}; nothing in or behind it was touched. Remove the link "
            f"(`rm {folder}`) and run `tase-search index` again to add one; until then queries load the model"
        )
    good_key = (
        str(folder.resolve()),
        encoder.fingerprint,
        prompt or "",
        passage_prompt or "",
        encoder.dimension,
    )
    if _GOOD.get(good_key) is not None and _GOOD[good_key] == _identities(folder):
        return folder / BUNDLE_FILE
    light, _ = open_bundle(
        index_dir,
        fingerprint=encoder.fingerprint,
        query_prompt=prompt,
        passage_prompt=passage_prompt,
        dimension=int(encoder.dimension),
    )
    if light is not None:
        if not light.graph_optimized:  # a store from before stamps, or one a user touched: renew them
            graph_store.ensure_stamp(light.graph_name, light.graph_sha256)
        _GOOD[good_key] = _identities(folder)
        return folder / BUNDLE_FILE
    tokenizer = encoder.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    pad_token = getattr(tokenizer, "pad_token", None)
    if backend is None or pad_token is None:
        return None
    gkey = graph_key(encoder.model, encoder.fingerprint)
    key = hashlib.sha256(f"{gkey}\n{prompt or ''}\n{passage_prompt or ''}\nint8".encode()).hexdigest()[:40]
    folder.mkdir(exist_ok=True)
    problem = folder_problem(folder)  # again: it could not be a link before, it must not be one now
    if problem:
        raise BundleRefused(f"no query bundle written: {problem}")
    graph, tok_file = folder / f"{key}.onnx", folder / f"{key}.tokenizer.json"
    for own in (graph, tok_file):
        _drop_if_not_regular(own)  # a link in its place is removed (the link only), never followed
    data, precision, runner = _checked_graph(encoder, graph.name, stage)
    graph_store.put(graph.name, data)
    portable = os.path.lexists(graph)
    if portable:  # an index made portable keeps carrying its graph
        _replace(graph, lambda tmp: safeio.write_bytes(tmp, data))
    _replace(tok_file, lambda tmp: safeio.write_bytes(tmp, backend.to_str().encode("utf-8")))
    bundle: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "model_id": encoder.model_id,
        "fingerprint": encoder.fingerprint,
        "dimension": int(encoder.dimension),
        "max_seq_length": int(encoder.max_seq_length),
        "lowercase": bool(encoder.lowercases),
        "prompt": prompt or "",
        # not used for queries; the index's prompt check compares both with the manifest's
        "passage_prompt": passage_prompt or "",
        "graph": graph.name,
        "graph_bytes": len(data),
        "graph_sha256": graph_store.sha256(data),
        "graph_precision": precision,
        "tokenizer": tok_file.name,
        "pad_token": str(pad_token),
        "pad_id": int(tokenizer.pad_token_id),
        "pad_type_id": int(getattr(tokenizer, "pad_token_type_id", 0) or 0),
        "probe_texts": [*PROBE_TEXTS, LONG_PROBE],
    }
    texts = bundle["probe_texts"]
    got = _one_by_one(LightQueryEncoder(bundle, folder, runner=runner).encode_query, texts)
    worst = _probe_cosine(_one_by_one(lambda t: encoder.encode_query_with(runner, t), texts), got)
    if not worst >= MIN_BUNDLE_COSINE:
        log.info("no torch-free query bundle: its tokenizer disagrees with the model's (cosine %.5f)", worst)
        return None
    bundle["probe_vectors"] = [[float(x) for x in row] for row in got]
    path = folder / BUNDLE_FILE
    text = json.dumps(bundle, ensure_ascii=False)
    _replace(path, lambda tmp: safeio.write_bytes(tmp, text.encode("utf-8")))
    keep = {BUNDLE_FILE, tok_file.name} | ({graph.name} if portable else set())
    if folder_problem(folder) is None:
        for old in folder.iterdir():  # files of an earlier model, prompts or format
            if old.name not in keep and not old.name.startswith("."):
                _drop_if_not_regular(old, regular_too=True)
    _GOOD[good_key] = _identities(folder)
    return path


def _identities(folder: Path) -> list[list[int]] | None:
    """What changes whenever the bundle's files could have (device, inode, size, times), or None."""
    from ..store.stamps import identity

    try:
        names = [BUNDLE_FILE, *sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))]
        paths = [folder / n for n in names]
        # the stored graph of each tokenizer's key too: the store is outside the index
        paths += [
            graph_store.store_dir() / (n.split(".")[0] + ".onnx")
            for n in names
            if _TOKENIZER_NAME.fullmatch(n)
        ]
        return [identity(p) for p in paths]
    except OSError:
        return None


def _checked_graph(
    encoder: Any, name: str, stage: Callable[[str], object] | None
) -> tuple[bytes, str, OnnxQueryEncoder]:
    """The graph for ``encoder`` under ``name``: the store's copy when it still agrees with the model,
    else a fresh export, checked against PyTorch and quantised to int8 when that agrees too.
    ModelError when ONNX cannot be used at all."""
    from .onnx_runtime import export_guarded, require_runtime

    require_runtime(exporting=False)
    made = _WRITTEN.get(name)
    if made is not None:
        runner = OnnxQueryEncoder(made[0])
        return made[0], made[1], runner
    stored = graph_store.read_stored(name)
    if stored is not None:
        try:
            runner = OnnxQueryEncoder(stored, time_limit_s=_ort.RUN_TIME_LIMIT_S)
            if encoder.onnx_agreement(runner) >= MIN_INT8_COSINE:
                precision = "int8" if b"DynamicQuantizeLinear" in stored else "fp32"  # an op of its own
                _WRITTEN[name] = (stored, precision)
                return stored, precision, runner
        except Exception as exc:  # noqa: BLE001 - a damaged or foreign file in the store: export again
            log.warning("query graph %s in %s not used: %s", name, graph_store.store_dir(), exc)
    if stage is not None:
        stage("preparing the query path")
    fp32 = export_guarded(encoder.model)
    assert fp32 is not None
    runner = OnnxQueryEncoder(fp32)
    worst = encoder.onnx_agreement(runner)
    if not worst >= MIN_EXPORT_COSINE:
        raise ModelError(
            f"the ONNX export of {encoder.model_id} disagrees with PyTorch on probe texts (cosine "
            f"{worst:.4f} < {MIN_EXPORT_COSINE}); queries load the model"
        )
    data, precision = fp32, "fp32"
    try:
        small = graph_store.quantize(fp32)
        small_runner = OnnxQueryEncoder(small)
        if encoder.onnx_agreement(small_runner) >= MIN_INT8_COSINE:
            data, precision, runner = small, "int8", small_runner
    except ModelError as exc:
        log.warning("query graph kept in fp32: %s", exc)
    _WRITTEN[name] = (data, precision)
    return data, precision, runner


def make_portable(index_dir: str | os.PathLike[str]) -> Path:
    """Put the index's query graph into its bundle folder, so a copy of the index keeps the torch-free
    path on machines whose graph store lacks it (``tase-search export --portable``). ModelError when
    the index has no usable bundle or this machine's store lacks its graph."""
    folder = bundle_dir(index_dir)
    try:
        bundle = read_bundle_file(folder)
    except FileNotFoundError:
        raise ModelError(f"{index_dir} has no query bundle; {ADD_HINT}") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"the query bundle of {index_dir} is unreadable ({exc}); {ADD_HINT}") from None
    problem = bundle_problem(bundle)
    if problem or bundle.get("format") != BUNDLE_FORMAT:
        raise ModelError(
            f"the query bundle of {index_dir} is not usable ({problem or 'older format'}); {ADD_HINT}"
        )
    return graph_store.make_portable(
        folder, bundle["graph"], digest=bundle["graph_sha256"], size=bundle["graph_bytes"]
    )


class BundleRefused(IndexError_):
    """The index's query bundle folder cannot be written safely (a link, not a directory)."""


def _drop_if_not_regular(path: Path, *, regular_too: bool = False) -> None:
    """Remove ``path`` itself when it is a link or a special file (and, with ``regular_too``, a regular
    file); never what a link points at, never a directory."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        return
    if regular_too or not stat.S_ISREG(mode):
        path.unlink(missing_ok=True)


def bundle_for_queries(
    index_dir: str | os.PathLike[str],
    manifest_model: Any,
    *,
    encoder: Any,
    query_backend: str,
    model_spec: str | None = None,
) -> tuple[LightQueryEncoder | None, str | None]:
    """The query side of an index opened for search: ``(bundle encoder, None)`` when queries can skip the
    full encoder, else ``(None, note)`` (``note`` None when the bundle was not wanted).

    Wanted under ``query_backend="auto"`` (or ``onnx``: the bundle is ONNX too) when no full encoder is
    given and no other model than the manifest's is named (that one must be loaded and checked), and for
    a given ``encoder`` whose own ``auto`` query path is PyTorch (it has no graph at hand).
    """
    if encoder is not None:
        wanted = getattr(encoder, "query_backend", "torch") == "auto" and (
            getattr(encoder, "active_query_backend", "onnx") == "torch"
        )
    else:
        wanted = query_backend != "torch" and model_spec in (None, manifest_model.id)
    if not wanted:
        return None, None
    m = manifest_model
    light, why = open_bundle(
        index_dir,
        fingerprint=m.fingerprint,
        query_prompt=m.query_prompt,
        passage_prompt=m.passage_prompt,
        dimension=int(m.dimension),
    )
    if light is not None:
        return light, None
    note = f"queries on {index_dir} load the full encoder: {why}; to add the torch-free path, {ADD_HINT}"
    log.info("%s", note)
    return None, note


def keep_bundle(encoder: Any, index_dir: str | os.PathLike[str], progress: Any = None) -> Path | None:
    """After a write: :func:`write_bundle` for an encoder that can have one, a failure only logged (the
    write itself is done; queries then load the full encoder). A ``progress`` reporter with a ``stage``
    method hears of the export."""
    write = getattr(encoder, "write_query_bundle", None)
    if write is None:  # a test double, or an encoder without a model to export
        return None
    try:
        return write(index_dir, stage=getattr(progress, "stage", None))
    except (ModelError, IndexError_, OSError) as exc:
        log.warning("no torch-free query path for %s: %s", index_dir, exc)
        return None
