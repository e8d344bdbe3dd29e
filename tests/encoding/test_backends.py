"""Document backends (tase_search.encoding.backends): same vectors as the torch path, artefacts built once.

Run against the tiny BERT model; CTranslate2 and OpenVINO tests skip when the library is missing.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tase_search.encoding import backends
from tase_search.encoding.backends import artefacts
from tase_search.errors import InputError, ModelError

TEXTS = ["kısa", "İstanbul'da yarın yağmur yağacak mı?", "", "bir iki üç dört beş altı yedi sekiz dokuz on"]
needs_ct2 = pytest.mark.skipif(backends.ct2.missing() is not None, reason="ctranslate2 not installed")
needs_ov = pytest.mark.skipif(backends.openvino.missing() is not None, reason="openvino not installed")


@pytest.fixture
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model, so artefacts written beside it stay in this test."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def _encoder(path: Path):  # noqa: ANN202 - Encoder
    from tase_search.encoding.encoder import Encoder

    return Encoder.load(str(path), precision="fp32")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def _torch_runner(enc):  # noqa: ANN001, ANN202 - the encoder's own model as a runner
    import torch

    def run(features: dict[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            feats = {k: torch.from_numpy(v) for k, v in features.items()}
            return enc.model(feats)["sentence_embedding"].float().numpy()

    return run


def test_wrapper_prepares_texts_exactly_as_the_encoder(model_copy: Path) -> None:
    enc = _encoder(model_copy)
    enc._prompts = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
    wrapped = backends.BackendEncoder(enc, _torch_runner(enc), "test")
    got = wrapped.encode_document(TEXTS, batch_size=3)
    ref = enc.encode_document(TEXTS, batch_size=3)
    assert got.dtype == np.float32 and got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-5)
    assert wrapped.encode_document([]).shape == (0, enc.dimension)
    assert wrapped.fingerprint == enc.fingerprint and wrapped.inner is enc
    np.testing.assert_array_equal(wrapped.encode_query(["kısa"]), enc.encode_query(["kısa"]))


def test_a_runner_batch_size_caps_the_default_but_not_an_explicit_one(model_copy: Path) -> None:
    enc = _encoder(model_copy)
    seen: list[int] = []
    inner = _torch_runner(enc)

    def runner(features: dict[str, np.ndarray]) -> np.ndarray:
        seen.append(len(features["input_ids"]))
        return inner(features)

    runner.batch_size = 2  # type: ignore[attr-defined]
    wrapped = backends.BackendEncoder(enc, runner, "test")
    wrapped.encode_document(TEXTS)
    assert seen == [2, 2]
    seen.clear()
    wrapped.encode_document(TEXTS, batch_size=3)
    assert seen == [3, 1]
    seen.clear()
    runner.max_batch_tokens = 1  # type: ignore[attr-defined] # one row a call, padding trimmed
    np.testing.assert_allclose(
        wrapped.encode_document(TEXTS, batch_size=4), enc.encode_document(TEXTS), atol=1e-5
    )
    assert seen == [1, 1, 1, 1]


def test_a_runner_that_runs_batches_side_by_side_gets_them_at_once(model_copy: Path) -> None:
    """``parallel_batches``: batches run on that many threads at once (never more), every row lands
    where it belongs, progress counts every row, and the vectors equal the one-at-a-time path's."""
    import threading
    import time

    enc = _encoder(model_copy)
    inner = _torch_runner(enc)
    lock = threading.Lock()
    running = [0]
    peak = [0]
    threads: set[int] = set()

    def runner(features: dict[str, np.ndarray]) -> np.ndarray:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            threads.add(threading.get_ident())
        time.sleep(0.1)  # long enough for the next batch to be handed over meanwhile
        try:
            return inner(features)
        finally:
            with lock:
                running[0] -= 1

    runner.parallel_batches = 2  # type: ignore[attr-defined]
    texts = [f"{t} {i}" for i in range(5) for t in TEXTS]
    done: list[int] = []
    got = backends.BackendEncoder(enc, runner, "test").encode_document(
        texts, batch_size=3, progress=done.append
    )
    np.testing.assert_allclose(got, enc.encode_document(texts, batch_size=3), atol=1e-5)
    assert sum(done) == len(texts) and peak[0] == 2 and len(threads) == 2
    runner.parallel_batches = 1  # type: ignore[attr-defined]
    peak[0] = 0
    np.testing.assert_allclose(
        backends.BackendEncoder(enc, runner, "test").encode_document(texts, batch_size=3), got, atol=1e-6
    )
    assert peak[0] == 1


@needs_ct2
def test_ct2_runs_one_batch_per_thread(model_copy: Path) -> None:
    enc = backends.with_backend(_encoder(model_copy), "ct2-int8", build=True, threads=2)
    assert enc.runner.parallel_batches == 2
    one = backends.with_backend(_encoder(model_copy), "ct2-int8", build=True, threads=1)
    texts = [f"{t} {i}" for i in range(8) for t in TEXTS]
    np.testing.assert_allclose(
        enc.encode_document(texts, batch_size=4), one.encode_document(texts, batch_size=4), atol=1e-6
    )


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(InputError, match="pick one of"):
        backends.check_name("cuda")


def test_torch_and_bf16_resolve_to_the_encoder_itself(
    model_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    enc = _encoder(model_copy)
    assert backends.with_backend(enc, "torch") is enc

    class Bf16:
        precision = "bf16"
        model = enc.model

    monkeypatch.setenv("TASE_SEARCH_CPU_FLAGS", "fpu sse2")  # no AVX2: no int8 backend, the encoder itself
    assert backends.choose("auto", Bf16()) == "torch"


@needs_ct2
def test_ct2_int8_is_built_once_beside_the_model_and_agrees_with_torch(model_copy: Path) -> None:
    enc = _encoder(model_copy)
    assert backends.choose("auto", enc) == "ct2-int8"
    # auto on a read path without an artefact: the torch path, nothing written
    assert backends.with_backend(enc, "auto") is enc
    assert not (model_copy / "backends").exists()
    with pytest.raises(ModelError, match="model export --backend ct2-int8"):
        backends.with_backend(enc, "ct2-int8")

    fast = backends.with_backend(enc, "auto", build=True)
    assert fast.backend == "ct2-int8"
    (built,) = (model_copy / "backends").iterdir()
    meta = json.loads((built / artefacts.MARKER).read_text())
    assert meta["fingerprint"] == enc.fingerprint and meta["backend"] == "ct2-int8"
    got, ref = fast.encode_document(TEXTS, batch_size=2), enc.encode_document(TEXTS)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert _cosines(got, ref).min() > 0.98
    stamp = built.stat().st_mtime_ns
    again = backends.with_backend(enc, "ct2-int8")  # found, not rebuilt
    assert again.backend == "ct2-int8" and built.stat().st_mtime_ns == stamp


@needs_ct2
def test_an_artefact_of_other_weights_is_not_used(model_copy: Path, other_tiny_model_dir: Path) -> None:
    enc = _encoder(model_copy)
    backends.export(enc, "ct2-int8")
    other = _encoder(other_tiny_model_dir)
    assert other.fingerprint != enc.fingerprint
    assert artefacts.find("ct2-int8", other.fingerprint, model_copy) is None


@needs_ct2
def test_a_broken_artefact_is_refused_explicitly_and_skipped_under_auto(model_copy: Path) -> None:
    enc = _encoder(model_copy)
    path = backends.export(enc, "ct2-int8")
    (path / "model.bin").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="ct2-int8"):
        backends.with_backend(enc, "ct2-int8")
    assert backends.with_backend(enc, "auto") is enc


@needs_ct2
def test_a_read_only_model_dir_puts_the_artefact_in_the_cache(
    model_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    enc = _encoder(model_copy)
    real_access = os.access
    beside = model_copy / "backends"
    monkeypatch.setattr(artefacts.os, "access", lambda p, mode: Path(p) != beside and real_access(p, mode))
    path = backends.export(enc, "ct2-int8")
    assert beside not in path.parents
    assert path.parent == artefacts.roots(None)[0]
    assert backends.with_backend(enc, "ct2-int8").backend == "ct2-int8"


@needs_ov
def test_openvino_matches_torch(model_copy: Path) -> None:
    enc = _encoder(model_copy)
    fast = backends.with_backend(enc, "openvino", build=True)
    assert _cosines(fast.encode_document(TEXTS), enc.encode_document(TEXTS)).min() > 0.9999


@needs_ct2
def test_cli_index_chooses_the_backend_once_and_export_prepares_it(
    model_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    monkeypatch.setenv("TASE_SEARCH_CPU_FLAGS", "avx2 fma")  # an AVX2-only CPU: auto picks ct2-int8

    from tase_search.cli.app import main

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(t for t in TEXTS if t) + "\n", encoding="utf-8")
    cli = CliRunner()
    torch_run = cli.invoke(main, ["index", str(corpus), "--index", str(tmp_path / "a"), "-m", str(model_copy),
                                  "--backend", "torch", "--json"])  # fmt: skip
    assert torch_run.exit_code == 0, torch_run.output
    assert json.loads(torch_run.output.splitlines()[-1])["document_backend"] == "torch"
    assert not (model_copy / "backends").exists()

    exported = cli.invoke(main, ["model", "export", "-m", str(model_copy), "--json"])
    assert exported.exit_code == 0, exported.output
    path = Path(json.loads(exported.output.splitlines()[-1])["path"])
    assert path.parent == model_copy / "backends" and (path / artefacts.MARKER).is_file()

    fast_run = cli.invoke(main, ["index", str(corpus), "--index", str(tmp_path / "b"), "-m", str(model_copy),
                                 "--json"])  # fmt: skip
    assert fast_run.exit_code == 0, fast_run.output
    assert json.loads(fast_run.output.splitlines()[-1])["document_backend"] == "ct2-int8"
    assert list((model_copy / "backends").iterdir()) == [path]  # reused, not built again


def test_every_entry_point_gets_the_backend_choice(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """Encoder.load chooses the document backend (``auto``) for the Python API, HTTP and integrations
    too, not only the CLI; only write paths that ask (``build_backend``) convert weights."""
    import tase_search.encoding.backends as backends
    from tase_search.encoding.encoder import Encoder
    from tase_search.retriever import Retriever

    seen: list[tuple[str, bool]] = []
    real = backends.with_backend

    def spy(encoder, backend="auto", *, build=False, threads=None):  # noqa: ANN001, ANN202
        seen.append((backend, build))
        return real(encoder, backend, build=build, threads=threads)

    monkeypatch.setattr(backends, "with_backend", spy)
    Retriever.build(["bir", "iki"], model=str(tiny_model_dir), path=tmp_path / "ix", precision="fp32")
    assert seen == [("auto", False)]
    Encoder.load(str(tiny_model_dir), backend="torch")
    assert seen == [("auto", False)]  # torch: nothing to wrap
