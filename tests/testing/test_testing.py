"""tase_search.testing: the fake encoder keeps the encoder protocols, the environment keeps tests out of
the user's, the stop-point wait meets a writer inside its write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tase_search.encoding.protocols import DocumentEncoder
from tase_search.store.lock import FAULT_ENV
from tase_search.testing import FakeEncoder, isolated_environ, stop_at, wait_until_stopped


def test_fake_encoder_is_a_document_encoder() -> None:
    enc = FakeEncoder(16)
    assert isinstance(enc, DocumentEncoder)
    q, d = enc.encode_query(["futbol maçı", ""]), enc.encode_document("Futbol maçı bitti")
    assert q.shape == (2, 16) and d.shape == (1, 16) and q.dtype == d.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(np.vstack([q, d]), axis=1), 1.0, rtol=1e-6)
    assert float(q[0] @ d[0]) > 0.5  # shared words, similar vectors
    assert enc.calls == {"query": 2, "document": 1}
    assert FakeEncoder(16).fingerprint == enc.fingerprint != FakeEncoder(32).fingerprint
    with pytest.raises(ValueError, match="dim 1 is too small"):
        FakeEncoder(1)


def test_isolated_environ_clears_the_tools_variables_and_moves_every_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TASE_SEARCH_INDEX", "/home/someone/indexes/mine")
    env = isolated_environ(tmp_path / "root", cache=tmp_path / "cache")
    assert env["TASE_SEARCH_INDEX"] is None and env["TASE_SEARCH_NO_PROGRESS"] == "1"
    assert env["HF_HUB_OFFLINE"] == env["TRANSFORMERS_OFFLINE"] == "1"
    for key in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        assert Path(env[key] or "").is_relative_to(tmp_path / "root"), key
    for key in ("XDG_CACHE_HOME", "HF_HOME"):
        assert Path(env[key] or "").is_relative_to(tmp_path / "cache"), key


def test_each_test_runs_in_its_own_environment(isolated_environment: Path) -> None:
    assert not [k for k in os.environ if k.startswith("TASE_SEARCH_") and k != "TASE_SEARCH_NO_PROGRESS"]
    assert Path.home() == isolated_environment / "home" and Path.home().is_dir()
    assert Path(os.environ["XDG_DATA_HOME"]).is_relative_to(isolated_environment)
    assert os.environ["OMP_NUM_THREADS"] == "1"  # set for the run, before torch was imported


_STOP_THEN_EXIT = "from tase_search.store.lock import fault_point; fault_point('copied'); print('went on')"


def test_wait_until_stopped_meets_the_process_at_its_point() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _STOP_THEN_EXIT],
        env={**os.environ, **stop_at("copied")},
        stdout=subprocess.PIPE,
        text=True,
    )
    wait_until_stopped(proc, timeout=120)
    assert proc.poll() is None  # stopped, not gone
    proc.send_signal(signal.SIGCONT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and out.strip() == "went on"


def test_wait_until_stopped_reports_a_process_that_exits_first() -> None:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    proc = subprocess.Popen(
        [sys.executable, "-c", _STOP_THEN_EXIT], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    with pytest.raises(AssertionError, match="exited \\(0\\) before its stop point"):
        wait_until_stopped(proc, timeout=120)
    assert proc.returncode == 0
