"""The ``tase-search`` CLI: every command, ``--json``, stdin, and every bad input (clean error, index intact).

Uses the tiny real model (``--model PATH``) so no big model is loaded; most tests run in-process with
click's CliRunner, a few through the real console script.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from store_helpers import newest_segment

from tase_search._version import __version__
from tase_search.cli.app import main
from tase_search.retriever import TMP_PREFIX, Retriever
from tase_search.store.content import content_id
from tase_search.store.lock import WriterLock
from tase_search.store.manifest import read_manifest

CORPUS = [
    {"id": "spor1", "text": "Galatasaray maçı yarın İstanbul'da oynanacak.", "topic": "spor"},
    {"id": "spor2", "text": "Fenerbahçe futbol maçı 3-0 bitti.", "topic": "spor"},
    {"id": "hava1", "text": "Yarın İzmir'de yağmur var, hava soğuk.", "topic": "hava"},
    {"id": "hava2", "text": "Ankara'da bugün hava güzel ve ılık.", "topic": "hava"},
    {"id": "okul1", "text": "Öğrenciler okulda bilgisayar ve müzik dersi aldı.", "topic": "okul"},
    {"id": "kedi1", "text": "Kedi ve köpek bahçede çay saatinde uyudu.", "topic": "hayvan"},
    {"id": "eko1", "text": "Ekonomi haberleri: şehirde yeni yazılım şirketi.", "topic": "ekonomi"},
    {"id": "tr1", "text": "IĞDIR, Şırnak ve İstanbul: ışık, iğne, şarkı.", "topic": "dil"},
]
QUERY = "futbol maçı"


def _env(tmp: Path) -> dict[str, str]:
    """The settings these tests share (the rest of the environment is isolated by conftest)."""
    return {"TASE_SEARCH_PRECISION": "fp32", "TASE_SEARCH_INDEX_ROOT": str(tmp / "indexes")}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def runner(workdir: Path) -> CliRunner:
    return CliRunner(env=_env(workdir))


def run(runner: CliRunner, *args: object, input: str | bytes | None = None) -> Result:  # noqa: A002
    return runner.invoke(main, [str(a) for a in args], input=input)


def ok(res: Result) -> Result:
    assert res.exit_code == 0, f"exit {res.exit_code}\n{res.output}\n{res.exception!r}"
    assert "Traceback" not in res.output
    return res


def fails(res: Result, *needles: str) -> Result:
    """A clean failure: non-zero exit, the message, no traceback (the exception was handled)."""
    assert res.exit_code != 0, res.output
    assert isinstance(res.exception, SystemExit), f"unhandled {res.exception!r}\n{res.output}"
    assert "Traceback" not in res.output
    out = res.output
    for n in needles:
        assert n in out, f"{n!r} not in output:\n{out}"
    return res


def json_lines(text: str) -> list[dict]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    objs = [json.loads(ln) for ln in lines]
    assert all(isinstance(o, dict) for o in objs)
    return objs


@pytest.fixture(scope="module")
def corpus_file(workdir: Path) -> Path:
    p = workdir / "haberler.jsonl"
    p.write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in CORPUS) + "\n", encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def built_index(workdir: Path, runner: CliRunner, corpus_file: Path, tiny_model_dir: Path) -> Path:
    path = workdir / "built"
    res = ok(run(runner, "index", corpus_file, "--index", path, "--model", tiny_model_dir, "--json"))
    (summary,) = json_lines(res.stdout)
    assert summary["action"] == "built" and summary["added"] == len(CORPUS)
    return path


@pytest.fixture
def index_dir(built_index: Path, tmp_path: Path) -> Path:
    """A private copy of the built index (tests may change or try to damage it)."""
    dst = tmp_path / "idx"
    shutil.copytree(built_index, dst)
    return dst


def snapshot(path: Path, enc: object) -> tuple:
    m = read_manifest(path)
    hits = Retriever.load(path, model=enc).search([QUERY, "hava"], k=5)  # type: ignore[arg-type]
    return (
        m.generation,
        m.documents,
        m.rows,
        m.model.fingerprint,
        sorted(p.name for p in path.iterdir()),
        [[(h.id, round(h.score, 5)) for h in hs] for hs in hits],
    )


@pytest.fixture
def unchanged(index_dir: Path, tiny_encoder: object) -> Callable[[], None]:
    """Call at the end of a test: the index is exactly as before (generation, files, answers)."""
    before = snapshot(index_dir, tiny_encoder)

    def check() -> None:
        assert snapshot(index_dir, tiny_encoder) == before
        assert not [p for p in index_dir.iterdir() if p.name.startswith(TMP_PREFIX)]

    return check


# ============================================================================ help / version
@pytest.mark.parametrize(
    "cmd", [[], ["index"], ["query"], ["info"], ["delete"], ["verify"], ["models"], ["demo"]]
)
def test_help(runner: CliRunner, cmd: list[str]) -> None:
    res = ok(run(runner, *cmd, "-h"))
    assert "Usage:" in res.output
    assert ok(run(runner, *cmd, "--help")).output == res.output
    if cmd:
        assert "Example" in res.output


def test_version(runner: CliRunner) -> None:
    assert __version__ in ok(run(runner, "--version")).output
    assert __version__ in ok(run(runner, "-V")).output


def test_unknown_command(runner: CliRunner) -> None:
    res = run(runner, "serach", "x")
    assert res.exit_code == 2 and "No such command" in res.output


# ============================================================================ commands
def test_index_query_info_delete(
    runner: CliRunner, workdir: Path, corpus_file: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "idx"
    res = ok(run(runner, "index", corpus_file, "--index", path, "--model", tiny_model_dir))
    assert f"built {path}" in res.output and f"{len(CORPUS)} added" in res.output

    # query: plain and --json (one object per line, one line per hit)
    res = ok(run(runner, "query", QUERY, "--index", path, "-k", "3"))
    assert f"query: {QUERY}" in res.output and res.output.count("\n") >= 4
    res = ok(run(runner, "query", QUERY, "hava durumu", "--index", path, "-k", "3", "--json"))
    hits = json_lines(res.stdout)
    assert len(hits) == 6 and [h["query"] for h in hits] == [QUERY] * 3 + ["hava durumu"] * 3
    for h in hits:
        assert {"query", "rank", "id", "score", "text", "metadata", "source", "passage"} <= set(h)
        assert h["source"] == str(corpus_file) and h["metadata"]["topic"]
    assert [h["rank"] for h in hits[:3]] == [1, 2, 3]
    full = ok(run(runner, "query", QUERY, "--index", path, "-k", "1", "--full"))
    assert "query:" in full.output

    # info
    info = json_lines(ok(run(runner, "info", "--index", path, "--json")).stdout)
    assert len(info) == 1
    info = info[0]
    assert (info["documents"], info["generation"], info["factory"]) == (len(CORPUS), 1, "Flat")
    assert info["model"] == str(tiny_model_dir.resolve()) and info["dimension"] == 32
    plain = ok(run(runner, "info", "--index", path)).output
    assert "documents" in plain and str(len(CORPUS)) in plain and "Flat" in plain

    # append (with the model from the manifest) and a second file format
    more = tmp_path / "more.tsv"
    more.write_text("doc_id\tbody\tlang\nyeni1\tYeni kedi haberi.\ttr\nyeni2\tYeni köpek haberi.\ttr\n")
    res = ok(
        run(
            runner, "index", more, "--index", path, "--text-column", "body", "--id-column", "doc_id", "--json"
        )
    )
    (summary,) = json_lines(res.stdout)
    assert (summary["action"], summary["added"], summary["documents"]) == ("appended to", 2, len(CORPUS) + 2)
    # the same file again: nothing to add, no new version
    cols = ["--text-column", "body", "--id-column", "doc_id"]
    gen = read_manifest(path).generation
    res = ok(run(runner, "index", more, "--index", path, *cols))
    assert "0 added (0 passages), 2 unchanged (already indexed)" in res.output
    assert res.output.startswith(f"unchanged {path}") and read_manifest(path).generation == gen
    # --on-duplicate: the same ids with other texts
    more.write_text("doc_id\tbody\tlang\nyeni1\tBaşka kedi haberi.\ttr\nyeni2\tBaşka köpek haberi.\ttr\n")
    fails(
        run(runner, "index", more, "--index", path, "--text-column", "body", "--id-column", "doc_id"), "yeni1"
    )
    res = ok(
        run(
            runner,
            "index",
            more,
            "--index",
            path,
            "--text-column",
            "body",
            "--id-column",
            "doc_id",
            "--on-duplicate",
            "skip",
            "--json",
        )
    )
    assert json_lines(res.stdout)[0]["skipped_duplicate"] == 2

    # delete: plain and --json
    res = ok(run(runner, "delete", "yeni1", "--index", path))
    assert "deleted 1 documents" in res.output
    (d,) = json_lines(ok(run(runner, "delete", "yeni2", "nope", "--index", path, "--json")).stdout)
    assert d == {"index": str(path), "deleted": ["yeni2"], "missing": ["nope"], "documents": len(CORPUS)}
    res = ok(run(runner, "query", "Yeni kedi haberi.", "--index", path, "-k", "20", "--json"))
    assert not {"yeni1", "yeni2"} & {h["id"] for h in json_lines(res.stdout)}

    # --overwrite replaces
    one = tmp_path / "one.txt"
    one.write_text("tek belge\n", encoding="utf-8")
    res = ok(run(runner, "index", one, "--index", path, "--overwrite", "--model", tiny_model_dir, "--json"))
    assert json_lines(res.stdout)[0]["documents"] == 1


def test_named_index_under_root(
    runner: CliRunner, corpus_file: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    ok(run(runner, "index", corpus_file, "--index", "haberler", "--root", root, "--model", tiny_model_dir))
    assert Retriever.exists(root / "haberler")
    res = ok(run(runner, "query", QUERY, "--index", "haberler", "--root", root, "--json", "-k", "2"))
    assert len(json_lines(res.stdout)) == 2
    fails(run(runner, "info", "--index", "kötü isim!", "--root", root), "not valid")


def test_stdin(runner: CliRunner, index_dir: Path) -> None:
    res = ok(
        run(runner, "index", "-", "--index", index_dir, "--json", input="stdin belgesi bir\n\nstdin iki\n")
    )
    (summary,) = json_lines(res.stdout)
    assert (summary["added"], summary["skipped_empty"]) == (2, 1)
    res = ok(
        run(runner, "query", "-", "--index", index_dir, "--json", "-k", "2", input=f"{QUERY}\n\n  \nhava\n")
    )
    hits = json_lines(res.stdout)
    assert [h["query"] for h in hits] == [QUERY, QUERY, "hava", "hava"]
    first, second = content_id("stdin belgesi bir"), content_id("stdin iki")  # a txt line's id: its text
    stored = Retriever.load(index_dir).get([first, second])
    assert [d["source"] for d in stored] == ["<stdin>", "<stdin>"]
    res = ok(run(runner, "delete", "-", "--index", index_dir, "--json", input=f"{first}\n\nspor1\nnope\n"))
    (d,) = json_lines(res.stdout)
    assert (d["deleted"], d["missing"]) == ([first, "spor1"], ["nope"])


def test_filter(runner: CliRunner, index_dir: Path) -> None:
    res = ok(run(runner, "query", QUERY, "--index", index_dir, "--filter", "topic=hava", "--json"))
    hits = json_lines(res.stdout)
    assert sorted(h["id"] for h in hits) == ["hava1", "hava2"]
    res = ok(
        run(runner, "query", QUERY, "--index", index_dir, "-f", "topic=spor", "-f", "id=spor2", "--json")
    )
    assert [h["id"] for h in json_lines(res.stdout)] == ["spor2"]
    res = ok(run(runner, "query", QUERY, "--index", index_dir, "-f", "topic=yok"))
    assert "(no results)" in res.output
    assert ok(run(runner, "query", QUERY, "--index", index_dir, "-f", "topic=yok", "--json")).stdout == ""


def test_verify(runner: CliRunner, index_dir: Path) -> None:
    res = ok(run(runner, "verify", index_dir))
    assert "OK" in res.output and "FAIL" not in res.output
    (rep,) = json_lines(ok(run(runner, "verify", "--index", index_dir, "--json")).stdout)
    assert rep["ok"] is True
    gen = newest_segment(index_dir)
    data = bytearray((gen / "vectors.faiss").read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes: only the checksum can tell
    (gen / "vectors.faiss").write_bytes(bytes(data))
    res = run(runner, "verify", index_dir)
    assert res.exit_code == 1 and "FAIL" in res.output and "CORRUPT" in res.output
    assert "Traceback" not in res.output
    fails(run(runner, "query", QUERY, "--index", index_dir), "damaged")


def test_models(runner: CliRunner) -> None:
    assert "all-minilm-l6-v2" in ok(run(runner, "models")).output
    models = json_lines(ok(run(runner, "models", "--json")).stdout)
    assert {"all-minilm-l6-v2", "labse"} <= {m["name"] for m in models}
    assert sum(m["default"] for m in models) == 1


def test_demo(runner: CliRunner, tiny_model_dir: Path, tmp_path: Path) -> None:
    res = ok(run(runner, "demo", "--model", tiny_model_dir, "--index", tmp_path / "demo", "-k", "2"))
    assert "built" in res.output and "query:" in res.output
    assert Retriever.exists(tmp_path / "demo")


def test_encoding_errors_replace(runner: CliRunner, index_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes("iyi satır\nkötü ".encode() + b"\xff" + b" bayt\n")
    res = ok(run(runner, "index", bad, "--index", index_dir, "--encoding-errors", "replace", "--json"))
    (summary,) = json_lines(res.stdout)
    assert (summary["added"], summary["replaced_encoding"]) == (2, 1)
    res = ok(run(runner, "query", "kötü bayt", "--index", index_dir, "--json", "-k", "20"))
    assert "kötü \ufffd bayt" in {h["text"] for h in json_lines(res.stdout)}


# ============================================================================ bad inputs
def _write(tmp: Path, name: str, data: str | bytes) -> Path:
    p = tmp / name
    p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return p


BAD_CORPORA = [
    ("bad.xyz", "bir belge\n", [], ["cannot tell the format", "bad.xyz"]),
    ("data.json", '[{"text": "a"}]', [], ["JSON Lines"]),
    ("bad.txt", b"iyi\n\xc3\x28 bozuk\n", [], ["bad.txt:2", "invalid UTF-8", "--encoding-errors replace"]),
    ("bad.jsonl", '{"text": "iyi"}\n{"text": bozuk\n', [], ["bad.jsonl:2", "not valid JSON"]),
    ("bad2.jsonl", '{"text": "iyi"}\n["liste"]\n', [], ["bad2.jsonl:2", "JSON object"]),
    ("cols.tsv", "id\tbody\n1\tmetin\n", [], ["cols.tsv:1", "no 'text' column", "--text-column"]),
    ("cols.jsonl", '{"body": "metin"}\n', [], ["cols.jsonl:1", "no 'text' field"]),
    ("cols2.jsonl", '{"text": "metin"}\n', ["--text-column", "body"], ["no 'body' field"]),
    ("col.txt", "metin\n", ["--text-column", "body"], ["not to txt"]),
    ("ragged.csv", "id,text\n1,iyi\n2,kötü,fazla\n", [], ["ragged.csv:3", "header has 2"]),
    ("empty.txt", "", [], ["no documents", "empty.txt"]),
    ("blank.txt", "\n   \n\t\n\n", [], ["no documents", "4 empty lines"]),
    ("blank.jsonl", "\n\n", [], ["no documents"]),
    ("dupe.jsonl", '{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', [], ["'a'", "--on-duplicate"]),
    ("exists.jsonl", '{"id": "spor1", "text": "x"}\n', [], ["'spor1'", "already in the index"]),
    ("notgz.txt.gz", "düz metin\n", [], ["not a valid gzip"]),
]


@pytest.mark.parametrize(("name", "data", "extra", "needles"), BAD_CORPORA, ids=[b[0] for b in BAD_CORPORA])
def test_bad_corpus_leaves_index_unchanged(
    runner: CliRunner,
    index_dir: Path,
    unchanged: Callable[[], None],
    tmp_path: Path,
    name: str,
    data: str | bytes,
    extra: list[str],
    needles: list[str],
) -> None:
    f = _write(tmp_path, name, data)
    fails(run(runner, "index", f, "--index", index_dir, *extra), *needles)
    unchanged()


def test_bad_corpus_on_new_index_creates_nothing(
    runner: CliRunner, tmp_path: Path, tiny_model_dir: Path
) -> None:
    for name, data, extra, needles in BAD_CORPORA[:-2]:
        f = _write(tmp_path, name, data)
        new = tmp_path / f"new-{name}"
        fails(run(runner, "index", f, "--index", new, "--model", tiny_model_dir, *extra), *needles)
        assert not new.exists(), f"{name}: a failed first build left {sorted(p.name for p in new.iterdir())}"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["index", "/nonexistent/corpus.txt"], ["does not exist"]),
        (["index", "-", "-"], ["only once"]),
        (
            ["index", "{corpus}", "--factory", "HNSW32,Flat", "--index-type", "hnsw"],
            ["either --index-type or --factory"],
        ),
        (["index", "{corpus}", "--index-type", "annoy"], ["annoy"]),
        (["index", "{corpus}", "--batch-size", "0"], ["batch-size"]),
        (
            ["index", "{corpus}", "--model", "{other_model}"],
            ["was built with model", "{tiny_model}", "{other_model}"],
        ),
        (["index", "{corpus}", "--model", "/no/such/model"], ["/no/such/model"]),
        (["query", "-k", "0", "maç"], ["-k", "0"]),
        (["query", "-k", "-1", "maç"], ["-k", "-1"]),
        (["query", "-k", "zwei", "maç"], ["zwei"]),
        (["query", ""], ["empty"]),
        (["query", "   "], ["empty"]),
        (["query", "ok", ""], ["empty"]),
        (["query", "maç", "--filter", "topic"], ["key=value", "--filter"]),
        (["query", "maç", "--filter", "=spor"], ["empty key"]),
        (["query", "maç", "--where", '{{"topic": {{"$regex": "s"}}}}'], ["'$regex'", "--where", "$prefix"]),
        (["query", "maç", "--where", "{{topic: spor}}"], ["is not JSON", "--where"]),
        (["query", "-", "maç"], ["not both"]),
        (["query", "maç", "--precision", "fp8"], ["fp8"]),
        (["query"], ["Missing argument"]),
        (["delete"], ["Missing argument"]),
        (["query", "maç", "--model", "{other_model}"], ["was built with model"]),
    ],
)
def test_bad_arguments(
    runner: CliRunner,
    index_dir: Path,
    unchanged: Callable[[], None],
    corpus_file: Path,
    tiny_model_dir: Path,
    other_tiny_model_dir: Path,
    args: list[str],
    needles: list[str],
) -> None:
    def fill(s: str) -> str:
        return s.format(
            corpus=corpus_file,
            tiny_model=tiny_model_dir.resolve(),
            other_model=other_tiny_model_dir.resolve(),
        )

    fails(run(runner, *[fill(a) for a in args], "--index", index_dir), *[fill(n) for n in needles])
    unchanged()


@pytest.mark.parametrize("factory", ["Bogus", "IDMap2,Flat", "HNSW32;Flat", "IVF64,Flat"])
def test_invalid_factory_on_new_index(
    runner: CliRunner, corpus_file: Path, tiny_model_dir: Path, tmp_path: Path, factory: str
) -> None:
    new = tmp_path / "new"
    res = fails(
        run(runner, "index", corpus_file, "--index", new, "--model", tiny_model_dir, "--factory", factory)
    )
    assert "factory" in res.output or "trained" in res.output
    assert not Retriever.exists(new)


def test_missing_index(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    for args in (["query", "maç"], ["info"], ["delete", "x"], ["query", "-"]):
        fails(run(runner, *args, "--index", missing, input=""), "no index at", str(missing))
    assert not missing.exists()


def test_foreign_directory_refused(
    runner: CliRunner, corpus_file: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    home = tmp_path / "Documents"
    home.mkdir()
    (home / "tez.docx").write_bytes(b"x")
    fails(
        run(runner, "index", corpus_file, "--index", home, "--model", tiny_model_dir),
        "not a tase-search index",
    )
    assert sorted(p.name for p in home.iterdir()) == ["tez.docx"]


def test_locked_index(
    runner: CliRunner, index_dir: Path, unchanged: Callable[[], None], corpus_file: Path, tmp_path: Path
) -> None:
    more = _write(tmp_path, "more.txt", "kilitli bir belge\n")
    with WriterLock(index_dir):
        fails(run(runner, "index", more, "--index", index_dir), f"locked by PID {os.getpid()}")
        fails(run(runner, "delete", "spor1", "--index", index_dir), f"locked by PID {os.getpid()}")
        # readers never wait for the writer lock
        res = ok(run(runner, "query", QUERY, "--index", index_dir, "--json"))
        assert json_lines(res.stdout)
        ok(run(runner, "info", "--index", index_dir))
    unchanged()
    ok(run(runner, "index", more, "--index", index_dir))  # free again


def test_append_ignores_factory_with_a_note(runner: CliRunner, index_dir: Path, tmp_path: Path) -> None:
    more = _write(tmp_path, "more.txt", "yeni belge\n")
    res = ok(run(runner, "index", more, "--index", index_dir, "--factory", "HNSW32,Flat"))
    assert "appending with its own index type" in res.output
    assert read_manifest(index_dir).factory == "Flat"


# ============================================================================ real subprocess
def _script() -> list[str]:
    exe = Path(sys.executable).parent / "tase-search"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "tase_search.cli"]


def _sub_env(workdir: Path) -> dict[str, str]:
    return {**os.environ, **_env(workdir)}


def test_console_script_fast_paths(workdir: Path, tmp_path: Path) -> None:
    env = _sub_env(workdir)
    out = subprocess.run([*_script(), "--version"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and __version__ in out.stdout
    out = subprocess.run([*_script(), "query", "-h"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and "Usage:" in out.stdout
    out = subprocess.run(
        [*_script(), "query", "maç", "--index", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 1 and "Error: no index at" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_console_script_query_stdin(workdir: Path, built_index: Path) -> None:
    out = subprocess.run(
        [*_script(), "query", "-", "--index", str(built_index), "--json", "-k", "2"],
        input=f"{QUERY}\nIĞDIR ışık\n",
        capture_output=True,
        text=True,
        env=_sub_env(workdir),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    hits = json_lines(out.stdout)
    assert [h["query"] for h in hits] == [QUERY, QUERY, "IĞDIR ışık", "IĞDIR ışık"]
    assert "Traceback" not in out.stderr


def test_cli_caps_the_onednn_primitive_cache_unless_the_user_set_it() -> None:
    """The per-shape kernel cache grew long `index` runs by ~0.3 GB at 30k documents; the CLI caps it
    before torch loads, and a value the user exported is left alone."""
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "if len(sys.argv) > 1: os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'] = sys.argv[1]\n"
        "else: os.environ.pop('ONEDNN_PRIMITIVE_CACHE_CAPACITY', None)\n"
        "import tase_search.cli\n"
        "print(os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "16"
    out = subprocess.run(
        [sys.executable, "-c", code, "512"], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "512"


def test_one_off_queries_map_the_index_and_stdin_reads_it(
    runner: CliRunner, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tase_search.store.vectors as vectors_mod

    seen: list[bool] = []
    real = vectors_mod.FaissIndex.load.__func__  # type: ignore[attr-defined]

    def load(cls, *a, mmap=False, **kw):  # type: ignore[no-untyped-def]
        seen.append(mmap)
        return real(cls, *a, mmap=mmap, **kw)

    monkeypatch.setattr(vectors_mod.FaissIndex, "load", classmethod(load))
    one = json_lines(ok(run(runner, "query", QUERY, "--index", index_dir, "--json", "-k", "2")).stdout)
    assert seen == [True]  # a one-off query maps the file instead of reading it
    many = json_lines(
        ok(run(runner, "query", "-", "--index", index_dir, "--json", "-k", "2", input=f"{QUERY}\n")).stdout
    )
    assert seen == [True, False]  # stdin mode is long-lived: it reads the file once
    assert [(h["id"], round(h["score"], 5)) for h in one] == [(h["id"], round(h["score"], 5)) for h in many]


def test_query_of_an_index_built_with_prompts(
    runner: CliRunner, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """An e5-style model (role prompts): a later `query` process, whichever query path it takes,
    presents the same prompts the index recorded."""
    import json
    import shutil

    model = tmp_path / "prompted"
    shutil.copytree(tiny_model_dir, model)
    cfg_path = model / "config_sentence_transformers.json"
    cfg = json.loads(cfg_path.read_text()) if cfg_path.is_file() else {}
    cfg["prompts"] = {"query": "query: ", "passage": "passage: "}
    cfg_path.write_text(json.dumps(cfg))
    corpus = tmp_path / "c.txt"
    corpus.write_text("futbol maçı yarın\nyağmur yağacak\n", encoding="utf-8")
    ok(run(runner, "index", corpus, "--index", tmp_path / "ix", "--model", model))
    res = ok(run(runner, "query", "futbol", "--index", tmp_path / "ix", "--mode", "dense", "--json"))
    assert json.loads(res.output.splitlines()[0])["id"]
