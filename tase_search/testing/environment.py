"""An environment for tests that cannot read or write the user's: homes, settings, caches, the hub.

A developer's shell may export ``TASE_SEARCH_INDEX``, ``TASE_SEARCH_CACHE_DIR``, a config file or a
Hugging Face cache; a test run that inherits them reads the developer's settings (and passes or fails
for that reason) and writes test files into their directories. :func:`isolated_environ` gives the
variables that point every such place into a throwaway folder, with the tool's own variables cleared
and the model hub switched off. The test suite applies it to the whole run and again to each test.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_PREFIX", "isolated_environ", "single_thread_environ"]

ENV_PREFIX = "TASE_SEARCH_"


def isolated_environ(root: Path, *, cache: Path | None = None) -> dict[str, str | None]:
    """Variables to set (``None``: to remove) so that nothing outside ``root`` is read or written.

    ``HOME`` and the XDG folders (config, data, state, cache) move under ``root``: the config file,
    the index home and every library's cache follow them. Every ``TASE_SEARCH_*`` variable of the
    current environment is removed, progress output is off and the Hugging Face hub is offline (a
    test never downloads). ``cache`` (default ``root/cache``) holds the caches, separately so that
    caches made once can be shared between tests that each get their own ``root``.
    """
    root = Path(root)
    cache = Path(cache) if cache is not None else root / "cache"
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith(ENV_PREFIX)}
    env.update(
        {
            "HOME": str(root / "home"),
            "XDG_CONFIG_HOME": str(root / "config"),
            "XDG_DATA_HOME": str(root / "data"),
            "XDG_STATE_HOME": str(root / "state"),
            "XDG_CACHE_HOME": str(cache),
            ENV_PREFIX + "NO_PROGRESS": "1",
            "HF_HOME": str(cache / "huggingface"),
            "HF_HUB_CACHE": None,
            "HF_DATASETS_CACHE": None,
            "TRANSFORMERS_CACHE": None,
            "SENTENCE_TRANSFORMERS_HOME": None,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HAYSTACK_TELEMETRY_ENABLED": "False",
            "LLM_USER_PATH": str(root / "llm"),
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    return env


def single_thread_environ() -> dict[str, str]:
    """One intra-op thread for torch, OpenMP and MKL.

    Tiny models on a small, often shared machine run many times faster on one thread than with
    OpenMP threads spinning against each other. torch reads these once, when it is first imported,
    so they must be in the environment before that (and child processes inherit them).
    """
    return {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
