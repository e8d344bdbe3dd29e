"""Embedded chunks kept beside the index while ``tase-search index`` runs, so a build stopped part way
(Ctrl-C, a kill, a full disk) embeds only what it had not embedded yet when the same command runs again.

Why beside the index: the index itself changes only at the commit, so a stopped build leaves the old
index (or none) exactly as it was; the work done before the stop lives in ``.<name>.embedded/`` next to
it, one file per chunk of passages, named by a hash of the model's weights, its document path and
prompt, and the chunk's exact passage texts. A finished write removes the folder. A file that does not
load as a finite float32 matrix of the right shape (damaged, or placed there by someone else) is
embedded again, never trusted: files are read without following links, within a size bound, and
without pickle.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IndexError_
from ..store import safeio

#: Largest staged chunk read back (2,048 documents of 512-token passages at 1,024 dimensions fit).
MAX_CHUNK_BYTES = 1 << 30


def staging_root(index_dir: str | os.PathLike[str]) -> Path:
    index_dir = Path(index_dir).absolute()
    return index_dir.parent / f".{index_dir.name}.embedded"


class StagedEncoder:
    """An encoder whose :meth:`encode_document` keeps each chunk's vectors under ``root`` and returns
    them again for the same passages; everything else is the wrapped encoder's."""

    def __init__(self, encoder: Any, root: Path) -> None:
        self._encoder = encoder
        self.root = Path(root)
        #: passages whose vectors came from earlier runs
        self.reused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)

    def _key(self, texts: Sequence[str]) -> str:
        h = hashlib.sha256()
        for part in (
            self._encoder.fingerprint,
            str(getattr(self._encoder, "backend", "torch")),
            str(getattr(self._encoder, "passage_prompt", "")),
            str(self._encoder.dimension),
        ):
            h.update(part.encode("utf-8") + b"\0")
        for t in texts:
            h.update(t.encode("utf-8", "surrogatepass") + b"\0")
        return h.hexdigest()[:40]

    def _load(self, path: Path, rows: int) -> np.ndarray | None:
        try:
            raw = safeio.read_bytes(path, "a staged chunk", MAX_CHUNK_BYTES)
            arr = np.load(io.BytesIO(raw), allow_pickle=False)
        except (OSError, ValueError, IndexError_):
            return None
        ok = (
            isinstance(arr, np.ndarray)
            and arr.dtype == np.float32
            and arr.shape == (rows, int(self._encoder.dimension))
            and bool(np.isfinite(arr).all())
        )
        return arr if ok else None

    def encode_document(
        self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None, **kwargs: Any
    ) -> np.ndarray:
        items = list(texts)
        path = self.root / f"{self._key(items)}.npy"
        kept = self._load(path, len(items)) if items else None
        if kept is not None:
            self.reused += len(items)
            if progress is not None:
                progress(len(items))
            return kept
        emb = np.ascontiguousarray(
            self._encoder.encode_document(items, progress=progress, **kwargs), np.float32
        )
        with contextlib.suppress(OSError):  # a full disk here only costs the resume, not the build
            self.root.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            np.save(buf, emb, allow_pickle=False)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                safeio.write_bytes(tmp, buf.getvalue())
                os.replace(tmp, path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
        return emb

    def finished(self) -> None:
        """The write is committed: the staged chunks are no longer needed."""
        if self.root.is_symlink():
            self.root.unlink()
        else:
            shutil.rmtree(self.root, ignore_errors=True)
