"""The fast path for encoding a few queries: the encoder's model exported to ONNX, run by ONNX Runtime.

Why it exists: a warm search is bound by encoding one short query. On the 2-core AVX512-BF16 CPU
this project is measured on, a profile of one tatoeba-length query (median 16 tokens) put almost all
of PyTorch's time in 37 small matrix multiplies (M = 16 rows), where per-call kernel setup costs as
much as the arithmetic; ONNX Runtime's MLAS kernels run the same graph in fp32 faster.
``bench/end_to_end.py`` at 1M documents (README): encoding one query 7.0 ms p50 here vs 8.5 ms with
PyTorch bf16 weights, a warm search 8.4 vs 10.1 ms. On batches PyTorch with bf16 weights wins
(``bench/encode.py --extra onnx-fp32``: 1.05x vs 1.84x plain fp32), so documents never come here,
and neither do query batches above :data:`MAX_BATCH`.

How: the model (tokenizer excluded; tokenisation stays in Python, exactly as for PyTorch) is traced
with ``torch.onnx.export`` once per set of weights, from an fp32 copy of the weights the encoder
runs (so a bf16 encoder's queries are computed from the same bf16-rounded values, in fp32), and
cached as ``<cache>/onnx/<key>.onnx`` (:func:`cache_dir`). The key hashes the weights fingerprint,
their dtype, the module stack and the torch version, so a changed model never reuses a stale graph.
Every session is checked against PyTorch on probe texts of several lengths, single and batched,
before it is used; a graph that disagrees is deleted and re-exported once, then refused.

A *query bundle* (:func:`write_bundle`, :class:`LightQueryEncoder`) goes further for short-lived
processes: the graph, the fast tokenizer's JSON and probe vectors, keyed by the weights fingerprint an
index manifest records, so ``tase-search query`` answers without importing torch or transformers.

ONNX files are protobuf and tokenizers JSON, not pickle: loading them runs no Python code.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.util
import inspect
import logging
import os
import signal
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError

log = logging.getLogger(__name__)

#: The largest query batch ``auto`` sends to ONNX Runtime (beyond it PyTorch's bf16 batches win).
MAX_BATCH = 16
#: Bumped when the exported graph's inputs or outputs change (old cache files are then ignored).
FORMAT_VERSION = 1
OPSET = 17
#: Minimum cosine between ONNX Runtime and PyTorch embeddings of the probe texts. bf16 weights
#: computed in fp32 vs in bf16 agree to ~0.9999; a wrong graph (baked shapes, other pooling) does not.
MIN_PROBE_COSINE = 0.995
PROBE_TEXTS = (
    "Merhaba dünya",
    "İstanbul'da yarın yağmur yağacak mı?",
    "Türkiye'nin en kalabalık şehri olan İstanbul, Boğaziçi'nin iki yakasında kurulmuştur ve "
    "tarih boyunca pek çok imparatorluğa başkentlik yapmıştır; bugün de ülkenin ekonomik merkezidir.",
)
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_INSTALL_HINT = "pip install onnxruntime onnx (or use --query-backend torch)"


def missing_modules() -> list[str]:
    """The modules the ONNX path needs that are not installed (``onnx`` is needed to export only)."""
    return [m for m in ("onnxruntime", "onnx") if importlib.util.find_spec(m) is None]


def cache_dir() -> Path:
    """``$TASE_SEARCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/tase-search``, else ``~/.cache/tase-search``."""
    env = os.environ.get("TASE_SEARCH_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "tase-search"


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


def export(model: Any, path: Path) -> None:
    """Export ``model`` (a LightSentenceModel or SentenceTransformer) to ``path`` as fp32 ONNX.

    Written to a temporary file next to ``path`` and renamed into place, so a reader never sees a
    half-written graph and concurrent exporters do not clash. The caller's model is not touched.
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about Python branches on shapes
            torch.onnx.export(graph, tuple(probe[n] for n in names), tmp, **kwargs)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def l2_normalize(emb: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length as float32, zero rows left at zero (as torch.nn.functional.normalize)."""
    emb = np.asarray(emb, dtype=np.float32)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


class OnnxQueryEncoder:
    """An ONNX Runtime session over an exported graph: features in, pooled embeddings out."""

    def __init__(self, path: Path, *, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # One query is a chain of small ops: one thread, no thread pool to wake (measured fastest).
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.path = path
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, features: dict[str, Any]) -> np.ndarray:
        feed = {}
        for name in self.input_names:
            value = features[name]
            feed[name] = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
        (out,) = self.session.run(["sentence_embedding"], feed)
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


def open_or_export(model: Any, fingerprint: str, *, threads: int = 1) -> OnnxQueryEncoder:
    """The cached graph for ``model`` (exported first if missing), opened in a session.

    Raises ModelError when ONNX Runtime or onnx is missing or the export fails; the caller decides
    whether that is fatal (``onnx``) or a reason to stay on PyTorch (``auto``).
    """
    missing = missing_modules()
    if "onnxruntime" in missing:
        raise ModelError(f"the onnx query backend needs onnxruntime, which is not installed: {_INSTALL_HINT}")
    path = cache_dir() / "onnx" / f"{graph_key(model, fingerprint)}.onnx"
    if path.is_file():
        try:
            return OnnxQueryEncoder(path, threads=threads)
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: export again
            log.warning("cached ONNX graph %s could not be opened (%s); exporting it again", path, exc)
    if "onnx" in missing:
        raise ModelError(f"exporting the model for the onnx query backend needs onnx: {_INSTALL_HINT}")
    try:
        with _deferred_interrupt():
            export(model, path)
    except OSError as exc:
        raise ModelError(f"could not write the ONNX graph to {path}: {exc}; set TASE_SEARCH_CACHE_DIR") from exc
    except Exception as exc:  # noqa: BLE001 - architectures the tracer cannot handle
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise ModelError(f"could not export the model to ONNX: {type(exc).__name__}: {first}") from exc
    return OnnxQueryEncoder(path, threads=threads)


# ----------------------------------------------------------------------------- torch-free queries
#: Bumped when the bundle's fields change (older bundles are then ignored).
BUNDLE_FORMAT = 1
#: Longer than any model window here (~400 tokens), so the bundle's probes exercise truncation too.
LONG_PROBE = " ".join([PROBE_TEXTS[2]] * 8)
#: Light-path probes must reproduce the vectors stored at bundle time this closely (same graph, same
#: tokenizer: only float noise separates them).
MIN_BUNDLE_COSINE = 0.9999


def bundle_path(fingerprint: str) -> Path:
    """Where the query bundle of the weights ``fingerprint`` lives."""
    return cache_dir() / "onnx" / f"query-{fingerprint[:40]}.json"


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_bundle(
    runner: OnnxQueryEncoder,
    tokenizer: Any,
    *,
    model_id: str,
    fingerprint: str,
    dimension: int,
    max_seq_length: int,
    lowercase: bool,
    prompt: str | None,
    reference: Any,
    passage_prompt: str | None = None,
) -> Path | None:
    """Record what :class:`LightQueryEncoder` needs to encode queries without torch or transformers.

    ``reference(texts) -> vectors`` is the encoder's own (checked) ONNX path; the light path must
    reproduce it on the probes before the bundle is written, and does so again at every load against
    the vectors stored here. Returns None for tokenizers without a ``tokenizers`` backend.
    """
    import json

    backend = getattr(tokenizer, "backend_tokenizer", None)
    pad_token = getattr(tokenizer, "pad_token", None)
    if backend is None or pad_token is None:
        return None
    tok_file = runner.path.with_suffix(".tokenizer.json")
    _atomic_write(tok_file, backend.to_str())
    bundle: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "model_id": model_id,
        "fingerprint": fingerprint,
        "dimension": int(dimension),
        "max_seq_length": int(max_seq_length),
        "lowercase": bool(lowercase),
        "prompt": prompt or "",
        # not used for queries; recorded so the index's prompt check can be made without the model
        "passage_prompt": passage_prompt or "",
        "graph": runner.path.name,
        "tokenizer": tok_file.name,
        "pad_token": str(pad_token),
        "pad_id": int(tokenizer.pad_token_id),
        "pad_type_id": int(getattr(tokenizer, "pad_token_type_id", 0) or 0),
        "probe_texts": [*PROBE_TEXTS, LONG_PROBE],
    }
    light = LightQueryEncoder(bundle, runner.path.parent, runner=runner)
    want = reference(bundle["probe_texts"])
    got = light.encode_query(bundle["probe_texts"])
    worst = float((want * got).sum(1).min())
    if not worst >= MIN_BUNDLE_COSINE:
        log.info("no torch-free query bundle: its tokenizer disagrees with the model's (cosine %.5f)", worst)
        return None
    bundle["probe_vectors"] = [[float(x) for x in row] for row in got]
    path = bundle_path(fingerprint)
    _atomic_write(path, json.dumps(bundle, ensure_ascii=False))
    return path


class LightQueryEncoder:
    """Encodes queries with ONNX Runtime and ``tokenizers`` alone: no torch, no transformers import.

    Why: a one-off ``tase-search query`` spent ~5 of its ~7 s importing torch and transformers and
    loading the model, to encode one query. Built from the bundle an :class:`~tase_search.encoder.Encoder`
    writes when it first prepares its ONNX query path (``tase-search index`` does this after indexing),
    keyed by the weights fingerprint an index manifest records. Only the query side: documents and
    passages need the full encoder. :meth:`for_fingerprint` returns None (and the caller loads the
    full encoder) whenever anything is missing, stale or disagrees with the stored probe vectors.
    """

    def __init__(self, bundle: dict[str, Any], folder: Path, *, runner: OnnxQueryEncoder | None = None) -> None:
        from tokenizers import Tokenizer

        self.model_id: str = bundle["model_id"]
        self._fingerprint: str = bundle["fingerprint"]
        self._dimension = int(bundle["dimension"])
        self._max_seq_length = int(bundle["max_seq_length"])
        self.lowercase = bool(bundle["lowercase"])
        self.prompt: str = bundle.get("prompt") or ""
        self._passage_prompt: str = bundle["passage_prompt"]  # a bundle without it is stale: rewritten
        self.runner = runner or OnnxQueryEncoder(folder / bundle["graph"])
        tok = Tokenizer.from_file(str(folder / bundle["tokenizer"]))
        tok.no_padding()
        tok.no_truncation()
        tok.enable_truncation(max_length=self._max_seq_length, strategy="longest_first")
        tok.enable_padding(
            pad_id=int(bundle["pad_id"]), pad_type_id=int(bundle["pad_type_id"]), pad_token=bundle["pad_token"]
        )
        self.tokenizer = tok

    @property
    def query_prompt(self) -> str | None:
        return self.prompt or None

    @property
    def passage_prompt(self) -> str | None:
        return self._passage_prompt or None

    @classmethod
    def for_fingerprint(cls, fingerprint: str) -> LightQueryEncoder | None:
        """The checked light encoder for these weights, or None (see the class docstring)."""
        import json

        if "onnxruntime" in missing_modules() or importlib.util.find_spec("tokenizers") is None:
            return None
        path = bundle_path(fingerprint)
        try:
            bundle = json.loads(path.read_text(encoding="utf-8"))
            if bundle.get("format") != BUNDLE_FORMAT or bundle.get("fingerprint") != fingerprint:
                return None
            light = cls(bundle, path.parent)
            want = np.asarray(bundle["probe_vectors"], dtype=np.float32)
            got = light.encode_query(bundle["probe_texts"])
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - a damaged or foreign bundle: use the full encoder
            log.info("query bundle %s not usable (%s: %s); removed", path, type(exc).__name__, exc)
            path.unlink(missing_ok=True)  # the next `index` or long-lived process writes a good one
            return None
        worst = float((want * got).sum(1).min()) if want.shape == got.shape else -1.0
        if not worst >= MIN_BUNDLE_COSINE:
            log.info("query bundle %s disagrees with its probe vectors (cosine %.5f); removed", path, worst)
            path.unlink(missing_ok=True)
            return None
        return light

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
        from .text import normalize_for_model

        items = [texts] if isinstance(texts, str) else list(texts)
        if not items:
            return np.zeros((0, self._dimension), dtype=np.float32)
        prepared = [self.prompt + normalize_for_model(t, lowercase=self.lowercase) for t in items]
        bs = max(1, min(batch_size or MAX_BATCH, MAX_BATCH))
        parts = []
        for i in range(0, len(prepared), bs):
            encs = self.tokenizer.encode_batch(prepared[i : i + bs])
            feats = {
                "input_ids": np.asarray([e.ids for e in encs], dtype=np.int64),
                "attention_mask": np.asarray([e.attention_mask for e in encs], dtype=np.int64),
                "token_type_ids": np.asarray([e.type_ids for e in encs], dtype=np.int64),
            }
            parts.append(self.runner(feats))
        return l2_normalize(np.vstack(parts))

    def encode_document(self, *_: Any, **__: Any) -> np.ndarray:
        raise ModelError("this is a query-only encoder (ONNX, no torch); documents need Encoder.load(...)")

    def split_passages(self, *_: Any, **__: Any) -> Any:
        raise ModelError("this is a query-only encoder (ONNX, no torch); documents need Encoder.load(...)")
