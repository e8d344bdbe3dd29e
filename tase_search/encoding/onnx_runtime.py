"""The fast path for encoding a few queries: the encoder's model exported to ONNX, run by ONNX Runtime.

Why it exists: a warm search is bound by encoding one short query. On the 2-core AVX512-BF16 CPU
this project is measured on, a profile of one tatoeba-length query (median 16 tokens) put almost all
of PyTorch's time in 37 small matrix multiplies (M = 16 rows), where per-call kernel setup costs as
much as the arithmetic; ONNX Runtime's MLAS kernels run the same graph in fp32 faster.
``bench/end_to_end.py`` at 1M documents (README): encoding one query 7.0 ms p50 here vs 8.5 ms with
PyTorch bf16 weights, a warm search 8.4 vs 10.1 ms. On batches PyTorch with bf16 weights wins
(``bench/encode.py --extra onnx-fp32``: 1.05x vs 1.84x plain fp32), so documents never come here,
and neither do query batches above :data:`MAX_BATCH` under ``auto``.

How: the model (tokenizer excluded; tokenisation stays in Python, exactly as for PyTorch) is traced
with ``torch.onnx.export`` from an fp32 copy of the weights the encoder runs (so a bf16 encoder's
queries are computed from the same bf16-rounded values, in fp32). :func:`graph_key` names a graph by
the weights fingerprint, their dtype, the module stack and the torch version. A graph is checked
against PyTorch on probe texts of several lengths, single and batched, before it is used
(:func:`open_checked`). The graph a query process uses lives in the index directory
(:mod:`.query_bundle`, written when the index is built); without one, ``query_backend="onnx"``
exports into memory at load and writes nothing.

ONNX files are protobuf, not pickle: loading them runs no Python code.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.util
import inspect
import io
import logging
import os
import secrets
import signal
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .agreement import MIN_EXPORT_COSINE
from .run_limit import WATCHDOG

log = logging.getLogger(__name__)

#: The largest query batch ``auto`` sends to ONNX Runtime (beyond it PyTorch's bf16 batches win).
MAX_BATCH = 16
#: Bumped when the exported graph's inputs or outputs change (old cache files are then ignored).
FORMAT_VERSION = 1
OPSET = 17
PROBE_TEXTS = (
    "Merhaba dünya",
    "İstanbul'da yarın yağmur yağacak mı?",
    "Türkiye'nin en kalabalık şehri olan İstanbul, Boğaziçi'nin iki yakasında kurulmuştur ve "
    "tarih boyunca pek çok imparatorluğa başkentlik yapmıştır; bugün de ülkenin ekonomik merkezidir.",
)
#: The longest one call of a graph read from an index may run (a batch of 16 long queries takes well
#: under a second): a graph that loops (an ONNX ``Loop`` of 10^15 steps) is stopped here, not hung on.
RUN_TIME_LIMIT_S = 20.0
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_INSTALL_HINT = "pip install onnxruntime onnx (or use --query-backend torch)"


def import_onnxruntime() -> Any:
    """``onnxruntime``, imported so that it writes nothing outside the project's own folders.

    Why: its Linux builds create ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/`` (a telemetry device
    id) as the module is imported, which a read-only query must not do. ``ORT_TELEMETRY_DISABLED`` is
    its documented opt-out (honoured fully by newer releases); for the releases that still write the id,
    its cache root points at a device during the import, so the id stays in memory, and the one warning
    that prints is kept off stderr."""
    import sys

    if "onnxruntime" in sys.modules:
        return sys.modules["onnxruntime"]
    os.environ.setdefault("ORT_TELEMETRY_DISABLED", "1")
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = os.devnull
    err = null = -1
    try:
        with contextlib.suppress(OSError):
            err, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
        import onnxruntime
    finally:
        if err >= 0:
            os.dup2(err, 2)
            os.close(err)
        if null >= 0:
            os.close(null)
        if saved is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = saved
    return onnxruntime


def missing_modules() -> list[str]:
    """The modules the ONNX path needs that are not installed (``onnx`` is needed to export only)."""
    return [m for m in ("onnxruntime", "onnx") if importlib.util.find_spec(m) is None]


def graph_key(model: Any, fingerprint: str) -> str:
    """A file-name-safe key for the exported graph of ``model`` (see the module docstring)."""
    import torch

    dtype = next(iter(model.parameters())).dtype
    parts = [
        f"format={FORMAT_VERSION}",
        f"opset={OPSET}",
        f"weights={fingerprint}",
        f"dtype={dtype}",
        f"modules={model!r}",
        f"torch={torch.__version__}",
    ]
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:40]


def _graph_module(model: Any, names: Sequence[str]) -> Any:
    """``model(features)["sentence_embedding"]`` as a torch Module with positional tensor inputs."""
    import torch

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # Register the weights (a LightSentenceModel is not a Module itself) so the tracer sees
            # parameters, not captured constants.
            self.body = model if isinstance(model, torch.nn.Module) else model.auto_model
            self.names = tuple(names)

        def forward(self, *tensors: Any) -> Any:
            return model(dict(zip(self.names, tensors)))["sentence_embedding"]

    return Graph()


def export(model: Any, path: Path | None = None) -> bytes | None:
    """Export ``model`` (a LightSentenceModel or SentenceTransformer) as fp32 ONNX: to ``path``, or,
    without one, into memory (the serialised graph is returned).

    A file is written to a temporary name next to ``path`` and renamed into place, so a reader never
    sees a half-written graph and concurrent exporters do not clash. The caller's model is not touched.
    """
    import torch

    work = copy.deepcopy(model)
    work.to(torch.float32)
    work.eval()
    probe = dict(work.preprocess(["kısa", "iki kelimeden uzun bir örnek"]))  # padding in the batch
    names = [n for n in _INPUTS if n in probe]
    graph = _graph_module(work, names)
    kwargs: dict[str, Any] = {
        "input_names": names,
        "output_names": ["sentence_embedding"],
        "dynamic_axes": {**{n: {0: "batch", 1: "tokens"} for n in names}, "sentence_embedding": {0: "batch"}},
        "opset_version": OPSET,
    }
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript exporter: no onnxscript needed, dynamic axes honoured

    def trace(target: Any) -> None:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python branches on shapes
            torch.onnx.export(graph, tuple(probe[n] for n in names), target, **kwargs)

    if path is None:
        buf = io.BytesIO()
        trace(buf)
        return buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    # a fresh name the exporter creates itself, so the file follows the umask as the index's others do
    tmp = str(path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"))
    try:
        trace(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return None


def l2_normalize(emb: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length as float32, zero rows left at zero (as torch.nn.functional.normalize)."""
    emb = np.asarray(emb, dtype=np.float32)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


class OnnxQueryEncoder:
    """An ONNX Runtime session over an exported graph (a file, or bytes): features in, pooled embeddings out."""

    def __init__(
        self,
        graph: Path | bytes,
        *,
        threads: int = 1,
        time_limit_s: float | None = None,
        optimized: bool = False,
    ) -> None:
        ort = import_onnxruntime()
        #: each call is stopped after this many seconds (None: no limit; graphs this process exported)
        self.time_limit_s = time_limit_s
        self._ort = ort

        opts = ort.SessionOptions()
        # One query is a chain of small ops: one thread, no thread pool to wake (measured fastest).
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        if optimized:  # saved already optimised (:mod:`.graph_cache`): half the session set-up
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        #: the graph file, or None for a graph exported into memory
        self.path: Path | None = None if isinstance(graph, bytes) else Path(graph)
        source = graph if isinstance(graph, bytes) else str(graph)
        self.session = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, features: dict[str, Any]) -> np.ndarray:
        feed = {}
        for name in self.input_names:
            value = features[name]
            feed[name] = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
        if self.time_limit_s is None:
            (out,) = self.session.run(["sentence_embedding"], feed)
            return np.asarray(out, dtype=np.float32)
        opts = self._ort.RunOptions()
        opts.log_severity_level = 4  # a stopped run is reported once, below, not also by ORT's logger
        token = WATCHDOG.arm(opts, self.time_limit_s)
        try:
            (out,) = self.session.run(["sentence_embedding"], feed, opts)
        except Exception:
            if opts.terminate:
                raise ModelError(
                    f"the query graph ran longer than {self.time_limit_s:g} s and was stopped "
                    "(a graph that loops); queries need the full model"
                ) from None
            raise
        finally:
            WATCHDOG.disarm(token)
        return np.asarray(out, dtype=np.float32)


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block ends, then raise KeyboardInterrupt.

    Why: the TorchScript tracer can turn a KeyboardInterrupt raised inside the traced Python into a
    RuntimeError, which the fallback logic would then take for "this model cannot be exported" and
    carry on, so a Ctrl-C during the few seconds of an export would be lost. Only in the main thread
    (signal handlers cannot be set elsewhere; other threads never receive KeyboardInterrupt anyway).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


def require_runtime(*, exporting: bool) -> None:
    """ModelError naming the fix when ONNX Runtime (or, to export, onnx) is not installed."""
    missing = missing_modules()
    if "onnxruntime" in missing:
        raise ModelError(f"the onnx query backend needs onnxruntime, which is not installed: {_INSTALL_HINT}")
    if exporting and "onnx" in missing:
        raise ModelError(f"exporting the model for the onnx query backend needs onnx: {_INSTALL_HINT}")


def export_guarded(model: Any, path: Path | None = None) -> bytes | None:
    """:func:`export` with Ctrl-C kept and the tracer's failures as one-line ModelErrors."""
    require_runtime(exporting=True)
    try:
        with _deferred_interrupt():
            return export(model, path)
    except OSError as exc:
        raise ModelError(f"could not write the ONNX graph to {path}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - architectures the tracer cannot handle
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ModelError(f"could not export the model to ONNX: {type(exc).__name__}: {first}") from exc


def open_checked(
    model: Any,
    model_id: str,
    agreement: Callable[[OnnxQueryEncoder], float],
    *,
    graph: Path | None = None,
    export_missing: bool = True,
    threads: int = 1,
) -> OnnxQueryEncoder:
    """An ONNX Runtime session for ``model`` that agrees with PyTorch on the probe texts.

    ``agreement(runner)`` is the worst probe cosine against PyTorch. The file ``graph``, when given, is
    opened first; nothing is written: a graph that is missing or unusable is exported into memory
    (``export_missing``) or refused. ModelError for every reason the path cannot be used: the caller
    decides whether that is fatal.
    """
    require_runtime(exporting=False)
    runner = None
    if graph is not None and graph.is_file():
        try:  # a file on disk may be anyone's: its runs are time-limited
            runner = OnnxQueryEncoder(graph, threads=threads, time_limit_s=RUN_TIME_LIMIT_S)
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign file
            log.warning("ONNX graph %s could not be opened (%s)", graph, exc)
    worst = -1.0
    for attempt in range(2):
        if runner is None:
            if not export_missing:
                raise ModelError(f"no usable ONNX graph at {graph}")
            data = export_guarded(model)
            runner = OnnxQueryEncoder(data, threads=threads)  # type: ignore[arg-type]
        try:
            worst = agreement(runner)
        except ModelError as exc:  # a graph on disk that ran past its time limit
            if runner.path is None:
                raise
            log.warning("ONNX graph %s: %s", runner.path, exc)
            worst = -1.0
        if worst >= MIN_EXPORT_COSINE:
            return runner
        if attempt == 0 and runner.path is not None:  # a stale or wrong file: export once more
            log.warning("ONNX graph %s disagrees with PyTorch (cosine %.4f)", runner.path, worst)
            runner = None
            continue
        break
    raise ModelError(
        f"the ONNX export of {model_id} disagrees with PyTorch on probe texts (cosine "
        f"{worst:.4f} < {MIN_EXPORT_COSINE}); use query_backend 'torch' (--query-backend torch)"
    )
