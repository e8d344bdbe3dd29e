"""Progress of long operations on stderr: a bar on a terminal, plain periodic lines anywhere else.

Why both: a bar redraws one line with carriage returns, which is right on a terminal and garbage in a
log file; run from a script, a scheduler or ``nohup``, a 10k-line ``index`` used to print nothing for
minutes. In ``log`` mode the same progress comes as one line per stage and one line every
``interval`` seconds while documents are embedded (count, docs/s, ETA). Stdout is never touched, so
``--json`` output stays clean.

A :class:`Progress` is what ``Retriever.build`` / ``add`` take as ``progress``: called with the
number of documents done, and told about each new stage (``stage("saving")``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from .config import PROGRESS_MODES

#: Seconds between two log lines while documents are embedded.
LOG_INTERVAL = 10.0


def resolve_mode(mode: str, *, stream: TextIO | None = None) -> str:
    """``bar``, ``log`` or ``off`` for a setting; ``auto`` looks at whether ``stream`` is a terminal."""
    if mode not in PROGRESS_MODES:
        raise ValueError(f"progress mode {mode!r} is not one of {', '.join(PROGRESS_MODES)}")
    if mode != "auto":
        return mode
    stream = stream if stream is not None else sys.stderr
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # closed or a stand-in without isatty
        tty = False
    return "bar" if tty else "log"


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``: short, for log lines."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class Progress:
    """Reports documents done and stages; a no-op in mode ``off``.

    ``total`` may be None (stdin, gzip: unknown). ``clock`` and ``interval`` are parameters so the
    periodic lines can be tested without waiting.
    """

    def __init__(
        self,
        mode: str,
        total: int | None = None,
        *,
        desc: str = "embedding",
        unit: str = "documents",
        stream: TextIO | None = None,
        interval: float = LOG_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.mode = resolve_mode(mode, stream=self.stream)
        self.total = total
        self.desc = desc
        self.unit = unit
        self.interval = interval
        self.clock = clock
        self.done = 0
        #: passages embedded so far (:meth:`passages`): a long document is many passages, so a count of
        #: documents alone can sit at ``0/1`` for minutes
        self.passages_done = 0
        self._start: float | None = None  # when the first document was counted
        self._last_line = 0.0
        self._printed = -1  # the count the last log line showed
        self._bar: Any = None

    # ------------------------------------------------------------------ events
    def stage(self, name: str) -> None:
        """A new stage begins (``loading model …``, ``saving``): one line in both modes."""
        if self.mode == "off":
            return
        if self._bar is not None:
            self._bar.refresh()
        elif self.mode == "log" and self.done != max(self._printed, 0):  # where the count got to, first
            self._print(self.line())
        self._print(name)

    def __call__(self, n: int) -> None:
        """``n`` more documents are done; the first call (``n`` may be 0) starts the clock for docs/s."""
        if self.mode == "off" or n < 0:
            return
        now = self.clock()
        if self._start is None:
            self._start = now
            self._last_line = now
            if self.mode == "bar":
                self._bar = _make_bar(self.total, self.desc, self.stream)
                if self._bar is None:  # no tqdm: plain lines
                    self.mode = "log"
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "log" and n and now - self._last_line >= self.interval:
            self._print(self.line(now))

    update = __call__

    def passages(self, n: int) -> None:
        """``n`` more passages were embedded (reported beside the documents, with passages/s)."""
        if self.mode == "off" or n <= 0:
            return
        if self._start is None:
            self(0)
        self.passages_done += n
        now = self.clock()
        if self._bar is not None:
            self._bar.set_postfix_str(f"{self.passages_done:,} passages", refresh=False)
        elif self.mode == "log" and now - self._last_line >= self.interval:
            self._print(self.line(now))

    def line(self, now: float | None = None) -> str:
        """``embedding: 2,048/10,000 documents (20%), 85.3 docs/s, ETA 1m34s`` (and remembers it was shown)."""
        now = self.clock() if now is None else now
        self._last_line, self._printed = now, self.done
        elapsed = now - self._start if self._start is not None else 0.0
        count = f"{self.done:,}" + (f"/{self.total:,}" if self.total else "")
        parts = [f"{self.desc}: {count} {self.unit}"]
        if self.total:
            parts[0] += f" ({min(100, 100 * self.done // max(1, self.total))}%)"
        if self.passages_done:
            parts.append(f"{self.passages_done:,} passages")
        if elapsed > 0 and self.passages_done:
            parts.append(f"{self.passages_done / elapsed:.1f} passages/s")
        if elapsed > 0 and self.done:
            rate = self.done / elapsed
            parts.append(f"{rate:.1f} docs/s")
            if self.total and self.total > self.done:
                parts.append(f"ETA {duration((self.total - self.done) / rate)}")
        return ", ".join(parts)

    def close(self, final: str | None = None) -> None:
        """End the bar (or write the last count in ``log`` mode), then ``final`` if given."""
        if self.mode == "off":
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.mode == "log" and (self.done or self.passages_done) and self.done != self._printed:
            self._print(self.line())
        if final:
            self._print(final)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _print(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)


def _make_bar(total: int | None, desc: str, stream: TextIO) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with transformers
        return None
    return tqdm(total=total, desc=desc, unit="doc", file=stream, dynamic_ncols=True)


def passages_of(progress: Any) -> Callable[[int], None]:
    """The ``passages`` method of a progress object, or a no-op for a plain ``progress(n)`` callable."""
    fn = getattr(progress, "passages", None)
    return fn if callable(fn) else (lambda _n: None)


def stage_of(progress: Any) -> Callable[[str], None]:
    """The ``stage`` method of a progress object, or a no-op for a plain ``progress(n)`` callable."""
    fn = getattr(progress, "stage", None)
    return fn if callable(fn) else (lambda _name: None)
