"""The metadata filter language (tase_search.query.filters): parsing and its errors, the shorthand, the
Python evaluator, and the store's SQL checked against that evaluator on random metadata and filters."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tase_search.errors import InputError
from tase_search.query import filters as F
from tase_search.query.filters import And, Compare, Not, Or, matches, parse_filter, parse_shorthand
from tase_search.retriever import Retriever
from tase_search.store import filter_sql
from tase_search.store.docs import DocStore
from tase_search.testing import FakeEncoder


# ----------------------------------------------------------------------------- parsing
def test_parse_forms() -> None:
    assert parse_filter(None) is None and parse_filter({}) is None
    assert parse_filter({"topic": "spor"}) == Compare("topic", "$eq", "spor")
    both = parse_filter({"topic": "spor", "year": {"$gte": 2020, "$lt": 2025}})
    assert both == And(
        (Compare("topic", "$eq", "spor"), Compare("year", "$gte", 2020), Compare("year", "$lt", 2025))
    )
    assert parse_filter({"$or": [{"a": 1}, {"b": {"$in": [1, "x", True, None]}}]}) == Or(
        (Compare("a", "$eq", 1), Compare("b", "$in", (1, "x", True, None)))
    )
    assert parse_filter({"$not": {"draft": True}}) == Not(Compare("draft", "$eq", True))
    assert parse_filter({"year": {"$not": {"$gt": 5}}}) == Not(Compare("year", "$gt", 5))
    assert parse_filter({"$and": [{"a": 1}]}) == Compare("a", "$eq", 1)
    parsed = parse_filter({"a.b": {"$prefix": "İst"}, "id": {"$in": ["x", "y"]}})
    assert parsed == And((Compare("a.b", "$prefix", "İst"), Compare("id", "$in", ("x", "y"))))
    assert parse_filter(parsed) is parsed  # a parsed filter passes through
    for spec in (
        {"topic": "spor", "$or": [{"y": 1}, {"y": {"$exists": False}}]},
        {"$not": {"a": {"$nin": []}}},
    ):
        tree = parse_filter(spec)
        assert tree is not None and parse_filter(tree.to_json()) == tree  # to_json round-trips
    assert F.fields(parse_filter({"b": 1, "$or": [{"a": 1}, {"b": 2}], "id": "x"})) == ["b", "a", "id"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("topic=spor", "filter is str: give a dict"),
        ([("topic", "spor")], "filter is list"),
        ({"topic": ["spor", "hava"]}, r"filter value for 'topic' is a list.*'\$in'"),
        ({"topic": {"$regex": "s.*"}}, r"operator '\$regex' on 'topic' is not valid.*\$eq, \$ne"),
        ({"$gte": 3}, r"'\$gte' is not valid here \(\$gte goes inside a field"),
        ({"$nor": [{"a": 1}]}, r"'\$nor' is not valid here; .*combining filters: \$and, \$or, \$not"),
        ({"topic": {"name": "x"}}, "'name' is not an operator"),
        ({"topic": {}}, "give an operator"),
        ({"": "x"}, "empty"),
        ({1: "x"}, "not a string"),
        ({"$and": []}, r"\$and takes a non-empty list"),
        ({"$or": {"a": 1}}, r"\$or takes a non-empty list"),
        ({"$not": [{"a": 1}]}, "is not a JSON object"),
        ({"$and": [{}]}, "is empty"),
        ({"a": {"$exists": 1}}, r"\$exists on 'a' takes true or false"),
        ({"a": {"$in": "x"}}, r"\$in on 'a' takes a list"),
        ({"a": {"$in": [[1]]}}, r"\$in on 'a': \[1\] is list"),
        ({"a": {"$gt": True}}, r"\$gt on 'a' compares with a number or a string"),
        ({"a": {"$lte": None}}, r"\$lte on 'a' compares with a number or a string"),
        ({"a": {"$prefix": 1}}, r"\$prefix on 'a' takes a string"),
        ({"a": {"x": 1}}, "not an operator"),
        ({"a": 2**64}, "outside the 64-bit range"),
        ({"a": float("nan")}, "not a finite number"),
        ({"a": object()}, "is object; give a string, a number"),
        ({"id": 5}, "a document's id is a string"),
        ({"source": {"$in": ["a", None]}}, "a document's source is a string"),
        ({"a": "x" * (F.MAX_STRING_CHARS + 1)}, "over 4096 characters"),
        ({"k" * (F.MAX_FIELD_CHARS + 1): 1}, "over 256 characters"),
        ({"a": {"$in": list(range(F.MAX_VALUES + 1))}}, "more than 10000 values"),
        ({"$or": [{"a": i} for i in range(F.MAX_CLAUSES + 1)]}, "more than 256 comparisons"),
    ],
)
def test_parse_errors(spec: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_filter(spec)


def test_nesting_is_bounded() -> None:
    deep: dict[str, Any] = {"a": 1}
    for _ in range(F.MAX_DEPTH - 1):
        deep = {"$not": deep}
    assert parse_filter(deep) is not None
    with pytest.raises(InputError, match="nested more than 16 levels"):
        parse_filter({"$not": deep})
    very: dict[str, Any] = {"a": 1}
    for _ in range(5000):  # a hostile body: refused at the bound, no RecursionError
        very = {"$and": [very]}
    with pytest.raises(InputError, match="nested"):
        parse_filter(very)


def test_shorthand() -> None:
    assert parse_shorthand([]) is None
    assert parse_shorthand(["topic=spor"]) == Compare("topic", "$eq", "spor")
    assert parse_shorthand(["year=2024"]) == Compare("year", "$in", ("2024", 2024))
    assert parse_shorthand(["x=-1.5e3", "ok=true"]) == And(
        (Compare("x", "$in", ("-1.5e3", -1500.0)), Compare("ok", "$in", ("true", True)))
    )
    # one key twice: either value; the same value twice: once; id and source match as written
    assert parse_shorthand(["topic=spor", "topic=hava", "topic=spor"]) == Compare(
        "topic", "$in", ("spor", "hava")
    )
    assert parse_shorthand(["id=7", " t = a=b"]) == And(
        (Compare("id", "$eq", "7"), Compare("t", "$eq", " a=b"))
    )
    assert parse_shorthand(["n=01", "m=1e999", "b=True"]) == And(
        (Compare("n", "$eq", "01"), Compare("m", "$eq", "1e999"), Compare("b", "$eq", "True"))
    )
    for bad, message in (("topic", "not key=value"), ("=spor", "empty key"), ("$or=1", "cannot start with")):
        with pytest.raises(InputError, match=message):
            parse_shorthand([bad])


# ----------------------------------------------------------------------------- semantics
META = {
    "topic": "spor",
    "year": 2024,
    "score": 2.5,
    "draft": False,
    "tags": ["derbi", "İstanbul", 3, None, ["nested"], {"x": 1}],
    "none": None,
    "obj": {"topic": "spor"},
    "a.b": "dotted",
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"topic": "spor"}, True),
        ({"topic": "Spor"}, False),  # case-sensitive
        ({"year": 2024.0}, True),  # numbers compare as numbers
        ({"year": "2024"}, False),  # a string is not a number
        ({"draft": 0}, False),  # a boolean is not a number
        ({"draft": False}, True),
        ({"tags": "derbi"}, True),  # a list matches when an element does
        ({"tags": 3}, True),
        ({"tags": None}, True),
        ({"tags": "nested"}, False),  # nested lists and objects are not looked into
        ({"tags": {"$ne": "derbi"}}, False),
        ({"tags": {"$nin": ["yok", "derbi"]}}, False),
        ({"tags": {"$gt": 2}}, True),
        ({"tags": {"$prefix": "İst"}}, True),
        ({"tags": {"$prefix": "ist"}}, False),
        ({"obj": "spor"}, False),  # an object equals nothing
        ({"obj": {"$exists": True}}, True),
        ({"none": None}, True),
        ({"none": {"$exists": True}}, True),  # present with null
        ({"missing": None}, False),  # absent is not null
        ({"missing": {"$ne": "x"}}, True),  # negations hold where the field is absent
        ({"missing": {"$nin": ["x"]}}, True),
        ({"$not": {"missing": "x"}}, True),
        ({"missing": {"$exists": False}}, True),
        ({"missing": {"$gt": 0}}, False),
        ({"year": {"$gte": 2024, "$lt": 2025}}, True),
        ({"year": {"$gt": "2000"}}, False),  # a number is not ordered against a string
        ({"topic": {"$gt": "a", "$lte": "spor"}}, True),
        ({"score": {"$in": [1, 2.5]}}, True),
        ({"topic": {"$in": []}}, False),
        ({"topic": {"$nin": []}}, True),
        ({"$or": [{"topic": "hava"}, {"year": 2024}]}, True),
        ({"$and": [{"topic": "hava"}, {"year": 2024}]}, False),
        ({"a.b": "dotted"}, True),  # a dot is part of the key
        ({"id": "d1"}, True),
        ({"id": {"$prefix": "d"}, "source": {"$exists": False}}, True),
        ({"source": {"$ne": "x"}}, True),
    ],
)
def test_matches(spec: dict[str, Any], expected: bool, tmp_path: Path) -> None:
    assert matches(spec, META, doc_id="d1") is expected
    # the store's SQL agrees, on the same row
    store = _store(tmp_path / "d.sqlite", [("d1", META, None), ("d2", {}, "s")])
    assert (1 in store.pids_matching(spec)) is expected


def test_path_quoting_is_parameters_only(tmp_path: Path) -> None:
    """Keys that JSON path syntax cannot quote, SQL-looking keys and values: all bound, all exact."""
    odd = {'a"b': 1, "c\\d": "x", "e\nf": [2], "'; DROP TABLE documents; --": "y", "$.x": True, "": 0}
    store = _store(tmp_path / "d.sqlite", [("d1", odd, None)])
    for key, value in odd.items():
        if key.startswith("$") or not key:  # not field names a filter can give
            continue
        spec = {key: value if not isinstance(value, list) else value[0]}
        assert store.pids_matching(spec) == [1], key
        assert store.pids_matching({key: {"$exists": False}}) == []
    assert store.pids_matching({"a": "'); DELETE FROM documents; --"}) == []
    assert store.counts() == (1, 1)
    sql, params = filter_sql.where(Compare('a"b', "$eq", 1))
    assert 'a"b' not in sql and 'a"b' in params


def test_sparse_search_uses_the_same_filter(tmp_path: Path) -> None:
    store = _store(tmp_path / "d.sqlite", [("d1", {"y": 1}, None), ("d2", {"y": 2}, None), ("d3", {}, None)])
    got = {pid for pid, _ in store.search_sparse("ortak", 10, {"y": {"$ne": 2}})}
    assert got == {1, 3}


def test_invalid_json_rows_read_as_empty_metadata(tmp_path: Path) -> None:
    """A row whose metadata is not JSON (NaN written by an old version) has no fields."""
    store = _store(tmp_path / "d.sqlite", [("d1", {"y": 1}, None), ("d2", {"y": 2}, None)], payload=False)
    store.conn.execute("UPDATE documents SET metadata = '{\"y\": NaN}' WHERE id = 'd2'")
    for indexed in (False, True):  # by a pass over the rows; then from the index the next write builds
        if indexed:
            store.begin()
            store.commit()
        assert store._payload_current() is indexed
        assert store.pids_matching({"y": {"$exists": True}}) == [1]
        assert store.pids_matching({"y": {"$gte": 2}}) == []
        assert sorted(store.pids_matching({"y": {"$ne": 1}})) == [2]
        assert sorted(store.pids_matching({"id": "d2"})) == [2]


# ----------------------------------------------------------------------------- the payload index
def test_payload_index_narrows_selective_filters(tmp_path: Path) -> None:
    """A selective filter is answered from the payload index (index seeks), then checked exactly."""
    rows = [(f"d{i}", {"n": i, "tag": ["a", f"t{i % 10}"], "title": f"başlık {i}"}, None) for i in range(200)]
    store = _store(tmp_path / "d.sqlite", rows)
    for spec, count in (
        ({"tag": "t3", "n": {"$lt": 100}}, 10),
        ({"title": {"$prefix": "başlık 19"}}, 11),
        ({"$or": [{"n": 7}, {"id": {"$in": ["d8", "d9"]}}]}, 3),
    ):
        where, params = store._filter_where(parse_filter(spec))  # type: ignore[arg-type]
        plan = " ".join(
            str(r[-1])
            for r in store.conn.execute(f"EXPLAIN QUERY PLAN SELECT 1 FROM documents d WHERE {where}", params)
        )
        assert "meta" in plan or "documents USING INDEX" in plan, plan
        assert "SCAN d" not in plan, plan  # no pass over every document
        assert len(store.pids_matching(spec)) == count
    where, _ = store._filter_where(parse_filter({"n": {"$ne": 3}}))  # type: ignore[arg-type]
    assert "FROM meta" not in where  # a negation keeps most documents: read them all


def test_payload_index_follows_writes_and_old_files(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    store = _store(path, [(f"d{i}", {"k": i % 3}, None) for i in range(9)], payload=False)
    assert "meta" not in {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
    store.close()
    old = DocStore(path, readonly=True)  # a file written without the index opens and filters (by scan)
    assert sorted(old.pids_matching({"k": 1})) == [2, 5, 8] and not old._payload_current()
    old.close()
    store = DocStore(path)
    store.begin()  # the first write builds it
    store.delete(["d1"])
    store.insert([("x", "ortak x", {"k": [1, "bir"]}, None, None)], [[(0, 1, 0, 7)]], first_pid=10)
    store.commit()
    store.close()
    new = DocStore(path, readonly=True)
    assert new._payload_current() and sorted(new.pids_matching({"k": 1})) == [5, 8, 10]
    assert new.conn.execute("SELECT COUNT(*) FROM meta WHERE doc_key = 2").fetchone()[0] == 0  # d1 rows
    new.close()
    store = DocStore(path)  # a version without the index inserts: the record no longer matches
    store.insert([("y", "ortak y", {"k": 1}, None, None)], [[(0, 1, 0, 7)]], first_pid=11)
    store.close()
    stale = DocStore(path, readonly=True)
    assert not stale._payload_current() and sorted(stale.pids_matching({"k": 1})) == [5, 8, 10, 11]
    stale.close()


def test_verify_checks_the_payload_index(tmp_path: Path) -> None:
    from tase_search.store import payload
    from tase_search.store.verify import verify_index

    docs = [
        {"id": f"d{i}", "text": f"belge {i}", "n": i, "tags": ["a", "a", i % 3, float(i % 3)]}
        for i in range(30)
    ]
    r = Retriever.build(docs, model=FakeEncoder(), path=tmp_path / "idx")
    rep = verify_index(r.path)
    assert rep.ok and any(c.endswith("payload index: one row per metadata value") for c in rep.checked)
    store = _store(tmp_path / "d.sqlite", [(d["id"], {"n": d["n"], "tags": d["tags"]}, None) for d in docs])
    assert payload.problems(store.conn) == []
    store.conn.execute("DELETE FROM meta WHERE key = 'n' AND value = 7")
    assert payload.problems(store.conn) and "differ" in payload.problems(store.conn)[0]


def test_prefix_range() -> None:
    from tase_search.store.payload import prefix_range

    assert prefix_range("ab") == ("ab", "ac")
    assert prefix_range("") == ("", None)
    assert prefix_range("a\U0010ffff") == ("a\U0010ffff", "b")
    assert prefix_range("\ud7ff") == ("\ud7ff", "\ue000")


def test_pre_and_post_filtered_search_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pre-filtering (ids from SQL), post-filtering (nearest checked by SQL) and the fallback from one to
    the other give the same hits, scores included."""
    from tase_search.query import searcher as search_mod

    words = "futbol hava deprem ekonomi kedi çay müzik okul".split()
    docs = [
        {"id": f"d{i}", "text": f"{words[i % 8]} {words[(i * 3) % 8]} {i}", "n": i, "tag": f"t{i % 4}"}
        for i in range(400)
    ]
    r = Retriever.build(docs, model=FakeEncoder(), path=tmp_path / "idx")
    specs = [{"tag": "t1"}, {"n": {"$ne": 3}}, {"$not": {"n": {"$gte": 2}}}, {"n": {"$lt": 300}, "tag": "t2"}]

    def hits(spec: dict[str, Any]) -> list[float]:
        r.refresh()
        out = r.search(["futbol hava", "kedi 7"], k=5, filter=spec, mode="dense")
        return [round(h.score, 5) for hs in out for h in hs]  # type: ignore[union-attr]  # ties: any order

    monkeypatch.setattr(search_mod, "PREFILTER_MIN", 10**9)  # every filter narrowed by the index: pre
    pre = {json.dumps(sp): hits(sp) for sp in specs}
    monkeypatch.setattr(search_mod, "PREFILTER_MIN", 1)
    monkeypatch.setattr(search_mod, "PREFILTER_SHARE", 10**9)  # post, whatever the index says
    assert {json.dumps(sp): hits(sp) for sp in specs} == pre
    monkeypatch.setattr(search_mod, "POSTFILTER_MAX", 40)  # post gives up early: pre takes over
    assert {json.dumps(sp): hits(sp) for sp in specs} == pre
    assert len(pre[json.dumps(specs[2])]) == 4  # two documents pass, for each query


# ----------------------------------------------------------------------------- property: SQL == Python
_KEYS = ["topic", "year", "tags", "şehir", "a.b", 'q"k', "ılık", "flag", "n"]
_WORDS = ["spor", "Spor", "İstanbul", "istanbul", "ılık", "ığüşöç", "", "2024", "true", "a b", "z"]
_text = st.one_of(
    st.sampled_from(_WORDS),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6),
)
_number = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([2024, 2**63 - 1, -(2**63), 0.5, 1.0, -0.0, 2.5, 1e300]),
    st.floats(allow_nan=False, allow_infinity=False),
)
_scalar = st.one_of(_text, _number, st.booleans(), st.none())
_value = st.one_of(
    _scalar,
    st.lists(st.one_of(_scalar, st.just(["in"]), st.just({"k": 1})), max_size=4),
    st.just({"topic": "spor"}),
)
_metadata = st.dictionaries(st.sampled_from(_KEYS), _value, max_size=5)


def _comparison(key: str) -> st.SearchStrategy[dict[str, Any]]:
    ordered = st.one_of(_text, _number)
    ops = st.one_of(
        st.tuples(st.sampled_from(["$eq", "$ne"]), _scalar),
        st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(_scalar, max_size=4)),
        st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), ordered),
        st.tuples(st.just("$prefix"), _text),
        st.tuples(st.just("$exists"), st.booleans()),
    )
    return st.one_of(
        _scalar.map(lambda v: {key: v}),  # shorthand equality
        st.lists(ops, min_size=1, max_size=2).map(lambda os: {key: dict(os)}),
    )


_leaf = st.one_of(
    st.sampled_from(_KEYS).flatmap(_comparison),
    st.sampled_from(["d0", "d1", "d3", "x"]).map(lambda i: {"id": i}),
    st.lists(st.sampled_from(["d0", "d2", "d4"]), max_size=3).map(lambda ids: {"id": {"$in": ids}}),
    st.sampled_from(["s1", "s2"]).map(lambda s: {"source": {"$ne": s}}),
)
_filter = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda fs: {"$and": fs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda fs: {"$or": fs}),
        inner.map(lambda f: {"$not": f}),
    ),
    max_leaves=6,
)
_docs = st.lists(st.tuples(_metadata, st.sampled_from(["s1", "s2", None])), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=_docs, filters=st.lists(_filter, min_size=1, max_size=8))
def test_store_filter_equals_python(
    docs: list[tuple[dict[str, Any], str | None]], filters: list[Any]
) -> None:
    """pids_matching (the SQL every search uses) keeps exactly the documents matches() keeps."""
    rows = [(f"d{i}", meta, source) for i, (meta, source) in enumerate(docs)]
    indexed, scanned = _store(Path(":memory:"), rows), _store(Path(":memory:"), rows, payload=False)
    try:
        for spec in filters:
            want = [
                i + 1
                for i, (d, meta, source) in enumerate(rows)
                if matches(spec, meta, doc_id=d, source=source)
            ]
            assert sorted(indexed.pids_matching(spec)) == want, (spec, rows)  # payload index + JSON1
            assert sorted(scanned.pids_matching(spec)) == want, (spec, rows)  # JSON1 over every row
    finally:
        indexed.close()
        scanned.close()


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(metas=st.lists(_metadata, min_size=1, max_size=10), filters=st.lists(_filter, min_size=1, max_size=6))
def test_search_filter_equals_python(
    metas: list[dict[str, Any]], filters: list[Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Filtered search through the Retriever, dense and keyword, finds exactly the documents matches() keeps."""
    docs = [{"id": f"d{i}", "text": f"ortak belge {i}", **meta} for i, meta in enumerate(metas)]
    r = Retriever.build(docs, model=FakeEncoder(), path=tmp_path_factory.mktemp("idx") / "i")
    for spec in filters:
        want = {
            d["id"] for d, meta in zip(docs, metas) if matches(spec, meta, doc_id=d["id"], source="<python>")
        }
        for mode in ("dense", "sparse"):
            hits = r.search("ortak", k=len(docs), filter=spec, mode=mode)
            assert {h.id for h in hits} == want, (mode, spec)


# ----------------------------------------------------------------------------- helpers
def _store(
    path: Path, rows: list[tuple[str, dict[str, Any], str | None]], *, payload: bool = True
) -> DocStore:
    """A document store holding ``rows`` (id, metadata, source), one passage each (pid = row number + 1),
    with a keyword part; every text has the word 'ortak'. ``payload=False``: written outside a
    transaction, as a version without the payload index wrote (so it has none, and filters scan)."""
    store = DocStore(path)
    if payload:
        store.begin()
    store.build_sparse()
    docs = [(doc_id, f"ortak {doc_id}", meta, source, None) for doc_id, meta, source in rows]
    store.insert(docs, [[(0, 1, 0, 8)] for _ in rows], first_pid=1)
    if payload:
        store.commit()
    json.dumps([m for _, m, _ in rows], allow_nan=False)  # the rows are storable JSON
    return store


def test_memory_store_helper_is_sqlite() -> None:
    store = _store(Path(":memory:"), [("d0", {"a": 1}, None)])
    assert isinstance(store.conn, sqlite3.Connection) and store.pids_matching({"a": 1}) == [1]
