"""Run bookkeeping: package versions and ``run.json`` (written atomically), and one progress line per log step."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from tase_search.store.lock import atomic_write_bytes

__all__ = ["package_versions", "write_json"]


def package_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in (
        "tase-search",
        "sentence-transformers",
        "transformers",
        "torch",
        "tokenizers",
        "datasets",
        "accelerate",
    ):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON, atomically (a killed run leaves the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(
        path, (json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    )


def _progress_callback(stage_name: str, batch_size: int, budget_minutes: float | None = None) -> Any:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """One line per logging step: loss, step/total, pairs/s and ETA (the tqdm bar is unreadable in a log file)."""

        def __init__(self) -> None:
            self.t0 = time.perf_counter()
            self.step0: int | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.t0 = time.perf_counter()
            self.step0 = state.global_step

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            # A wall-clock budget: CPU speed varies with load, so a step count cannot promise a deadline.
            if budget_minutes and time.perf_counter() - self.t0 > budget_minutes * 60:
                print(
                    f"[{stage_name}] time budget of {budget_minutes} min reached at step {state.global_step}",
                    flush=True,
                )
                control.should_training_stop = True

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
        ) -> None:
            if not logs or "loss" not in logs:
                return
            el = time.perf_counter() - self.t0
            done = state.global_step - (self.step0 or 0)
            rate = done / el if el > 0 else 0.0
            eta = (state.max_steps - state.global_step) / rate if rate > 0 else float("nan")
            print(
                f"[{stage_name}] step {state.global_step}/{state.max_steps} loss {logs['loss']:.4f} "
                f"lr {logs.get('learning_rate', 0):.2e} {rate * batch_size:.1f} pairs/s "
                f"elapsed {el / 60:.1f} min eta {eta / 60:.1f} min",
                flush=True,
            )

    return Progress()
