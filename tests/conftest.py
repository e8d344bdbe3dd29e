"""The run's isolation from the user's environment, and the shared models.

Isolation has two layers, both from :func:`tase_search.testing.isolated_environ`:

- :func:`pytest_configure` sets it on the process for the whole run, before any test module is
  collected: collection imports torch and huggingface_hub, which read ``OMP_NUM_THREADS`` and
  ``HF_HUB_OFFLINE`` once, at import, so a fixture would come too late; and module- and
  session-scoped fixtures (which run before any function-scoped one) get isolated too. It is set,
  not ``setdefault``: a value the developer exported never reaches a test.
- :func:`isolated_environment` (autouse) gives each test its own homes, config folders and caches
  under a fresh directory, so no test sees what another left (a converted model in the cache, say).
  Child processes inherit ``os.environ``, so CLI subprocesses are isolated too.

The models (:class:`~tase_search.testing.FakeEncoder`, :func:`~tase_search.testing.build_tiny_model`)
live in :mod:`tase_search.testing`; here they are fixtures, the tiny models built once per run.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tase_search.testing import FakeEncoder, build_tiny_model, isolated_environ, single_thread_environ

_RUN = pytest.StashKey[tuple[pytest.MonkeyPatch, Path]]()


def _set(mp: pytest.MonkeyPatch, env: Mapping[str, str | None]) -> None:
    for key, value in env.items():
        if value is None:
            mp.delenv(key, raising=False)
        else:
            mp.setenv(key, value)


def pytest_configure(config: pytest.Config) -> None:
    root = Path(tempfile.mkdtemp(prefix="tase-search-tests-"))
    mp = pytest.MonkeyPatch()
    _set(mp, {**isolated_environ(root), **single_thread_environ()})
    (root / "home").mkdir()
    config.stash[_RUN] = (mp, root)


def pytest_unconfigure(config: pytest.Config) -> None:
    mp, root = config.stash[_RUN]
    mp.undo()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own HOME, XDG folders, caches and settings (no outside ``TASE_SEARCH_*``); the root."""
    root = tmp_path_factory.mktemp("env")
    _set(monkeypatch, isolated_environ(root))
    (root / "home").mkdir()
    return root


@pytest.fixture(autouse=True)
def _shared_models_stay_unconverted(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that converts a shared tiny model (a ct2-int8 artefact written beside it, where ``auto``
    then finds it) must not change which path the next test's ``auto`` takes: the artefacts go."""
    yield
    for name in ("tiny_model_dir", "other_tiny_model_dir"):
        if name in request.fixturenames:
            shutil.rmtree(request.getfixturevalue(name) / "backends", ignore_errors=True)


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model", seed=0)


@pytest.fixture(scope="session")
def other_tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same architecture and vocabulary, other weights: a different fingerprint."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model-other") / "model", seed=1)


@pytest.fixture(scope="session")
def tiny_encoder(tiny_model_dir: Path):  # noqa: ANN201 - Encoder (imported lazily)
    from tase_search.encoding.encoder import Encoder

    return Encoder.load(str(tiny_model_dir), precision="fp32")
