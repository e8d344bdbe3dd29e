"""The small commands over an index or the model registry: ``info``, ``delete``, ``verify``,
``optimize``, ``export``, ``models`` and ``demo``."""

from __future__ import annotations

import os
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import click

from .common import (
    CONTEXT,
    _check_unlocked,
    _echo_json,
    _index_option,
    _index_path,
    _load_encoder,
    _model_option,
    _note_write,
    _progress_options,
    _reporter,
    _root_option,
    _settings,
    _text_arg,
    _threads_option,
    _use_threads,
)
from .home import _human_bytes
from .query import _print_hits

#: Exit status of a ``delete`` whose ids matched no document (nothing was written).
NOTHING_MATCHED = 1


@click.command("info", context_settings=CONTEXT)
@_index_option
@_root_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info_cmd(index: str | None, root: str | None, as_json: bool) -> None:
    """Show what an index holds: documents, passages, model, index type, size, versions.

    \b
    Examples:
      tase-search info --index haberler
      tase-search info --index ./indexes/haberler --json
    """
    from ..retriever import Retriever

    info = Retriever.load(_index_path(index, root)).info()
    if as_json:
        _echo_json(info)
        return
    rows = [
        ("path", info["path"]),
        ("documents", info["documents"]),
        ("passages", info["passages"]),
        ("model", f"{info['model']} (weights {info['model_fingerprint'][:12]})"),
        ("dimension", info["dimension"]),
        ("index type", f"{info['factory']} ({info['index_type']}, {info['metric']})"),
        ("search params", info["search_params"] or "-"),
        ("keyword search", _sparse_line(info)),
        ("size on disk", _human_bytes(info["bytes_on_disk"])),
        ("generation", info["generation"]),
        ("created", info["created"]),
        ("updated", info["updated"]),
        ("sources", ", ".join(f"{k or '-'} ({v})" for k, v in info["sources"].items()) or "-"),
    ]
    if info["tombstones"]:
        rows.insert(3, ("deleted, pending", info["tombstones"]))
    for key, val in rows:
        click.echo(f"{key:>16}  {val}")


def _sparse_line(info: dict[str, Any]) -> str:
    if info["sparse"] == "current":
        return "BM25 (sparse part current)"
    add = f"add it with `tase-search sparse build --index {info['path']}`"
    if info["sparse"] == "none":
        return f"none: dense only; {add}"
    return f"out of date ({info['sparse']}); {add}"


@click.command("delete", context_settings=CONTEXT)
@click.argument("ids", nargs=-1, required=True)
@_index_option
@_root_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def delete_cmd(ids: tuple[str, ...], index: str | None, root: str | None, as_json: bool) -> None:
    """Delete documents by id. '-' reads ids from stdin, one per line.

    Exits 1 when no id matched: nothing is deleted and no new version of the index is written.

    \b
    Examples:
      tase-search delete 17 42 --index haberler
      tase-search query "eski haber" --index haberler --json | jq -r .id | tase-search delete - --index haberler
    """
    from ..retriever import Retriever

    wanted = [line.strip() for line in sys.stdin if line.strip()] if ids == ("-",) else list(ids)
    wanted = [_text_arg(i) for i in wanted]
    path = _index_path(index, root)
    r = Retriever.load(path)
    _note_write(path)
    deleted = r.delete(wanted)
    missing = sorted(set(wanted) - set(deleted))
    if as_json:
        _echo_json(
            {"index": str(r.path), "deleted": deleted, "missing": missing, "documents": r.manifest.documents}
        )
    elif deleted:
        click.echo(f"deleted {len(deleted)} documents from {r.path}; {r.manifest.documents} remain")
    shown = f"{', '.join(missing[:20])}{' …' if len(missing) > 20 else ''}"
    if not deleted:
        click.echo(
            f"nothing deleted: no document in {r.path} has the id{'s' if len(missing) > 1 else ''} {shown} "
            "(the index is unchanged; "
            "`tase-search query ... --json` shows ids)",
            err=True,
        )
        sys.exit(NOTHING_MATCHED)
    if missing:
        click.echo(f"not found: {shown}", err=True)


@click.command("verify", context_settings=CONTEXT)
@click.argument("index_arg", metavar="INDEX", required=False)
@_index_option
@_root_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def verify_cmd(index_arg: str | None, index: str | None, root: str | None, as_json: bool) -> None:
    """Check an index deeply: checksums, SQLite integrity, FAISS/SQLite/manifest agreement.

    Exits 1 and lists the problems when anything is wrong.

    \b
    Examples:
      tase-search verify --index haberler
      tase-search verify --index ./indexes/haberler --json
    """
    from ..store.verify import verify_index

    rep = verify_index(_index_path(index_arg or index, root))
    if as_json:
        _echo_json(rep.to_dict())
    else:
        for c in rep.checked:
            click.echo(f"  ok    {c}")
        for p in rep.problems:
            click.echo(f"  FAIL  {p}")
        click.echo(f"{rep.path}: {'OK' if rep.ok else 'CORRUPT'}")
    if not rep.ok:
        sys.exit(1)


@click.command("optimize", context_settings=CONTEXT)
@click.argument("index_arg", metavar="INDEX", required=False)
@_index_option
@_root_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def optimize_cmd(index_arg: str | None, index: str | None, root: str | None, as_json: bool) -> None:
    """Merge every segment of an index into one, dropping deleted documents' rows.

    Writes run small merges on their own; this is the whole merge, for an index that will mostly be
    read from now on. Crash-safe like every write: a kill leaves the old segments or the merged one.
    Nothing is written when the index is already one segment without deletions.

    \b
    Examples:
      tase-search optimize --index haberler
      tase-search optimize ./indexes/haberler --json
    """
    from ..retriever import Retriever

    path = _index_path(index_arg or index, root)
    r = Retriever.load(path)
    _note_write(path)
    before = r.manifest.generation
    done = r.optimize()
    written = done["generation"] != before
    if as_json:
        _echo_json({"index": str(r.path), **done, "written": written, "documents": r.manifest.documents})
    elif not written:
        click.echo(f"{r.path} is already one segment without deletions; nothing was written")
    else:
        click.echo(
            f"optimized {r.path}: {done['segments_before']} segments -> {done['segments_after']} "
            f"(generation {done['generation']}, {r.manifest.documents} documents)"
        )


@click.command("export", context_settings=CONTEXT)
@_index_option
@_root_option
@click.option(
    "--portable",
    is_flag=True,
    required=True,
    help="Copy the index's query graph into it, so copies of the index keep the fast query path.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def export_cmd(index: str | None, root: str | None, portable: bool, as_json: bool) -> None:
    """Make an index self-contained for copying to another machine.

    The query graph (the torch-free query path) is kept once per model in this machine's graph store,
    not in each index; --portable puts a copy inside the index (tens of MB), so an index copied
    elsewhere answers queries without loading the model there. Later writes keep it up to date.

    \b
    Examples:
      tase-search export --portable --index haberler
      tar czf haberler.tgz -C ~/.local/share/tase-search/indexes haberler
    """
    from ..encoding.query_bundle import make_portable
    from ..store.lock import WriterLock

    path = _index_path(index, root)
    with WriterLock(path):
        graph = make_portable(path)
    size = graph.stat().st_size
    if as_json:
        _echo_json({"index": str(path), "graph": str(graph), "bytes": size})
    else:
        click.echo(f"{path}: the query graph is inside the index now ({_human_bytes(size)}, {graph.name})")


# --------------------------------------------------------------------------- models / demo
@click.command("models", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one per model.")
def models_cmd(as_json: bool) -> None:
    """List the registered model names (usable with --model).

    \b
    Example:
      tase-search models
    """
    from ..models import DEFAULT_MODEL, list_models

    for e in list_models():
        if as_json:
            _echo_json(
                {
                    "name": e.name,
                    "default": e.name == DEFAULT_MODEL,
                    "hub_id": e.hub_id,
                    "description": e.description,
                }
            )
        else:
            mark = "*" if e.name == DEFAULT_MODEL else " "
            click.echo(f"{mark} {e.name:<20} {e.description}")


@click.command("demo", context_settings=CONTEXT)
@click.option(
    "--index",
    "index",
    default=None,
    metavar="NAME|DIR",
    help="Where to build the demo index (default: the index named 'demo', under --root).",
)
@_root_option
@_model_option
@click.option("-k", "k", type=click.IntRange(1, 50), default=3, show_default=True, help="Hits per query.")
@_threads_option
@_progress_options
def demo_cmd(
    index: str | None,
    root: str | None,
    model: str | None,
    k: int,
    threads: int | None,
    quiet: bool,
    force_progress: bool,
) -> None:
    """Build an index over the bundled Turkish demo corpus and run a few Turkish and English queries.

    \b
    Example:
      tase-search demo
      tase-search query "deprem" --index demo     # then ask your own questions, from any directory
    """
    s = _settings(model=model, index_root=root, threads=threads)
    n_threads = _use_threads(s)
    from ..documents.readers import read_corpus
    from ..retriever import Retriever

    path = _index_path(index or "demo", root)
    data = resources.files("tase_search") / "data"
    with resources.as_file(data / "demo_tr.jsonl") as jsonl, resources.as_file(data / "demo_tr.txt") as txt:
        docs = list(read_corpus(str(jsonl))) + list(read_corpus(str(txt)))
    queries = [
        q.strip() for q in (data / "demo_queries.txt").read_text(encoding="utf-8").splitlines() if q.strip()
    ]
    _check_unlocked(path)
    report = _reporter(s, quiet, force_progress, total=len(docs))
    encoder = _load_encoder(s.model, s, report, n_threads, s.max_seq_length or None)
    t0 = time.perf_counter()
    # The build leaves the query bundle in the index: the queries below and the suggested
    # `tase-search query` afterwards take the torch-free path.
    with report:
        r = Retriever.build(docs, model=encoder, path=path, overwrite=True, progress=report)
    report.close()
    click.echo(
        f"built {path}: {r.manifest.documents} documents, {r.manifest.rows} passages, model {r.manifest.model.id} "
        f"({time.perf_counter() - t0:.1f}s)\n"
    )
    for q, hits in zip(queries, r.search(queries, k=k)):
        _print_hits(q, hits, False, False)
        click.echo()
    click.echo(
        f'try your own: tase-search query "İstanbul\'da tarihi yerler" {_index_args(index, root, path)}'
    )


def _index_args(index: str | None, root: str | None, path: Path) -> str:
    """The ``--index`` (and ``--root``) arguments that name ``path`` from any working directory."""
    import shlex

    if index is None or not (os.sep in index or index.startswith((".", "~"))):  # a name, under the root
        where = f" --root {shlex.quote(str(Path(root).expanduser().resolve()))}" if root else ""
        return f"--index {shlex.quote(index or 'demo')}{where}"
    return f"--index {shlex.quote(str(path.resolve()))}"
