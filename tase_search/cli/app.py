"""The ``tase-search`` command line: a thin layer over the library (parse, call, print).

Heavy modules (torch, faiss, sentence-transformers) are imported inside commands, so
``tase-search --help``, ``--version`` and ``info`` start fast.
"""

from __future__ import annotations

import os

import click

from .._version import __version__
from .admin import delete_cmd, demo_cmd, export_cmd, info_cmd, models_cmd, optimize_cmd, verify_cmd
from .common import CONTEXT, _echo_json, _Group, _index_path, _note_write, _settings, _text_arg
from .index import INDEX_TYPES, index_cmd
from .query import query_cmd

# oneDNN caches a compiled kernel ("primitive") per input shape, 1024 by default. Batches of
# length-sorted text come in many shapes, so during a long `index` run the cache grew the process by
# ~0.3 GB at 30k documents (peak RSS 1.21 GB vs 0.89 GB with a cap of 16) and encoding was not slower
# with the cap (measured 349-371 vs 313-322 docs/s). Set before torch loads; a user's value wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")

__all__ = [
    "CONTEXT",
    "INDEX_TYPES",
    "_echo_json",
    "_index_path",
    "_note_write",
    "_settings",
    "_text_arg",
    "main",
]


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, "--version", "-V", prog_name="tase-search")
def main() -> None:
    """Turkish and English<->Turkish semantic search.

    \b
    Examples:
      tase-search demo                                  # index the bundled Turkish demo corpus, run queries
      tase-search index haberler.txt --index haberler   # build or extend an index
      tase-search query "futbol maçı" --index haberler -k 5
      tase-search query "football match" --index haberler --json
      tase-search query Turkcell --mode hybrid --index haberler   # keywords and meaning, fused
      tase-search sparse build --index eski                       # keyword search for an older index
      tase-search info --index haberler
      tase-search list                                  # the named indexes, their sizes and models
      tase-search cache clean                           # remove cached ONNX query graphs
    """


def _register_optional() -> None:
    """Each command lives in a module of its own (all light to import); ``main`` only collects them."""
    for command in (
        index_cmd,
        query_cmd,
        info_cmd,
        delete_cmd,
        verify_cmd,
        optimize_cmd,
        export_cmd,
        models_cmd,
        demo_cmd,
    ):
        main.add_command(command)
    from .home import cache_group, list_cmd
    from .model import model_group

    main.add_command(list_cmd, "list")
    main.add_command(cache_group, "cache")
    main.add_command(model_group, "model")
    try:
        from .eval import eval_group

        main.add_command(eval_group, "eval")
    except ImportError:  # pragma: no cover - module missing in a partial install
        pass
    try:
        from .train import train

        main.add_command(train, "train")
    except ImportError:  # pragma: no cover
        pass
    from .serve import serve_cmd

    main.add_command(serve_cmd, "serve")
    from .sparse import sparse_group

    main.add_command(sparse_group, "sparse")


_register_optional()
