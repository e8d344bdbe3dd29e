"""Settings with one precedence chain: CLI flag > environment (TASE_SEARCH_*) > config file > default.

The config file is TOML at ``$TASE_SEARCH_CONFIG`` or ``~/.config/tase-search/config.toml``; keys are the
field names below. Settings are frozen so one resolved value flows through a whole command.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError

ENV_PREFIX = "TASE_SEARCH_"
#: Most hits one search may rerank (each one is a forward pass of the cross-encoder).
MAX_RERANK = 1000
#: ``auto``: bf16 weights where the CPU has native bf16, else fp32; ``bf16-autocast``: fp32 weights under
#: bf16 autocast (the old default, slower); see :class:`tase_search.encoding.encoder.Encoder`.
PRECISIONS = ("auto", "bf16", "bf16-autocast", "fp32")
#: How queries are encoded, chosen once at load (:class:`tase_search.encoding.Encoder`,
#: :mod:`tase_search.encoding.query_bundle`): ``auto``: the index's torch-free query bundle when it has a
#: good one, else PyTorch; ``torch``: always PyTorch (and writes leave no bundle); ``onnx``: always ONNX
#: Runtime (an error if it cannot be used).
QUERY_BACKENDS = ("auto", "torch", "onnx")
#: Progress output of long commands (:mod:`tase_search.runtime.progress`): ``auto`` is a bar on a terminal and
#: periodic log lines elsewhere; ``off`` is silent.
PROGRESS_MODES = ("auto", "bar", "log", "off")
#: The most threads the ``threads`` setting accepts (0 means: pick from the free CPUs).
MAX_THREADS = 1024


def _default_index_root() -> str:
    from .home import default_index_root

    return default_index_root()


@dataclass(frozen=True)
class Settings:
    """Resolved settings for a command or a Retriever."""

    model: str = "default"
    index_root: str = field(default_factory=_default_index_root)
    batch_size: int = 64
    precision: str = "auto"  # auto: bf16 weights where the CPU supports it, else fp32
    device: str = "cpu"
    overlap_tokens: int = 32  # passage overlap when long documents are split
    max_seq_length: int = 0  # 0: the model's own limit
    query_backend: str = "auto"  # auto: ONNX Runtime for small query batches when installed, else PyTorch
    threads: int = (
        0  # 0: the free CPUs, capped (tase_search.runtime.threads); else torch/FAISS threads as given
    )
    progress: str = "auto"  # auto | bar | log | off
    search_mode: str = (
        "auto"  # auto (by query and corpus language: tase_search.query.modes.AUTO) | dense | sparse | hybrid
    )
    #: ``tase-search index`` leaves out (naming each) documents longer than this many bytes of UTF-8;
    #: 0: no limit. A 5 MB line is a dump, not a document: 3,085 passages and 9 minutes of embedding.
    max_document_bytes: int = 1_000_000
    #: rerank the top this-many hits of every search with ``reranker`` (0: no reranking unless asked for)
    rerank: int = 0
    #: the cross-encoder that reranks (a registered name, a directory or a hub id)
    reranker: str = "tase-rerank-tr"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InputError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.query_backend not in QUERY_BACKENDS:
            raise InputError(
                f"query backend {self.query_backend!r} is not one of {', '.join(QUERY_BACKENDS)}"
            )
        if self.batch_size < 1 or self.batch_size > 65536:
            raise InputError(f"batch size {self.batch_size} is out of range: use 1..65536")
        if not 0 <= self.overlap_tokens <= 65536:
            raise InputError(f"overlap {self.overlap_tokens} is out of range: use 0..65536")
        from ..query.modes import check_search_mode

        check_search_mode(self.search_mode)
        if self.progress not in PROGRESS_MODES:
            raise InputError(f"progress {self.progress!r} is not one of {', '.join(PROGRESS_MODES)}")
        if not 0 <= self.threads <= MAX_THREADS:
            raise InputError(
                f"threads {self.threads} is out of range: use 1..{MAX_THREADS}, or 0 to follow the free CPUs"
            )
        if self.max_document_bytes < 0:
            raise InputError(
                f"max_document_bytes {self.max_document_bytes} is out of range: use 0 (no limit) or more"
            )
        if not 0 <= self.rerank <= MAX_RERANK:
            raise InputError(f"rerank {self.rerank} is out of range: use 0 (off) to {MAX_RERANK} hits")
        if not isinstance(self.reranker, str) or not self.reranker.strip():
            raise InputError(
                f"reranker {self.reranker!r} is not valid: give a model name, directory or hub id"
            )
        if not 0 <= self.max_seq_length <= 65536:
            raise InputError(
                f"max_seq_length {self.max_seq_length} is out of range: use 0..65536 (0 = the model's limit)"
            )


def _config_file() -> Path:
    env = os.environ.get(ENV_PREFIX + "CONFIG")
    if env:
        return Path(env)
    return Path.home() / ".config" / "tase-search" / "config.toml"


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        import tomllib  # py311+
    except ModuleNotFoundError:  # pragma: no cover - py310
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with path.open("rb") as fh:
            return dict(tomllib.load(fh))
    except Exception as exc:  # noqa: BLE001 - any parse error is a user error here
        raise InputError(f"config file {path} could not be read: {exc}") from exc


def _coerce(name: str, raw: Any, typ: Any) -> Any:
    if typ in (int, "int"):
        try:
            return int(raw)
        except (TypeError, ValueError) as exc:
            raise InputError(f"setting {name}={raw!r} is not an integer") from exc
    return str(raw)


def load_settings(**overrides: Any) -> Settings:
    """Resolve settings: ``overrides`` (non-None, from flags) > env > config file > defaults."""
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}
    for key, val in _read_file(_config_file()).items():
        if key not in fields:
            raise InputError(f"unknown key {key!r} in config file; valid keys: {', '.join(fields)}")
        values[key] = val
    from_env: dict[str, str] = {}
    for name in fields:
        env = os.environ.get(ENV_PREFIX + name.upper())
        if env is not None and env != "":
            values[name] = env
            from_env[name] = env
    for name, val in overrides.items():
        if name not in fields:
            raise TypeError(f"unknown setting {name!r}")
        if val is not None:
            values[name] = val
    env_note = ", ".join(f"{ENV_PREFIX}{k.upper()}={v!r}" for k, v in from_env.items() if values.get(k) is v)
    try:
        coerced = {k: _coerce(k, v, fields[k].type) for k, v in values.items()}
        return Settings(**coerced)
    except InputError as exc:
        if not env_note:
            raise
        raise InputError(f"{exc} (from the environment: {env_note})") from None
