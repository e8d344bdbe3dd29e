"""Hostile and broken input, property-based: it works, or it fails with a tase-search error — never
another exception, never a traceback from the CLI, never a damaged index.

The Python API runs with the fake encoder (fast, many examples); the CLI with the tiny real model
(fewer cases; the whole list with ``-m slow``). ``campaign/badinput.py`` holds the shared generators.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from campaign.badinput import run_api_fuzz, run_cli_cases
from campaign.common import generation, leftovers, make_docs, snapshot
from tase_search.documents.readers import read_corpus
from tase_search.errors import InputError, TaseSearchError
from tase_search.retriever import MAX_K, Retriever, resolve_index_path
from tase_search.runtime.config import load_settings
from tase_search.store.verify import verify_index
from tase_search.testing import FakeEncoder

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=60)  # surrogates, controls, NUL too
SCRIPTS = st.sampled_from(
    [
        "مباراة كرة القدم",
        "足球比赛 東京",
        "⚽🏟️😀👍🏽🇹🇷",
        "Футбол",
        "İSTANBUL ılık",
        "\u202eabc\u200d",
        "e\u0301",
    ]
)
BASE = make_docs(30, prefix="b")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ix = tmp_path_factory.mktemp("bad") / "ix"
    Retriever.build(BASE, model=FakeEncoder(), path=ix).close()
    return ix


def _state(ix: Path) -> tuple[Any, Any]:
    return generation(ix), snapshot(ix)


def _utf8_json(obj: Any) -> None:
    json.dumps(obj, ensure_ascii=False).encode("utf-8")  # raises on lone surrogates


def _after_write(ix: Path, before: tuple[Any, Any], failed: bool) -> None:
    if failed:
        assert _state(ix) == before, "a failed write changed the index"
    assert verify_index(ix).ok
    assert leftovers(ix) == []


def _restore(ix: Path) -> None:
    """Put the index back to the base documents (examples share one index)."""
    snap = snapshot(ix) or {}
    base_ids = {d["id"] for d in BASE}
    with Retriever.load(ix, model=FakeEncoder()) as r:
        extra = [i for i in snap if i not in base_ids]
        if extra:
            r.delete(extra)
        missing = [d for d in BASE if snap.get(d["id"]) != d["text"]]
        if missing:
            r.add(missing, on_duplicate="replace")


# ------------------------------------------------------------------------------ search
@SETTINGS
@given(
    q=st.one_of(
        ANY_TEXT, SCRIPTS, st.just(""), st.just("\x00\x01 \t"), st.none(), st.integers(), st.binary()
    ),
    k=st.one_of(
        st.integers(-(10**20), 10**20), st.integers(0, 20), st.none(), st.booleans(), st.floats(), ANY_TEXT
    ),
    flt=st.one_of(
        st.none(),
        st.dictionaries(
            st.one_of(ANY_TEXT, st.sampled_from(["topic", "id", "source"])), ANY_TEXT, max_size=2
        ),
        st.dictionaries(
            st.just("topic"), st.one_of(st.integers(), st.none(), st.lists(st.integers())), max_size=1
        ),
    ),
)
def test_search_any_query(index: Path, q: Any, k: Any, flt: Any) -> None:
    with Retriever.load(index, model=FakeEncoder()) as r:
        try:
            hits = r.search(q, k=k, filter=flt)
        except TaseSearchError:
            return
    assert isinstance(hits, list)
    assert len(hits) <= min(k, MAX_K, len(BASE))
    for h in hits:
        assert h.id in {d["id"] for d in BASE}
        _utf8_json(h.to_dict())


@SETTINGS
@given(qs=st.lists(st.one_of(ANY_TEXT, SCRIPTS), max_size=5))
def test_search_many_queries(index: Path, qs: list[str]) -> None:
    with Retriever.load(index, model=FakeEncoder()) as r:
        try:
            res = r.search(qs, k=3)
        except InputError:
            return
    assert len(res) == len(qs)


# ------------------------------------------------------------------------------ add / delete
_DOC = st.one_of(
    ANY_TEXT,
    st.fixed_dictionaries(
        {"text": st.one_of(ANY_TEXT, SCRIPTS)},
        optional={
            "id": st.one_of(ANY_TEXT, st.integers(), st.none(), st.booleans(), st.floats()),
            "topic": st.one_of(
                ANY_TEXT, st.integers(), st.none(), st.floats(), st.lists(ANY_TEXT, max_size=2)
            ),
            "extra": st.recursive(
                st.one_of(st.none(), st.booleans(), st.integers(), ANY_TEXT),
                lambda inner: st.one_of(
                    st.lists(inner, max_size=3), st.dictionaries(ANY_TEXT, inner, max_size=3)
                ),
                max_leaves=6,
            ),
        },
    ),
    st.fixed_dictionaries({"id": ANY_TEXT}),  # no text
    st.integers(),
    st.none(),
    st.binary(max_size=5),
)


@SETTINGS
@given(docs=st.lists(_DOC, max_size=6), on_dup=st.sampled_from(["error", "skip", "replace", "bogus"]))
def test_add_any_documents(index: Path, docs: list[Any], on_dup: str) -> None:
    before = _state(index)
    failed = False
    with Retriever.load(index, model=FakeEncoder()) as r:
        try:
            res = r.add(docs, on_duplicate=on_dup)
        except TaseSearchError:
            failed = True
        else:
            stored = r.get(res.ids)
            assert len(stored) == len(set(res.ids))
            for d in stored:  # everything stored is valid Unicode and prints as strict UTF-8 JSON
                json.dumps(d, ensure_ascii=False, allow_nan=False).encode("utf-8")
                assert d["text"].strip()
            r.search("futbol", k=3, filter={"topic": "spor"})  # metadata stays queryable
    _after_write(index, before, failed)
    if not failed:
        _restore(index)


@settings(SETTINGS, max_examples=25)
@given(ids=st.lists(st.one_of(ANY_TEXT, st.integers(), st.none(), st.sampled_from(["b1", "b2"])), max_size=6))
def test_delete_any_ids(index: Path, ids: list[Any]) -> None:
    before = _state(index)
    failed = False
    with Retriever.load(index, model=FakeEncoder()) as r:
        try:
            gone = r.delete(ids)
        except TaseSearchError:
            failed = True
        else:
            assert set(gone) <= set(before[1])
    _after_write(index, before, failed)
    _restore(index)


# ------------------------------------------------------------------------------ corpus files
EXTS = [".txt", ".jsonl", ".csv", ".tsv", ".txt.gz", ".json", ".bin", ""]


@SETTINGS
@given(
    data=st.one_of(
        st.binary(max_size=600),
        st.lists(ANY_TEXT, max_size=8).map(lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass")),
    ),
    ext=st.sampled_from(EXTS),
    fmt=st.one_of(st.none(), st.sampled_from(["txt", "jsonl", "csv", "tsv", "xml", ""])),
    text_column=st.one_of(st.none(), st.sampled_from(["text", "body", "", "id"])),
    id_column=st.one_of(st.none(), st.sampled_from(["id", "doc", "text"])),
    errors=st.sampled_from(["strict", "replace", "ignore"]),
)
def test_corpus_files_any_bytes(
    index: Path,
    tmp_path_factory: pytest.TempPathFactory,
    data: bytes,
    ext: str,
    fmt: Any,
    text_column: Any,
    id_column: Any,
    errors: str,
) -> None:
    path = tmp_path_factory.mktemp("corpus") / f"c{ext}"
    path.write_bytes(data)
    before = _state(index)
    failed = False
    with Retriever.load(index, model=FakeEncoder()) as r:
        try:
            r.add(
                read_corpus(
                    str(path), fmt=fmt, text_column=text_column, id_column=id_column, encoding_errors=errors
                ),
                on_duplicate="skip",
            )
        except TaseSearchError:
            failed = True
    _after_write(index, before, failed)
    if not failed:
        _restore(index)


_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), ANY_TEXT),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["text", "id", "x"]), inner)
    ),
    max_leaves=8,
)


@SETTINGS
@given(lines=st.lists(st.one_of(_JSON.map(json.dumps), ANY_TEXT), min_size=1, max_size=6))
def test_jsonl_any_lines(index: Path, tmp_path_factory: pytest.TempPathFactory, lines: list[str]) -> None:
    path = tmp_path_factory.mktemp("jsonl") / "c.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
    before = _state(index)
    failed = False
    with Retriever.load(index, model=FakeEncoder()) as r:
        try:
            r.add(read_corpus(str(path)), on_duplicate="replace")
        except TaseSearchError:
            failed = True
    _after_write(index, before, failed)
    if not failed:
        _restore(index)


@SETTINGS
@given(
    header=st.lists(st.sampled_from(["id", "text", "body", "", "text"]), max_size=4),
    rows=st.lists(st.lists(ANY_TEXT.filter(lambda s: "\x00" not in s), max_size=5), max_size=5),
    sep=st.sampled_from([",", "\t"]),
)
def test_delimited_any_rows(
    index: Path, tmp_path_factory: pytest.TempPathFactory, header: list[str], rows: list[list[str]], sep: str
) -> None:
    path = tmp_path_factory.mktemp("csv") / ("c.csv" if sep == "," else "c.tsv")
    text = "\n".join(sep.join(r) for r in [header, *rows])
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    before = _state(index)
    failed = False
    with Retriever.load(index, model=FakeEncoder()) as r:
        try:
            r.add(read_corpus(str(path)), on_duplicate="skip")
        except TaseSearchError:
            failed = True
    _after_write(index, before, failed)
    if not failed:
        _restore(index)


@pytest.mark.parametrize("ext", [".txt", ".jsonl", ".csv", ".tsv"])
def test_ten_megabyte_lines(tmp_path: Path, ext: str) -> None:
    body = ("ç" * 999_999 + " ") * 5  # 10 MB of UTF-8 in one line (few words: the fake encoder stays fast)
    line = {
        ".txt": body,
        ".jsonl": json.dumps({"text": body}),
        ".csv": f"text\n{body}",
        ".tsv": f"text\n{body}",
    }
    short = {".txt": "kısa satır", ".jsonl": json.dumps({"text": "kısa satır"})}.get(ext, "kısa satır")
    path = tmp_path / f"big{ext}"
    path.write_text(f"{line[ext]}\n{short}\n", encoding="utf-8")
    assert path.stat().st_size > 10_000_000
    ix = tmp_path / "ix"
    r = Retriever.build(read_corpus(str(path)), model=FakeEncoder(), path=ix)
    assert sorted(len(d["text"]) for d in r.get(r.last_add.ids)) == [len("kısa satır"), len(body.strip())]
    assert verify_index(ix).ok


def test_non_finite_metadata_becomes_null(tmp_path: Path) -> None:
    """NaN/Infinity are not JSON: stored as null, and filtered search keeps working (it used to fail
    with SQLite's 'malformed JSON' on every filtered query once such a row was in the index)."""
    ix = tmp_path / "ix"
    path = tmp_path / "c.jsonl"
    path.write_text(
        '{"text": "futbol", "topic": NaN, "x": [Infinity, 1]}\n{"text": "kedi", "topic": "spor"}\n'
    )
    r = Retriever.build(read_corpus(str(path)), model=FakeEncoder(), path=ix)
    assert r.get(["1"])[0]["metadata"] == {"topic": None, "x": [None, 1]}
    assert [h.id for h in r.search("futbol kedi", filter={"topic": "spor"})] == ["2"]


def test_api_fuzz_campaign(tmp_path: Path) -> None:
    res = run_api_fuzz(tmp_path, 120, seed=7)
    assert res["mishandled"] == 0, res["examples"]


# ------------------------------------------------------------------------------ names and settings
@settings(max_examples=300, deadline=None, database=None)
@given(
    name=st.one_of(
        ANY_TEXT, st.sampled_from(["..", "../x", "a/../../b", "~", "~root", "~0", ".hidden", "a" * 200])
    )
)
@example(name="~\x00")  # once raised ValueError from the home-directory lookup instead of InputError
def test_index_names_never_escape_the_root(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    """A NAME lands inside the root or is refused; only a path (with '/', or starting with '.' or '~')
    goes elsewhere, and that is the user's explicit choice."""
    root = Path("/srv/tase/indexes")
    try:
        p = resolve_index_path(name, root)
    except InputError:
        return
    if name == "":
        assert p == root / "default"
    elif "/" in name or name.startswith((".", "~")):
        assert p == Path(name).expanduser()
    else:
        assert p.parent == root and p.name == name
        assert Path(os.path.normpath(p)).parent == root  # no '..' games


@settings(max_examples=100, deadline=None, database=None)
@given(
    key=st.sampled_from(["BATCH_SIZE", "OVERLAP_TOKENS", "MAX_SEQ_LENGTH", "PRECISION", "DEVICE"]),
    value=st.one_of(
        ANY_TEXT.filter(lambda s: "\x00" not in s and not any(0xD800 <= ord(c) <= 0xDFFF for c in s)),
        st.integers(-(10**12), 10**12).map(str),
    ),
)
def test_settings_from_environment(key: str, value: str) -> None:
    name = "TASE_SEARCH_" + key
    with pytest.MonkeyPatch.context() as mp:  # per example: a fixture would span all of them
        mp.setenv(name, value)
        try:
            s = load_settings()
        except InputError as exc:
            assert name in str(exc)  # the message names where the bad value came from
            return
    assert 1 <= s.batch_size <= 65536 and 0 <= s.overlap_tokens <= 65536 and 0 <= s.max_seq_length <= 65536


# ------------------------------------------------------------------------------ CLI (tiny model)
DEFAULT_CLI = [
    "empty file",
    "only empty lines",
    "binary file as txt",
    "invalid UTF-8 strict",
    "invalid UTF-8 replace",
    "malformed JSONL",
    "duplicate ids (error)",
    "CSV wrong column",
    "not gzip",
    "--batch-size 0",
    "TASE_SEARCH_BATCH_SIZE=abc",
    "invalid index name",
    "-k 0",
    "-k huge",
    "query: empty",
    "control characters only",
    "Arabic",
    "CJK",
    "emoji",
    "undecodable bytes",
    "filter key with dots",
    "stdin with blank",
    "surrogate id",
    "verify: not an index",
]


def test_cli_bad_inputs(tmp_path: Path, tiny_model_dir: Path) -> None:
    res = run_cli_cases(tmp_path, tiny_model_dir, only=DEFAULT_CLI)
    assert res["tried"] >= len(DEFAULT_CLI)
    assert res["mishandled"] == 0, res["examples"]


@pytest.mark.slow
def test_cli_bad_inputs_all(tmp_path: Path, tiny_model_dir: Path) -> None:
    res = run_cli_cases(
        tmp_path, tiny_model_dir, skip=["10 MB"]
    )  # minutes with a real model: the campaign runs it
    assert res["mishandled"] == 0, res["examples"]


@pytest.mark.slow
def test_cli_undecodable_argv_real_process(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Real argv bytes that are not UTF-8, stdout that refuses surrogates: clean UTF-8 JSON out."""
    from tase_search.encoding.encoder import Encoder

    ix = tmp_path / "ix"
    Retriever.build(make_docs(10), model=Encoder.load(str(tiny_model_dir), precision="fp32"), path=ix).close()
    exe = str(Path(sys.executable).with_name("tase-search"))
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "TASE_SEARCH_PRECISION": "fp32"}
    p = subprocess.run(
        [exe.encode(), b"query", b"fut\xffbol", b"--index", str(ix).encode(), b"--json", b"-k", b"2"],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    for line in p.stdout.decode("utf-8").splitlines():
        assert json.loads(line)["query"] == "fut\ufffdbol"
