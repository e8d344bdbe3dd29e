"""``tase-search train``: run a training config (registered in cli.py with ``main.add_command(train)``).

The trainer lives in the repository's ``training/`` package (not installed with the wheel: it
pulls in the trainer stack and is only useful with training data), so it is imported lazily,
inside the command, and a clear error says how to get it when it is missing.
"""

from __future__ import annotations

import click


@click.command(
    "train",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Example (from the repository root):
  tase-search train training/configs/tase-e5-tr.yaml \\
      --set data_root=/data/tase --output runs/tase-e5-tr
  tase-search train training/configs/paper.yaml --max-steps 20 --output runs/smoke

Writes OUTPUT/model (fp16 safetensors, loadable by SentenceTransformer) and OUTPUT/run.json.""",
)
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--output", "-o", type=click.Path(file_okay=False), help="Run directory (default: the config's output or runs/NAME).")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value; dotted keys reach inside (stages.0.lr=1e-5). Repeatable.",
)
@click.option("--resume", is_flag=True, help="Skip finished stages and continue from the latest checkpoint.")
@click.option("--max-steps", type=click.IntRange(min=1), help="Cap every stage at N steps (smoke runs).")
def train(config: str, output: str | None, overrides: tuple[str, ...], resume: bool, max_steps: int | None) -> None:
    """Fine-tune a sentence encoder from a YAML CONFIG (stages of MNRL / distillation / CoSENT tasks)."""
    import logging
    import os
    import sys
    from pathlib import Path

    from .errors import TaseSearchError

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from training import pipeline
    except ImportError:
        # the training package sits at the repository root, next to the config files
        root = Path(config).resolve().parent
        for candidate in (Path.cwd(), *root.parents):
            if (candidate / "training" / "pipeline.py").is_file():
                sys.path.insert(0, str(candidate))
                break
        try:
            from training import pipeline
        except ImportError as exc:
            raise click.ClickException(
                f"the training code is not importable ({exc}). Run from a tase-search source checkout "
                "(the repository root holds training/), with the extras: pip install 'tase-search[train]'"
            ) from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = pipeline.load_config(config, overrides)
        path = pipeline.train(cfg, output, resume=resume, max_steps=max_steps)
    except TaseSearchError as exc:
        raise click.ClickException(str(exc)) from exc
    except ImportError as exc:
        raise click.ClickException(f"{exc}. Install the training extras: pip install 'tase-search[train]'") from exc
    click.echo(f"model written to {path}")
