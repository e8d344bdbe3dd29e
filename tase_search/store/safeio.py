"""Checked file I/O for index files: links never followed, every byte written accounted for.

Why: an index directory may hold a planted symlink (``.lock`` -> a user's file) or a file a
full disk left short, and libraries do not always say so (FAISS prints "close error" and
returns). So index files are opened with ``O_NOFOLLOW`` and must be regular files; writes go
through :class:`CheckedWriter`, which loops over short writes, fsyncs, closes with its error
checked, then reads the file back and compares its size and SHA-256 with what was handed to it.

:func:`simulate_full_disk` is the fault-injection hook of the disk-full tests: after a budget of
bytes, every write through this module fails with ``ENOSPC`` (``TASE_SEARCH_FAULT_BYTES=N`` sets
it for a whole process). Unset, it costs one comparison per write.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ..errors import IndexCorrupt, TaseSearchError

FAULT_BYTES_ENV = "TASE_SEARCH_FAULT_BYTES"
CHUNK = 1 << 20
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0)  # NONBLOCK: a FIFO cannot hang open()


def _env_budget() -> int | None:
    raw = os.environ.get(FAULT_BYTES_ENV, "")
    return int(raw) if raw.isdigit() else None


_budget: int | None = _env_budget()


def simulate_full_disk(nbytes: int | None) -> None:
    """From now on, writes through this module fail with ENOSPC once ``nbytes`` more bytes were written
    (``None``: no limit). For tests."""
    global _budget
    _budget = nbytes


class Digest(NamedTuple):
    """What a file holds: its size and SHA-256, as recorded in the manifest."""

    bytes: int
    sha256: str

    def as_manifest(self) -> dict[str, int | str]:
        return {"bytes": self.bytes, "sha256": self.sha256}


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def not_regular(path: Path, *, follow: bool = False) -> str | None:
    """Why ``path`` is not a plain regular file ("a symbolic link", ...), None when it is one.
    Raises FileNotFoundError when it is missing. Never looks past a link."""
    st = os.stat(path) if follow else os.lstat(path)
    return None if stat.S_ISREG(st.st_mode) else _kind(st.st_mode)


def open_regular(
    path: Path,
    what: str,
    *,
    flags: int = os.O_RDONLY,
    mode: int = 0o666,
    single_link: bool = False,
    error: type[TaseSearchError] = IndexCorrupt,
) -> int:
    """A file descriptor for ``path``, opened without following a symbolic link, that must be a regular
    file (with ``single_link``, not hard-linked elsewhere either). ``what`` names it in the error, which
    never tells anything about a link's target. FileNotFoundError propagates."""
    try:
        fd = os.open(path, flags | _NOFOLLOW, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise error(f"{what} is a symbolic link; {_FIX}") from None
        if exc.errno in (errno.EISDIR, errno.ENXIO):  # a directory; a socket
            raise error(f"{what} is {os.strerror(exc.errno).lower()}, not a regular file; {_FIX}") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{what} is {_kind(st.st_mode)}, not a regular file; {_FIX}")
        if single_link and st.st_nlink != 1:
            raise error(f"{what} has {st.st_nlink} hard links (it is also a file elsewhere); {_FIX}")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


_FIX = (
    "tase-search reads and writes only plain files inside the index (remove it, or run `tase-search verify`)"
)


def read_bytes(path: Path, what: str, limit: int) -> bytes:
    """The whole of a small regular file, refusing one over ``limit`` bytes before reading it."""
    fd = open_regular(path, what)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise IndexCorrupt(
                f"{what} is {size} bytes, over the {limit}-byte limit for it; the index is damaged"
            )
        parts, left = [], limit + 1
        while left > 0 and (chunk := os.read(fd, min(CHUNK, left))):
            parts.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(parts)
    if len(data) > limit:
        raise IndexCorrupt(f"{what} grew past the {limit}-byte limit while it was read; the index is damaged")
    return data


def digest_file(path: Path, what: str) -> Digest:
    """Size and SHA-256 of a regular file, read without following links."""
    fd = open_regular(path, what)
    try:
        return _digest_fd(fd)
    finally:
        os.close(fd)


def _digest_fd(fd: int) -> Digest:
    h, n = hashlib.sha256(), 0
    while chunk := os.read(fd, CHUNK):
        h.update(chunk)
        n += len(chunk)
    return Digest(n, h.hexdigest())


class HashingReader:
    """Reads a regular file (no links followed) and hashes every byte read, for a loader that consumes
    the file once anyway: the checksum check then costs the hash, not a second read."""

    def __init__(self, path: Path, what: str, *, hash: bool = True) -> None:  # noqa: A002
        self.what = what
        self._fd = open_regular(path, what)
        self._h = hashlib.sha256() if hash else None
        self.bytes = 0

    def read(self, n: int) -> bytes:
        out = os.read(self._fd, n)
        if self._h is not None:
            self._h.update(out)
        self.bytes += len(out)
        return out

    def finish(self) -> Digest:
        """Hash what the loader left unread and close; the digest covers the whole file."""
        try:
            while self.read(CHUNK):
                pass
        finally:
            self.close()
        return Digest(self.bytes, self._h.hexdigest() if self._h is not None else "")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class CheckedWriter:
    """A new file written in full or not at all: every write completes, fsync and close are checked, and
    :meth:`finish` reads the file back and compares it with what was written (size and SHA-256)."""

    def __init__(self, path: Path, *, sync: bool = True) -> None:
        self.path = Path(path)
        self.sync = sync
        self._fd = os.open(
            self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666
        )
        self._h = hashlib.sha256()
        self.bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        global _budget
        view = memoryview(data).cast("B")
        if _budget is not None:
            if len(view) > _budget:
                _write_all(self._fd, view[:_budget])
                _budget = 0
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
            _budget -= len(view)
        _write_all(self._fd, view)
        self._h.update(view)
        self.bytes += len(view)
        return len(view)

    def finish(self) -> Digest:
        fd, self._fd = self._fd, -1
        try:
            if self.sync:
                os.fsync(fd)
        finally:
            os.close(fd)  # raises on a deferred write error (NFS, FUSE): never dropped
        written = Digest(self.bytes, self._h.hexdigest())
        on_disk = digest_file(self.path, str(self.path))
        if on_disk != written:
            raise OSError(
                errno.EIO,
                f"the file on disk ({on_disk.bytes} bytes) is not what was written ({written.bytes} bytes, "
                "other checksum): the write was lost or cut short",
                str(self.path),
            )
        return written

    def close(self) -> None:
        """Close without the read-back (for a copy whose content is checked elsewhere); errors propagate."""
        fd, self._fd = self._fd, -1
        try:
            if self.sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def _write_all(fd: int, view: memoryview) -> None:
    while len(view):
        n = os.write(fd, view)
        if n <= 0:  # pragma: no cover - os.write raises instead on Linux
            raise OSError(errno.EIO, "write made no progress")
        view = view[n:]


def write_file(
    path: Path, produce: Callable[[CheckedWriter], None], *, sync: bool = True, read_back: bool = True
) -> Digest:
    """Create ``path`` with what ``produce`` writes to the writer; its digest, checked against the disk
    (after an fsync unless ``sync`` is False). ``read_back=False`` skips the read-back for a copy whose
    content is checked elsewhere (the digest's sha256 is then empty). On any failure the partial file is
    removed and the error propagates."""
    w = CheckedWriter(path, sync=sync)
    try:
        produce(w)
        if read_back:
            return w.finish()
        w.close()
        return Digest(w.bytes, "")
    except BaseException:
        w.abort()
        raise


def write_bytes(path: Path, data: bytes) -> Digest:
    return write_file(path, lambda w: w.write(data))


def replace_bytes(path: Path, data: bytes) -> None:
    """``data`` into ``path`` through a temporary name beside it, synced and renamed: a reader sees the
    old file or the new one, never a half-written file."""
    import secrets

    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        write_bytes(tmp, data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def copy_file(src: Path, dst: Path, what: str, *, sync: bool = True, hash: bool = True) -> Digest:  # noqa: A002
    """Copy a regular file (no links followed) to a new ``dst``; the digest of the bytes copied, which the
    read-back check proves ``dst`` holds. ``sync=False`` for a working copy that is synced later;
    ``hash=False`` for a plain copy of a file already known to be intact (its digest's sha256 is empty)."""
    reader = HashingReader(src, what, hash=hash)
    try:
        return write_file(dst, lambda w: _pump(reader, w), sync=sync, read_back=hash)
    finally:
        reader.close()


def _pump(reader: HashingReader, w: CheckedWriter) -> None:
    while chunk := reader.read(CHUNK):
        w.write(chunk)


def fsync_file(path: Path) -> None:
    _fsync(path, os.O_NOFOLLOW)


def fsync_dir(path: Path) -> None:
    _fsync(path, os.O_DIRECTORY)


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
