"""``tase-search sparse build``: give an existing index its keyword (BM25) part.

For indexes built without one (before keyword search existed, or with ``--no-sparse``): the part is
made from the stored text, so no model is loaded and nothing is re-embedded, and it is written as a
new generation through the same crash-safe commit as any other change.
"""

from __future__ import annotations

import time

import click

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group("sparse", context_settings=CONTEXT)
def sparse_group() -> None:
    """The keyword (BM25) part of an index, used by `query --mode sparse|hybrid|auto`."""


@sparse_group.command("build", context_settings=CONTEXT)
@click.argument("index_arg", metavar="INDEX", required=False)
@click.option("--index", "-i", "index", default=None, metavar="NAME|DIR", help="Index name or directory.")
@click.option(
    "--root", default=None, metavar="DIR", help="Where named indexes live. Env: TASE_SEARCH_INDEX_ROOT."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def build_cmd(index_arg: str | None, index: str | None, root: str | None, as_json: bool) -> None:
    """Build the keyword part of INDEX from its stored text (no re-embedding, no model).

    An index that already has a current keyword part is left as it is; an out-of-date one (written
    by an older version) is rebuilt.

    \b
    Examples:
      tase-search sparse build haberler
      tase-search sparse build --index ./indexes/haberler --json
    """
    from .cli_common import _echo_json, _index_path, _note_write
    from .retriever import Retriever

    path = _index_path(index_arg or index, root)
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
