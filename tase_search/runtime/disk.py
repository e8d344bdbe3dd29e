"""The size of a directory tree on disk: one definition for ``info``, ``list`` and ``cache clean``.

Kept apart from :mod:`.home` (which reads manifests) so that :mod:`.cache` needs nothing of the store.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (0 when it does not exist), links neither counted nor
    followed. The one size of an index: ``info`` and ``list`` both show it, and it counts everything the
    directory holds (generations, the query bundle, the lock file)."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    total = 0
    for folder, _dirs, files in os.walk(path):  # does not descend into linked folders
        for name in files:
            try:
                st = os.lstat(os.path.join(folder, name))
            except OSError:  # removed meanwhile
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total
