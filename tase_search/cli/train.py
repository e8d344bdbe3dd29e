"""``tase-search train``: run a training config (registered in cli.py with ``main.add_command(train)``).

The trainer is :mod:`tase_search.training` (the repository's ``training/`` folder, installed with
the package). It is imported inside the command: it pulls in the trainer stack (``datasets``,
``accelerate``: the ``train`` extra), which searching never needs.
"""

from __future__ import annotations

import click


@click.command(
    "train",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
CONFIG is a YAML file or the name of a shipped config (tase-e5-tr, tase-minilm-tr,
paper, ablation/both, experiments/...). Shipped configs read their files under
${data_root}: give it with --set data_root=DIR.

\b
Examples:
  tase-search train tase-e5-tr --set data_root=/data/tase --output runs/tase-e5-tr
  tase-search train my-config.yaml --max-steps 20 --output runs/smoke

Writes OUTPUT/model (fp16 safetensors, loadable by SentenceTransformer) and OUTPUT/run.json.""",
)
@click.argument("config")
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False),
    help="Run directory (default: the config's output or runs/NAME).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value; dotted keys reach inside (stages.0.lr=1e-5). Repeatable.",
)
@click.option("--resume", is_flag=True, help="Skip finished stages and continue from the latest checkpoint.")
@click.option("--max-steps", type=click.IntRange(min=1), help="Cap every stage at N steps (smoke runs).")
def train(
    config: str, output: str | None, overrides: tuple[str, ...], resume: bool, max_steps: int | None
) -> None:
    """Fine-tune a sentence encoder from a YAML CONFIG (stages of MNRL / distillation / CoSENT tasks)."""
    import logging
    import os

    from ..errors import TaseSearchError

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from ..training import pipeline
    except ImportError as exc:
        raise click.ClickException(
            f"the trainer could not be imported ({exc}); install it with: pip install 'tase-search[train]'"
        ) from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = pipeline.load_config(config, overrides)
        path = pipeline.train(cfg, output, resume=resume, max_steps=max_steps)
    except TaseSearchError as exc:
        raise click.ClickException(str(exc)) from exc
    except ImportError as exc:
        raise click.ClickException(
            f"{exc}. Install the training extras: pip install 'tase-search[train]'"
        ) from exc
    click.echo(f"model written to {path}")
