"""``tase-search query``: search an index with query texts or a stream of them on stdin."""

from __future__ import annotations

import json
import shutil
import sys
from typing import Any

import click

from ..runtime.config import MAX_RERANK
from .common import (
    CONTEXT,
    RegistryChoice,
    _echo_json,
    _index_option,
    _index_path,
    _model_option,
    _precision_option,
    _query_backend_option,
    _root_option,
    _settings,
    _text_arg,
    _threads_option,
    _use_threads,
    fusion_names,
)


def _query_filter(filters: tuple[str, ...], where: str | None) -> Any:
    """``--filter KEY=VALUE`` items and a ``--where`` JSON filter as one filter (both must hold), parsed
    by the one filter language (docs/filters.md); None for neither."""
    from ..errors import InputError
    from ..query.filters import combine, parse_shorthand, parse_where

    try:
        short = parse_shorthand(_text_arg(f) for f in filters)
    except InputError as exc:
        raise click.BadParameter(str(exc), param_hint="--filter") from None
    if where is None:
        return short
    example = """'{"year": {"$gte": 2020}}'"""
    try:
        return combine(short, parse_where(_text_arg(where), label="", hint=f", e.g. --where {example}"))
    except InputError as exc:
        raise click.BadParameter(str(exc), param_hint="--where") from None


@click.command("query", context_settings=CONTEXT)
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
    help="Keep documents whose metadata KEY equals VALUE ('id' and 'source' match those columns; "
    "year=2024 matches the number or the string). Repeatable: different keys must all match, one key "
    "given twice matches either value.",
)
@click.option(
    "--where",
    metavar="JSON",
    default=None,
    help='A JSON filter: {"year": {"$gte": 2020}, "$or": [...]} with $eq $ne $in $nin $gt $gte $lt $lte '
    "$prefix $exists $and $or $not (docs/filters.md). With --filter, both must hold.",
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
    type=RegistryChoice(fusion_names),
    default=None,
    help="How hybrid fuses the two rankings: weighted (min-max scaled scores; the default) or rrf "
    "(reciprocal rank fusion). Scores stay probabilities with a calibrated model.",
)
@click.option(
    "--min-score",
    type=float,
    default=None,
    metavar="P",
    help="Leave out hits scoring below P. Scores are probabilities of relevance with the bundled model: "
    "0.5 and up probably relevant, under 0.2 probably not (docs/cli.md).",
)
@click.option(
    "--highlight/--no-highlight",
    default=None,
    help="Name the sentence of each passage that best answers the query (default: on, off with --json).",
)
@click.option(
    "--dense-weight",
    type=click.FloatRange(0, 1),
    default=None,
    help="The dense ranking's share in hybrid fusion, 0..1 (default: 0.5 for a query in the corpus's "
    "language, 0.8 for one in another language).",
)
@click.option(
    "--rerank",
    type=click.IntRange(0, MAX_RERANK),
    default=None,
    metavar="N",
    help="Read the top N hits again with the reranker (a cross-encoder: slower, more precise) and order "
    "them by its probability of answering the query; e.g. 20. 0: off. Default: the rerank setting (0). "
    "Env: TASE_SEARCH_RERANK.",
)
@click.option(
    "--reranker",
    default=None,
    metavar="MODEL",
    help="The reranker: a name (tase-rerank-tr, bundled), a CrossEncoder directory or a hub id. Default: "
    "the reranker setting. Env: TASE_SEARCH_RERANKER.",
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
    where: str | None,
    as_json: bool,
    full: bool,
    mode: str | None,
    fusion: str,
    dense_weight: float,
    min_score: float | None,
    highlight: bool | None,
    rerank: int | None,
    reranker: str | None,
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
      tase-search query deprem --where '{"year": {"$gte": 2020}}' --index haberler
      tase-search query Turkcell --mode sparse --index haberler     # keywords only (no model loaded)
      tase-search query "Pîrî Reis nerede doğdu?" --rerank 20 --index wiki  # top 20 reranked
      printf 'futbol\\nweather tomorrow\\n' | tase-search query - --index haberler --json
    """
    if threads is not None:  # a one-off query does not wait to measure the free CPUs unless asked
        _use_threads(_settings(threads=threads))
    from ..retriever import Retriever
    from ..text.normalize import is_blank

    if k < 1:
        raise click.BadParameter(f"{k} is not valid: give a whole number >= 1", param_hint="-k")
    if text.count("-") and len(text) > 1:
        raise click.UsageError("give either query texts or '-' (stdin), not both")
    flt = _query_filter(filters, where)
    text = tuple(_text_arg(t) for t in text)
    s = _settings(
        model=model,
        precision=precision,
        index_root=root,
        query_backend=query_backend,
        rerank=rerank,
        reranker=reranker,
    )
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
        reranker=s.reranker,
    )
    how = {
        "rerank": s.rerank,
        "mode": mode,
        "fusion": fusion,
        "dense_weight": dense_weight,
        "min_score": min_score,
        "highlight": (not as_json) if highlight is None else highlight,
    }
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


def _filter_hint(r: Any, flt: Any) -> None:
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
    labels = [
        h.id + (f" [{h.passage.index + 1}/{h.passage.count}]" if h.passage.count > 1 else "") for h in hits
    ]
    idw = max(2, max(len(x) for x in labels))
    for h, label in zip(hits, labels):
        body = h.text if full else h.passage.text
        body = " ".join(body.split())
        prefix = f"  {h.rank:>2}  {h.score:6.3f}  {label:<{idw}}  "
        room = max(20, width - len(prefix))
        if not full and len(body) > room:
            body = body[: room - 1] + "…"
        click.echo(prefix + body)
        if h.highlight is not None and h.highlight.text.strip() != h.passage.text.strip():
            light = " ".join(h.highlight.text.split())  # the answering sentence of a longer passage
            room = max(20, width - len(prefix) - 2)
            click.echo(
                " " * len(prefix)
                + click.style("» " + (light if len(light) <= room else light[: room - 1] + "…"), bold=True)
            )
        meta = _metadata_line(h.metadata, max(20, width - len(prefix)))
        if meta:
            click.echo(" " * len(prefix) + click.style(meta, dim=True))


def _metadata_line(metadata: dict[str, Any], room: int) -> str:
    """A hit's metadata on one line, ``title`` first: ``title=Derbi · topic=spor`` (cut to ``room``)."""
    if not metadata:
        return ""
    keys = sorted(metadata, key=lambda k: (k != "title", k))
    parts = []
    for key in keys:
        value = metadata[key]
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{key}={' '.join(str(shown).split())}")
    line = " · ".join(parts)
    return line if len(line) <= room else line[: room - 1] + "…"
