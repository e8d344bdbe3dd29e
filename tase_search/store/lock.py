"""Single-writer lock and atomic file replacement.

The writer lock is an ``flock`` on ``<index>/.lock``: the kernel drops it when the holding
process dies, so a lock left by a killed writer is never stale in practice; the PID written
into the file is only for the error message. Readers never take the lock — they read the
manifest, which is replaced atomically, and the immutable generation it points to.

:func:`fault_point` is the fault-injection hook the crash tests use (a no-op unless
``TASE_SEARCH_FAULT`` is set).
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
from pathlib import Path
from types import TracebackType

from ..errors import IndexLocked

LOCK_NAME = ".lock"
FAULT_ENV = "TASE_SEARCH_FAULT"
#: The named points of the write path, in order (see ``Retriever._write``).
FAULT_POINTS = (
    "locked",  # writer lock held, stale temporaries removed
    "copied",  # temporary generation holds a copy of the old SQLite file; old vectors loaded
    "ingested",  # documents embedded and written, SQLite transaction still open
    "sqlite",  # SQLite transaction committed and closed
    "faiss",  # vector index saved
    "synced",  # files fsynced and checksummed
    "renamed",  # temporary directory renamed to gen-NNNNNN, manifest not yet replaced
    "manifest-tmp",  # new manifest written to its temporary file, not yet renamed over the old one
    "committed",  # manifest replaced: the new generation is visible
    "cleaned",  # older generations removed, lock about to be released
)
_FAULT_SIGNALS = {"": signal.SIGKILL, "kill": signal.SIGKILL, "int": signal.SIGINT, "stop": signal.SIGSTOP}


def fault_point(name: str) -> None:
    """Fault injection for the crash tests; does nothing unless ``TASE_SEARCH_FAULT`` is set.

    ``TASE_SEARCH_FAULT=<point>`` makes the process SIGKILL itself when the write path reaches
    ``<point>`` (one of :data:`FAULT_POINTS`); ``<point>:int`` sends SIGINT (Ctrl-C) instead,
    ``<point>:stop`` SIGSTOP (a hung writer that still holds the lock).
    """
    spec = os.environ.get(FAULT_ENV)
    if spec:
        point, _, how = spec.partition(":")
        if point == name:
            os.kill(os.getpid(), _FAULT_SIGNALS.get(how, signal.SIGKILL))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WriterLock:
    """Exclusive, non-blocking writer lock on an index directory."""

    def __init__(self, index_dir: Path) -> None:
        self.path = Path(index_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> WriterLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                who = f"PID {holder}" if holder else "another process"
                raise IndexLocked(
                    f"index {self.path.parent} is locked by {who} (a writer is indexing or deleting); "
                    "wait for it to finish — searches keep working meanwhile"
                ) from exc
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 32).decode(errors="replace").strip()
        pid = int(raw) if raw else None
    except (OSError, ValueError):
        return None
    if pid is not None and not _pid_alive(pid):
        return None
    return pid


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new file, never a mix."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        fault_point(f"{path.stem}-tmp")  # "manifest-tmp"
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk or Ctrl-C leaves no stray temporary
        raise
    fsync_dir(path.parent)
