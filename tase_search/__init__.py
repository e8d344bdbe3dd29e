"""tase-search: Turkish and English<->Turkish semantic search.

    from tase_search import Retriever
    r = Retriever.build(["Maç 2-1 bitti.", "Yarın yağmur yağacak."], path="indexes/demo")
    r.search("football match", k=1)

Nothing heavy (torch, faiss, sentence-transformers) is imported here, so ``import tase_search``
and ``tase-search --help`` stay fast; the names below load on first use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ._version import __version__


def _torch_cache_in_user_cache() -> None:
    """torch creates its compiler cache folder (``$TMPDIR/torchinductor_<user>``) as soon as
    sentence-transformers imports it, even when nothing is compiled; reads must write nothing outside
    the index and the user's own cache, so the folder goes under ours unless the user chose one."""
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        from .runtime.cache import cache_dir

        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir() / "torchinductor")


_torch_cache_in_user_cache()

if TYPE_CHECKING:  # pragma: no cover
    from .documents.document import Document
    from .encoding.encoder import Encoder
    from .retriever import AddResult, Hit, PassageRef, Retriever

__all__ = ["AddResult", "Document", "Encoder", "Hit", "PassageRef", "Retriever", "__version__"]

_LAZY = {
    "Retriever": "retriever",
    "Hit": "retriever",
    "PassageRef": "retriever",
    "AddResult": "retriever",
    "Encoder": "encoding.encoder",
    "Document": "documents.document",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(mod, name)
    raise AttributeError(f"module 'tase_search' has no attribute {name!r}")


# Old import paths. The modules now live in folders by role; code written against the old flat paths
# keeps working: ``import tase_search.readers`` gives the module at its new home (the same module
# object, with a DeprecationWarning), and the two modules that only re-exported names
# (``tase_search.encoder``, ``tase_search.onnx_query``) are made on import from the tables below.
# Nothing here is imported until such a path is used.
_MOVED = {
    "analysis": "text.analysis",
    "backends": "encoding.backends",
    "by_vector": "query.by_vector",
    "cache": "runtime.cache",
    "calibration": "query.calibration",
    "cli_admin": "cli.admin",
    "cli_common": "cli.common",
    "cli_eval": "cli.eval",
    "cli_home": "cli.home",
    "cli_index": "cli.index",
    "cli_model": "cli.model",
    "cli_query": "cli.query",
    "cli_ray": "cli.ray",
    "cli_serve": "cli.serve",
    "cli_sparse": "cli.sparse",
    "cli_train": "cli.train",
    "config": "runtime.config",
    "external": "encoding.external",
    "formats": "evaluation.labelled_data",
    "fusion": "query.fusion",
    "highlight": "text.highlight",
    "home": "runtime.home",
    "ingest": "documents.ingest",
    "inputs": "documents.inputs",
    "language": "text.language",
    "modes": "query.modes",
    "paths": "runtime.paths",
    "preflight": "runtime.preflight",
    "progress": "runtime.progress",
    "readers": "documents.readers",
    "search": "query.searcher",
    "search_options": "query.options",
    "served_index": "server.served_index",
    "server_run": "server.run",
    "server_schema": "server.schema",
    "sniff": "documents.sniff",
    "threads": "runtime.threads",
}
_REEXPORTS = {
    "encoder": {
        "DocumentEncoder": "encoding.protocols:DocumentEncoder",
        "Encoder": "encoding.encoder:Encoder",
        "LOADERS": "encoding.light_layout:LOADERS",
        "LOADER_ENV": "encoding.light_layout:LOADER_ENV",
        "LightLayout": "encoding.light_layout:LightLayout",
        "LightSentenceModel": "encoding.light_model:LightSentenceModel",
        "Passage": "encoding.passages:Passage",
        "QueryEncoder": "encoding.protocols:QueryEncoder",
        "canonical_parameters": "encoding.fingerprint:canonical_parameters",
        "cpu_supports_bf16": "encoding.precision:cpu_supports_bf16",
        "inspect_light_layout": "encoding.light_layout:inspect_light_layout",
        "load_sentence_transformer": "encoding.st_loader:load_sentence_transformer",
        "loader_choice": "encoding.light_layout:loader_choice",
        "resolve_precision": "encoding.precision:resolve_precision",
        "to_bf16": "encoding.precision:to_bf16",
        "tokenizer_lowercases": "encoding.passages:tokenizer_lowercases",
        "weights_fingerprint": "encoding.fingerprint:weights_fingerprint",
        "EncoderLike": "encoding.protocols:DocumentEncoder",
    },
    "onnx_query": {
        "LightQueryEncoder": "encoding.query_bundle:LightQueryEncoder",
        "MAX_BATCH": "encoding.onnx_runtime:MAX_BATCH",
        "MIN_PROBE_COSINE": "encoding.agreement:MIN_EXPORT_COSINE",
        "OPSET": "encoding.onnx_runtime:OPSET",
        "OnnxQueryEncoder": "encoding.onnx_runtime:OnnxQueryEncoder",
        "PROBE_TEXTS": "encoding.onnx_runtime:PROBE_TEXTS",
        "cache_dir": "runtime.cache:cache_dir",
        "export": "encoding.onnx_runtime:export",
        "graph_key": "encoding.onnx_runtime:graph_key",
        "l2_normalize": "encoding.onnx_runtime:l2_normalize",
        "missing_modules": "encoding.onnx_runtime:missing_modules",
    },
}


def _new_home(old: str) -> str | None:
    """``tase_search.readers`` -> ``tase_search.documents.readers`` (a moved package's submodules too)."""
    head, dot, tail = old[len(__name__) + 1 :].partition(".")
    if head in _MOVED:
        return f"{__name__}.{_MOVED[head]}{dot}{tail}"
    return None


class _OldPaths:
    """Finder and loader of the old import paths, first on ``sys.meta_path`` so that a moved package's
    submodules resolve to the one module object at the new home, never to a second copy."""

    def __init__(self) -> None:
        self._specs: dict[str, Any] = {}

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not fullname.startswith(__name__ + "."):
            return None
        if fullname[len(__name__) + 1 :] in _REEXPORTS or _new_home(fullname) is not None:
            from importlib.util import spec_from_loader

            return spec_from_loader(fullname, self)
        return None

    def create_module(self, spec: Any) -> Any:
        import importlib
        import warnings

        new = _new_home(spec.name)
        module = None
        if new is not None:
            module = importlib.import_module(new)
            self._specs[spec.name] = module.__spec__
        warnings.warn(
            f"{spec.name} is an old import path: import from {new or 'tase_search.encoding'}",
            DeprecationWarning,
            stacklevel=2,
        )
        return module

    def exec_module(self, module: Any) -> None:
        name = module.__spec__.name
        if name in self._specs:  # the module at its new home: give it back its own spec
            module.__spec__ = self._specs.pop(name)
            return
        table = _REEXPORTS[name[len(__name__) + 1 :]]
        module.__all__ = sorted(table)

        def attribute(attr: str) -> Any:
            import importlib

            if attr not in table:
                raise AttributeError(f"module {name!r} has no attribute {attr!r}")
            where, _, real = table[attr].partition(":")
            return getattr(importlib.import_module(f"{__name__}.{where}"), real)

        module.__getattr__ = attribute


def _install_old_paths() -> None:
    import sys

    if not any(type(f).__name__ == "_OldPaths" for f in sys.meta_path):
        sys.meta_path.insert(0, _OldPaths())


_install_old_paths()
