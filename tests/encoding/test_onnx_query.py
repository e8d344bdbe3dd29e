"""The ONNX Runtime query path (tase_search/encoding/onnx_runtime.py, query_bundle.py): same vectors as
PyTorch, the backend chosen once at load, the query bundle written into the index by writes and only read
by queries (which write nothing), and the CLI's torch-free queries."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from tase_search.encoding import DocumentEncoder, QueryEncoder, onnx_runtime, query_bundle  # noqa: E402
from tase_search.encoding.encoder import Encoder  # noqa: E402
from tase_search.encoding.query_bundle import LightQueryEncoder, open_bundle  # noqa: E402
from tase_search.errors import InputError, ModelError  # noqa: E402

QUERIES = [
    "futbol",
    "yarın hava yağmurlu mu",
    "galatasaray fenerbahçe maçı istanbul'da oynandı ve çok güzel bir maç oldu",
    "the weather in izmir",
]
DOCS = ["futbol maçı istanbul'da", "yarın yağmur var", "kedi ve köpek", "müzik ve şarkı"]
#: The bundle's graph has int8 weights (graph_store.quantize): its scores are within this of PyTorch's.
INT8_ATOL = 0.02


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh user cache per test: the query path must never write there."""
    d = tmp_path / "cache"
    monkeypatch.setenv("TASE_SEARCH_CACHE_DIR", str(d))
    return d


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and mtime: what a read must leave as it found it."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def _graph_file(tmp_path: Path, model_dir: Path) -> Path:
    """An exported graph of ``model_dir``'s fp32 weights, as a file."""
    enc = Encoder.load(str(model_dir), precision="fp32", query_backend="torch")
    path = tmp_path / "graph.onnx"
    onnx_runtime.export(enc.model, path)
    return path


def _count_runs(enc: Encoder, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the texts that go through the encoder's ONNX session."""
    runner = enc.onnx_query_encoder()
    assert runner is not None
    calls: list[int] = []
    real = runner.session.run

    def counting(names, feed, *options):  # noqa: ANN001, ANN002, ANN202
        calls.append(len(next(iter(feed.values()))))
        return real(names, feed, *options)

    monkeypatch.setattr(runner.session, "run", counting)
    return calls


def test_onnx_queries_match_torch_single_and_batched(tiny_model_dir: Path, cache: Path, monkeypatch) -> None:
    torch_enc = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="torch")
    onnx_enc = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="onnx")
    assert (torch_enc.active_query_backend, onnx_enc.active_query_backend) == ("torch", "onnx")
    calls = _count_runs(onnx_enc, monkeypatch)
    want = torch_enc.encode_query(QUERIES)
    singles = np.vstack([onnx_enc.encode_query(q) for q in QUERIES])
    batched = onnx_enc.encode_query(QUERIES)
    assert calls == [1, 1, 1, 1, len(QUERIES)]  # really the ONNX session, one call per batch
    for got in (singles, batched):
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert (got * want).sum(1).min() > 0.9999
    assert onnx_enc.onnx_query_encoder().path is None  # exported into memory at load: nothing written
    assert _files(cache) == {}


def test_a_given_graph_is_used_and_never_rewritten(
    tiny_model_dir, other_tiny_model_dir, tmp_path, cache, monkeypatch
) -> None:
    graph = _graph_file(tmp_path, tiny_model_dir)
    before = _files(tmp_path)

    def no_export(*_a, **_k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the given graph should have been used")

    monkeypatch.setattr(onnx_runtime, "export", no_export)
    for backend in ("auto", "onnx"):
        enc = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend=backend, query_graph=graph)
        assert enc.onnx_query_encoder().path == graph
    monkeypatch.undo()
    monkeypatch.setenv("TASE_SEARCH_CACHE_DIR", str(cache))
    # other weights: the graph disagrees; auto stays on PyTorch, onnx exports its own into memory
    auto = Encoder.load(str(other_tiny_model_dir), precision="fp32", query_graph=graph)
    assert auto.active_query_backend == "torch"
    forced = Encoder.load(
        str(other_tiny_model_dir), precision="fp32", query_backend="onnx", query_graph=graph
    )
    assert forced.onnx_query_encoder().path is None
    assert _files(tmp_path) == before and _files(cache) == {}


def test_auto_stays_on_torch_without_onnxruntime(tiny_model_dir, tmp_path, cache, monkeypatch) -> None:
    graph = _graph_file(tmp_path, tiny_model_dir)
    monkeypatch.setattr(onnx_runtime, "missing_modules", lambda: ["onnxruntime", "onnx"])
    auto = Encoder.load(str(tiny_model_dir), precision="fp32", query_graph=graph)
    assert auto.query_backend == "auto" and auto.onnx_query_encoder() is None
    want = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="torch").encode_query(QUERIES)
    np.testing.assert_array_equal(auto.encode_query(QUERIES), want)
    with pytest.raises(ModelError, match="pip install onnxruntime"):  # at load, not at the first query
        Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="onnx")


def test_ctrl_c_during_export_is_not_swallowed(tiny_model_dir, cache, monkeypatch) -> None:
    """A SIGINT that arrives while the tracer runs surfaces as KeyboardInterrupt, even when the
    tracer reports the interruption as an ordinary error (which would otherwise mean "cannot export")."""
    import signal

    def interrupted_export(model, path=None):  # noqa: ANN001, ANN202
        try:  # what the tracer does with an exception raised in the traced Python code
            # a signal sent to this thread is handled before the next line runs: with the default
            # handler, KeyboardInterrupt is raised right here
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt as exc:
            raise RuntimeError("the tracer wrapped it") from exc
        raise RuntimeError("the tracer wrapped it")

    monkeypatch.setattr(onnx_runtime, "export", interrupted_export)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the test run was started in the background
    with pytest.raises(KeyboardInterrupt):
        Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="onnx")
    assert signal.getsignal(signal.SIGINT) is before  # the handler it replaced is back


def test_graph_that_disagrees_is_refused(tiny_model_dir, tmp_path, cache, monkeypatch) -> None:
    graph = _graph_file(tmp_path, tiny_model_dir)
    monkeypatch.setattr(Encoder, "onnx_agreement", lambda self, runner: 0.5)
    auto = Encoder.load(str(tiny_model_dir), precision="fp32", query_graph=graph)
    assert auto.onnx_query_encoder() is None  # PyTorch, decided at load
    with pytest.raises(ModelError, match="disagrees with PyTorch"):
        Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="onnx")


def test_runtime_failure_is_an_error_not_a_silent_switch(
    tiny_model_dir, tmp_path, cache, monkeypatch
) -> None:
    def broken(names, feed, *options):  # noqa: ANN001, ANN002, ANN202
        raise RuntimeError("simulated ONNX Runtime failure")

    graph = _graph_file(tmp_path, tiny_model_dir)
    for backend in ("auto", "onnx"):
        enc = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend=backend, query_graph=graph)
        monkeypatch.setattr(enc.onnx_query_encoder().session, "run", broken)
        with pytest.raises(ModelError, match="simulated ONNX Runtime failure.*query_backend='torch'"):
            enc.encode_query("futbol")
        assert enc.active_query_backend == "onnx"  # the choice made at load stands


def test_auto_sends_only_small_query_batches_to_onnx(tiny_model_dir, tmp_path, cache, monkeypatch) -> None:
    many = [f"{w} {i}" for i, w in enumerate(QUERIES * 5)][: onnx_runtime.MAX_BATCH + 1]
    graph = _graph_file(tmp_path, tiny_model_dir)
    auto = Encoder.load(str(tiny_model_dir), precision="fp32", query_graph=graph)
    calls = _count_runs(auto, monkeypatch)
    auto.encode_query(many)  # above MAX_BATCH: PyTorch
    auto.encode_document(QUERIES[:2])  # documents: always PyTorch
    assert calls == []
    auto.encode_query(many[: onnx_runtime.MAX_BATCH])
    assert calls == [onnx_runtime.MAX_BATCH]
    forced = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="onnx", query_graph=graph)
    forced_calls = _count_runs(forced, monkeypatch)
    forced.encode_query(many)  # onnx: every query batch, in slices of MAX_BATCH
    assert forced_calls == [onnx_runtime.MAX_BATCH, 1]


def test_bf16_encoder_exports_its_own_weights_in_fp32(tiny_model_dir, cache) -> None:
    """A bf16 encoder's graph is traced from an fp32 copy of the bf16 weights: queries agree with the
    bf16 PyTorch path, the encoder's own model stays bf16, and the graph is keyed apart from fp32's."""
    import torch

    bf16 = Encoder.load(str(tiny_model_dir), precision="bf16", query_backend="onnx")
    torch_bf16 = Encoder(bf16.model, bf16.model_id, precision="bf16", query_backend="torch")
    got = np.vstack([bf16.encode_query(q) for q in QUERIES])
    assert (got * torch_bf16.encode_query(QUERIES)).sum(1).min() > 0.995
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    fp32 = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="torch")
    assert onnx_runtime.graph_key(bf16.model, bf16.fingerprint) != onnx_runtime.graph_key(
        fp32.model, fp32.fingerprint
    )


def test_t5_encoder_through_onnx(tmp_path: Path, cache) -> None:
    """The paper's architecture (T5 encoder + mean pooling) exports with dynamic lengths too."""
    from tase_search.testing import build_tiny_t5

    out = build_tiny_t5(tmp_path / "t5", max_seq_length=32)
    onnx_enc = Encoder.load(str(out), precision="fp32", query_backend="onnx")
    want = Encoder.load(str(out), precision="fp32", query_backend="torch").encode_query(QUERIES)
    got = np.vstack([onnx_enc.encode_query(q) for q in QUERIES])
    assert (got * want).sum(1).min() > 0.9999
    assert (onnx_enc.encode_query(QUERIES) * want).sum(1).min() > 0.9999


def test_concurrent_queries_share_the_session_chosen_at_load(tiny_model_dir, cache, monkeypatch) -> None:
    opened: list[int] = []
    real = onnx_runtime.OnnxQueryEncoder.__init__

    def counting(self, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        opened.append(1)
        real(self, *a, **k)

    monkeypatch.setattr(onnx_runtime.OnnxQueryEncoder, "__init__", counting)
    enc = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="onnx")
    assert opened == [1]
    out: dict[int, np.ndarray] = {}
    threads = [
        threading.Thread(target=lambda i=i: out.__setitem__(i, enc.encode_query(QUERIES[i])))
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert opened == [1] and len(out) == 4


def test_unknown_query_backend_is_refused(tiny_model_dir, monkeypatch) -> None:
    from tase_search.runtime.config import load_settings

    with pytest.raises(InputError, match="query backend 'fast' is not one of auto, torch, onnx"):
        Encoder.load(str(tiny_model_dir), query_backend="fast")
    monkeypatch.setenv("TASE_SEARCH_QUERY_BACKEND", "onnx")
    assert load_settings().query_backend == "onnx"
    assert load_settings(query_backend="torch").query_backend == "torch"  # flag beats env
    monkeypatch.setenv("TASE_SEARCH_QUERY_BACKEND", "gpu")
    with pytest.raises(InputError, match="query backend 'gpu'"):
        load_settings()


def test_python_build_writes_the_bundle_and_search_writes_nothing(tiny_model_dir, tmp_path, cache) -> None:
    """Retriever users get the torch-free path too: the build leaves the bundle in the index, a loaded
    retriever queries through it, and searching (cold or warm) changes no file anywhere."""
    from tase_search.retriever import Retriever

    Retriever.build(DOCS, model=str(tiny_model_dir), path=tmp_path / "idx", precision="fp32")
    assert (tmp_path / "idx" / query_bundle.BUNDLE_DIR / query_bundle.BUNDLE_FILE).is_file()
    before, cached = _files(tmp_path / "idx"), _files(cache)
    fast = Retriever.load(tmp_path / "idx").warm_up()
    assert isinstance(fast.query_encoder, LightQueryEncoder) and fast.query_path_note is None
    slow = Retriever.load(tmp_path / "idx", precision="fp32", query_backend="torch")
    assert type(slow.query_encoder) is Encoder
    for q in QUERIES:
        a, b = fast.search(q, k=4), slow.search(q, k=4)
        assert [h.id for h in a] == [h.id for h in b]
        assert np.allclose([h.score for h in a], [h.score for h in b], atol=INT8_ATOL)
    assert _files(tmp_path / "idx") == before and _files(cache) == cached == {}


def test_bundle_is_keyed_by_prompts_too(tiny_model_dir, tmp_path, cache) -> None:
    """Same weights, other prompts: the bundle is not used (and the next write replaces it)."""
    from tase_search.retriever import Retriever

    Retriever.build(DOCS, model=str(tiny_model_dir), path=tmp_path / "idx", precision="fp32")
    r = Retriever.load(tmp_path / "idx")
    m = r.manifest.model
    light, why = open_bundle(r.path, fingerprint=m.fingerprint, query_prompt="query: ", passage_prompt=None)
    assert light is None and "other prompts" in why
    light, _ = open_bundle(
        r.path, fingerprint=m.fingerprint, query_prompt=m.query_prompt, passage_prompt=m.passage_prompt
    )
    assert light is not None


def test_an_index_without_a_bundle_still_answers_and_says_how_to_add_it(
    tiny_model_dir, tmp_path, cache
) -> None:
    from tase_search.retriever import Retriever

    enc = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="torch")
    Retriever.build(DOCS, model=enc, path=tmp_path / "idx")  # torch: no bundle, as an older index
    assert not (tmp_path / "idx" / query_bundle.BUNDLE_DIR).exists()
    r = Retriever.load(tmp_path / "idx", precision="fp32")
    assert r.search("futbol", k=1) and type(r.query_encoder) is Encoder
    assert "no query bundle" in r.query_path_note and "tase-search index" in r.query_path_note
    assert not (tmp_path / "idx" / query_bundle.BUNDLE_DIR).exists()  # the query wrote nothing
    r.write_query_bundle()
    assert isinstance(Retriever.load(tmp_path / "idx").query_encoder, LightQueryEncoder)


def _index_with_cli(tiny_model_dir: Path, tmp_path: Path, env: dict[str, str] | None = None) -> list[str]:
    from tase_search.cli.app import main

    corpus = tmp_path / "c.txt"
    corpus.write_text("futbol maçı\nyarın yağmur\nkedi köpek\nmüzik ve şarkı\n", encoding="utf-8")
    base = ["--index", str(tmp_path / "idx"), "--model", str(tiny_model_dir), "--precision", "fp32"]
    r = CliRunner().invoke(main, ["index", str(corpus), *base], env=env)
    assert r.exit_code == 0, r.output
    return ["--index", str(tmp_path / "idx")]


_QUERY_CHILD = """
import json, sys
from tase_search.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps({m: m in sys.modules for m in ("torch", "transformers")}), file=sys.stderr)
"""


def _query_child(args: list[str], stdin: str | None = None) -> tuple[list[dict], dict[str, bool]]:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _QUERY_CHILD, "query", *args, "--json", "-k", "2"],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()], json.loads(
        out.stderr.strip().splitlines()[-1]
    )


def test_cli_index_leaves_a_bundle_and_queries_skip_torch(tiny_model_dir, tmp_path, cache) -> None:
    """`index` writes the query bundle into the index; later one-off and stdin queries load neither
    torch nor transformers and answer exactly as the PyTorch path does, also from a copy of the index
    elsewhere; nothing goes to the user cache."""
    where = _index_with_cli(tiny_model_dir, tmp_path)
    assert (tmp_path / "idx" / query_bundle.BUNDLE_DIR / query_bundle.BUNDLE_FILE).is_file()
    fast, mods = _query_child(["yağmur", *where])
    assert mods == {"torch": False, "transformers": False}
    slow, mods = _query_child(["yağmur", *where, "--query-backend", "torch", "--precision", "fp32"])
    assert mods["torch"] is True
    assert [h["id"] for h in fast] == [h["id"] for h in slow]
    assert np.allclose([h["score"] for h in fast], [h["score"] for h in slow], atol=INT8_ATOL)
    lines, mods = _query_child(["-", *where], stdin="futbol\nkedi\n")
    assert [h["query"] for h in lines] == ["futbol", "futbol", "kedi", "kedi"] and mods["torch"] is False
    shutil.copytree(tmp_path / "idx", tmp_path / "elsewhere" / "idx")
    copied, mods = _query_child(["yağmur", "--index", str(tmp_path / "elsewhere" / "idx")])
    assert mods["torch"] is False and copied == fast
    assert _files(cache) == {}


@pytest.mark.slow  # two CLI index runs and a query process
def test_bundle_that_fails_its_probes_is_not_used_nor_removed(tiny_model_dir, tmp_path, cache) -> None:
    from tase_search.retriever import Retriever

    _index_with_cli(tiny_model_dir, tmp_path)
    m = json.loads((tmp_path / "idx" / "manifest.json").read_text(encoding="utf-8"))["model"]
    keys = {
        "fingerprint": m["fingerprint"],
        "query_prompt": m.get("query_prompt"),
        "passage_prompt": m.get("passage_prompt"),
    }
    path = tmp_path / "idx" / query_bundle.BUNDLE_DIR / query_bundle.BUNDLE_FILE
    bundle = json.loads(path.read_text(encoding="utf-8"))
    bundle["probe_vectors"] = [[-x for x in row] for row in bundle["probe_vectors"]]
    path.write_text(json.dumps(bundle), encoding="utf-8")
    light, why = open_bundle(tmp_path / "idx", **keys)
    assert light is None and "disagrees" in why
    assert json.loads(path.read_text(encoding="utf-8")) == bundle  # a read leaves it as it found it
    r = Retriever.load(tmp_path / "idx", precision="fp32")
    # the full encoder answers (wrapped when auto runs documents on a converted backend here)
    answering = getattr(r.query_encoder, "inner", r.query_encoder)
    assert r.search("yağmur", k=2) and type(answering) is Encoder
    assert "disagrees" in r.query_path_note and "tase-search index" in r.query_path_note
    _index_with_cli(tiny_model_dir, tmp_path)  # appends nothing new, but writes a good bundle
    assert open_bundle(tmp_path / "idx", **keys)[0] is not None
    path.write_text("{not json", encoding="utf-8")
    assert open_bundle(tmp_path / "idx", **keys)[0] is None and path.exists()
    assert open_bundle(tmp_path / "idx", **{**keys, "fingerprint": "0" * 32})[0] is None  # other weights


def test_light_encoder_is_query_only(tiny_model_dir, tmp_path, cache) -> None:
    from tase_search.retriever import Retriever

    _index_with_cli(tiny_model_dir, tmp_path)
    full = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="torch")
    light = Retriever.load(tmp_path / "idx").query_encoder
    assert isinstance(light, LightQueryEncoder)
    assert (light.encode_query(QUERIES) * full.encode_query(QUERIES)).sum(1).min() > 0.9999
    assert (light.dimension, light.max_seq_length) == (full.dimension, full.max_seq_length)
    assert isinstance(light, QueryEncoder) and not isinstance(light, DocumentEncoder)
    assert isinstance(full, DocumentEncoder) and not hasattr(light, "encode_document")


def test_query_backend_torch_in_the_environment_prepares_nothing(tiny_model_dir, tmp_path, cache) -> None:
    where = _index_with_cli(tiny_model_dir, tmp_path, env={"TASE_SEARCH_QUERY_BACKEND": "torch"})
    assert not (tmp_path / "idx" / query_bundle.BUNDLE_DIR).exists() and _files(cache) == {}
    from tase_search.cli.app import main

    r = CliRunner().invoke(main, ["query", "futbol", *where, "--query-backend", "bogus"])
    assert r.exit_code == 2 and "bogus" in r.output


@pytest.mark.slow  # exports the shipped model's query graph
def test_shipped_model_golden_vectors_through_onnx(cache) -> None:
    golden = json.loads(
        (Path(__file__).resolve().parents[1] / "golden" / "default-model.json").read_text(encoding="utf-8")
    )
    enc = Encoder.load("default", query_backend="onnx")  # auto precision: bf16 weights where supported
    got = np.vstack([enc.encode_query(s) for s in golden["sentences"]])
    want = np.asarray(golden["query_vectors"], dtype=np.float32)  # queries carry the query prompt
    assert (got * want).sum(1).min() > 0.999
