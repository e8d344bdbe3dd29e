"""Indexing on Ray (tase_search.distributed): shards read like the readers, staged shards resume, and the
committed index equals a local build of the same corpus.

Most tests run the engine's own row functions in this process in place of the Ray pipeline
(:func:`encode_inline`), so they need no Ray; the ``slow`` ones run a real Ray instance and a real
``ray start --head`` cluster on loopback.
"""

from __future__ import annotations

import functools
import gzip
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import tase_search.distributed as dist
from tase_search.cli.app import main
from tase_search.distributed.ray_engine import Collector, EncodeActor, EncoderSpec, ReadRows, import_ray
from tase_search.distributed.shards import ReadOptions, Shard, plan_shards, read_shard
from tase_search.distributed.staging import StagedShard, Staging, staging_dir
from tase_search.documents.readers import ReadStats, read_corpus
from tase_search.errors import IndexWriteError, InputError
from tase_search.retriever import Retriever
from tase_search.store.manifest import read_manifest

QUERIES = ["bugün hava güzel", "maç kazandı", "ekonomi büyüdü", "okul kitap", "istanbul deniz", "yeni yıl"]
WORDS = (
    "bugün hava güzel maç kazandı ekonomi büyüdü okul kitap istanbul deniz yeni yıl ankara yağmur "
    "futbol takım banka faiz enflasyon deprem ölçüm bilim tarih müze sanat film müzik"
).split()


def corpus_lines(n: int, seed: int = 0) -> list[str]:
    """``n`` short Turkish-looking lines, with some blank lines and repeated documents."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        if i % 17 == 5:
            lines.append("")  # skipped as empty
        elif i % 23 == 7 and lines:
            lines.append(lines[-2] if len(lines) > 1 else lines[-1])  # a repeat: unchanged, no new id
        else:
            lines.append(" ".join(rng.choice(WORDS, size=int(rng.integers(3, 40)))) + f" {i}")
    return lines


@pytest.fixture
def corpus(tmp_path: Path) -> list[str]:
    txt = tmp_path / "a.txt"
    txt.write_text("\n".join(corpus_lines(240)) + "\n", encoding="utf-8")
    jsonl = tmp_path / "b.jsonl"
    rows = [
        {"id": f"b{i}", "text": line, "n": i % 3} for i, line in enumerate(corpus_lines(120, seed=1)) if line
    ]
    jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return [str(txt), str(jsonl)]


def encode_inline(
    shards: Sequence[Shard],
    keys: dict[int, str],
    options: ReadOptions,
    spec: EncoderSpec,
    ray_options: Any,
    staging: Staging,
    report: Callable[[int], None] = lambda _n: None,
    *,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """The Ray pipeline's steps in this process: read rows, embed them in batches that arrive out of
    order (last shard first), collect and stage. ``stop_after``: a kill after that many shards."""
    actor = EncodeActor(spec)
    collector = Collector(keys, staging, report)
    read = ReadRows(options)
    batches = []
    for shard in shards:
        rows = read({"shard": json.dumps(asdict(shard))})
        batches += [rows[i : i + 7] for i in range(0, len(rows), 7)]
    for rows in reversed(batches):
        batch = {k: np.asarray([r[k] for r in rows]) for k in rows[0]}
        collector.add(actor(batch))
        if stop_after is not None and collector.staged >= stop_after:
            raise KeyboardInterrupt
    return collector.work.summary()


@pytest.fixture
def inline(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Run the engine in this process; the list collects how many shards each run encoded."""
    encoded: list[int] = []

    def run(shards: Sequence[Shard], *args: Any, **kw: Any) -> dict[str, Any]:
        encoded.append(len(shards))
        return encode_inline(shards, *args, **kw)

    monkeypatch.setattr(dist, "encode_shards", run)
    return encoded


def local_build(tiny_encoder: Any, corpus: Sequence[str], path: Path, **kw: Any) -> Retriever:
    docs = itertools.chain.from_iterable(read_corpus(c) for c in corpus)
    return Retriever.build(docs, model=tiny_encoder, path=path, **kw)


@functools.cache
def _model_queries(model_id: str) -> Any:
    """The encoder on the model's own query path: a distributed build writes no torch-free query bundle
    (its driver loads no model), a local build does, and the bundle's int8 graph would make the two
    indexes' scores differ by ~1e-3 where the indexes themselves are equal."""
    from tase_search.encoding.encoder import Encoder

    return Encoder.load(model_id, precision="fp32", query_backend="torch")


def same_index(a: Retriever, b: Retriever, encoder: Any, mode: str = "dense") -> None:
    """The same documents (ids, texts, metadata, sources, lines) and the same top-10 hits."""
    ia, ib = a.info(), b.info()
    assert (ia["documents"], ia["passages"], ia["factory"]) == (
        ib["documents"],
        ib["passages"],
        ib["factory"],
    )
    assert a.manifest.model == b.manifest.model
    ids = [str(i) for i in range(1, ia["documents"] + 5)] + [f"b{i}" for i in range(130)]
    assert a.get(ids) == b.get(ids)
    encoder = _model_queries(encoder.model_id)
    ra, rb = Retriever.load(a.path, model=encoder), Retriever.load(b.path, model=encoder)
    for qa, qb in zip(ra.search(QUERIES, k=10, mode=mode), rb.search(QUERIES, k=10, mode=mode)):
        assert [h.id for h in qa] == [h.id for h in qb]
        assert [h.passage.index for h in qa] == [h.passage.index for h in qb]
        assert np.allclose([h.score for h in qa], [h.score for h in qb], atol=1e-5)


# --------------------------------------------------------------------------- shards
@pytest.mark.parametrize("target", [1, 64, 500, 1 << 30])
def test_shards_read_exactly_what_the_reader_reads(tmp_path: Path, target: int) -> None:
    lines = corpus_lines(150)
    files = {
        "a.txt": "\ufeff" + "\n".join(lines) + "\n",
        "b.jsonl": "".join(
            json.dumps({"text": t, "id": str(i), "k": i}) + "\n" for i, t in enumerate(lines) if t
        ),
        "c.tsv": "id\ttext\tk\n" + "".join(f"{i}\t{t}\t{i % 4}\n" for i, t in enumerate(lines)),
        "d.csv": 'id,text\n1,"two\nlines"\n2,plain\n',
        "e.txt": "no newline at the end",
    }
    paths = []
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        paths.append(str(tmp_path / name))
    with gzip.open(tmp_path / "f.txt.gz", "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    paths.append(str(tmp_path / "f.txt.gz"))
    shards, _ = plan_shards(paths, ReadOptions(), target)
    assert [s.number for s in shards] == list(range(len(shards)))
    got_stats, want_stats = ReadStats(), ReadStats()
    got = [d for s in shards for d in read_shard(s, ReadOptions(), got_stats)]
    want = [d for p in paths for d in read_corpus(p, stats=want_stats)]
    assert got == want
    assert got_stats.skipped_empty == want_stats.skipped_empty
    split = {Path(s.source).name for s in shards if s.start > 0}
    assert ("a.txt" in split) == (target < 1000)  # gzip and csv stay whole
    assert not split & {"d.csv", "f.txt.gz"}


def test_stdin_and_bad_input_are_refused_on_the_driver(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="stdin"):
        plan_shards(["-"], ReadOptions())
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"body": "no text field"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="no 'text' field"):
        plan_shards([str(bad)], ReadOptions())


def test_a_changed_file_gets_new_shard_keys(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("bir\niki\n", encoding="utf-8")
    before = [s.key(ReadOptions(), ["m"]) for s in plan_shards([str(f)], ReadOptions())[0]]
    f.write_text("bir\niki\nüç\n", encoding="utf-8")
    after = [s.key(ReadOptions(), ["m"]) for s in plan_shards([str(f)], ReadOptions())[0]]
    assert before != after
    assert before[0] != plan_shards([str(f)], ReadOptions())[0][0].key(ReadOptions(), ["other model"])


# --------------------------------------------------------------------------- staging
def test_staged_shard_round_trip_and_damage(tmp_path: Path) -> None:
    shard = StagedShard(
        docs=[("x", "bir iki", {"k": 1}, "a.txt", 1), (None, "üç", {}, "a.txt", 3)],
        passages=[[(0, 3, 0, 2), (4, 7, 1, 2)], [(0, 2, 0, 1)]],
        vectors=np.arange(6, dtype=np.float32).reshape(3, 2),
        model={"id": "m", "fingerprint": "f", "dimension": 2, "max_seq_length": 8},
        skipped_empty=4,
    )
    staging = Staging(staging_dir(tmp_path / "idx", "job"))
    staging.write("k1", shard)
    back = staging.read("k1")
    assert back is not None and back.docs == shard.docs and back.passages == shard.passages
    assert np.array_equal(back.vectors, shard.vectors) and back.skipped_empty == 4
    assert staging.record("k1")["documents"] == 2
    staging.path("k1").write_bytes(staging.path("k1").read_bytes()[:100])
    assert staging.read("k1") is None
    from tase_search.distributed.merge import load_staged

    with pytest.raises(IndexWriteError, match="run the same command again"):
        load_staged(staging, "k1")
    assert not staging.path("k1").exists()
    staging.remove()
    assert not (tmp_path / ".idx.shards").exists()


# --------------------------------------------------------------------------- the engine, inline
def test_build_equals_a_local_build(
    tmp_path: Path, corpus: list[str], tiny_model_dir: Path, tiny_encoder: Any, inline: list[int]
) -> None:
    local = local_build(tiny_encoder, corpus, tmp_path / "local")
    run = dist.index_corpus(
        corpus, tmp_path / "ray", str(tiny_model_dir), precision="fp32", shard_bytes=800, workers=1
    )
    assert run.action == "built" and run.shards == inline[0] > 4 and run.resumed == 0
    (worker,) = run.work["workers"].values()  # one actor, busy for every document
    assert worker["documents"] == run.stats.read and 0 < worker["busy_s"] <= run.work["window_s"]
    assert run.added.added == local.last_add.added and run.added.unchanged == local.last_add.unchanged > 0
    assert run.stats.skipped_empty > 0
    same_index(local, run.retriever, tiny_encoder)
    same_index(local, run.retriever, tiny_encoder, mode="sparse")
    assert not (tmp_path / ".ray.shards").exists()  # staging removed after the commit


def test_a_killed_append_leaves_the_index_and_a_rerun_resumes(
    tmp_path: Path,
    corpus: list[str],
    tiny_model_dir: Path,
    tiny_encoder: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = local_build(tiny_encoder, corpus[:1], tmp_path / "local")
    local.add(read_corpus(corpus[1]))
    base = local_build(tiny_encoder, corpus[:1], tmp_path / "ray")
    before = read_manifest(tmp_path / "ray")
    calls: list[int] = []

    def killed(shards: Sequence[Shard], *args: Any, **kw: Any) -> dict[str, Any]:
        calls.append(len(shards))
        return encode_inline(shards, *args, **kw, stop_after=2 if len(calls) == 1 else None)

    monkeypatch.setattr(dist, "encode_shards", killed)
    kw: dict[str, Any] = {"precision": "fp32", "shard_bytes": 600}
    with pytest.raises(KeyboardInterrupt):
        dist.index_corpus(corpus[1:], base.path, **kw)
    assert read_manifest(tmp_path / "ray") == before  # the previous index, as it was
    run = dist.index_corpus(corpus[1:], base.path, **kw)
    assert run.action == "appended to" and run.resumed == 2 and calls == [run.shards, run.shards - 2]
    same_index(local, run.retriever, tiny_encoder)


def test_ivf_recall_against_flat(
    tmp_path: Path,
    corpus: list[str],
    tiny_model_dir: Path,
    tiny_encoder: Any,
    inline: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tase_search.distributed import ivf

    merges: list[int] = []
    merged = ivf.ParallelIVFAdds.merged
    monkeypatch.setattr(
        ivf.ParallelIVFAdds, "merged", lambda self: merges.append(len(self._copies)) or merged(self)
    )
    flat = local_build(tiny_encoder, corpus, tmp_path / "flat")
    run = dist.index_corpus(
        corpus, tmp_path / "ivf", str(tiny_model_dir), precision="fp32", shard_bytes=800, factory="IVF16,Flat"
    )
    assert run.retriever.info()["factory"] == "IVF16,Flat" and merges  # filled in parallel, then merged
    assert recall_at_10(flat, run.retriever, tiny_encoder) >= 0.99


def recall_at_10(flat: Retriever, other: Retriever, encoder: Any) -> float:
    queries = [d["text"][:40] for d in flat.get([str(i) for i in range(1, 200, 4)])] + QUERIES
    encoder = _model_queries(encoder.model_id)
    want = Retriever.load(flat.path, model=encoder).search(queries, k=10, mode="dense")
    got = Retriever.load(other.path, model=encoder).search(queries, k=10, mode="dense")
    hits = sum(len({h.id for h in w} & {h.id for h in g}) for w, g in zip(want, got))
    return hits / sum(len(w) for w in want)


def test_parallel_ivf_adds_make_the_serial_index() -> None:
    from tase_search.distributed.ivf import ParallelIVFAdds
    from tase_search.store.vectors import FaissIndex

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = rng.permutation(10_000)[:3000].astype(np.int64)
    serial, parallel = FaissIndex.create("IVF16,Flat", 16), FaissIndex.create("IVF16,Flat", 16)
    serial.train(x)
    parallel.train(x)
    serial.add(x[:100], ids[:100])  # rows already there stay first
    parallel.add(x[:100], ids[:100])
    adds = ParallelIVFAdds(parallel, 3)
    for lo in range(100, 3000, 250):
        serial.add(x[lo : lo + 250], ids[lo : lo + 250])
        adds.add(x[lo : lo + 250], ids[lo : lo + 250])
    assert adds.ntotal == 3000
    merged = adds.merged()
    assert merged.ntotal == serial.ntotal == 3000
    s_scores, s_ids = serial.search(x[:50], 10)
    p_scores, p_ids = merged.search(x[:50], 10)
    assert np.array_equal(s_ids, p_ids) and np.allclose(s_scores, p_scores)
    (si, sv), (pi, pv) = serial.reconstruct_all(), merged.reconstruct_all()
    assert np.array_equal(si, pi) and np.array_equal(sv, pv)
    assert merged.remove(ids[:5]) == serial.remove(ids[:5]) and merged.ntotal == serial.ntotal


def test_cli_engine_ray(tmp_path: Path, corpus: list[str], tiny_model_dir: Path, inline: list[int]) -> None:
    runner = CliRunner()
    args = ["index", *corpus, "--index", str(tmp_path / "idx"), "--model", str(tiny_model_dir), "--quiet"]
    out = runner.invoke(main, [*args, "--engine", "ray", "--workers", "1", "--precision", "fp32", "--json"])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output.strip().splitlines()[-1])
    assert summary["action"] == "built" and summary["documents"] == summary["added"] > 300
    bad = runner.invoke(main, [*args, "--address", "auto"])
    assert bad.exit_code != 0 and "--address applies to --engine ray" in bad.output


def test_the_engine_and_its_command_build_or_append_through_the_one_function(
    tmp_path: Path,
    corpus: list[str],
    tiny_model_dir: Path,
    inline: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tase_search import writes

    calls: list[tuple[bool | None, str]] = []
    real = writes.build_or_append

    def recording(path: Any, **kw: Any) -> Any:
        done = real(path, **kw)
        calls.append((kw.get("appending"), done.action))
        return done

    monkeypatch.setattr(writes, "build_or_append", recording)
    run = dist.index_corpus(corpus[:1], tmp_path / "api", str(tiny_model_dir), precision="fp32", workers=1)
    again = dist.index_corpus(corpus, tmp_path / "api", precision="fp32", workers=1)
    assert (run.action, again.action) == ("built", "appended to")
    args = ["index", corpus[0], "--index", str(tmp_path / "cli"), "--model", str(tiny_model_dir), "--quiet"]
    out = CliRunner().invoke(main, [*args, "--engine", "ray", "--workers", "1", "--precision", "fp32"])
    assert out.exit_code == 0, out.output
    assert calls == [(False, "built"), (True, "appended to"), (False, "built")]


def test_without_ray_the_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InputError, match=r"pip install 'tase-search\[ray\]'"):
        import_ray()


# --------------------------------------------------------------------------- real Ray
@pytest.mark.slow
def test_ray_instance_flat_and_ivf(
    tmp_path: Path, corpus: list[str], tiny_model_dir: Path, tiny_encoder: Any
):
    ray = pytest.importorskip("ray")
    local = local_build(tiny_encoder, corpus, tmp_path / "local")
    ray.init(num_cpus=3, object_store_memory=200 << 20, include_dashboard=False, log_to_driver=False)
    try:
        kw: dict[str, Any] = {"precision": "fp32", "shard_bytes": 2000, "workers": 2}
        run = dist.index_corpus(corpus, tmp_path / "flat", str(tiny_model_dir), **kw)
        same_index(local, run.retriever, tiny_encoder)
        ivf = dist.index_corpus(corpus, tmp_path / "ivf", str(tiny_model_dir), factory="IVF16,Flat", **kw)
        assert recall_at_10(local, ivf.retriever, tiny_encoder) >= 0.99
    finally:
        ray.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_ray_cluster_on_loopback(tmp_path: Path, corpus: list[str], tiny_model_dir: Path, tiny_encoder: Any):
    pytest.importorskip("ray")
    ray_bin = shutil.which("ray", path=os.path.dirname(sys.executable))
    assert ray_bin is not None
    port = _free_port()
    # a throwaway cluster on loopback, started and stopped here: no token to hand around
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
         "--num-cpus=3", "--object-store-memory=200000000", "--include-dashboard=false", f"--temp-dir={temp}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    assert head.stdout is not None
    for line in head.stdout:  # up once it says so; a head that fails ends its output instead
        if "Ray runtime started" in line:
            break
    else:
        pytest.fail(f"ray start --head exited with {head.wait()}")
    threading.Thread(target=head.stdout.read, daemon=True).start()  # drained, so it never blocks on a write
    try:
        index = tmp_path / "cluster"
        cmd = [os.path.join(os.path.dirname(sys.executable), "tase-search"), "index", *corpus, "--index", str(index),
               "--model", str(tiny_model_dir), "--precision", "fp32", "--engine", "ray",
               "--address", f"127.0.0.1:{port}", "--workers", "2", "--json", "--quiet"]  # fmt: skip
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        local = local_build(tiny_encoder, corpus, tmp_path / "local")
        same_index(local, Retriever.load(index), tiny_encoder)
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # ray start --block stops the cluster's processes on SIGTERM
        try:
            head.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.bench
def test_bench_distributed_quick(tiny_model_dir: Path, corpus: list[str], tmp_path: Path) -> None:
    pytest.importorskip("ray")
    import importlib.util

    bench = Path(__file__).resolve().parents[2] / "bench"
    sys.path.insert(0, str(bench))
    spec = importlib.util.spec_from_file_location("bench_distributed", bench / "distributed.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    argv = [corpus[0], "--quick", "--model", str(tiny_model_dir), "--workers", "1", "--shard-bytes", "300"]
    result = mod.run([*argv, "--out", str(tmp_path / "r.json")])
    (one,) = result["runs"]
    assert one["workers"] == 1 and one["documents"] > 0 and one["shards"] > 1
    assert one["docs_per_s_pipeline"] > 0 and len(one["worker_peak_rss_mb"]) >= 1
    assert result["local_1_thread"]["documents"] == one["documents"]
