"""Training configs: YAML with ``--set`` overrides, defaults, ``${var}`` substitution and checks.

A config is checked whole before any data is read or a model loaded, so a typo fails in a second,
not after the first stage. Shipped configs (``training/configs/``, installed as package data)
can be named without a path: ``tase-search train tase-e5-tr``. They name no data location:
their files live under ``${data_root}``, given with ``--set data_root=DIR``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tase_search.errors import InputError

__all__ = [
    "DEFAULTS",
    "STAGE_DEFAULTS",
    "apply_overrides",
    "config_path",
    "load_config",
    "resolve_vars",
    "shipped_configs",
]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
"""The shipped configs (package data of ``tase_search.training``)."""

DEFAULTS: dict[str, Any] = {
    "name": "model",
    "seed": 42,
    "precision": "auto",  # auto | bf16 | fp32
    "threads": None,
    "max_seq_length": 128,
    "save_max_seq_length": None,  # None: keep the base model's
    "teacher": None,  # a model spec, or "base": the base model as loaded (after vocabulary changes), frozen
    "freeze": [],  # parameter-name substrings to keep frozen (e.g. word_embeddings)
    "vocab": None,
    "center": None,  # {strength: S, sources: [{data, prompts, limit}]}: remove S x the pooled mean (center.py)
    "interpolate": None,  # {with: MODEL, weight: W}: final = (1 - W) * trained + W * MODEL (training/merge.py)
    "eval": None,
    "stages": [],
}
STAGE_DEFAULTS: dict[str, Any] = {
    "epochs": 1.0,
    "max_steps": None,
    "batch_size": 32,
    "lr": 2e-5,
    "warmup_ratio": 0.1,
    "weight_decay": 0.01,
    "scheduler": "linear",
    "sampler": "proportional",  # proportional | round_robin
    "bucket_batches": 32,
    "save_steps": 500,
    "save_total_limit": 2,
    "logging_steps": 25,
    "max_seq_length": None,
    "time_budget_minutes": None,  # stop the stage (and save) after this much training time
}


# --------------------------------------------------------------------------- config
def _parse_value(text: str) -> Any:
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string; a learning rate is meant
        try:
            return float(value)
        except ValueError:
            pass
    return value


def apply_overrides(config: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides; keys are dotted (``stages.0.lr=1e-5``), values parsed as YAML."""
    cfg = copy.deepcopy(config)
    for item in overrides:
        if "=" not in item:
            raise InputError(f"override {item!r} must look like key=value (e.g. data_root=/data)")
        key, _, raw = item.partition("=")
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise InputError(f"override {item!r} has an empty key")
        cur: Any = cfg
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(cur, list):
                if not part.isdigit() or int(part) >= len(cur):
                    raise InputError(f"override {item!r}: {part!r} is not an index of a {len(cur)}-item list")
                if last:
                    cur[int(part)] = _parse_value(raw)
                else:
                    cur = cur[int(part)]
            elif isinstance(cur, dict):
                if last:
                    cur[part] = _parse_value(raw)
                else:
                    if cur.get(part) is None:
                        cur[part] = {}
                    cur = cur[part]
            else:
                raise InputError(f"override {item!r}: {'.'.join(parts[:i])} is not a mapping or list")
    return cfg


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def resolve_vars(config: dict[str, Any]) -> dict[str, Any]:
    """Substitute ``${name}`` in strings with top-level scalar config values (``${data_root}``), and ``~``."""
    scalars = {
        k: str(v) for k, v in config.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)
    }

    def sub(obj: Any) -> Any:
        if isinstance(obj, str):

            def repl(m: re.Match[str]) -> str:
                if m.group(1) not in scalars:
                    raise InputError(
                        f"config uses ${{{m.group(1)}}} but {m.group(1)!r} is not set: give it with "
                        f"--set {m.group(1)}=VALUE (e.g. --set data_root=/path/to/data)"
                    )
                return scalars[m.group(1)]

            for _ in range(5):  # variables may refer to variables
                new = _VAR.sub(repl, obj)
                if new == obj:
                    break
                obj = new
            return obj
        if isinstance(obj, dict):
            return {k: sub(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [sub(v) for v in obj]
        return obj

    return sub(config)


def shipped_configs() -> list[str]:
    """Names of the shipped configs (``paper``, ``ablation/both``, ...), as :func:`config_path` takes them."""
    return sorted(str(p.relative_to(CONFIG_DIR).with_suffix("")) for p in CONFIG_DIR.rglob("*.yaml"))


def config_path(path: str | Path) -> Path:
    """``path`` when it is a file, else the shipped config of that name (``tase-e5-tr``, ``ablation/both``)."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    name = str(path).removesuffix(".yaml")
    shipped = CONFIG_DIR / f"{name}.yaml"
    if not p.suffix and ".." not in Path(name).parts and shipped.is_file():
        return shipped
    raise InputError(
        f"config {str(p)!r} not found: give a YAML file or a shipped config ({', '.join(shipped_configs())})"
    )


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read a YAML config (a file or a shipped name), apply ``--set`` overrides, fill defaults, resolve ``${vars}``."""
    import yaml

    p = config_path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{p}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise InputError(f"{p}: a config must be a mapping")
    cfg = {**DEFAULTS, **apply_overrides(raw, overrides)}
    cfg = resolve_vars(cfg)
    if not cfg.get("base_model"):
        raise InputError(f"{p}: 'base_model' is required")
    if not cfg["stages"]:
        raise InputError(f"{p}: no stages")
    stages = []
    for i, st in enumerate(cfg["stages"]):
        if not isinstance(st, dict) or not st.get("tasks"):
            raise InputError(f"{p}: stage {i} has no tasks")
        unknown = set(st) - set(STAGE_DEFAULTS) - {"name", "tasks"}
        if unknown:
            raise InputError(f"{p}: stage {i} has unknown keys {sorted(unknown)}")
        stage = {**STAGE_DEFAULTS, "name": f"stage{i + 1}", **st}
        for j, task in enumerate(stage["tasks"]):
            if not isinstance(task, dict) or "data" not in task or "loss" not in task:
                raise InputError(f"{p}: stage {i} task {j} needs 'data' and 'loss'")
            task.setdefault("name", f"task{j + 1}")
            if "hard_negatives" in task:
                from .mining import check_hard_negatives

                try:
                    check_hard_negatives(task["hard_negatives"])
                except InputError as exc:
                    raise InputError(f"{p}: stage {i} task {task['name']!r}: {exc}") from None
        stages.append(stage)
    cfg["stages"] = stages
    from .selection import check_eval_spec

    try:
        cfg["eval"] = check_eval_spec(cfg.get("eval"))
    except InputError as exc:
        raise InputError(f"{p}: {exc}") from None
    if cfg.get("interpolate") is not None:
        from .merge import check_interpolate_spec

        try:
            cfg["interpolate"] = check_interpolate_spec(cfg["interpolate"])
        except InputError as exc:
            raise InputError(f"{p}: {exc}") from None
    return cfg
