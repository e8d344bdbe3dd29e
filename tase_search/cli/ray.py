"""``tase-search index --engine ray``: the arguments of the index command handed to the Ray engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..documents.read_options import ReadOptions


def index_on_ray(
    corpus: tuple[str, ...],
    path: Path,
    model: str | None,
    s: Any,
    report: Any,
    factory: str | None,
    options: ReadOptions,
    on_duplicate: str,
    overwrite: bool,
    sparse: bool,
    address: str | None,
    workers: int,
) -> Any:
    """Run :func:`tase_search.distributed.index_corpus` with the command's settings; its result."""
    from ..distributed import index_corpus
    from ..writes import will_append

    appending = will_append(path, overwrite)
    with report:
        run = index_corpus(
            list(corpus),
            path,
            model or (None if appending else s.model),  # an append keeps the index's model
            address=address,
            workers=workers,
            factory=factory,
            overwrite=overwrite,
            on_duplicate=on_duplicate,
            sparse=sparse,
            overlap=s.overlap_tokens,
            precision=s.precision,
            batch_size=s.batch_size,
            max_seq_length=s.max_seq_length or None,
            fmt=options.fmt,
            text_column=options.text_column,
            id_column=options.id_column,
            encoding_errors=options.encoding_errors,
            limits=options.reader_limits(),
            progress=report,
        )
    report.close()
    return run
