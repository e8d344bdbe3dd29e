"""One watchdog thread that stops ONNX Runtime runs past their time limit.

Why: a graph read from disk may be anyone's, so each of its runs is time-limited (a graph that loops is
stopped, not hung on). A ``threading.Timer`` per run starts a thread per query, ~0.3 ms of a ~9 ms warm
search on a busy 2-core machine; this thread is started once and woken only when a deadline comes
earlier than the one it already sleeps until (with one time limit for every run: the first run after
an idle spell).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from typing import Any


class Watchdog:
    """Sets ``terminate`` on a run's ``RunOptions`` when its deadline passes (see the module docstring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[int, tuple[float, Any]] = {}
        self._tokens = itertools.count()
        self._wake = math.inf  # when the thread next wakes on its own
        self._thread: threading.Thread | None = None

    def arm(self, opts: Any, seconds: float) -> int:
        """Watch ``opts`` (a ``RunOptions``) for ``seconds``; the token is for :meth:`disarm`."""
        deadline = time.monotonic() + seconds
        with self._cond:
            token = next(self._tokens)
            self._due[token] = (deadline, opts)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="tase-onnx-watchdog", daemon=True)
                self._thread.start()
            elif deadline < self._wake:
                self._cond.notify()
        return token

    def disarm(self, token: int) -> None:
        """The run is over: forget it (the thread is not woken for that)."""
        with self._cond:
            self._due.pop(token, None)

    def _loop(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for token, (deadline, opts) in list(self._due.items()):
                    if deadline <= now:
                        opts.terminate = True
                        del self._due[token]
                self._wake = min((d for d, _ in self._due.values()), default=math.inf)
                self._cond.wait(None if self._wake == math.inf else self._wake - now)


WATCHDOG = Watchdog()
