"""A handed-over index can never delete, read or hang outside itself: the query bundle, generation links,
rows with matching checksums, documents at every entry point, and what a read leaves behind.

Each test names the red-team finding it answers (F1-F7, F10, F12 of the second hardening pass); the
campaign (``campaign/hostile.py``) runs the bundle cases too.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from campaign.hostile import generation_dir, hostile_loop_graph, reseal, sqlite_edit  # noqa: E402
from tase_search.encoding import graph_store, onnx_runtime  # noqa: E402
from tase_search.encoding import query_bundle as qb  # noqa: E402
from tase_search.errors import IndexCorrupt, InputError  # noqa: E402
from tase_search.retriever import Retriever  # noqa: E402
from tase_search.store.manifest import read_manifest  # noqa: E402
from tase_search.store.snapshot import describe  # noqa: E402
from tase_search.store.vectors import check_queries  # noqa: E402
from tase_search.store.verify import verify_index  # noqa: E402

DOCS = ["futbol maçı istanbul'da", "yarın yağmur var", "kedi ve köpek", "müzik ve şarkı"]


@pytest.fixture(scope="module")
def built(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One index of the tiny model with its query bundle, copied by each test (links kept); its graph
    in a graph store of its own (``graphs`` beside it)."""
    from unittest import mock

    path = tmp_path_factory.mktemp("built") / "idx"
    with mock.patch.dict(os.environ, {graph_store.STORE_ENV: str(path.parent / "graphs")}):
        Retriever.build(DOCS, model=str(tiny_model_dir), path=path, precision="fp32")
    assert (path / qb.BUNDLE_DIR / qb.BUNDLE_FILE).is_file()
    return path


@pytest.fixture
def ix(built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dst = tmp_path / "work" / "idx"
    shutil.copytree(built, dst, symlinks=True)
    shutil.copytree(built.parent / "graphs", tmp_path / "graphs")
    monkeypatch.setenv(graph_store.STORE_ENV, str(tmp_path / "graphs"))
    return dst


def _stored_graph(ix: Path) -> Path:
    return graph_store.store_dir() / _bundle(ix)["graph"]


def _keys(ix: Path) -> dict[str, object]:
    m = read_manifest(ix).model
    return {
        "fingerprint": m.fingerprint,
        "query_prompt": m.query_prompt,
        "passage_prompt": m.passage_prompt,
        "dimension": m.dimension,
    }


def _user_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _bundle(ix: Path) -> dict:
    return json.loads((ix / qb.BUNDLE_DIR / qb.BUNDLE_FILE).read_text(encoding="utf-8"))


def _set_bundle(ix: Path, bundle: dict | str) -> None:
    text = bundle if isinstance(bundle, str) else json.dumps(bundle)
    (ix / qb.BUNDLE_DIR / qb.BUNDLE_FILE).write_text(text, encoding="utf-8")


# ----------------------------------------------------------------------------------------- F1
@pytest.mark.parametrize("target", ["user-folder", "parent"])
def test_a_linked_bundle_folder_is_never_written_through(ix: Path, target: str, caplog) -> None:
    """F1: a write on an index whose ``query-bundle`` links to the user's files (or to the folder the
    index sits in) leaves every one of them untouched and says what it refused."""
    if target == "user-folder":
        mine = ix.parent.parent / "my-documents"
        mine.mkdir()
    else:
        mine = ix.parent  # query-bundle -> ..
    (mine / "thesis.txt").write_text("four years of work", encoding="utf-8")
    (mine / "notes.md").write_text("# notes", encoding="utf-8")
    shutil.rmtree(ix / qb.BUNDLE_DIR)
    (ix / qb.BUNDLE_DIR).symlink_to(mine if target == "user-folder" else Path(".."))
    before = _user_files(mine)
    r = Retriever.load(ix, precision="fp32")
    with caplog.at_level(logging.WARNING):
        r.add(["yeni bir belge", "bir belge daha"])
    assert _user_files(mine) == before
    assert not any(p.suffix == ".onnx" or p.name == qb.BUNDLE_FILE for p in mine.iterdir())
    assert (ix / qb.BUNDLE_DIR).is_symlink()  # left as it was: the user decides
    assert "symbolic link" in caplog.text and "nothing in or behind it was touched" in caplog.text
    assert len(Retriever.load(ix, precision="fp32").search("kedi", k=10)) == 6  # the write itself happened


def test_a_linked_graph_file_is_replaced_not_followed(ix: Path) -> None:
    """F1: a ``<key>.onnx`` that links to a user's file: the write removes the link and writes its own
    graph; the user's file keeps its bytes."""
    folder = ix / qb.BUNDLE_DIR
    graph = folder / _bundle(ix)["graph"]
    victim = ix.parent / "precious.bin"
    victim.write_bytes(b"user data" * 100)
    graph.symlink_to(victim)
    _set_bundle(ix, {**_bundle(ix), "probe_vectors": [[0.0] * 32] * 4})  # force a rewrite
    Retriever.load(ix, precision="fp32").add(["yeni belge"])
    assert victim.read_bytes() == b"user data" * 100
    assert not os.path.lexists(graph)  # the link is gone; the graph is the store's
    assert qb.open_bundle(ix, **_keys(ix))[0] is not None


# ----------------------------------------------------------------------------------------- F2
def test_bundle_names_must_be_its_own_files(ix: Path, tmp_path: Path) -> None:
    """F2: ``graph`` / ``tokenizer`` naming anything but the bundle's own files is refused."""
    good = _bundle(ix)
    outside = tmp_path / "elsewhere.onnx"
    shutil.copy(_stored_graph(ix), outside)
    for bad in (str(outside), f"../../{outside.name}", "../idx/query-bundle/" + good["graph"], "x.onnx"):
        _set_bundle(ix, {**good, "graph": bad})
        light, why = qb.open_bundle(ix, **_keys(ix))
        assert light is None and "names files other" in why, bad
    _set_bundle(ix, {**good, "tokenizer": "/etc/passwd"})
    assert "names files other" in qb.open_bundle(ix, **_keys(ix))[1]


@pytest.mark.parametrize("which", ["bundle.json", "graph", "tokenizer", "folder"])
def test_bundle_files_are_never_read_through_links(ix: Path, tmp_path: Path, which: str) -> None:
    """F2: a good bundle elsewhere, linked in (file by file, or the whole folder): refused, not run."""
    folder = ix / qb.BUNDLE_DIR
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(folder, elsewhere)
    shutil.copy(_stored_graph(ix), elsewhere)
    if which == "folder":
        shutil.rmtree(folder)
        folder.symlink_to(elsewhere)
    else:
        name = qb.BUNDLE_FILE if which == "bundle.json" else _bundle(ix)[which]
        (folder / name).unlink(missing_ok=True)
        (folder / name).symlink_to(elsewhere / name)
    light, why = qb.open_bundle(ix, **_keys(ix))
    assert light is None and "symbolic link" in why
    r = Retriever.load(ix, precision="fp32")
    assert r.search("kedi", k=1) and not isinstance(r.query_encoder, qb.LightQueryEncoder)
    assert "symbolic link" in (r.query_path_note or "")


# ----------------------------------------------------------------------------------------- F3
def _within(seconds: float, fn, *args, **kwargs):
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn(*args, **kwargs)), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{fn.__name__} still running after {seconds} s"
    return out[0]


def test_a_fifo_bundle_file_does_not_hang(ix: Path) -> None:
    """F3: ``bundle.json`` as a FIFO (a reader would wait for a writer for ever)."""
    path = ix / qb.BUNDLE_DIR / qb.BUNDLE_FILE
    path.unlink()
    os.mkfifo(path)
    light, why = _within(10, qb.open_bundle, ix, **_keys(ix))
    assert light is None and "FIFO" in why


def test_a_looping_graph_is_stopped(ix: Path, monkeypatch) -> None:
    """F3: a graph with an ONNX ``Loop`` of 10^15 steps: its probe is stopped at the time limit, the
    bundle refused, queries answered by the model."""
    monkeypatch.setattr(onnx_runtime, "RUN_TIME_LIMIT_S", 0.5)
    good = _bundle(ix)
    hostile = hostile_loop_graph(int(good["dimension"]))
    (ix / qb.BUNDLE_DIR / good["graph"]).write_bytes(hostile)  # carried by the index, hash to match
    _set_bundle(ix, {**good, "graph_bytes": len(hostile), "graph_sha256": graph_store.sha256(hostile)})
    t0 = time.monotonic()
    light, why = _within(30, qb.open_bundle, ix, **_keys(ix))
    assert light is None and "longer than 0.5 s" in why
    assert time.monotonic() - t0 < 20
    r = _within(60, Retriever.load, ix, precision="fp32")
    assert r.search("kedi", k=1) and not isinstance(r.query_encoder, qb.LightQueryEncoder)
    _within(120, r.add, ["yeni belge"])  # the write replaces the graph instead of hanging on it
    assert qb.open_bundle(ix, **_keys(ix))[0] is not None


# ----------------------------------------------------------------------------------------- F4
@pytest.mark.parametrize("case", ["deep", "zero", "huge", "types", "not-object"])
def test_malformed_bundle_json_is_a_note_not_a_traceback(ix: Path, case: str) -> None:
    """F4: 200k-deep JSON, a link to /dev/zero, an oversized file, wrongly typed fields."""
    path = ix / qb.BUNDLE_DIR / qb.BUNDLE_FILE
    if case == "deep":
        _set_bundle(ix, "[" * 200_000 + "]" * 200_000)
    elif case == "zero":
        path.unlink()
        path.symlink_to("/dev/zero")
    elif case == "huge":
        _set_bundle(ix, json.dumps({**_bundle(ix), "pad": "x" * (qb.MAX_BUNDLE_BYTES + 1)}))
    elif case == "types":
        _set_bundle(ix, {**_bundle(ix), "dimension": "32", "pad_id": [1]})
    else:
        _set_bundle(ix, "[1, 2, 3]")
    light, why = _within(10, qb.open_bundle, ix, **_keys(ix))
    assert light is None and why
    assert Retriever.load(ix, precision="fp32").search("kedi", k=1)
    assert not verify_index(ix).ok or case == "not-object"


# ----------------------------------------------------------------------------------------- F5
def test_a_bundle_of_another_width_is_refused(ix: Path) -> None:
    """F5: a bundle whose vectors are 16-d for a 32-d index (probe vectors made to match)."""
    good = _bundle(ix)
    _set_bundle(ix, {**good, "dimension": 16, "probe_vectors": [row[:16] for row in good["probe_vectors"]]})
    light, why = qb.open_bundle(ix, **_keys(ix))
    assert light is None and "16 dimensions" in why
    assert Retriever.load(ix, precision="fp32").search("kedi", k=1)


def test_query_vectors_of_another_width_are_an_input_error(ix: Path) -> None:
    """F5: the store names the width instead of tripping a FAISS assertion."""
    with pytest.raises(InputError, match="32-dimensional"):
        check_queries(np.zeros((1, 16), np.float32), 32)
    r = Retriever.load(ix, precision="fp32")
    assert r.search("kedi", k=1)
    snap_vectors = r._vectors
    with pytest.raises(InputError, match="32-dimensional"):
        snap_vectors.search(np.zeros((1, 16), np.float32), 3)


# ----------------------------------------------------------------------------------------- F6
def test_info_never_describes_a_linked_generation(ix: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    """F6: ``gen-NNNNNN`` linking to another index's generation: ``info`` reads nothing through it."""
    other = tmp_path / "other"
    Retriever.build(
        [{"text": "gizli belge", "source": "secret-source.txt"}],
        model=str(tiny_model_dir),
        path=other,
        precision="fp32",
    )
    gen = generation_dir(ix)
    shutil.rmtree(gen)
    gen.symlink_to(generation_dir(other))
    info = describe(ix, read_manifest(ix))
    assert not info["sources"] and info["bytes_on_disk"] == 0
    assert "secret" not in json.dumps(info)


# ----------------------------------------------------------------------------------------- F7
@pytest.mark.parametrize(
    ("sql", "what"),
    [
        ("UPDATE documents SET text = '' WHERE doc_key = 1", "text is missing"),
        ("UPDATE documents SET metadata = 'not json' WHERE doc_key = 1", "not a JSON object"),
        ("UPDATE documents SET metadata = '[1]' WHERE doc_key = 1", "not a JSON object"),
        (
            "UPDATE documents SET metadata = '" + '{"a":' * 70 + "1" + "}" * 70 + "' WHERE doc_key = 1",
            "deeper",
        ),
        ('UPDATE passages SET "end" = 100000 WHERE pid = 0', "outside their document"),
        ("UPDATE passages SET start = -3 WHERE pid = 0", "outside their document"),
        ("UPDATE passages SET idx = 'x' WHERE pid = 0", "not whole numbers"),
    ],
)
def test_damaged_rows_with_matching_checksums_fail_verify_and_writes(ix: Path, sql: str, what: str) -> None:
    """F7: rows no search could use, with the manifest's checksums recomputed: ``verify`` names them and
    a write refuses to carry them forward."""
    sqlite_edit(ix, sql)
    reseal(ix)
    rep = verify_index(ix)
    assert not rep.ok and any(what in p for p in rep.problems), rep.problems
    before = (ix / "manifest.json").read_bytes()
    with pytest.raises(IndexCorrupt, match=what):
        Retriever.load(ix, precision="fp32").add(["yeni belge"])
    assert (ix / "manifest.json").read_bytes() == before


def test_verify_checks_the_bundle(ix: Path) -> None:
    """F7: ``verify`` opens the bundle as a query would: good is checked, damaged is a problem."""
    assert verify_index(ix).ok
    assert any("query bundle" in c for c in verify_index(ix).checked)
    good = _bundle(ix)
    _set_bundle(ix, {**good, "probe_vectors": [[-x for x in r] for r in good["probe_vectors"]]})
    rep = verify_index(ix)
    assert not rep.ok and any("query bundle" in p and "disagrees" in p for p in rep.problems)


# ---------------------------------------------------------------------------------------- F10
def test_documents_are_checked_where_they_enter(ix: Path) -> None:
    """F10: metadata 100 levels deep (or a dict that contains itself) is refused on the way in; the
    index keeps answering."""
    deep: dict = {}
    cur = deep
    for _ in range(100):
        cur["a"] = {}
        cur = cur["a"]
    r = Retriever.load(ix, precision="fp32")
    before = (ix / "manifest.json").read_bytes()
    with pytest.raises(InputError, match="64 levels"):
        r.add([{"text": "derin", "meta": deep}])
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(InputError, match="64 levels"):
        r.add([{"text": "döngü", "meta": loop}])
    with pytest.raises(InputError, match="id is"):
        r.add([{"text": "uzun kimlik", "id": "x" * 5000}])
    assert (ix / "manifest.json").read_bytes() == before
    assert r.search("kedi", k=1) and verify_index(ix).ok


# ---------------------------------------------------------------------------------------- F12
def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_verify_writes_nothing_anywhere(ix: Path, tmp_path: Path, monkeypatch) -> None:
    """F12: ``verify`` checks the keyword part in memory, not through a copy in ``$TMPDIR`` (here a
    folder that does not exist, so any temporary file would fail the check)."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-temporary-files-here"))
    before = _tree(ix)
    rep = verify_index(ix)
    assert rep.ok, rep.problems
    assert any("sparse" in c for c in rep.checked)
    assert _tree(ix) == before and not (tmp_path / "no-temporary-files-here").exists()


@pytest.mark.slow  # two interpreters that import onnxruntime and torch
def test_imports_write_nothing_outside_the_user_cache(tmp_path: Path) -> None:
    """F12: importing onnxruntime through tase-search leaves no telemetry folder in ``~/.cache``; torch's
    compiler cache folder goes under the tase-search cache, not ``$TMPDIR``."""
    home, tmp, cache = tmp_path / "home", tmp_path / "tmp", tmp_path / "cache"
    for d in (home, tmp):
        d.mkdir()
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(tmp), "TASE_SEARCH_CACHE_DIR": str(cache)}
    for var in ("XDG_CACHE_HOME", "TORCHINDUCTOR_CACHE_DIR", "ORT_TELEMETRY_DISABLED"):
        env.pop(var, None)
    code = (
        "import tase_search\n"
        "from tase_search.encoding.onnx_runtime import import_onnxruntime\n"
        "import_onnxruntime()\n"
        "import sentence_transformers\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert _tree(home) == set() and _tree(tmp) == set()
    assert "telemetry" not in proc.stderr
