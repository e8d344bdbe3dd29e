"""Meeting a writer process at a named point of its write path, without sleeps or timing windows.

``TASE_SEARCH_FAULT=<point>:stop`` (:func:`tase_search.store.lock.fault_point`) makes a writer stop
itself (SIGSTOP) when it reaches ``<point>``; :func:`wait_until_stopped` returns once it has. The
test then acts on a writer that is known to be inside its write: kill it, interrupt it, or start a
second writer against its lock, and lets it go on with SIGCONT.
"""

from __future__ import annotations

import os
import subprocess
import threading

from ..store.lock import FAULT_ENV

__all__ = ["stop_at", "wait_until_stopped"]


def stop_at(point: str) -> dict[str, str]:
    """The variable that makes a writer stop itself at ``point`` (one of ``FAULT_POINTS``)."""
    return {FAULT_ENV: f"{point}:stop"}


def wait_until_stopped(proc: subprocess.Popen, timeout: float = 300.0) -> None:
    """Block until ``proc`` (a child of this process) is stopped; ``AssertionError`` if it exits first
    (its exit status is kept on ``proc``) or ``timeout`` seconds pass (it is killed)."""
    status: list[int] = []

    def wait() -> None:
        status.append(os.waitpid(proc.pid, os.WUNTRACED)[1])

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    waiter.join(timeout)
    if not status:
        proc.kill()
        waiter.join()
        proc.returncode = os.waitstatus_to_exitcode(status[0])
        raise AssertionError(f"process {proc.pid} did not reach its stop point in {timeout:.0f} s")
    if os.WIFSTOPPED(status[0]):
        return
    proc.returncode = os.waitstatus_to_exitcode(status[0])  # it was reaped here, not by Popen
    err = proc.stderr.read() if proc.stderr is not None else ""
    raise AssertionError(f"process {proc.pid} exited ({proc.returncode}) before its stop point: {err}")
