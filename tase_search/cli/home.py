"""``tase-search list`` and ``tase-search cache clean``: what is in the index home and the cache.

Neither loads a model, torch or FAISS: ``list`` reads manifests, ``cache clean`` removes files.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@click.command("list", context_settings=CONTEXT)
@click.option(
    "--root",
    default=None,
    metavar="DIR",
    help="Where named indexes live (default: the user data directory). Env: TASE_SEARCH_INDEX_ROOT.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one object per index.")
def list_cmd(root: str | None, as_json: bool) -> None:
    """List the named indexes: documents, passages, model, index type, size on disk.

    \b
    Examples:
      tase-search list
      tase-search list --root ./indexes --json
    """
    from ..runtime.config import load_settings
    from ..runtime.home import list_indexes

    folder = Path(load_settings(index_root=root).index_root).expanduser()
    found = list_indexes(folder)
    if as_json:
        for s in found:
            click.echo(json.dumps(s.to_dict(), ensure_ascii=False))
        return
    if not found:
        click.echo(f"no indexes in {folder} (build one: tase-search index CORPUS --index NAME)")
        return
    click.echo(f"indexes in {folder}:")
    width = max(len(s.name) for s in found)
    for s in found:
        if s.problem:
            click.echo(f"  {s.name:<{width}}  {_human_bytes(s.bytes_on_disk):>9}  damaged: {s.problem}")
            continue
        click.echo(
            f"  {s.name:<{width}}  {s.documents:>9,} docs  {s.passages:>9,} passages  "
            f"{_human_bytes(s.bytes_on_disk):>9}  {s.factory}  model {s.model}"
        )


@click.group("cache", context_settings=CONTEXT)
def cache_group() -> None:
    """The user cache: ONNX query graphs left by earlier versions (indexes now keep their own)."""


@cache_group.command("clean", context_settings=CONTEXT)
@click.option("--dry-run", "-n", is_flag=True, help="Only say what would be removed.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def cache_clean_cmd(dry_run: bool, as_json: bool) -> None:
    """Remove the ONNX query graphs, tokenizers and query bundles earlier versions cached (~90 MB per model).

    Safe at any time: nothing reads them any more (each index keeps its query bundle in its own
    directory). Env: TASE_SEARCH_CACHE_DIR moves the cache.

    \b
    Examples:
      tase-search cache clean --dry-run
      tase-search cache clean
    """
    from ..runtime.cache import clean_onnx_cache

    rep = clean_onnx_cache(dry_run=dry_run)
    if as_json:
        click.echo(
            json.dumps(
                {"path": str(rep.path), "files": rep.files, "bytes": rep.bytes, "dry_run": rep.dry_run},
                ensure_ascii=False,
            )
        )
        return
    verb = "would free" if dry_run else "freed"
    click.echo(f"{verb} {_human_bytes(rep.bytes)} ({rep.files} files) in {rep.path}")
