"""``tase-search index``: build an index from corpus files, or append to one (locally or on Ray)."""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from .. import writes as _writes
from ..errors import IndexLocked, TaseSearchError
from ..store import commit as _commit
from ..store.layout import LOCK_NAME
from .common import (
    CONTEXT,
    RegistryChoice,
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
    backend_names,
    format_names,
)

INDEX_TYPES = {
    "auto": None,
    "flat": "Flat",
    "hnsw": "HNSW32,Flat",
    "ivf": "IVF256,Flat",
    "ivf-sq8": "IVF256,SQ8",
}


class _Seconds(click.ParamType):
    """``--wait``'s optional value: seconds (a number), with a hint when a file name was taken for it."""

    name = "seconds"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(
                f"{value!r} is not a number of seconds; write --wait=SECONDS, or put a bare --wait after "
                "the corpus files",
                param,
                ctx,
            )
        if not seconds >= 0:
            self.fail(f"{value!r}: give 0 or more seconds", param, ctx)
        return seconds


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
    type=RegistryChoice(format_names),
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
    "--encoding",
    default="utf-8",
    show_default=True,
    help="The text encoding of the corpus files: utf-8, or a legacy one such as cp1254 (Turkish Windows) "
    "or iso-8859-9 (Latin-5).",
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
    "--max-document-bytes",
    type=click.IntRange(0, None),
    default=None,
    metavar="N",
    help="Leave out (and name on stderr) documents longer than N bytes of UTF-8 text; 0: no limit. "
    "Default 1000000. Env: TASE_SEARCH_MAX_DOCUMENT_BYTES.",
)
@click.option(
    "--wait",
    type=_Seconds(),
    is_flag=False,
    flag_value=math.inf,
    default=None,
    metavar="[SECONDS]",
    help="When another writer holds the index, wait for it (at most SECONDS; write --wait=SECONDS before "
    "the corpus) instead of stopping at once.",
)
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
    type=RegistryChoice(backend_names),
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
    encoding: str,
    encoding_errors: str,
    reader_limits: tuple[str, ...],
    on_duplicate: str,
    overwrite: bool,
    max_document_bytes: int | None,
    wait: float | None,
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
    Long documents are split into overlapping passages that fit the model; one over --max-document-bytes
    (1 MB) is left out and named. Appending embeds only the new documents: one identical to an indexed
    one (same text and metadata, and the same id if it has one) is left out as unchanged, so indexing the
    same file again adds nothing, decided before any model loads. A .txt line's id is made from its text,
    the same in every run. The index is replaced atomically: a crash or Ctrl-C leaves the old one intact.
    Another writer on the same index stops this one at once, or --wait waits for it.

    \b
    Examples:
      tase-search index corpus.txt --index haberler
      tase-search index more.jsonl --index haberler --on-duplicate skip
      cat notes.txt | tase-search index - --index notlar
      tase-search index eski.txt --index haberler --encoding cp1254     # Turkish Windows text
      tase-search index more.txt --index haberler --wait=600            # after the writer running now
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
    s = _settings(
        model=model,
        batch_size=batch_size,
        precision=precision,
        index_root=root,
        threads=threads,
        max_document_bytes=max_document_bytes,
    )
    n_threads = _use_threads(s)  # before torch is imported
    from ..documents.document import ReadStats
    from ..documents.limits import ReaderLimits
    from ..documents.read_options import ReadOptions
    from ..documents.readers import check_encoding
    from ..retriever import Retriever

    encoding = check_encoding(encoding)
    options = ReadOptions.with_limits(
        ReaderLimits.parse(reader_limits),
        fmt=fmt,
        text_column=text_column,
        id_column=id_column,
        encoding_errors=encoding_errors,
        encoding=encoding,
    )
    path = _index_path(index, root)
    chosen_factory = factory or INDEX_TYPES[index_type]
    stats = ReadStats()
    report = _reporter(s, quiet, force_progress, total=_count_lines(corpus))
    if engine == "ray":
        if encoding != "utf-8":
            raise click.UsageError("--encoding applies to --engine local; convert the files to UTF-8 for Ray")
        from .ray import index_on_ray

        _wait_for_lock(path, wait, report)
        run = index_on_ray(
            corpus, path, model, s, report, chosen_factory, options, on_duplicate, overwrite, sparse,
            address, workers,
        )  # fmt: skip
        backend_used = getattr(run.retriever.encoder, "backend", "torch")
        _index_summary(
            path,
            run.retriever,
            run.added,
            run.action,
            run.stats,
            run.seconds,
            n_threads,
            backend_used,
            as_json,
        )
        return
    if address is not None:
        raise click.UsageError("--address applies to --engine ray")
    too_big = _TooBig(s.max_document_bytes)

    def docs(read_stats: ReadStats) -> Iterator[Any]:
        for c in corpus:
            report.stage(f"reading {c if c != '-' else '<stdin>'}")
            yield from too_big.drop(options.read(c, read_stats))

    stream = docs(stats)
    first = next(stream, None)  # read (and check) the input before loading a model or touching the index
    if first is None:
        empty = f" ({stats.skipped_empty} empty lines skipped)" if stats.skipped_empty else ""
        big = f" ({too_big.count} over max_document_bytes skipped)" if too_big.count else ""
        raise click.ClickException(f"no documents in {', '.join(corpus)}{empty}{big}: nothing to index")
    all_docs: Iterator[Any] = itertools.chain([first], stream)
    append = _writes.will_append(path, overwrite)
    if not append:
        _commit.refuse_foreign(path)  # before the lock file is made in a directory that is not an index
    unborn = not path.exists()
    # Held from before the model loads to the end of the write (whose commit joins it): a second writer
    # is refused (or waits, --wait) at once, not after its own model load.
    lock = _wait_for_lock(path, wait, report, hold=True)
    try:
        existing = Retriever.load(path) if append else None
        if existing is not None and model is None:  # a --model given is checked against the index first
            t0 = time.perf_counter()
            rereadable = "-" not in corpus
            again = lambda: docs(_reset(stats, too_big))  # noqa: E731 - a second read of the files
            unchanged, all_docs = _nothing_to_embed(path, existing.manifest, all_docs, again, rereadable)
            if unchanged is not None:
                lock.release()
                from ..results import AddResult

                res = AddResult(unchanged=unchanged)
                elapsed = time.perf_counter() - t0
                report.close()
                _index_summary(path, existing, res, "unchanged", stats, elapsed, n_threads, None, as_json)
                too_big.note()
                return
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
                f"max_seq_length={s.max_seq_length} applies to new indexes (--overwrite rebuilds this one "
                "with it)",
                err=True,
            )
        encoder = _load_encoder(spec, s, report, n_threads, seq_len or None, backend=backend)
        # chunks embedded by a run that was stopped are taken back; this run's are kept until it commits
        from ..encoding.staged import StagedEncoder, staging_root

        encoder = StagedEncoder(encoder, staging_root(path))
        writer = Retriever.load(path, model=encoder) if existing is not None else None
    except BaseException:
        lock.release()
        if unborn:
            _commit.remove_unborn(path)
        raise
    _note_write(path)
    t0 = time.perf_counter()

    def build() -> tuple[Any, Any]:
        r = Retriever.build(
            all_docs, model=encoder, path=path, factory=chosen_factory, overwrite=overwrite,
            on_duplicate=on_duplicate, overlap=s.overlap_tokens, progress=report, sparse=sparse,
        )  # fmt: skip
        return r, r.last_add

    def add() -> tuple[Any, Any]:  # to this index, or to one another process created since we looked
        r = writer if writer is not None else Retriever.load(path, model=encoder)
        return r, r.add(all_docs, on_duplicate=on_duplicate, progress=report)

    try:
        with report:
            report.stage(f"embedding {report.total:,} lines" if report.total else "embedding")
            done = _writes.build_or_append(
                path, build=build, append=add, overwrite=overwrite, appending=existing is not None
            )
    except BaseException:
        if unborn:
            _commit.remove_unborn(path)
        if encoder.root.is_dir():
            click.echo(
                f"note: the passages embedded so far are kept in {encoder.root}; the same command embeds "
                "only the rest",
                err=True,
            )
        raise
    finally:
        lock.release()
    encoder.finished()
    if encoder.reused:
        click.echo(
            f"note: {encoder.reused:,} passages embedded by an earlier, stopped run were reused", err=True
        )
    elapsed = time.perf_counter() - t0
    report.close()
    backend_used = getattr(encoder, "backend", "torch")
    _index_summary(
        path, done.retriever, done.result, done.action, stats, elapsed, n_threads, backend_used, as_json
    )
    too_big.note()


def _index_summary(
    path: Path,
    r: Any,
    res: Any,
    action: str,
    stats: Any,
    elapsed: float,
    n_threads: int,
    document_backend: str | None,
    as_json: bool,
) -> None:
    """Print what an index command did: one line (and notes on stderr), or one JSON object.
    ``document_backend`` is None when no model was loaded (nothing to embed)."""
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
        "document_backend": document_backend,
        "seconds": round(elapsed, 3),
        "docs_per_second": round(res.added / elapsed, 1) if elapsed > 0 else None,
    }
    if as_json:
        _echo_json(summary)
        return
    done = f"{res.added} added ({res.passages} passages)"
    if document_backend is None:
        done = "nothing to embed: " + done
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


class _TooBig:
    """Leaves out documents over the ``max_document_bytes`` setting, each named on stderr when met (a 5 MB
    line is almost always a dump, not a document: thousands of passages and minutes of embedding)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def drop(self, docs: Iterator[Any]) -> Iterator[Any]:
        for d in docs:
            if self.limit and len(d.text) * 4 > self.limit:  # UTF-8 takes at most 4 bytes a character
                size = len(d.text.encode("utf-8"))
                if size > self.limit:
                    self.count += 1
                    click.echo(
                        f"skipped {d.source}:{d.line}: a document of {_mb(size)}, over max_document_bytes "
                        f"({_mb(self.limit)}); if it is one document, raise the limit with "
                        "--max-document-bytes N (0: no limit)",
                        err=True,
                    )
                    continue
            yield d

    def note(self) -> None:
        if self.count:
            click.echo(
                f"skipped {self.count} document{'s' if self.count != 1 else ''} over max_document_bytes "
                f"({_mb(self.limit)}); --max-document-bytes N raises the limit",
                err=True,
            )


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


def _reset(stats: Any, too_big: _TooBig) -> Any:
    """Zero the counters before the input is read a second time."""
    stats.read = stats.skipped_empty = stats.replaced_encoding = 0
    stats.per_source.clear()
    too_big.count = 0
    return stats


#: Documents (and characters of text) held in memory while checking whether an input is all indexed.
CHECK_DOCS, CHECK_CHARS = 100_000, 64 << 20


def _nothing_to_embed(
    path: Path, manifest: Any, stream: Iterator[Any], again: Callable[[], Iterator[Any]], rereadable: bool
) -> tuple[int | None, Iterator[Any]]:
    """Before a model loads: whether every document of ``stream`` is already in the index, unchanged.

    Returns (their count, an empty stream) when so, else (None, the documents to write: those read so far
    and the rest). The documents read are held in memory up to :data:`CHECK_DOCS` / :data:`CHECK_CHARS`;
    past that, files are checked to the end and read again for the write (stdin stops the check there).
    """
    from ..documents.ingest import _chunks, all_unchanged
    from ..store.snapshot import open_documents

    try:
        store = open_documents(path, manifest)
    except (OSError, TaseSearchError):  # the write reports what is wrong
        return None, stream
    held: list[Any] = []
    chars, count, holding = 0, 0, True
    try:
        chunks = _chunks(stream, 2048)
        for chunk in chunks:
            if holding:
                held.extend(chunk)
                chars += sum(len(d.text) for d in chunk)
            if not all_unchanged(store.conn, chunk):
                return None, (itertools.chain(held, stream) if holding else again())
            count += len(chunk)
            if holding and (len(held) > CHECK_DOCS or chars > CHECK_CHARS):
                if not rereadable:
                    return None, itertools.chain(held, stream)
                holding, held = False, []
    finally:
        store.close()
    return count, iter(())


def _wait_for_lock(path: Path, wait: float | None, report: Any, *, hold: bool = False) -> Any:
    """Take ``path``'s writer lock now, waiting up to ``wait`` seconds (``inf``: as long as it takes) for
    another writer to finish; IndexLocked naming ``--wait`` when it is not free. Returns the held lock
    with ``hold`` (the caller releases it), else releases it at once (only a check then)."""
    from ..store.lock import WriterLock

    if not hold and not (path / LOCK_NAME).is_file():
        return None  # no writer has ever held it: nothing to wait for, and no lock file is made
    deadline = None if wait is None else time.monotonic() + wait
    told = False
    while True:
        try:
            lock = WriterLock(path, shared=hold).acquire()
        except IndexLocked as exc:
            if deadline is None:
                raise IndexLocked(
                    f"{exc}; or add --wait to wait for it (--wait=SECONDS: at most that long)"
                ) from None
            left = deadline - time.monotonic()
            if left <= 0:
                raise IndexLocked(f"{exc} (waited {wait:g} s: --wait)") from None
            if not told:
                report.stage(f"waiting for the writer lock: {str(exc).split(' (a writer')[0]}")
                told = True
            time.sleep(min(LOCK_POLL, left))
            continue
        if not hold:
            lock.release()
        return lock


#: Seconds between two tries of a held writer lock (``--wait``).
LOCK_POLL = 0.2


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
