"""What every ``tase-search`` command shares: the error-handling group, the common options, index
paths and settings, JSON output, progress, threads and the model load of the write commands.

Only click and the standard library at module level, so ``--help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import TaseSearchError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


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
    from ..store.manifest import read_generation  # a FIFO or a link in its place is never read

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
    from ..runtime.config import QUERY_BACKENDS

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
    from ..runtime.config import MAX_THREADS

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
    from ..runtime.config import load_settings

    return load_settings(**flags)


def _index_path(index: str | None, root: str | None) -> Path:
    from ..retriever import resolve_index_path

    s = _settings(index_root=root)
    name = index or os.environ.get("TASE_SEARCH_INDEX") or "default"
    path = resolve_index_path(name, s.index_root)
    _legacy_note(name, path)
    return path


def _legacy_note(name: str, path: Path) -> None:
    """Named indexes used to live in ./indexes: point at one there when the new home has none of that name."""
    from ..runtime.home import LEGACY_ROOT
    from ..store.layout import has_manifest

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


def _check_unlocked(path: Path) -> None:
    """Raise IndexLocked now if another writer holds ``path``'s lock (nothing is created otherwise)."""
    from ..store.layout import LOCK_NAME
    from ..store.lock import WriterLock

    if (path / LOCK_NAME).is_file():
        WriterLock(path).acquire().release()


def _load_encoder(
    spec: str, s: Any, report: Any, threads: int, max_seq_length: int | None, *, backend: str = "torch"
) -> Any:
    """Check, then load (:meth:`~tase_search.encoding.encoder.Encoder.load`), the model for an index
    command, telling the reporter (the slow step). ``backend`` is the document backend
    (:mod:`tase_search.encoding.backends`); indexing is a write path, so a missing converted model is
    built now (once per weights)."""
    from ..encoding.encoder import Encoder
    from ..models import get_entry
    from ..runtime.preflight import check_model

    check_model(spec)
    entry = get_entry(spec)  # "default" is shown as the model it stands for
    name = entry.name if entry is not None else spec
    report.stage(f"loading model {name} ({threads} thread{'s' if threads != 1 else ''})")
    return Encoder.load(
        spec,
        precision=s.precision,
        device=s.device,
        batch_size=s.batch_size,
        query_backend=s.query_backend,
        max_seq_length=max_seq_length,
        backend=backend,
        build_backend=True,
        threads=threads,
        stage=report.stage,
    )


def _reporter(s: Any, quiet: bool, force: bool, total: int | None = None) -> Any:
    """The progress reporter for a command: ``--quiet`` > ``--progress`` > the ``progress`` setting."""
    from ..runtime.progress import Progress

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
    from ..runtime.threads import apply_threads, resolve_threads

    n, _ = resolve_threads(s.threads)
    apply_threads(n)
    return n


class RegistryChoice(click.Choice):
    """A ``click.Choice`` whose choices are read from a registry each time they are needed, so a corpus
    format, fusion method or document backend registered after the CLI was imported is accepted too."""

    def __init__(self, names: Any, **kwargs: Any) -> None:
        self._names = names  # called when the choices are needed (the registry is imported only then)
        super().__init__([], **kwargs)

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        return tuple(self._names())

    @choices.setter
    def choices(self, value: Any) -> None:  # click sets it in __init__; the registry is the truth
        pass


def format_names() -> tuple[str, ...]:
    from ..documents.formats import format_names as names

    return names()


def fusion_names() -> tuple[str, ...]:
    from ..query.fusion import fusion_names as names

    return names()


def backend_names() -> tuple[str, ...]:
    from ..encoding.backends import backend_names as names

    return names()


def converted_backend_names() -> tuple[str, ...]:
    from ..encoding.backends import converted_names

    return converted_names()
