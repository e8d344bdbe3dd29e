"""``tase-search sparse build``: give an existing index its keyword (BM25) part.

For indexes built without one (before keyword search existed, or with ``--no-sparse``): the part is
made from the stored text, so no model is loaded and nothing is re-embedded, and it is written as a
new generation through the same crash-safe commit as any other change.
"""

from __future__ import annotations

import time

import click

from .common import _index_option, _root_option

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group("sparse", context_settings=CONTEXT)
def sparse_group() -> None:
    """The keyword (BM25) part of an index, used by `query --mode sparse|hybrid|auto`."""


@sparse_group.command("build", context_settings=CONTEXT)
@click.argument("index_arg", metavar="[INDEX]", required=False)
@_index_option
@_root_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def build_cmd(index_arg: str | None, index: str | None, root: str | None, as_json: bool) -> None:
    """Build the keyword part of the index (--index) from its stored text (no re-embedding, no model).

    An index that already has a current keyword part is left as it is; an out-of-date one (written
    by an older version) is rebuilt. The index as a positional INDEX still works, but is deprecated:
    every command names it with --index.

    \b
    Examples:
      tase-search sparse build --index haberler
      tase-search sparse build --index ./indexes/haberler --json
    """
    from ..retriever import Retriever
    from .common import _echo_json, _index_path, _note_write

    if index_arg is not None:
        if index is not None and index != index_arg:
            raise click.UsageError(f"give the index once: --index {index} or {index_arg}, not both")
        click.echo(
            f"note: `sparse build {index_arg}` is deprecated; write `sparse build --index {index_arg}`",
            err=True,
        )
    path = _index_path(index or index_arg, root)
    r = Retriever.load(path)
    _note_write(path)
    t0 = time.perf_counter()
    n = r.build_sparse()
    elapsed = time.perf_counter() - t0
    result = {
        "index": str(path),
        "action": "built" if n else "unchanged",
        "passages": n,
        "generation": r.manifest.generation,
        "seconds": round(elapsed, 3),
    }
    if as_json:
        _echo_json(result)
    elif n:
        click.echo(
            f"built the keyword part of {path}: {n:,} passages in {elapsed:.1f}s "
            f"(generation {result['generation']})"
        )
    else:
        click.echo(f"{path} already has a current keyword part; nothing was changed")
