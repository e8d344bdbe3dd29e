"""``tase-search index``: build an index from corpus files, or append to one (locally or on Ray)."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from .cli_common import (
    CONTEXT,
    _check_unlocked,
    _echo_json,
    _index_option,
    _index_path,
    _load_encoder,
    _model_option,
    _note_write,
    _precision_option,
    _progress_options,
    _reporter,
    _root_option,
    _settings,
    _threads_option,
    _use_threads,
)
from .errors import IndexExists

INDEX_TYPES = {
    "auto": None,
    "flat": "Flat",
    "hnsw": "HNSW32,Flat",
    "ivf": "IVF256,Flat",
    "ivf-sq8": "IVF256,SQ8",
}


@click.command("index", context_settings=CONTEXT)
@click.argument("corpus", nargs=-1, required=True)
@_index_option
@_root_option
@_model_option
@click.option(
    "--index-type",
    type=click.Choice(list(INDEX_TYPES)),
    default="auto",
    show_default=True,
    help="auto picks by corpus size: Flat (exact) < 50k passages <= HNSW < 5M <= IVF.",
)
@click.option(
    "--factory", default=None, help="A FAISS factory string, overriding --index-type (e.g. 'HNSW32,Flat')."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["txt", "jsonl", "tsv", "csv"]),
    default=None,
    help="Force the input format (default: from the file extension; '-' is txt).",
)
@click.option("--text-column", default=None, help="Column / JSON field holding the text (default 'text').")
@click.option(
    "--id-column",
    default=None,
    help="Column / JSON field holding the document id (default 'id' when present).",
)
@click.option(
    "--encoding-errors",
    type=click.Choice(["strict", "replace"]),
    default="strict",
    show_default=True,
    help="strict: invalid UTF-8 is an error naming file and line; replace: use U+FFFD.",
)
@click.option(
    "--reader-limit",
    "reader_limits",
    multiple=True,
    metavar="NAME=N",
    help="Raise a corpus reader limit (max_line_bytes, max_columns, max_json_depth, max_int_digits, "
    "max_gzip_ratio, gzip_ratio_after_bytes); repeatable.",
)
@click.option(
    "--on-duplicate",
    type=click.Choice(["error", "skip", "replace"]),
    default="error",
    show_default=True,
    help="What to do with a document id that is already indexed.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing index instead of appending to it.")
@click.option(
    "--sparse/--no-sparse",
    default=True,
    show_default=True,
    help="A new index also gets a keyword (BM25) part for --mode sparse/hybrid searches; appending keeps "
    "what the index has.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 65536),
    default=None,
    help="Encoding batch size (default 64). Env: TASE_SEARCH_BATCH_SIZE.",
)
@_precision_option
@click.option(
    "--backend",
    type=click.Choice(["auto", "torch", "ct2-int8", "openvino"]),
    default="auto",
    show_default=True,
    help="Document encoding: auto is ct2-int8 (CTranslate2 int8, pip install 'tase-search[fast]') where it "
    "runs and the CPU lacks native bf16, else torch; converted once per model (tase-search model export).",
)
@_threads_option
@_progress_options
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="ray: embed on a Ray cluster (pip install 'tase-search[ray]'); the same index at the end.",
)
@click.option(
    "--address",
    default=None,
    help="With --engine ray: 'auto' or HOST:PORT of a running cluster (default: start Ray here).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 100_000),
    default=2,
    show_default=True,
    help="With --engine ray: encoder actors (one model copy each).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def index_cmd(
    corpus: tuple[str, ...],
    index: str | None,
    root: str | None,
    model: str | None,
    index_type: str,
    factory: str | None,
    fmt: str | None,
    text_column: str | None,
    id_column: str | None,
    encoding_errors: str,
    reader_limits: tuple[str, ...],
    on_duplicate: str,
    overwrite: bool,
    sparse: bool,
    batch_size: int | None,
    precision: str | None,
    backend: str,
    threads: int | None,
    quiet: bool,
    force_progress: bool,
    engine: str,
    address: str | None,
    workers: int,
    as_json: bool,
) -> None:
    """Build an index from CORPUS files, or append to an existing one.

    CORPUS: .txt (one document per line), .jsonl ('text', optional 'id', other fields become
    metadata), .tsv/.csv (header row; --text-column/--id-column), each optionally .gz; '-' reads stdin.
    Long documents are split into overlapping passages that fit the model. Appending embeds only the
    new documents: one identical to an indexed one (same text and metadata, and the same id if it has
    one) is left out as unchanged, so indexing the same file again adds nothing. The index is replaced
    atomically: a crash or Ctrl-C leaves the old one intact.

    \b
    Examples:
      tase-search index corpus.txt --index haberler
      tase-search index more.jsonl --index haberler --on-duplicate skip
      cat notes.txt | tase-search index - --index notlar
      tase-search index big.tsv.gz --text-column body --id-column doc_id --factory 'HNSW32,Flat'
      nohup tase-search index big.txt --index big --threads 4 > index.log 2>&1 &   # progress as log lines
      tase-search index shards/*.jsonl --index big --engine ray --address auto --workers 16
    """
    if factory and index_type != "auto":
        raise click.UsageError("give either --index-type or --factory, not both")
    if corpus.count("-") > 1:
        raise click.UsageError("stdin ('-') can be given only once")
    for c in corpus:
        if c != "-" and not Path(c).exists():
            raise click.BadParameter(f"file {c!r} does not exist", param_hint="CORPUS")
    s = _settings(model=model, batch_size=batch_size, precision=precision, index_root=root, threads=threads)
    n_threads = _use_threads(s)  # before torch is imported
    from .readers import ReaderLimits, ReadStats, read_corpus
    from .retriever import Retriever

    limits = ReaderLimits.parse(reader_limits)
    path = _index_path(index, root)
    chosen_factory = factory or INDEX_TYPES[index_type]
    stats = ReadStats()
    report = _reporter(s, quiet, force_progress, total=_count_lines(corpus))
    if engine == "ray":
        from .cli_ray import index_on_ray

        run = index_on_ray(
            corpus, path, model, s, report, chosen_factory, fmt, text_column, id_column,
            encoding_errors, limits, on_duplicate, overwrite, sparse, address, workers,
        )  # fmt: skip
        _index_summary(path, run.retriever, run.added, run.action, run.stats, run.seconds, n_threads, as_json)
        return
    if address is not None:
        raise click.UsageError("--address applies to --engine ray")

    def docs() -> Iterator[Any]:
        for c in corpus:
            report.stage(f"reading {c if c != '-' else '<stdin>'}")
            yield from read_corpus(
                c,
                fmt=fmt,
                text_column=text_column,
                id_column=id_column,
                encoding_errors=encoding_errors,
                stats=stats,
                limits=limits,
            )

    stream = docs()
    first = next(stream, None)  # read (and check) the input before loading a model or touching the index
    if first is None:
        empty = f" ({stats.skipped_empty} empty lines skipped)" if stats.skipped_empty else ""
        raise click.ClickException(f"no documents in {', '.join(corpus)}{empty}: nothing to index")
    all_docs = itertools.chain([first], stream)
    append = Retriever.exists(path) and not overwrite
    _check_unlocked(path)  # a writer holding the lock: say so now, not after the model load
    existing = Retriever.load(path) if append else None
    if existing is not None and chosen_factory:
        click.echo(
            f"note: {path} exists; appending with its own index type (ignoring --index-type/--factory)",
            err=True,
        )
    spec = model or (existing.manifest.model.id if existing is not None else s.model)
    seq_len = existing.manifest.model.max_seq_length if existing is not None else s.max_seq_length
    if existing is not None and s.max_seq_length and s.max_seq_length != seq_len:
        click.echo(
            f"note: {path} splits passages at {seq_len} tokens (its max_seq_length); the setting "
            f"max_seq_length={s.max_seq_length} applies to new indexes (--overwrite rebuilds this one with it)",
            err=True,
        )
    encoder = _load_encoder(spec, s, report, n_threads, seq_len or None, backend=backend)
    _note_write(path)
    t0 = time.perf_counter()
    res: Any = None
    with report:
        report.stage(f"embedding {report.total:,} lines" if report.total else "embedding")
        if existing is None:
            try:
                r = Retriever.build(
                    all_docs,
                    model=encoder,
                    path=path,
                    factory=chosen_factory,
                    overwrite=overwrite,
                    on_duplicate=on_duplicate,
                    overlap=s.overlap_tokens,
                    progress=report,
                    sparse=sparse,
                )
                res, action = r.last_add, "built"
            except IndexExists:  # another process created it since we looked: append to that one
                existing = Retriever.load(path)
        if existing is not None:
            r = Retriever.load(path, model=encoder)
            res = r.add(all_docs, on_duplicate=on_duplicate, progress=report)
            action = "appended to" if res.added or res.replaced else "unchanged"
    elapsed = time.perf_counter() - t0
    report.close()
    _index_summary(path, r, res, action, stats, elapsed, n_threads, as_json)


def _index_summary(
    path: Path, r: Any, res: Any, action: str, stats: Any, elapsed: float, n_threads: int, as_json: bool
) -> None:
    """Print what an index command did: one line (and notes on stderr), or one JSON object."""
    info = r.info()
    summary = {
        "index": str(path),
        "action": action,
        "added": res.added,
        "passages_added": res.passages,
        "unchanged": res.unchanged,
        "skipped_empty": stats.skipped_empty + res.skipped_empty,
        "skipped_duplicate": res.skipped_duplicate,
        "replaced": res.replaced,
        "replaced_encoding": stats.replaced_encoding,
        "documents": info["documents"],
        "passages": info["passages"],
        "factory": info["factory"],
        "model": info["model"],
        "threads": n_threads,
        "document_backend": getattr(r.encoder, "backend", "torch"),
        "seconds": round(elapsed, 3),
        "docs_per_second": round(res.added / elapsed, 1) if elapsed > 0 else None,
    }
    if as_json:
        _echo_json(summary)
        return
    done = f"{res.added} added ({res.passages} passages)"
    if res.unchanged:
        done += f", {res.unchanged} unchanged (already indexed)"
    click.echo(
        f"{action} {path}: {done} in {elapsed:.1f}s"
        f" — now {info['documents']} documents, {info['passages']} passages, {info['factory']}, model {info['model']}"
    )
    if summary["skipped_empty"]:
        click.echo(f"skipped {summary['skipped_empty']} empty lines", err=True)
    if res.skipped_duplicate:
        click.echo(
            f"skipped {res.skipped_duplicate} documents whose id was already indexed with other content",
            err=True,
        )
    if stats.replaced_encoding:
        click.echo(f"replaced invalid UTF-8 on {stats.replaced_encoding} lines", err=True)


def _count_lines(corpus: tuple[str, ...]) -> int | None:
    """Line count of plain files for the progress total (None for stdin / compressed input)."""
    total = 0
    for c in corpus:
        if c == "-" or c.endswith(".gz") or not os.path.isfile(c):  # a FIFO or device: never read twice
            return None
        try:
            with open(c, "rb") as fh:
                total += sum(buf.count(b"\n") for buf in iter(lambda: fh.read(1 << 20), b""))
        except OSError:
            return None
    return total
