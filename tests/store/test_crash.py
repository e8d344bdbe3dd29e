"""Crash safety: a writer killed (SIGKILL), interrupted (SIGINT) or failing at any step leaves the old index.

The subprocess tests run the real ``tase-search index`` on an existing index, stop it at a named point
of its write (``TASE_SEARCH_FAULT=<point>:stop``) and kill or interrupt it there. The in-process tests inject
a failure at each step of a write (encode, SQLite commit, vector save, fsync, rename, manifest write)
with the cleanup disabled, which leaves exactly what a kill at that point would leave.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from store_helpers import data_dirs, live_rows, segment_names

import tase_search.store.commit as commit_mod
import tase_search.store.lock as lock_mod
import tase_search.store.vectors as vectors_mod
from campaign.faults import let_children_see_ctrl_c
from tase_search.cli.app import main
from tase_search.retriever import TMP_PREFIX, Retriever
from tase_search.store.manifest import read_manifest
from tase_search.testing import FakeEncoder, stop_at, wait_until_stopped

BASE = [
    {"id": f"b{i}", "text": t, "topic": topic}
    for i, (t, topic) in enumerate(
        [
            ("Galatasaray maçı yarın İstanbul'da oynanacak.", "spor"),
            ("Fenerbahçe futbol maçı 3-0 bitti.", "spor"),
            ("Yarın İzmir'de yağmur var, hava soğuk.", "hava"),
            ("Ankara'da bugün hava güzel ve ılık.", "hava"),
            ("Öğrenciler okulda bilgisayar dersi aldı.", "okul"),
            ("Kedi ve köpek bahçede uyudu.", "hayvan"),
        ]
    )
]
QUERIES = ["futbol maçı", "hava yağmur", "kedi"]
KEYWORDS = [*QUERIES, "yeni belge", "ekonomi", "metin"]  # also the words the writes below add
BIG_DOCS = 30_000  # enough that encoding takes a while after the temporary generation appears


def state(path: Path, enc: object) -> tuple:
    """Everything a reader can observe: manifest generation and counts, stored documents, answers by
    vectors and by keywords. The keyword part must index exactly the generation's passages."""
    m = read_manifest(path)
    docs = live_rows(path, "documents")
    passages = live_rows(path, "passages")
    keyword_rows = live_rows(path, "keywords")
    assert keyword_rows == passages, "the keyword part and the vectors are from different writes"
    r = Retriever.load(path, model=enc)  # type: ignore[arg-type]
    assert r.sparse_note is None, r.sparse_note
    hits = [[(h.id, round(h.score, 5)) for h in hs] for hs in r.search(QUERIES, k=4, mode="dense")]
    keyword = [[(h.id, round(h.score, 5)) for h in hs] for hs in r.search(KEYWORDS, k=4, mode="sparse")]
    r.close()
    return (m.generation, m.documents, m.rows, m.tombstones, m.files, docs, hits, keyword)


def temporaries(path: Path) -> list[str]:
    return [p.name for p in path.iterdir() if p.name.startswith((TMP_PREFIX, ".manifest.json.tmp-"))]


# ================================================================================ subprocess kills
def _script() -> list[str]:
    exe = Path(sys.executable).parent / "tase-search"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "tase_search.cli"]


def _env() -> dict[str, str]:
    """The real CLI on the tiny model (conftest isolates the rest of the environment). Writes are what
    these tests interrupt: no ONNX query-path preparation after them."""
    return {**os.environ, "TASE_SEARCH_QUERY_BACKEND": "torch", "TASE_SEARCH_PRECISION": "fp32"}


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("crash") / "big.txt"
    words = "futbol maç hava yağmur kedi köpek okul müzik şehir ekonomi çay kahve ışık iğne".split()
    rng = random.Random(0)
    with p.open("w", encoding="utf-8") as fh:
        for i in range(BIG_DOCS):
            fh.write(f"belge {i} " + " ".join(rng.choice(words) for _ in range(6)) + "\n")
    return p


@pytest.fixture(scope="module")
def base_index(tmp_path_factory: pytest.TempPathFactory, tiny_encoder: object) -> Path:
    path = tmp_path_factory.mktemp("crash-base") / "idx"
    r = Retriever.build(BASE, model=tiny_encoder, path=path)  # type: ignore[arg-type]
    r.add([{"id": "ek", "text": "Ekonomi haberleri geldi."}])  # generation 2, with a previous one kept
    return path


@pytest.fixture
def index_copy(base_index: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "idx"
    shutil.copytree(base_index, dst)
    return dst


def _start_stopped(path: Path, corpus: Path, point: str) -> subprocess.Popen[str]:
    """``tase-search index corpus`` into ``path``, stopped inside its write at fault point ``point``."""
    let_children_see_ctrl_c()  # a test run started in the background would pass on an ignored SIGINT
    proc = subprocess.Popen(
        [*_script(), "index", str(corpus), "--index", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**_env(), **stop_at(point)},
    )
    wait_until_stopped(proc)
    return proc


def _kill_mid_write(path: Path, corpus: Path, delay: float) -> None:
    """SIGKILL inside the write: where it stopped (``copied``: the temporary generation exists, the old
    vectors are loaded) or, with a ``delay``, that many seconds after letting it go on (a random moment)."""
    proc = _start_stopped(path, corpus, "copied")
    if delay:
        proc.send_signal(signal.SIGCONT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=delay)
        assert proc.poll() is None, "the index run finished before it could be killed: use a bigger corpus"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow  # the real CLI with a model each time (test_sigkill_at_fault_point kills it by default)
@pytest.mark.parametrize("seed", range(12))
def test_sigkill_mid_write_keeps_old_index(
    index_copy: Path, big_corpus: Path, tmp_path: Path, tiny_encoder: object, seed: int
) -> None:
    before = state(index_copy, tiny_encoder)
    delay = 0.0 if seed == 0 else random.Random(seed).uniform(0.05, 0.6)
    _kill_mid_write(index_copy, big_corpus, delay)
    assert state(index_copy, tiny_encoder) == before  # exactly the old index, still searchable
    assert Retriever.load(index_copy, model=tiny_encoder).info()["documents"] == before[1]  # type: ignore[arg-type]
    # the next writer succeeds and clears what the killed one left
    more = tmp_path / "more.txt"
    more.write_text("kilitten sonra yeni belge\nbir tane daha\n", encoding="utf-8")
    res = CliRunner(env=_env()).invoke(main, ["index", str(more), "--index", str(index_copy)])
    assert res.exit_code == 0, res.output
    m = read_manifest(index_copy)
    assert (m.generation, m.documents) == (before[0] + 1, before[1] + 2)
    assert not temporaries(index_copy)
    assert data_dirs(index_copy) == sorted(segment_names(index_copy))  # the killed write's are gone


def test_sigint_mid_write(index_copy: Path, tmp_path: Path, tiny_encoder: object) -> None:
    """Ctrl-C inside the write (documents embedded, SQLite transaction open): exit 130 with a message,
    no traceback, no temporaries, the old index."""
    before = state(index_copy, tiny_encoder)
    more = tmp_path / "more.txt"
    more.write_text("yarıda kalan belge\nbir tane daha\n", encoding="utf-8")
    proc = _start_stopped(index_copy, more, "ingested")
    proc.send_signal(signal.SIGINT)  # pending while it is stopped: it lands as it goes on
    proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not temporaries(index_copy)
    assert state(index_copy, tiny_encoder) == before


# ================================================================================ fault points
@pytest.mark.parametrize(
    "point",
    [
        "renamed",  # the trickiest: gen-NNNNNN exists on disk, the manifest still names the old one
        *[pytest.param(p, marks=pytest.mark.slow) for p in lock_mod.FAULT_POINTS if p != "renamed"],
    ],
)
def test_sigkill_at_fault_point(index_copy: Path, tmp_path: Path, tiny_encoder: object, point: str) -> None:
    """The real CLI SIGKILLs itself at a named step of the write path (TASE_SEARCH_FAULT)."""
    before = state(index_copy, tiny_encoder)
    more = tmp_path / "more.jsonl"
    more.write_text('{"id": "y1", "text": "yeni belge bir"}\n{"id": "y2", "text": "yeni belge iki"}\n')
    env = {**_env(), lock_mod.FAULT_ENV: point}
    out = subprocess.run(
        [*_script(), "index", str(more), "--index", str(index_copy)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == -signal.SIGKILL, out.stderr
    committed = lock_mod.FAULT_POINTS.index(point) >= lock_mod.FAULT_POINTS.index("committed")
    after = state(index_copy, tiny_encoder)
    if committed:
        assert (after[0], after[1]) == (before[0] + 1, before[1] + 2)
    else:
        assert after == before
    res = CliRunner(env=_env()).invoke(
        main, ["index", str(more), "--index", str(index_copy), "--on-duplicate", "skip"]
    )
    assert res.exit_code == 0, res.output
    m = read_manifest(index_copy)
    assert m.documents == before[1] + 2 and not temporaries(index_copy)


# ================================================================================ injected failures
class Killed(BaseException):
    """Stands in for the process dying (not an Exception, so nothing on the way catches it)."""


def _die_at(point: str) -> Callable[[str], None]:
    def fault_point(name: str) -> None:
        if name == point:
            raise Killed(point)

    return fault_point


OPS: dict[str, tuple[str | None, Callable[[Retriever], object]]] = {
    "add": (None, lambda r: r.add([{"id": "yeni", "text": "Yeni belge."}], on_duplicate="skip")),
    "replace": (None, lambda r: r.add([{"id": "b2", "text": "Yeni metin."}], on_duplicate="replace")),
    "delete-flat": (None, lambda r: r.delete(["b1"])),
    "delete-hnsw": ("HNSW32,Flat", lambda r: r.delete(["b1"])),
}


@pytest.mark.parametrize(
    "op",
    ["replace", "delete-hnsw", *[pytest.param(o, marks=pytest.mark.slow) for o in ("add", "delete-flat")]],
)
@pytest.mark.parametrize("point", lock_mod.FAULT_POINTS)
def test_death_at_each_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str, op: str) -> None:
    """Die at each step of a write, leaving what a SIGKILL would: before the commit the old index
    is intact, after it the new one is complete; either way the next writer succeeds and tidies up."""
    factory, write = OPS[op]
    path = tmp_path / "idx"
    r = Retriever.build(BASE, model=FakeEncoder(), path=path, factory=factory)
    r.add([{"id": "ek", "text": "Ekonomi haberleri geldi."}])
    before = state(path, FakeEncoder())
    with monkeypatch.context() as mp:
        mp.setattr(commit_mod, "fault_point", _die_at(point))
        mp.setattr(lock_mod, "fault_point", _die_at(point))
        mp.setattr(commit_mod.shutil, "rmtree", lambda *a, **k: None)  # a killed process cleans nothing
        mp.setattr(lock_mod.Path, "unlink", lambda *a, **k: None)
        with pytest.raises(Killed):
            write(r)
    committed = lock_mod.FAULT_POINTS.index(point) >= lock_mod.FAULT_POINTS.index("committed")
    after = state(path, FakeEncoder())
    if committed:
        assert after[0] == before[0] + 1 and after != before
    else:
        assert after == before
    # what is left on disk does not bother the next writer, which tidies up
    r2 = Retriever.load(path, model=FakeEncoder())
    write(r2)
    r2.add([{"id": "son", "text": "Son belge."}])
    m = read_manifest(path)
    # once the killed write was committed, the same write again changes nothing and writes no new version
    repeat_changed = not committed
    assert m.generation == before[0] + 1 + repeat_changed + committed
    assert not temporaries(path)
    # every segment left is one the index names: what the killed write made is gone
    assert data_dirs(path) == sorted(segment_names(path))
    if op.startswith("delete"):
        assert r2.get(["b1"]) == [] and "b1" not in [h.id for h in r2.search(BASE[1]["text"], k=10)]
    else:
        doc_id = "yeni" if op == "add" else "b2"
        assert r2.get([doc_id])[0]["text"].startswith("Yeni")
        assert r2.search(r2.get([doc_id])[0]["text"], k=1)[0].id == doc_id


def test_disk_full_in_cli_is_a_clean_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_encoder: object, base_index: Path
) -> None:
    path = tmp_path / "idx"
    shutil.copytree(base_index, path)
    before = state(path, tiny_encoder)
    more = tmp_path / "more.txt"
    more.write_text("yeni belge\n", encoding="utf-8")

    def full(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device", str(path / "x"))

    monkeypatch.setattr(vectors_mod.FaissIndex, "save", full)
    res = CliRunner(env=_env()).invoke(main, ["index", str(more), "--index", str(path)])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
    assert "no space left" in res.output.lower() and "Traceback" not in res.output
    assert not temporaries(path)
    assert state(path, tiny_encoder) == before
