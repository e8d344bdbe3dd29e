"""Shared pieces: corpora, encoders, index snapshots and the after-a-fault check.

The check is the campaign's definition of "survived": after a writer died at any point, the index
(1) verifies (checksums, SQLite integrity, FAISS/SQLite/manifest row counts agree), (2) holds
exactly the documents of the old state or exactly those of the new one, (3) answers a query with
hits that exist in that state, and (4) accepts the next write, after which no temporary files
are left behind.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

WORDS = (
    "futbol maç galatasaray fenerbahçe istanbul ankara izmir yağmur hava deprem ekonomi şehir kedi "
    "köpek okul öğrenci çay kahve ışık şarkı müzik bilgisayar yazılım borsa enflasyon seçim tiyatro"
).split()
TOPICS = ("spor", "hava", "ekonomi", "kültür")
QUERIES = ("futbol maçı", "yağmur hava", "kedi köpek", "ekonomi borsa", "müzik şarkı", "istanbul deprem")
PROBE_ID = "__campaign_probe__"

Snapshot = dict[str, str]  # document id -> text


def fake_encoder(dim: int = 64) -> Any:
    """The deterministic bag-of-words encoder of :mod:`tase_search.testing` (no torch)."""
    from tase_search.testing import FakeEncoder

    return FakeEncoder(dim)


def tiny_model(out: Path) -> Path:
    """A tiny random-init sentence-transformers model (:mod:`tase_search.testing`), built once into ``out``."""
    if (out / "modules.json").is_file():
        return out
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tase_search.testing import build_tiny_model

    return build_tiny_model(out, seed=0)


def make_docs(n: int, *, prefix: str = "d", start: int = 0, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` short Turkish documents with unique ids (``prefix`` + number) and a ``topic``."""
    rng = random.Random(seed * 1_000_003 + start)
    out = []
    for i in range(start, start + n):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
        out.append({"id": f"{prefix}{i}", "text": f"belge {prefix}{i}: {words}", "topic": rng.choice(TOPICS)})
    return out


def write_jsonl(path: Path, docs: Iterable[dict[str, Any]]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")
    return path


def write_txt(path: Path, docs: Iterable[dict[str, Any]]) -> Path:
    path.write_text("".join(d["text"] + "\n" for d in docs), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ state
def snapshot(index_dir: Path) -> Snapshot | None:
    """The committed documents (id -> text), or None when there is no manifest (no index)."""
    from tase_search.store.manifest import read_manifest

    try:
        m = read_manifest(index_dir)
    except FileNotFoundError:
        return None
    from tase_search.store.snapshot import open_documents

    try:
        store = open_documents(index_dir, m)
    except Exception as exc:  # noqa: BLE001 - as a direct SQLite open of a missing file said
        raise sqlite3.OperationalError(f"unable to open the index's documents ({exc})") from exc
    try:
        pids = store.pids_matching(None)
        out: dict[str, str] = {}
        for i in range(0, len(pids), 500):
            out.update((sp.doc_id, sp.text) for sp in store.fetch(pids[i : i + 500]).values())
        return out
    finally:
        store.close()


def generation(index_dir: Path) -> int | None:
    try:
        return int(json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))["generation"])
    except (OSError, ValueError, KeyError):
        return None


def leftovers(index_dir: Path) -> list[str]:
    """Temporary files a finished (or cleaned-up) write must not leave behind."""
    if not index_dir.is_dir():
        return []
    return sorted(
        p.name
        for p in index_dir.iterdir()
        if p.name.startswith((".tmp-gen-", ".tmp-seg-", ".manifest.json.tmp-"))
    )


def unnamed_dirs(index_dir: Path, *, segments_only: bool = False) -> list[str]:
    """Segment (and format-1 generation) directories the current manifest does not name: a published
    but not yet committed segment, or ones a later write removes."""
    try:
        raw = json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if raw.get("format_version", 1) >= 2:
        named = {s["name"] for s in raw.get("segments", [])}
    else:
        named = {f"gen-{raw.get('generation', 0):06d}"}
    prefixes = ("seg-",) if segments_only else ("seg-", "gen-")
    return sorted(p.name for p in index_dir.iterdir() if p.name.startswith(prefixes) and p.name not in named)


def phase_on_disk(index_dir: Path, old_gen: int | None) -> str:
    """Where in the write path a dead writer was, judged from what it left on disk."""
    gen = generation(index_dir)
    if gen is not None and gen != old_gen:
        return "committed" if not unnamed_dirs(index_dir) else "committed, old segments not yet removed"
    if any(index_dir.glob(".manifest.json.tmp-*")):
        return "manifest temp written"
    nxt = (old_gen or 0) + 1
    if (index_dir / f"gen-{nxt:06d}").is_dir() or unnamed_dirs(index_dir, segments_only=True):
        return "renamed, manifest not replaced"
    tmps = (
        sorted([*index_dir.glob(".tmp-gen-*"), *index_dir.glob(".tmp-seg-*")]) if index_dir.is_dir() else []
    )
    if tmps:
        names = {p.name for p in tmps[-1].iterdir()}
        if "vectors.faiss" in names or "vectors.npz" in names:
            return "vectors saved"
        if "docs.sqlite-journal" in names:
            return "SQLite transaction open"
        if "docs.sqlite" in names:
            return "temporary generation started"
        return "temporary directory created"
    lock = index_dir / ".lock"
    if lock.is_file() and lock.read_text(errors="replace").strip():
        return "lock held"
    return "before the write (start-up, reading, model load)"


def check_state(
    index_dir: Path,
    old: Snapshot | None,
    new: Snapshot | None,
    encoder: Any,
    *,
    query: str = "futbol maçı",
) -> dict[str, Any]:
    """Is the index exactly ``old`` or exactly ``new``, verified, and searchable by vectors and by keywords
    (the keyword part is written with the documents, so it must answer from the same state)? (no write)"""
    from tase_search.errors import IndexNotFound
    from tase_search.retriever import Retriever
    from tase_search.store.verify import verify_index

    problems: list[str] = []
    state = "error"
    try:
        snap = snapshot(index_dir)
    except Exception as exc:  # noqa: BLE001 - report, do not crash the campaign
        return {"ok": False, "state": "unreadable", "problems": [f"snapshot: {exc!r}"]}
    if snap is None:
        state = "old" if old is None else "absent"
        if old is not None:
            problems.append("the manifest is gone")
        try:
            Retriever.load(index_dir)
            problems.append("an index without manifest loaded")
        except IndexNotFound:
            pass
        return {"ok": not problems, "state": state, "problems": problems}
    state = "old" if snap == old else "new" if snap == new else "neither"
    if state == "neither":
        problems.append(
            f"documents match neither state ({len(snap)} docs; old {len(old or {})}, new {len(new or {})})"
        )
    rep = verify_index(index_dir)
    if not rep.ok:
        problems.extend(f"verify: {p}" for p in rep.problems)
    try:
        with Retriever.load(index_dir, model=encoder) as r:
            hits = r.search(query, k=5)
            if len(hits) != min(5, len(snap)):
                problems.append(f"query returned {len(hits)} hits for {len(snap)} documents")
            for h in hits:
                if snap.get(h.id) != h.text:
                    problems.append(f"hit {h.id!r} is not in the committed state")
            if r.sparse_note is not None:
                problems.append(f"keyword part not searchable: {r.sparse_note}")
            else:
                for h in r.search(query, k=5, mode="sparse"):
                    if snap.get(h.id) != h.text:
                        problems.append(f"keyword hit {h.id!r} is not in the committed state")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"query failed: {exc!r}")
    return {"ok": not problems, "state": state, "problems": problems}


def check_next_write(
    index_dir: Path, encoder: Any, fresh_docs: list[dict[str, Any]] | None = None
) -> list[str]:
    """The next writer must succeed (stale lock and temporaries are no obstacle) and leave no temporaries."""
    from tase_search.retriever import Retriever
    from tase_search.store.verify import verify_index

    problems: list[str] = []
    try:
        if (index_dir / "manifest.json").is_file():
            r = Retriever.load(index_dir, model=encoder)
            r.delete([PROBE_ID])  # a real write: a new generation is committed
            r.close()
        else:
            Retriever.build(fresh_docs or make_docs(3, prefix="probe"), model=encoder, path=index_dir).close()
    except Exception as exc:  # noqa: BLE001
        return [f"next write failed: {exc!r}"]
    left = leftovers(index_dir)
    if left:
        problems.append(f"temporaries left after the next write: {left}")
    gens = unnamed_dirs(index_dir)  # the previous manifest's are kept for its readers: at most a merge's
    if len(gens) > 10:
        problems.append(f"old segments not cleaned: {gens}")
    rep = verify_index(index_dir)
    if not rep.ok:
        problems.extend(f"verify after next write: {p}" for p in rep.problems)
    return problems
