"""``tase-search model export``: convert a model's weights for a document backend, once.

Indexing converts on first use by itself (a write path); this command does it ahead of time, e.g. in
an image build, or by an administrator for a model directory users cannot write to. The artefact goes
beside the model when its directory is writable, else into the user cache
(:mod:`tase_search.encoding.backends.artefacts`).
"""

from __future__ import annotations

import json

import click

from .common import CONTEXT, RegistryChoice, converted_backend_names


@click.group("model", context_settings=CONTEXT)
def model_group() -> None:
    """Prepare a model for the faster document backends (see `tase-search index --backend`)."""


@model_group.command("export", context_settings=CONTEXT)
@click.option("--model", "-m", "model", default="default", show_default=True, help="Model name or directory.")
@click.option(
    "--backend",
    type=RegistryChoice(converted_backend_names),
    default="ct2-int8",
    show_default=True,
    help="Which converted model to build.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def export_cmd(model: str, backend: str, as_json: bool) -> None:
    """Convert MODEL for BACKEND (no-op when done already) and check it against the torch path.

    \b
    Examples:
      tase-search model export
      tase-search model export -m ./my-model --backend openvino
    """
    from ..encoding.backends import export, with_backend
    from ..encoding.encoder import Encoder

    encoder = Encoder.load(model, precision="fp32", backend="torch")
    path = export(encoder, backend)
    with_backend(encoder, backend)  # opens it and runs the probe check (raises when it disagrees)
    if as_json:
        click.echo(json.dumps({"model": encoder.model_id, "backend": backend, "path": str(path)}))
    else:
        click.echo(f"{backend} for {encoder.model_id}: {path}")
