"""The one watchdog thread stops a run at its deadline, leaves a finished run alone, and is woken only
when a deadline comes earlier than the one it sleeps until."""

from __future__ import annotations

import time
from types import SimpleNamespace

from tase_search.encoding.run_limit import Watchdog


def _wait_for(cond, timeout: float = 5.0) -> bool:  # noqa: ANN001
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


def test_a_run_past_its_deadline_is_stopped_and_a_finished_one_is_not() -> None:
    dog = Watchdog()
    slow, quick = SimpleNamespace(terminate=False), SimpleNamespace(terminate=False)
    long_one = dog.arm(SimpleNamespace(terminate=False), 60.0)  # the thread now sleeps ~60 s
    dog.disarm(dog.arm(quick, 0.05))
    dog.arm(slow, 0.05)  # earlier than the thread's wake-up: it is woken for it
    assert _wait_for(lambda: slow.terminate)
    time.sleep(0.1)
    assert quick.terminate is False
    dog.disarm(long_one)
    assert dog._due == {}


def test_runs_keep_one_thread() -> None:
    dog = Watchdog()
    for _ in range(50):
        dog.disarm(dog.arm(SimpleNamespace(terminate=False), 20.0))
    first = dog._thread
    dog.disarm(dog.arm(SimpleNamespace(terminate=False), 20.0))
    assert dog._thread is first and first is not None and first.is_alive()
