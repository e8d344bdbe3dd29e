"""Segmented indexes (tase_search/store/segment.py and friends) against a fresh single-segment index.

Random sequences of adds, deletes, replaces and merges; afterwards every search (dense, filtered,
keyword) must equal that of an index built in one write from the same live documents: same documents
in the same order, same scores (BM25 over segments uses the whole index's statistics).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tase_search import Retriever
from tase_search.documents.document import Document
from tase_search.store import merge as _merge
from tase_search.store.lock import FAULT_ENV, FAULT_POINTS
from tase_search.store.verify import verify_index
from tase_search.testing import FakeEncoder

WORDS = "kedi köpek ev araba deniz güneş kitap okul elma armut yol dağ su ağaç kuş balık".split()


def _doc(rng: random.Random, i: int) -> Document:
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
    meta = {"n": rng.randint(0, 9), "tag": rng.choice(["a", "b", "c"])}
    return Document(id=f"d{i}", text=text, metadata=meta, source="t", line=i)


def _segments(path: Path) -> list[dict]:
    return json.loads((path / "manifest.json").read_text())["segments"]


def _same(a: Retriever, b: Retriever, queries: list[str], filters: list[dict | None]) -> None:
    for q in queries:
        for flt in filters:
            for mode in ("dense", "sparse"):
                got = a.search(q, k=7, filter=flt, mode=mode)
                want = b.search(q, k=7, filter=flt, mode=mode)
                assert [h.score for h in got] == pytest.approx([h.score for h in want], rel=1e-5, abs=1e-6), (
                    q,
                    flt,
                    mode,
                )
                # equal scores may come in either order, and a tie at the cut may keep either document:
                # the documents above the last score must be the same
                last = round(want[-1].score, 5) if want else 0
                assert sorted((round(h.score, 5), h.id) for h in got if round(h.score, 5) > last) == sorted(
                    (round(h.score, 5), h.id) for h in want if round(h.score, 5) > last
                ), (q, flt, mode)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_writes_search_like_one_fresh_index(tmp_path: Path, seed: int, monkeypatch) -> None:
    monkeypatch.setattr(_merge, "MERGE_FACTOR", 3)
    rng = random.Random(seed)
    enc = FakeEncoder()
    live: dict[str, Document] = {}
    first = [_doc(rng, i) for i in range(30)]
    r = Retriever.build(first, model=enc, path=tmp_path / "seg")
    live.update((d.id, d) for d in first)
    nxt = 30
    for _step in range(14):
        op = rng.random()
        if op < 0.45:
            new = [_doc(rng, nxt + j) for j in range(rng.randint(1, 6))]
            nxt += len(new)
            r.add(new)
            live.update((d.id, d) for d in new)
        elif op < 0.75 and live:
            gone = rng.sample(sorted(live), min(len(live), rng.randint(1, 5)))
            assert sorted(r.delete(gone)) == sorted(gone)
            for g in gone:
                del live[g]
        elif op < 0.9 and live:
            old = rng.choice(sorted(live))
            d = _doc(rng, 0)
            d = Document(id=old, text=d.text, metadata=d.metadata, source="t", line=1)
            r.add([d], on_duplicate="replace")
            live[old] = d
        else:
            _merge.optimize(tmp_path / "seg")
            r.refresh()
    r.refresh()
    assert verify_index(tmp_path / "seg").ok
    fresh = Retriever.build(list(live.values()), model=enc, path=tmp_path / "one")
    assert r.manifest.documents == fresh.manifest.documents == len(live)
    queries = ["kedi", "köpek deniz", "elma armut kitap", "yok"]
    filters = [None, {"n": {"$lt": 3}}, {"tag": "b"}, {"$or": [{"n": 1}, {"tag": {"$ne": "a"}}]}]
    _same(r, fresh, queries, filters)
    got = {d["id"] for d in r.get(sorted(live) + ["nope"])}
    assert got == set(live)
    _merge.optimize(tmp_path / "seg")
    r.refresh()
    assert len(_segments(tmp_path / "seg")) == 1
    assert verify_index(tmp_path / "seg").ok
    _same(r, fresh, queries, filters)


def test_a_write_adds_a_segment_and_a_delete_a_deletions_file(tmp_path: Path) -> None:
    enc = FakeEncoder()
    rng = random.Random(0)
    r = Retriever.build([_doc(rng, i) for i in range(20)], model=enc, path=tmp_path / "ix")
    assert [s["name"] for s in _segments(r.path)] == ["seg-000001"]
    r.add([_doc(rng, 100)])
    segs = _segments(r.path)
    assert [s["documents"] for s in segs] == [20, 1]
    r.delete(["d3"])
    segs = _segments(r.path)
    assert segs[0]["deletes"]["documents"] == 1 and len(segs) == 2
    assert (r.path / segs[0]["name"] / segs[0]["deletes"]["name"]).is_file()
    assert r.get(["d3"]) == []
    with pytest.raises(Exception, match="already in the index"):
        r.add([_doc(rng, 5)])  # d5 lives in the first segment
    assert verify_index(r.path).ok


def test_merges_keep_the_segment_count_logarithmic(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(_merge, "MERGE_FACTOR", 4)
    enc = FakeEncoder()
    rng = random.Random(5)
    r = Retriever.build([_doc(rng, 0)], model=enc, path=tmp_path / "ix")
    for i in range(1, 40):
        r.add([_doc(rng, i)])
    assert len(_segments(r.path)) < 8
    assert r.manifest.documents == 40
    assert verify_index(r.path).ok


from store_helpers import MAIN  # noqa: E402 - the format-1 writer, from this repository's history


@pytest.mark.skipif(not (MAIN / "tase_search" / "store" / "commit.py").is_file(), reason="no format-1 writer")
def test_a_format_1_index_opens_and_is_upgraded_by_its_first_write(tmp_path: Path) -> None:
    """A format-1 index (one gen-NNNNNN directory), written by a checkout of the format-1 writer
    (``MAIN``), reads as one segment and is copied into a segment by its first write."""
    code = (
        "import sys, random; sys.path.insert(0, sys.argv[2]); from tase_search import Retriever; "
        "from tase_search.documents.document import Document; from tase_search.testing import FakeEncoder; "
        "docs=[Document(id=f'd{i}', text=f'kedi köpek {i} ev', metadata={'n': i % 4}, source='t', line=i) "
        "for i in range(25)]; r=Retriever.build(docs, model=FakeEncoder(), path=sys.argv[1]); r.delete(['d4'])"
    )
    ix = tmp_path / "old"
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-c", code, str(ix), str(MAIN)], check=True, env=env, timeout=120)
    m = json.loads((ix / "manifest.json").read_text())
    if m.get("format_version") != 1:
        pytest.skip("the checkout at MAIN writes another format")
    enc = FakeEncoder()
    r = Retriever.load(ix, model=enc)
    before = [(h.id, h.score) for h in r.search("kedi ev", k=5, mode="sparse")]
    assert len(before) == 5 and verify_index(ix).ok
    r.add([Document(id="new", text="kedi deniz", metadata={"n": 9}, source="t", line=1)])
    m = json.loads((ix / "manifest.json").read_text())
    assert m["format_version"] == 2 and [s["name"] for s in m["segments"]] == ["seg-000000", "seg-000001"]
    assert m["documents"] == 25
    assert verify_index(ix).ok
    r.delete(["new"])
    r.refresh()
    assert [(h.id, round(h.score, 6)) for h in r.search("kedi ev", k=5, mode="sparse")] == [
        (i, round(s, 6)) for i, s in before
    ]


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_a_kill_during_a_merge_leaves_the_old_segments_or_the_merged_one(tmp_path: Path, point: str) -> None:
    enc = FakeEncoder()
    rng = random.Random(7)
    ix = tmp_path / "ix"
    r = Retriever.build([_doc(rng, i) for i in range(10)], model=enc, path=ix)
    for i in range(10, 14):
        r.add([_doc(rng, i)])
    r.delete(["d2"])
    before = {d["id"] for d in r.get([f"d{i}" for i in range(14)])}
    code = "import sys; from tase_search.store.merge import optimize; optimize(sys.argv[1])"
    env = {**__import__("os").environ, FAULT_ENV: point}
    proc = subprocess.run([sys.executable, "-c", code, str(ix)], env=env, capture_output=True, timeout=120)
    assert proc.returncode in (0, -9), proc.stderr.decode()[-2000:]
    rep = verify_index(ix)
    assert rep.ok, rep.problems
    again = Retriever.load(ix, model=enc)
    assert {d["id"] for d in again.get([f"d{i}" for i in range(14)])} == before
    assert len(_segments(ix)) in (1, 5)
    again.add([_doc(rng, 99)])  # the next write cleans up and succeeds
    assert verify_index(ix).ok
    assert not [p for p in ix.iterdir() if p.name.startswith(".tmp-")]


def test_optimize_from_python_and_the_command_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tase_search.cli.app import main

    enc = FakeEncoder()
    rng = random.Random(5)
    r = Retriever.build([_doc(rng, i) for i in range(20)], model=enc, path=tmp_path / "ix")
    r.add([_doc(rng, 100 + i) for i in range(3)])
    assert r.delete(["d1", "d2", "d101"]) == ["d1", "d2", "d101"]

    def hits(q: str) -> list[tuple[float, str]]:
        return sorted((round(h.score, 5), h.id) for h in r.search(q, k=30))

    before = {q: hits(q) for q in ("kedi", "elma su")}
    assert len(_segments(r.path)) >= 2 and any(s["deletes"] for s in _segments(r.path))

    done = r.optimize()
    assert done["segments_after"] == 1 and done["segments_before"] >= 2
    assert r.manifest.generation == done["generation"] and len(r) == 20
    (seg,) = _segments(r.path)
    assert seg["deletes"] is None and seg["documents"] == 20 and seg["tombstones"] == 0
    assert {q: hits(q) for q in before} == before
    assert verify_index(r.path).ok

    r.add([_doc(rng, 200)])
    runner = CliRunner()
    res = runner.invoke(main, ["optimize", "--index", str(r.path), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["segments_before"] == 2 and out["segments_after"] == 1 and out["written"] is True
    assert out["documents"] == 21
    generation = out["generation"]
    res = runner.invoke(main, ["optimize", str(r.path)])
    assert res.exit_code == 0 and "nothing was written" in res.output
    assert json.loads((r.path / "manifest.json").read_text())["generation"] == generation
    res = runner.invoke(main, ["optimize", "-h"])
    assert res.exit_code == 0 and "Example" in res.output
