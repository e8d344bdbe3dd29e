"""The ``tase-search`` command line: a thin layer over the library (parse, call, print).

Heavy modules (torch, faiss, sentence-transformers) are imported inside commands, so
``tase-search --help``, ``--version`` and ``info`` start fast.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import click

from ._version import __version__
from .cli_home import _human_bytes
from .errors import IndexExists, TaseSearchError

# oneDNN caches a compiled kernel ("primitive") per input shape, 1024 by default. Batches of
# length-sorted text come in many shapes, so during a long `index` run the cache grew the process by
# ~0.3 GB at 30k documents (peak RSS 1.21 GB vs 0.89 GB with a cap of 16) and encoding was not slower
# with the cap (measured 349-371 vs 313-322 docs/s). Set before torch loads; a user's value wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
INDEX_TYPES = {
    "auto": None,
    "flat": "Flat",
    "hnsw": "HNSW32,Flat",
    "ivf": "IVF256,Flat",
    "ivf-sq8": "IVF256,SQ8",
}


class _Group(click.Group):
    """Turns library errors into clean one-line messages and Ctrl-C into exit 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TaseSearchError as exc:
            raise click.ClickException(str(exc)) from exc
        except KeyboardInterrupt:
            click.echo("\n" + _interrupted_message(ctx), err=True)
            sys.exit(130)
        except BrokenPipeError:  # `tase-search query ... | head`
            sys.stderr.close()
            sys.exit(0)
        except OSError as exc:  # disk full, permission denied, ...: the index is left as it was
            where = f" ({exc.filename})" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from exc


_WRITE_KEY = "tase_search.write"


def _generation(path: Path) -> int | None:
    from .store.manifest import read_generation  # a FIFO or a link in its place is never read

    return read_generation(path)


def _note_write(path: Path) -> None:
    """Remember an index's generation before writing to it, so Ctrl-C can say which state it is in."""
    click.get_current_context().meta[_WRITE_KEY] = (path, _generation(path))


def _interrupted_message(ctx: click.Context) -> str:
    path, before = ctx.meta.get(_WRITE_KEY, (None, None))
    after = _generation(path) if path is not None else None
    if path is not None and after is not None and after != before:
        return f"interrupted after the write was saved: {path} holds the new version (generation {after})"
    return "interrupted: nothing was changed (the index is as it was before this command)"


def _index_option(f: Any) -> Any:
    return click.option(
        "--index",
        "-i",
        "index",
        default=None,
        metavar="NAME|DIR",
        help="Index name (under --root, default 'default') or a directory path. Env: TASE_SEARCH_INDEX.",
    )(f)


def _root_option(f: Any) -> Any:
    return click.option(
        "--root",
        default=None,
        metavar="DIR",
        help="Where named indexes live (default: the user data directory, e.g. "
        "~/.local/share/tase-search/indexes; `tase-search list` shows it). Env: TASE_SEARCH_INDEX_ROOT.",
    )(f)


def _model_option(f: Any) -> Any:
    return click.option(
        "--model",
        "-m",
        default=None,
        help="Registered model name (see `tase-search models`), model directory, or hub id. "
        "Default: the index's own model, or the embedded default. Env: TASE_SEARCH_MODEL.",
    )(f)


def _precision_option(f: Any) -> Any:
    return click.option(
        "--precision",
        type=click.Choice(["auto", "bf16", "bf16-autocast", "fp32"]),
        default=None,
        help="auto: bf16 weights on CPUs with native bf16 (AVX512-BF16/AMX), else fp32; bf16-autocast: "
        "fp32 weights under bf16 autocast (slower). Env: TASE_SEARCH_PRECISION.",
    )(f)


def _query_backend_option(f: Any) -> Any:
    from .config import QUERY_BACKENDS

    return click.option(
        "--query-backend",
        type=click.Choice(list(QUERY_BACKENDS)),
        default=None,
        help="How queries are encoded. auto: ONNX Runtime without loading torch when `tase-search index` "
        "left a query bundle in the index, else PyTorch; torch: always PyTorch (and `index` writes no "
        "bundle); onnx: always ONNX Runtime (the bundle, else a graph exported in memory). "
        "Env: TASE_SEARCH_QUERY_BACKEND.",
    )(f)


def _threads_option(f: Any) -> Any:
    from .config import MAX_THREADS

    return click.option(
        "--threads",
        type=click.IntRange(0, MAX_THREADS),
        default=None,
        metavar="N",
        help="Threads for the encoder and FAISS. Default (0): the CPUs not busy with other work, at most 8. "
        "Env: TASE_SEARCH_THREADS.",
    )(f)


def _progress_options(f: Any) -> Any:
    f = click.option(
        "--progress",
        "force_progress",
        is_flag=True,
        help="Report progress even where the setting says off: a bar on a terminal, log lines elsewhere.",
    )(f)
    return click.option(
        "--quiet",
        "-q",
        is_flag=True,
        help="No progress output (errors and the summary still print). Default: a bar on a terminal, "
        "a log line every 10 s elsewhere. Env: TASE_SEARCH_PROGRESS=auto|bar|log|off.",
    )(f)


def _settings(**flags: Any) -> Any:
    from .config import load_settings

    return load_settings(**flags)


def _index_path(index: str | None, root: str | None) -> Path:
    from .retriever import resolve_index_path

    s = _settings(index_root=root)
    name = index or os.environ.get("TASE_SEARCH_INDEX") or "default"
    path = resolve_index_path(name, s.index_root)
    _legacy_note(name, path)
    return path


def _legacy_note(name: str, path: Path) -> None:
    """Named indexes used to live in ./indexes: point at one there when the new home has none of that name."""
    from .home import LEGACY_ROOT
    from .store.layout import has_manifest

    if os.sep in name or name.startswith((".", "~")):  # a path, not a name
        return
    old = LEGACY_ROOT / name
    if path.resolve() == old.resolve() or has_manifest(path):
        return
    if has_manifest(old):
        click.echo(
            f"note: ./{old} holds an index, but named indexes now live in {path.parent}; use --index ./{old} "
            f"for that one, or move it: mv {old} {path.parent}/",
            err=True,
        )


def _text_arg(s: str) -> str:
    """Undecodable bytes in argv/stdin arrive as lone surrogates (which cannot be printed or stored): U+FFFD."""
    try:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # other lone surrogates (not from undecodable bytes)
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in s)


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


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


# --------------------------------------------------------------------------- index
@main.command("index", context_settings=CONTEXT)
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


def _check_unlocked(path: Path) -> None:
    """Raise IndexLocked now if another writer holds ``path``'s lock (nothing is created otherwise)."""
    from .store.layout import LOCK_NAME
    from .store.lock import WriterLock

    if (path / LOCK_NAME).is_file():
        WriterLock(path).acquire().release()


def _load_encoder(
    spec: str, s: Any, report: Any, threads: int, max_seq_length: int | None, *, backend: str = "torch"
) -> Any:
    """Check, then load, the model for an index command, telling the reporter (the slow step).

    ``backend`` is the document backend (:mod:`tase_search.backends`), chosen once here; indexing is a
    write path, so a missing converted model is built now (once per weights)."""
    from .encoder import Encoder
    from .models import get_entry
    from .preflight import check_max_seq_length, check_model

    check_model(spec)
    entry = get_entry(spec)  # "default" is shown as the model it stands for
    name = entry.name if entry is not None else spec
    report.stage(f"loading model {name} ({threads} thread{'s' if threads != 1 else ''})")
    encoder = Encoder.load(
        spec,
        precision=s.precision,
        device=s.device,
        batch_size=s.batch_size,
        query_backend=s.query_backend,
        max_seq_length=max_seq_length,
    )
    check_max_seq_length(encoder, max_seq_length)
    if backend != "torch":
        from .backends import choose, with_backend

        if choose(backend, encoder) != "torch":
            report.stage(f"preparing document backend {choose(backend, encoder)}")
        encoder = with_backend(encoder, backend, build=True, threads=threads)
    return encoder


def _reporter(s: Any, quiet: bool, force: bool, total: int | None = None) -> Any:
    """The progress reporter for a command: ``--quiet`` > ``--progress`` > the ``progress`` setting."""
    from .progress import Progress

    if quiet and force:
        raise click.UsageError("give either --quiet or --progress, not both")
    mode = s.progress
    if quiet:
        mode = "off"
    elif force:
        mode = "auto" if mode == "off" else mode
    elif mode == "auto" and os.environ.get("TASE_SEARCH_NO_PROGRESS") == "1":
        mode = "off"
    return Progress(mode, total)


def _use_threads(s: Any) -> int:
    """Apply the ``threads`` setting (or the free-CPU default) to torch and FAISS; the count used."""
    from .threads import apply_threads, resolve_threads

    n, _ = resolve_threads(s.threads)
    apply_threads(n)
    return n


# --------------------------------------------------------------------------- query
def _parse_filters(filters: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in filters:
        if "=" not in f:
            raise click.BadParameter(
                f"{f!r} is not key=value (e.g. --filter topic=spor)", param_hint="--filter"
            )
        key, value = f.split("=", 1)
        if not key.strip():
            raise click.BadParameter(f"{f!r} has an empty key", param_hint="--filter")
        key = key.strip()
        if key in out and out[key] != value:  # all filters must match, and a field has one value
            raise click.BadParameter(
                f"{key}={out[key]} and {key}={value} can never both match (every filter must match, and a "
                f"document has one {key}); give one value per key",
                param_hint="--filter",
            )
        out[key] = value
    return out


@main.command("query", context_settings=CONTEXT)
@click.argument("text", nargs=-1, required=True)
@_index_option
@_root_option
@_model_option
@click.option(
    "-k", "--top-k", "k", type=int, default=10, show_default=True, help="How many documents per query."
)
@click.option(
    "--filter",
    "-f",
    "filters",
    multiple=True,
    metavar="KEY=VALUE",
    help="Keep documents whose metadata KEY equals VALUE ('id' and 'source' match those columns). "
    "Repeatable for different keys: all must match, so one value per key.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON lines: one object per hit (with 'query').")
@click.option(
    "--full", is_flag=True, help="Print whole documents instead of the matching passage, shortened."
)
@click.option(
    "--mode",
    type=click.Choice(["auto", "dense", "sparse", "hybrid"]),
    default=None,
    help="dense: by meaning (vectors); sparse: by keywords (BM25); hybrid: both, fused; auto: hybrid for a "
    "query in the index's language (and names), dense for one in another language. Default: the "
    "search_mode setting (auto). Env: TASE_SEARCH_SEARCH_MODE.",
)
@click.option(
    "--fusion",
    type=click.Choice(["weighted", "rrf"]),
    default=None,
    help="How hybrid fuses the two rankings: weighted (min-max scaled scores; the default) or rrf "
    "(reciprocal rank fusion).",
)
@click.option(
    "--dense-weight",
    type=click.FloatRange(0, 1),
    default=None,
    help="The dense ranking's share in hybrid fusion, 0..1 (default: 0.5 for a query in the corpus's "
    "language, 0.8 for one in another language).",
)
@_precision_option
@_query_backend_option
@_threads_option
def query_cmd(
    text: tuple[str, ...],
    index: str | None,
    root: str | None,
    model: str | None,
    k: int,
    filters: tuple[str, ...],
    as_json: bool,
    full: bool,
    mode: str | None,
    fusion: str,
    dense_weight: float,
    precision: str | None,
    query_backend: str | None,
    threads: int | None,
) -> None:
    """Search an index with one or more queries, in Turkish or English.

    Each TEXT is one query. '-' reads queries from stdin, one per line, answering each as it
    arrives with the model loaded once (for many queries or an interactive loop).

    \b
    Examples:
      tase-search query "futbol maçı" --index haberler -k 5
      tase-search query "football match" "hava durumu" --index haberler --json
      tase-search query "maç sonucu" --filter topic=spor --index demo
      tase-search query Turkcell --mode sparse --index haberler     # keywords only (no model loaded)
      printf 'futbol\\nweather tomorrow\\n' | tase-search query - --index haberler --json
    """
    if threads is not None:  # a one-off query does not wait to measure the free CPUs unless asked
        _use_threads(_settings(threads=threads))
    from .retriever import Retriever
    from .text import is_blank

    if k < 1:
        raise click.BadParameter(f"{k} is not valid: give a whole number >= 1", param_hint="-k")
    if text.count("-") and len(text) > 1:
        raise click.UsageError("give either query texts or '-' (stdin), not both")
    flt = {_text_arg(key): _text_arg(value) for key, value in _parse_filters(filters).items()}
    text = tuple(_text_arg(t) for t in text)
    s = _settings(model=model, precision=precision, index_root=root, query_backend=query_backend)
    path = _index_path(index, root)
    stdin = text == ("-",)
    # one-off queries map the vector file (no full read; the process exits after a few searches);
    # stdin mode is long-lived, so it reads the file once for steady per-query latency
    mmap = not stdin
    # the index's query bundle (written by `index`) answers without torch; the Retriever chooses
    r = Retriever.load(
        path,
        model=model,
        precision=s.precision,
        query_backend=s.query_backend,
        mmap=mmap,
        search_mode=s.search_mode,
    )
    how = {"mode": mode, "fusion": fusion, "dense_weight": dense_weight}
    if (mode or s.search_mode) != "dense" and mode in (None, "auto") and r.sparse_note:
        click.echo(r.sparse_note, err=True)
    if stdin:
        r.warm_up()  # load once, before the first line arrives
        if r.query_path_note:
            click.echo(f"note: {r.query_path_note}", err=True)
        hinted = False
        for line in sys.stdin:
            q = _text_arg(line.rstrip("\n"))
            if is_blank(q):  # blank, or only control, zero-width or bidi characters
                continue
            hits = r.search(q, k=k, filter=flt, **how)
            _print_hits(q, hits, as_json, full)
            if not hits and flt and not hinted:
                _filter_hint(r, flt)
                hinted = True  # once per run, not once per line
            sys.stdout.flush()
        return
    for q in text:
        if is_blank(q):
            raise click.BadParameter("a query is empty: give some text to search for", param_hint="TEXT")
    results = r.search(list(text), k=k, filter=flt, **how)
    for q, hits in zip(text, results):
        _print_hits(q, hits, as_json, full)
    if flt and not any(results):
        _filter_hint(r, flt)


def _filter_hint(r: Any, flt: dict[str, str]) -> None:
    """After a filtered search found nothing: say which filter keys no document has (a typo, usually)."""
    missing, fields = r.missing_filter_keys(flt)
    if missing:
        known = ", ".join(["id", "source", *fields])
        click.echo(
            f"note: no document in {r.path} has a metadata field {', '.join(repr(k) for k in missing)}; "
            f"fields that exist: {known}",
            err=True,
        )


def _print_hits(q: str, hits: list[Any], as_json: bool, full: bool) -> None:
    if as_json:
        for h in hits:
            _echo_json({"query": q, **h.to_dict()})
        return
    width = shutil.get_terminal_size((110, 20)).columns
    click.echo(click.style(f"query: {q}", bold=True))
    if not hits:
        click.echo("  (no results)")
        return
    labels = [h.id + (f" [{h.passage.index + 1}/{h.passage.count}]" if h.passage.count > 1 else "") for h in hits]
    idw = max(2, max(len(x) for x in labels))
    for h, label in zip(hits, labels):
        body = h.text if full else h.passage.text
        body = " ".join(body.split())
        prefix = f"  {h.rank:>2}  {h.score:6.3f}  {label:<{idw}}  "
        room = max(20, width - len(prefix))
        if not full and len(body) > room:
            body = body[: room - 1] + "…"
        click.echo(prefix + body)


# --------------------------------------------------------------------------- info / delete
@main.command("info", context_settings=CONTEXT)
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
    from .retriever import Retriever

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


@main.command("delete", context_settings=CONTEXT)
@click.argument("ids", nargs=-1, required=True)
@_index_option
@_root_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def delete_cmd(ids: tuple[str, ...], index: str | None, root: str | None, as_json: bool) -> None:
    """Delete documents by id. '-' reads ids from stdin, one per line.

    \b
    Examples:
      tase-search delete 17 42 --index haberler
      tase-search query "eski haber" --index haberler --json | jq -r .id | tase-search delete - --index haberler
    """
    from .retriever import Retriever

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
        return
    click.echo(f"deleted {len(deleted)} documents from {r.path}; {r.manifest.documents} remain")
    if missing:
        click.echo(f"not found: {', '.join(missing[:20])}{' …' if len(missing) > 20 else ''}", err=True)


@main.command("verify", context_settings=CONTEXT)
@click.argument("index_arg", metavar="INDEX", required=False)
@_index_option
@_root_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def verify_cmd(index_arg: str | None, index: str | None, root: str | None, as_json: bool) -> None:
    """Check an index deeply: checksums, SQLite integrity, FAISS/SQLite/manifest agreement.

    Exits 1 and lists the problems when anything is wrong.

    \b
    Examples:
      tase-search verify haberler
      tase-search verify ./indexes/haberler --json
    """
    from .store.verify import verify_index

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


# --------------------------------------------------------------------------- models / demo
@main.command("models", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one per model.")
def models_cmd(as_json: bool) -> None:
    """List the registered model names (usable with --model).

    \b
    Example:
      tase-search models
    """
    from .models import DEFAULT_MODEL, list_models

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


@main.command("demo", context_settings=CONTEXT)
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
    from .readers import read_corpus
    from .retriever import Retriever

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


def _register_optional() -> None:
    """Training and evaluation commands live in their own modules (still light to import)."""
    from .cli_home import cache_group, list_cmd
    from .cli_model import model_group

    main.add_command(list_cmd, "list")
    main.add_command(cache_group, "cache")
    main.add_command(model_group, "model")
    try:
        from .cli_eval import eval_group

        main.add_command(eval_group, "eval")
    except ImportError:  # pragma: no cover - module missing in a partial install
        pass
    try:
        from .cli_train import train

        main.add_command(train, "train")
    except ImportError:  # pragma: no cover
        pass
    from .cli_serve import serve_cmd

    main.add_command(serve_cmd, "serve")
    from .cli_sparse import sparse_group

    main.add_command(sparse_group, "sparse")


_register_optional()
