#!/usr/bin/env python
"""What a write's check of the generation it copies costs, on a large-ish index.

Why: before a write copies the current generation it checks what it carries over (the SQLite file's
and the vector file's SHA-256 against the manifest, SQLite's ``quick_check``, the counts), so damage
makes it refuse instead of being laundered into a new version. The checksums are computed in the same
pass as the copy and the load that the write does anyway, so the check should cost little of a write.
This builds an index of ``--rows`` random unit vectors (one short document each, a Flat index: no
graph building) and times a one-document delete in three modes, interleaved (stamped, full, unchecked,
stamped, ...): *stamped* is the shipped write on an index whose files carry the stamp the previous
write left (:mod:`tase_search.store.stamps`: untouched files are not hashed again), *full* the same
with the stamp removed (the check hashes both files and runs ``quick_check``, as after any edit or
copy), *unchecked* the plain copy and load a write did before the checks existed. It also times the
check's parts alone: hashing both files, ``quick_check``, the counts.

    nice -n 10 python bench/write_check.py --rows 100000 --dim 384 --rounds 3 --out runs/bench/write_check.json
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import add_common_args, finish, machine_facts  # noqa: E402

from tase_search.retriever import Retriever  # noqa: E402
from tase_search.store import commit as C  # noqa: E402
from tase_search.store import generation as G  # noqa: E402
from tase_search.store import safeio, stamps  # noqa: E402
from tase_search.store.manifest import read_manifest  # noqa: E402
from tase_search.store.vectors import get_backend  # noqa: E402


class RandomEncoder:
    """Random unit vectors (seeded): encoding costs nothing, so the write itself is what is timed."""

    def __init__(self, dim: int) -> None:
        self.dim = self.dimension = dim
        self.model_id, self.fingerprint, self.max_seq_length = "random", "random-" + str(dim), 128
        self._rng = np.random.default_rng(0)

    def encode_document(self, texts: Any, **_kw: Any) -> np.ndarray:
        v = self._rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    encode_query = encode_document

    def split_passages(self, text: str, overlap: int = 32) -> list[Any]:
        from tase_search.encoding.passages import Passage

        return [Passage(0, len(text), 0, 1)]


def _unchecked_carry_over(index_dir: Path, old: Any, tmp: Path) -> Any:
    """The copy and load a write did before the carry-over checks existed."""
    gen = index_dir / old.generation_dir
    shutil.copyfile(gen / G.DOCS_FILE, tmp / G.DOCS_FILE)
    vec = G.vectors_file(old)
    return get_backend(old.backend).load(gen / vec, old.factory, old.model.dimension, old.search_params)


def _delete(ix: Path, enc: RandomEncoder, doc_id: str, mode: str) -> float:
    saved = C.carry_over, G.store_problems
    if mode == "full":
        stamps.forget(ix)
    elif mode == "unchecked":
        C.carry_over = lambda index_dir, old, tmp: (_unchecked_carry_over(index_dir, old, tmp), True)
        G.store_problems = lambda *a, **k: []
    try:
        r = Retriever(ix, read_manifest(ix), encoder=enc)
        t = time.perf_counter()
        r.delete([doc_id])
        return time.perf_counter() - t
    finally:
        C.carry_over, G.store_problems = saved


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", default=None, help="Directory for the index (default: a temporary one).")
    add_common_args(ap)
    a = ap.parse_args(argv)
    if a.quick:
        a.rows, a.rounds = 2000, 1
    facts = machine_facts()
    work = Path(a.work or tempfile.mkdtemp(prefix="tase-write-check-"))
    ix = work / "ix"
    enc = RandomEncoder(a.dim)
    t = time.perf_counter()
    docs = ({"id": f"r{i}", "text": f"belge {i} futbol maç haber"} for i in range(a.rows))
    Retriever.build(docs, model=enc, path=ix, factory="Flat", overwrite=True).close()
    build_s = time.perf_counter() - t
    m = read_manifest(ix)
    gen = ix / m.generation_dir
    sizes = {name: info["bytes"] for name, info in m.files.items()}

    modes = ("stamped", "full", "unchecked")
    times: dict[str, list[float]] = {m: [] for m in modes}
    for i in range(a.rounds):
        for j, mode in enumerate(modes):
            times[mode].append(_delete(ix, enc, f"r{len(modes) * i + j}", mode))

    gen = ix / read_manifest(ix).generation_dir
    t = time.perf_counter()
    for name in sizes:
        safeio.digest_file(gen / name, name)
    hash_s = time.perf_counter() - t
    conn = sqlite3.connect(f"file:{gen / G.DOCS_FILE}?mode=ro", uri=True)
    t = time.perf_counter()
    conn.execute("PRAGMA quick_check").fetchall()
    quick_s = time.perf_counter() - t
    t = time.perf_counter()
    for table in ("documents", "passages", "tombstones"):
        conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    count_s = time.perf_counter() - t
    conn.close()
    if not a.work:
        shutil.rmtree(work, ignore_errors=True)

    med = {m: statistics.median(v) for m, v in times.items()}
    result = {
        "benchmark": "write_check",
        "machine": facts,
        "rows": a.rows,
        "dim": a.dim,
        "file_bytes": sizes,
        "build_seconds": round(build_s, 2),
        "delete_seconds": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "delete_median_seconds": {m: round(v, 3) for m, v in med.items()},
        "check_cost_seconds": {m: round(med[m] - med["unchecked"], 3) for m in ("stamped", "full")},
        "check_cost_share_of_write": {
            m: round((med[m] - med["unchecked"]) / med[m], 3) for m in ("stamped", "full")
        },
        "parts_alone_seconds": {
            "sha256_both_files": round(hash_s, 3),
            "sqlite_quick_check": round(quick_s, 3),
            "counts": round(count_s, 3),
        },
    }
    summary = (
        f"write_check: {a.rows} rows x {a.dim}: delete {med['stamped']:.2f}s stamped, {med['full']:.2f}s full "
        f"check, {med['unchecked']:.2f}s unchecked; alone: sha256 {hash_s:.2f}s, quick_check {quick_s:.2f}s"
    )
    return finish(result, a.out, summary)


if __name__ == "__main__":
    main()
