"""Test helpers for tase-search and for code built on it.

- :class:`FakeEncoder`: a deterministic bag-of-words encoder with the real encoder's surface and no
  torch or weights, for tests of indexing, search and crash safety.
- :func:`build_tiny_model` / :func:`build_tiny_t5`: tiny random-init sentence-transformers models,
  built offline in well under a second, for tests of the real encoder paths.
- :func:`isolated_environ`: the environment variables that keep a test run out of the user's homes,
  settings and caches, and off the model hub.
- :func:`stop_at` / :func:`wait_until_stopped`: meet a writer process at a named point of its write.

The test suite (``tests/``) and the robustness campaign (``campaign/``) both use these.
"""

from __future__ import annotations

from .environment import ENV_PREFIX, isolated_environ, single_thread_environ
from .fake_encoder import FakeEncoder
from .processes import stop_at, wait_until_stopped
from .tiny_models import TINY_MAX_SEQ_LENGTH, build_tiny_model, build_tiny_t5, write_tiny_vocab

__all__ = [
    "ENV_PREFIX",
    "TINY_MAX_SEQ_LENGTH",
    "FakeEncoder",
    "build_tiny_model",
    "build_tiny_t5",
    "isolated_environ",
    "single_thread_environ",
    "stop_at",
    "wait_until_stopped",
    "write_tiny_vocab",
]
