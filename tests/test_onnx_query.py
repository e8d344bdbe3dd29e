"""The ONNX Runtime query path (tase_search/onnx_query.py): same vectors as PyTorch, cached graphs,
fallbacks that keep search working, and the CLI's choice between one-off and stdin queries."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from tase_search import onnx_query  # noqa: E402
from tase_search.encoder import Encoder  # noqa: E402
from tase_search.errors import InputError, ModelError  # noqa: E402

QUERIES = [
    "futbol",
    "yarın hava yağmurlu mu",
    "galatasaray fenerbahçe maçı istanbul'da oynandı ve çok güzel bir maç oldu",
    "the weather in izmir",
]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh graph cache per test, so each one sees the export happen (or not)."""
    d = tmp_path / "cache"
    monkeypatch.setenv("TASE_SEARCH_CACHE_DIR", str(d))
    return d


def _graphs(cache: Path) -> list[Path]:
    return sorted((cache / "onnx").glob("*.onnx")) if (cache / "onnx").is_dir() else []


def _count_runs(enc: Encoder, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the texts that go through the encoder's ONNX session."""
    runner = enc.onnx_query_encoder()
    assert runner is not None
    calls: list[int] = []
    real = runner.session.run

    def counting(names, feed):  # noqa: ANN001, ANN202
        calls.append(len(next(iter(feed.values()))))
        return real(names, feed)

    monkeypatch.setattr(runner.session, "run", counting)
    return calls


def test_onnx_queries_match_torch_single_and_batched(tiny_model_dir: Path, cache: Path, monkeypatch) -> None:
    torch_enc = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="torch")
    onnx_enc = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="onnx")
    calls = _count_runs(onnx_enc, monkeypatch)
    want = torch_enc.encode_query(QUERIES)
    singles = np.vstack([onnx_enc.encode_query(q) for q in QUERIES])
    batched = onnx_enc.encode_query(QUERIES)
    assert calls == [1, 1, 1, 1, len(QUERIES)]  # really the ONNX session, one call per batch
    for got in (singles, batched):
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert (got * want).sum(1).min() > 0.9999
    assert len(_graphs(cache)) == 1


def test_graph_is_cached_keyed_by_weights(tiny_model_dir, other_tiny_model_dir, cache, monkeypatch) -> None:
    Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="onnx").encode_query("futbol")
    (first,) = _graphs(cache)

    def no_export(*_a, **_k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the cached graph should have been reused")

    monkeypatch.setattr(onnx_query, "export", no_export)
    again = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="onnx")
    assert again.onnx_query_encoder().path == first
    monkeypatch.undo()
    monkeypatch.setenv("TASE_SEARCH_CACHE_DIR", str(cache))
    other = Encoder.load(str(other_tiny_model_dir), precision="fp32", query_backend="onnx")
    assert other.onnx_query_encoder().path != first  # other weights, other graph
    assert len(_graphs(cache)) == 2


def test_auto_stays_on_torch_without_onnxruntime(tiny_model_dir, cache, monkeypatch) -> None:
    monkeypatch.setattr(onnx_query, "missing_modules", lambda: ["onnxruntime", "onnx"])
    auto = Encoder.load(str(tiny_model_dir), precision="fp32")
    assert auto.query_backend == "auto"
    want = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="torch").encode_query(QUERIES)
    np.testing.assert_array_equal(auto.encode_query(QUERIES), want)
    assert auto.onnx_query_encoder() is None
    forced = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="onnx")
    with pytest.raises(ModelError, match="pip install onnxruntime"):
        forced.encode_query("futbol")
    assert _graphs(cache) == []


def test_corrupt_cached_graph_is_exported_again(tiny_model_dir, cache) -> None:
    enc = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="onnx")
    enc.encode_query("futbol")
    (path,) = _graphs(cache)
    path.write_bytes(b"not an onnx file")
    fresh = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="onnx")
    got = fresh.encode_query(QUERIES)
    assert fresh.onnx_query_encoder().path == path and path.stat().st_size > 1000
    assert (got * enc.encode_query(QUERIES)).sum(1).min() > 0.9999


def test_ctrl_c_during_export_is_not_swallowed(tiny_model_dir, cache, monkeypatch) -> None:
    """A SIGINT that arrives while the tracer runs surfaces as KeyboardInterrupt, even when the
    tracer reports the interruption as an ordinary error (which would otherwise mean "fall back")."""
    import signal

    def interrupted_export(model, path):  # noqa: ANN001, ANN202
        try:  # what the tracer does with an exception raised in the traced Python code
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)  # with the default handler, KeyboardInterrupt lands here
        except KeyboardInterrupt as exc:
            raise RuntimeError("the tracer wrapped it") from exc
        raise RuntimeError("the tracer wrapped it")

    monkeypatch.setattr(onnx_query, "export", interrupted_export)
    enc = Encoder.load(str(tiny_model_dir), precision="fp32")
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the test run was started in the background
    with pytest.raises(KeyboardInterrupt):
        enc.encode_query("futbol")
    assert signal.getsignal(signal.SIGINT) is before  # the handler it replaced is back


def test_graph_that_disagrees_is_refused(tiny_model_dir, cache, monkeypatch) -> None:
    monkeypatch.setattr(Encoder, "_onnx_agreement", lambda self, runner: 0.5)
    auto = Encoder.load(str(tiny_model_dir), precision="fp32")
    want = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="torch").encode_query(QUERIES)
    np.testing.assert_array_equal(auto.encode_query(QUERIES), want)  # fell back to PyTorch
    assert auto.onnx_query_encoder() is None
    forced = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="onnx")
    with pytest.raises(ModelError, match="disagrees with PyTorch"):
        forced.encode_query("futbol")


def test_runtime_failure_falls_back_under_auto_and_raises_under_onnx(tiny_model_dir, cache, monkeypatch) -> None:
    def broken(names, feed):  # noqa: ANN001, ANN202
        raise RuntimeError("simulated ONNX Runtime failure")

    want = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="torch").encode_query(QUERIES)
    auto = Encoder.load(str(tiny_model_dir), precision="fp32")
    monkeypatch.setattr(auto.onnx_query_encoder().session, "run", broken)
    np.testing.assert_array_equal(auto.encode_query(QUERIES), want)  # answered by PyTorch
    assert auto.onnx_query_encoder() is None  # and stays there
    forced = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="onnx")
    monkeypatch.setattr(forced.onnx_query_encoder().session, "run", broken)
    with pytest.raises(ModelError, match="simulated ONNX Runtime failure"):
        forced.encode_query("futbol")


def test_auto_sends_only_small_query_batches_to_onnx(tiny_model_dir, cache, monkeypatch) -> None:
    many = [f"{w} {i}" for i, w in enumerate(QUERIES * 5)][: onnx_query.MAX_BATCH + 1]
    auto = Encoder.load(str(tiny_model_dir), precision="fp32")
    calls = _count_runs(auto, monkeypatch)
    auto.encode_query(many)  # above MAX_BATCH: PyTorch
    auto.encode_document(QUERIES[:2])  # documents: always PyTorch
    assert calls == []
    auto.encode_query(many[: onnx_query.MAX_BATCH])
    assert calls == [onnx_query.MAX_BATCH]
    forced = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="onnx")
    forced_calls = _count_runs(forced, monkeypatch)
    forced.encode_query(many)  # onnx: every query batch, in slices of MAX_BATCH
    assert forced_calls == [onnx_query.MAX_BATCH, 1]


def test_bf16_encoder_exports_its_own_weights_in_fp32(tiny_model_dir, cache) -> None:
    """A bf16 encoder's graph is traced from an fp32 copy of the bf16 weights: queries agree with the
    bf16 PyTorch path, the encoder's own model stays bf16, and the graph is keyed apart from fp32's."""
    import torch

    bf16 = Encoder.load(str(tiny_model_dir), precision="bf16")
    torch_bf16 = Encoder(bf16.model, bf16.model_id, precision="bf16", query_backend="torch")
    got = np.vstack([bf16.encode_query(q) for q in QUERIES])
    assert (got * torch_bf16.encode_query(QUERIES)).sum(1).min() > 0.995
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    Encoder.load(str(tiny_model_dir), precision="fp32").encode_query("futbol")
    assert len(_graphs(cache)) == 2


def test_t5_encoder_through_onnx(tmp_path: Path, cache) -> None:
    """The paper's architecture (T5 encoder + mean pooling) exports with dynamic lengths too."""
    from tase_search.testing import build_tiny_t5

    out = build_tiny_t5(tmp_path / "t5", max_seq_length=32)
    onnx_enc = Encoder.load(str(out), precision="fp32", query_backend="onnx")
    want = Encoder.load(str(out), precision="fp32", query_backend="torch").encode_query(QUERIES)
    got = np.vstack([onnx_enc.encode_query(q) for q in QUERIES])
    assert (got * want).sum(1).min() > 0.9999
    assert (onnx_enc.encode_query(QUERIES) * want).sum(1).min() > 0.9999


def test_concurrent_first_queries_prepare_once(tiny_model_dir, cache, monkeypatch) -> None:
    opened: list[int] = []
    real = onnx_query.open_or_export

    def counting(*a, **k):  # noqa: ANN002, ANN003, ANN202
        opened.append(1)
        return real(*a, **k)

    monkeypatch.setattr(onnx_query, "open_or_export", counting)
    enc = Encoder.load(str(tiny_model_dir), precision="fp32")
    out: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda i=i: out.__setitem__(i, enc.encode_query(QUERIES[i]))) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert opened == [1]
    assert len(out) == 4


def test_unknown_query_backend_is_refused(tiny_model_dir, monkeypatch) -> None:
    from tase_search.config import load_settings

    with pytest.raises(InputError, match="query backend 'fast' is not one of auto, torch, onnx"):
        Encoder.load(str(tiny_model_dir), query_backend="fast")
    monkeypatch.setenv("TASE_SEARCH_QUERY_BACKEND", "onnx")
    assert load_settings().query_backend == "onnx"
    assert load_settings(query_backend="torch").query_backend == "torch"  # flag beats env
    monkeypatch.setenv("TASE_SEARCH_QUERY_BACKEND", "gpu")
    with pytest.raises(InputError, match="query backend 'gpu'"):
        load_settings()


def test_retriever_warm_up_and_search_agree_across_backends(tiny_model_dir, tmp_path, cache) -> None:
    from tase_search.retriever import Retriever

    docs = ["futbol maçı istanbul'da", "yarın yağmur var", "kedi ve köpek", "müzik ve şarkı"]
    Retriever.build(docs, model=str(tiny_model_dir), path=tmp_path / "idx", precision="fp32")
    fast = Retriever.load(tmp_path / "idx", precision="fp32").warm_up()
    assert fast.encoder.onnx_query_encoder() is not None and len(_graphs(cache)) == 1
    slow = Retriever.load(tmp_path / "idx", precision="fp32", query_backend="torch")
    for q in QUERIES:
        a, b = fast.search(q, k=4), slow.search(q, k=4)
        assert [h.id for h in a] == [h.id for h in b]
        assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-4)


def _index_with_cli(tiny_model_dir: Path, tmp_path: Path, env: dict[str, str] | None = None) -> list[str]:
    from tase_search.cli import main

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

    out = subprocess.run([sys.executable, "-c", _QUERY_CHILD, "query", *args, "--json", "-k", "2"],
                         input=stdin, capture_output=True, text=True, encoding="utf-8", timeout=300)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()], json.loads(out.stderr.strip().splitlines()[-1])


def test_cli_index_leaves_a_bundle_and_queries_skip_torch(tiny_model_dir, tmp_path, cache) -> None:
    """`index` prepares the query path once per model; later one-off and stdin queries load neither
    torch nor transformers, and answer exactly as the PyTorch path does."""
    from tase_search.onnx_query import LightQueryEncoder, bundle_path

    where = _index_with_cli(tiny_model_dir, tmp_path)
    assert len(_graphs(cache)) == 1
    fingerprint = Encoder.load(str(tiny_model_dir), precision="fp32").fingerprint
    assert bundle_path(fingerprint).is_file()
    assert LightQueryEncoder.for_fingerprint(fingerprint) is not None
    fast, mods = _query_child(["yağmur", *where])
    assert mods == {"torch": False, "transformers": False}
    slow, mods = _query_child(["yağmur", *where, "--query-backend", "torch", "--precision", "fp32"])
    assert mods["torch"] is True
    assert [h["id"] for h in fast] == [h["id"] for h in slow]
    assert np.allclose([h["score"] for h in fast], [h["score"] for h in slow], atol=1e-4)
    lines, mods = _query_child(["-", *where], stdin="futbol\nkedi\n")
    assert [h["query"] for h in lines] == ["futbol", "futbol", "kedi", "kedi"] and mods["torch"] is False


def test_bundle_that_fails_its_probes_is_not_used(tiny_model_dir, tmp_path, cache) -> None:
    from tase_search.onnx_query import LightQueryEncoder, bundle_path

    where = _index_with_cli(tiny_model_dir, tmp_path)
    fingerprint = Encoder.load(str(tiny_model_dir), precision="fp32").fingerprint
    path = bundle_path(fingerprint)
    bundle = json.loads(path.read_text(encoding="utf-8"))
    bundle["probe_vectors"] = [[-x for x in row] for row in bundle["probe_vectors"]]
    path.write_text(json.dumps(bundle), encoding="utf-8")
    assert LightQueryEncoder.for_fingerprint(fingerprint) is None
    assert not path.exists()  # removed, so the next `index` writes a good one
    path.write_text(json.dumps(bundle), encoding="utf-8")
    hits, mods = _query_child(["yağmur", *where])
    assert mods["torch"] is True and hits  # fell back to the full encoder, still answers
    _index_with_cli(tiny_model_dir, tmp_path)  # appends nothing new, but re-prepares the bundle
    assert LightQueryEncoder.for_fingerprint(fingerprint) is not None
    path.write_text("{not json", encoding="utf-8")
    assert LightQueryEncoder.for_fingerprint(fingerprint) is None and not path.exists()
    assert LightQueryEncoder.for_fingerprint("0" * 32) is None  # no bundle for other weights


def test_light_encoder_is_query_only(tiny_model_dir, tmp_path, cache) -> None:
    from tase_search.onnx_query import LightQueryEncoder

    _index_with_cli(tiny_model_dir, tmp_path)
    full = Encoder.load(str(tiny_model_dir), precision="fp32", query_backend="torch")
    light = LightQueryEncoder.for_fingerprint(full.fingerprint)
    assert (light.encode_query(QUERIES) * full.encode_query(QUERIES)).sum(1).min() > 0.9999
    assert (light.dimension, light.max_seq_length) == (full.dimension, full.max_seq_length)
    with pytest.raises(ModelError, match="query-only"):
        light.encode_document(["futbol"])


def test_query_backend_torch_in_the_environment_prepares_nothing(tiny_model_dir, tmp_path, cache) -> None:
    where = _index_with_cli(tiny_model_dir, tmp_path, env={"TASE_SEARCH_QUERY_BACKEND": "torch"})
    assert _graphs(cache) == []
    from tase_search.cli import main

    r = CliRunner().invoke(main, ["query", "futbol", *where, "--query-backend", "bogus"])
    assert r.exit_code == 2 and "bogus" in r.output


def test_shipped_model_golden_vectors_through_onnx(cache) -> None:
    golden = json.loads((Path(__file__).parent / "golden" / "default-model.json").read_text(encoding="utf-8"))
    enc = Encoder.load("default", query_backend="onnx")  # auto precision: bf16 weights where supported
    got = np.vstack([enc.encode_query(s) for s in golden["sentences"]])
    want = np.asarray(golden["query_vectors"], dtype=np.float32)  # queries carry the query prompt
    assert (got * want).sum(1).min() > 0.999
