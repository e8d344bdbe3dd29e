"""The per-segment filter cache: repeated filters answer from it, deletions still apply, keys keep JSON
types apart, the bounds hold, and a writable store never caches."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tase_search.query.filters import matches
from tase_search.retriever import Retriever
from tase_search.store import filter_cache
from tase_search.store.docs import DocStore
from tase_search.testing import FakeEncoder

_value = st.one_of(st.integers(-3, 3), st.booleans(), st.sampled_from(["a", "b", "ab"]), st.none())
_metadata = st.dictionaries(
    st.sampled_from(["x", "y"]), st.one_of(_value, st.lists(_value, max_size=2)), max_size=2
)
_filter = st.one_of(
    st.builds(lambda k, v: {k: v}, st.sampled_from(["x", "y"]), _value),
    st.builds(lambda k, v: {k: {"$gte": v}}, st.sampled_from(["x", "y"]), st.integers(-2, 2)),
    st.builds(
        lambda k, v: {k: {"$in": v}}, st.sampled_from(["x", "y"]), st.lists(_value, min_size=1, max_size=3)
    ),
    st.builds(lambda k: {k: {"$exists": True}}, st.sampled_from(["x", "y"])),
    st.builds(lambda v: {"$not": {"x": v}}, _value),
)


@pytest.fixture(autouse=True)
def _empty_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filter_cache, "CACHE", filter_cache.FilterCache())


def _want(docs: list[dict[str, Any]], spec: dict[str, Any], gone: set[str]) -> set[str]:
    return {
        d["id"]
        for d in docs
        if d["id"] not in gone
        and matches(
            spec, {k: v for k, v in d.items() if k not in ("id", "text")}, doc_id=d["id"], source="<python>"
        )
    }


@settings(
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    metas=st.lists(_metadata, min_size=2, max_size=12),
    filters=st.lists(_filter, min_size=1, max_size=4),
    seed=st.integers(0, 1000),
)
def test_cached_filters_equal_python_before_and_after_writes(
    metas: list[dict[str, Any]], filters: list[Any], seed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Each filter searched twice (the second from the cache), then again after a delete and an add (a
    deletions file and a new segment beside the cached ones): always exactly what matches() keeps."""
    docs = [{"id": f"d{i}", "text": f"ortak belge {i}", **m} for i, m in enumerate(metas)]
    half = max(1, len(docs) // 2)
    r = Retriever.build(docs[:half], model=FakeEncoder(), path=tmp_path_factory.mktemp("c") / "i")
    if docs[half:]:
        r.add(docs[half:])  # two segments
    gone: set[str] = set()
    rng = random.Random(seed)
    for round_ in range(3):
        for spec in filters:
            for _ in range(2):
                for mode in ("dense", "sparse"):
                    hits = r.search("ortak", k=len(docs), filter=spec, mode=mode)
                    assert {h.id for h in hits} == _want(docs, spec, gone), (round_, mode, spec)
        victim = rng.choice([d["id"] for d in docs if d["id"] not in gone] or ["none"])
        gone |= set(r.delete([victim]))
        extra = {"id": f"n{round_}", "text": "ortak yeni", **rng.choice(metas)}
        r.add([extra])
        docs.append(extra)
    assert filter_cache.CACHE.hits > 0


def test_a_repeated_filter_is_answered_from_the_cache(tmp_path: Path) -> None:
    docs = [{"id": f"d{i}", "text": f"belge {i}", "k": i % 4} for i in range(40)]
    r = Retriever.build(docs, model=FakeEncoder(), path=tmp_path / "i")
    r.add([{"id": "x", "text": "belge x", "k": 1}])  # two segments: a filter lists ids per segment
    first = [h.id for h in r.search("belge", k=5, filter={"k": 1}, mode="sparse")]
    cache = filter_cache.CACHE
    misses, hits = cache.misses, cache.hits
    assert misses == 2
    assert [h.id for h in r.search("belge", k=5, filter={"k": 1}, mode="sparse")] == first
    assert cache.hits == hits + 2 and cache.misses == misses
    r.add([{"id": "y", "text": "belge y", "k": 1}])  # a third segment; the others keep their entries
    assert "y" in {h.id for h in r.search("belge", k=50, filter={"k": 1}, mode="sparse")}
    assert cache.hits == hits + 4 and cache.misses == misses + 1


def test_keys_keep_json_types_apart(tmp_path: Path) -> None:
    """``true`` equals ``1`` in Python; as filters they keep different documents."""
    docs = [
        {"id": "t", "text": "belge bir", "x": True},
        {"id": "one", "text": "belge iki", "x": 1},
        {"id": "f", "text": "belge üç", "x": 1.5},
    ]
    r = Retriever.build(docs, model=FakeEncoder(), path=tmp_path / "i")
    for spec in ({"x": True}, {"x": 1}, {"x": True}, {"x": 1.0}, {"x": 1}):
        got = {h.id for h in r.search("belge", k=3, filter=spec, mode="dense")}
        assert got == _want(docs, spec, set()), spec


def test_the_cache_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filter_cache, "MAX_IDS", 12)
    monkeypatch.setattr(filter_cache, "MAX_IDS_PER_FILTER", 8)
    docs = [{"id": f"d{i}", "text": f"belge {i}", "k": i % 5} for i in range(40)]
    r = Retriever.build(docs[:1], model=FakeEncoder(), path=tmp_path / "i")
    r.add(docs[1:])
    for k in range(5):  # 8 ids each (one of them in the first segment): at most one entry of 8 is kept
        assert len(r.search("belge", k=40, filter={"k": k}, mode="sparse")) == 8
    cache = filter_cache.CACHE
    assert cache._ids <= 12 and {f for _, f in cache._table} == {'{"k": {"$eq": 4}}'}  # older ones evicted
    assert len(r.search("belge", k=40, filter={"k": {"$lt": 3}}, mode="sparse")) == 24  # too many to keep
    assert all(len(v) <= 8 for v in cache._table.values())


def test_a_writable_store_does_not_cache(tmp_path: Path) -> None:
    store = DocStore(tmp_path / "d.sqlite")
    store.begin()
    store.insert([("a", "ortak", {"k": 1}, None, None)], [[(0, 1, 0, 5)]], first_pid=1)
    store.commit()
    assert store.pids_matching({"k": 1}) == [1]
    store.begin()
    store.insert([("b", "ortak", {"k": 1}, None, None)], [[(0, 1, 0, 5)]], first_pid=2)
    store.commit()
    assert store.pids_matching({"k": 1}) == [1, 2]
    assert filter_cache.CACHE.misses == 0
    store.close()


def test_copied_blocks_stay_within_their_budget_and_answer_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tase_search.store import gather

    blocks = gather.BlockCache()
    monkeypatch.setattr(gather, "BLOCKS", blocks)
    monkeypatch.setattr(gather, "BLOCK_BYTES", 40 * 8 * 4)  # 40 rows of the fake encoder's width
    docs = [{"id": f"d{i}", "text": f"belge {i}", "k": i % 10} for i in range(400)]
    r = Retriever.build(docs, model=FakeEncoder(), path=tmp_path / "i")
    for _ in range(2):
        for k in range(10):  # 40 rows each: one block fits at a time
            spec = {"k": k}
            got = {h.id for h in r.search("belge", k=400, filter=spec, mode="dense")}
            assert got == _want(docs, spec, set())
            assert blocks._bytes <= gather.BLOCK_BYTES
    r.add([{"id": "new", "text": "belge yeni", "k": 3}])  # a new generation: the old index objects go
    assert "new" in {h.id for h in r.search("belge", k=400, filter={"k": 3}, mode="dense")}
    assert blocks._bytes <= gather.BLOCK_BYTES and blocks.misses > 0
