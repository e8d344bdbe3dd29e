"""Single-writer lock and atomic file replacement.

The writer lock is an ``flock`` on ``<index>/.lock``: the kernel drops it when the holding
process dies, so a lock left by a killed writer is never stale in practice; the PID written
into the file is only for the error message. The file is opened without following links and
must be a regular file with one name, since taking the lock truncates it. Readers never take the lock — they read the
manifest, which is replaced atomically, and the immutable generation it points to.

:func:`fault_point` is the fault-injection hook the crash tests use (a no-op unless
``TASE_SEARCH_FAULT`` is set).
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import signal
import threading
from pathlib import Path
from types import TracebackType

from ..errors import IndexLocked, IndexWriteError
from .layout import LOCK_NAME, temporary_file
from .safeio import fsync_dir, open_regular, write_bytes

__all__ = ["FAULT_POINTS", "LOCK_NAME", "WriterLock", "atomic_write_bytes", "fault_point", "fsync_dir"]

FAULT_ENV = "TASE_SEARCH_FAULT"
#: The named points of the write path, in order (see :mod:`.commit`).
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
    except (ProcessLookupError, OverflowError, ValueError):
        return False
    except PermissionError:
        return True
    return True


#: Locks this process holds, by (lock file, thread): a nested acquire in the same thread only counts.
_HELD: dict[tuple[str, int], list[int]] = {}  # key -> [descriptor, holders]
_HELD_GUARD = threading.Lock()


class WriterLock:
    """Exclusive, non-blocking writer lock on an index directory.

    ``shared=True`` makes a holder that later acquires in the same thread join it instead of being
    refused: a command takes the lock before loading its model (so a second writer is refused at once)
    and keeps it through the write, whose commit takes it again (flock would refuse that second
    descriptor). A plain lock is never joined, so two plain acquires in one thread still conflict."""

    def __init__(self, index_dir: Path, *, shared: bool = False) -> None:
        self.path = Path(index_dir) / LOCK_NAME
        self.shared = shared
        self._fd: int | None = None
        self._nested: tuple[str, int] | None = None

    def _key(self) -> tuple[str, int]:
        return (os.path.realpath(self.path), threading.get_ident())

    def acquire(self) -> WriterLock:
        """Take the lock, or raise: :class:`IndexLocked` when another writer holds it,
        :class:`IndexWriteError` when the lock file cannot be written (a full disk above all). On any
        failure the descriptor is closed, so a failed attempt never keeps the lock held."""
        if self._nested is not None:
            return self
        key = self._key()
        with _HELD_GUARD:
            if key in _HELD:
                _HELD[key][1] += 1
                self._nested = key
                return self
        self._take()
        if self.shared:
            with _HELD_GUARD:
                _HELD[key] = [self._fd, 1]  # type: ignore[list-item]
                self._nested, self._fd = key, None  # the descriptor belongs to the last holder out
        return self

    def _take(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # never through a link, and only a regular file with no other name: the PID write truncates it
            fd = open_regular(
                self.path,
                f"lock file {self.path}",
                flags=os.O_RDWR | os.O_CREAT,
                single_link=True,
                error=IndexWriteError,
            )
        except OSError as exc:
            raise self._write_error(exc) from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise self._locked(fd) from exc
                raise
            os.ftruncate(fd, 0)
            pid = f"{os.getpid()}\n".encode()
            if os.write(fd, pid) != len(pid):  # a short write of a few bytes: the disk is full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        except BaseException as exc:
            os.close(fd)  # also drops the flock, if it was taken
            if isinstance(exc, OSError):
                raise self._write_error(exc) from exc
            raise
        self._fd = fd

    def _locked(self, fd: int) -> IndexLocked:
        holder, raw = _read_pid(fd)
        if holder:
            who = f"PID {holder}"
        elif raw:
            who = f"another process (its lock file holds {raw[:24]!r}, not a valid PID)"
        else:
            who = "another process"
        return IndexLocked(
            f"index {self.path.parent} is locked by {who} (a writer is indexing or deleting); "
            "wait for it to finish — searches keep working meanwhile"
        )

    def _write_error(self, exc: OSError) -> IndexWriteError:
        """The failure to create or write the lock file, worded as what to do about it."""
        if exc.errno == errno.ENOSPC:
            why = "no space left on the device; free some space, then retry"
        elif exc.errno == errno.EDQUOT:
            why = "disk quota exceeded; free some space, then retry"
        else:
            why = f"{exc.strerror or exc}"
        return IndexWriteError(
            f"cannot take the writer lock of index {self.path.parent} (writing {self.path.name} failed): "
            f"{why}; the index is unchanged"
        )

    def release(self) -> None:
        key, self._nested = self._nested, None
        if key is None:
            fd, self._fd = self._fd, None
            if fd is not None:
                _unlock(fd)
            return
        with _HELD_GUARD:
            held = _HELD.get(key)
            if held is None:
                return
            held[1] -= 1
            if held[1] > 0:
                return
            del _HELD[key]
        _unlock(held[0])

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _unlock(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


#: The kernel's largest possible PID (``PID_MAX_LIMIT`` on 64-bit Linux): anything above is not a PID.
PID_MAX = 4_194_304
_PID_RE = re.compile(r"[1-9][0-9]{0,6}")


def parse_pid(raw: str) -> int | None:
    """The PID a lock file holds, or None for anything else (empty, junk, -1, 0, huge numbers)."""
    raw = raw.strip()
    if not _PID_RE.fullmatch(raw):
        return None
    pid = int(raw)
    return pid if pid <= PID_MAX else None


def _read_pid(fd: int) -> tuple[int | None, str]:
    """(live PID or None, the text found) of a lock file someone holds."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 32).decode(errors="replace").strip()
    except OSError:
        return None, ""
    pid = parse_pid(raw)
    if pid is not None and not _pid_alive(pid):
        return None, ""
    return pid, "" if pid is not None else raw


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new file, never a mix. The temporary
    is written in full and read back (:func:`safeio.write_bytes`) before it replaces ``path``."""
    path = Path(path)
    tmp = temporary_file(path)
    try:
        tmp.unlink(missing_ok=True)  # left by a killed process that had our PID
        write_bytes(tmp, data)
        fault_point(f"{path.stem}-tmp")  # "manifest-tmp"
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk or Ctrl-C leaves no stray temporary
        raise
    fsync_dir(path.parent)
