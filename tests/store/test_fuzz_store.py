"""Seeded fuzzing of what reads untrusted bytes: corpus readers, the manifest, the document store and
the FAISS structure check. Whatever the bytes, the outcome is data or a tase-search error, never
another exception. Derandomized and brief (a few seconds): the same examples on every run.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaign.common import make_docs
from campaign.hostile import generation_dir, index_bytes, reseal, restore
from tase_search.documents.readers import ReaderLimits, read_corpus
from tase_search.errors import IndexError_, InputError, TaseSearchError
from tase_search.retriever import Retriever
from tase_search.store.faiss_guard import check_faiss_file
from tase_search.store.manifest import read_manifest
from tase_search.store.verify import verify_index
from tase_search.testing import FakeEncoder

FUZZ = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def fuzz(examples: int) -> settings:
    """The shared settings with a per-target example count (kept small: a few seconds in all)."""
    return settings(FUZZ, max_examples=examples)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


_SCRATCH: list[Path] = []


def _scratch(factory: pytest.TempPathFactory) -> Path:
    """One directory reused by every example (files in it are overwritten or restored)."""
    if not _SCRATCH:
        _SCRATCH.append(factory.mktemp("fuzz-scratch"))
    for p in _SCRATCH[0].glob("*.*"):
        p.unlink()
    return _SCRATCH[0]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    ix = tmp_path_factory.mktemp("fuzz") / "ix"
    Retriever.build(make_docs(30), model=FakeEncoder(), path=ix).close()
    Retriever.load(ix, model=FakeEncoder()).delete(["d0"])  # tombstones and a second generation
    return index_bytes(ix)


# ------------------------------------------------------------------------------ readers
_fragments = st.sampled_from(
    [
        '{"text": "a"}',
        '{"text": 1}',
        '{"id": 5, "text": "b", "m": [1, {"x": null}]}',
        "text,id",
        "a,b",
        '"quoted, field"',
        "\t",
        "[[[[[[",
        "9" * 60,
        "\ufeff",
        "\x00",
        "\ud800",
        '{"text": "c", "d": 1e999}',
    ]
)
_lines = st.lists(st.one_of(_fragments, st.text(max_size=30)), max_size=12)


@fuzz(60)
@given(
    lines=_lines,
    raw=st.binary(max_size=200),
    ext=st.sampled_from(["txt", "jsonl", "csv", "tsv"]),
    gz=st.booleans(),
    use_raw=st.booleans(),
)
def test_readers_give_documents_or_input_errors(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], raw: bytes, ext: str, gz: bool, use_raw: bool
) -> None:
    body = raw if use_raw else "\n".join(lines).encode("utf-8", "surrogatepass")
    p = _scratch(tmp_path_factory) / (f"c.{ext}" + (".gz" if gz else ""))
    p.write_bytes(gzip.compress(body) if gz else body)
    limits = ReaderLimits(max_line_bytes=120, max_columns=6, max_json_depth=4, max_int_digits=40)
    try:
        for doc in read_corpus(str(p), limits=limits, encoding_errors="replace" if use_raw else "strict"):
            assert isinstance(doc.text, str) and doc.text
            json.dumps(doc.metadata)
    except InputError:
        pass


# ------------------------------------------------------------------------------ the manifest
def _paths(obj: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    return out


@fuzz(40)
@given(data=st.data())
def test_any_manifest_is_loaded_or_refused(
    tmp_path_factory: pytest.TempPathFactory, pristine: dict[str, bytes], data: st.DataObject
) -> None:
    ix = _scratch(tmp_path_factory) / "ix"
    restore(ix, pristine)
    raw = json.loads(pristine["manifest.json"])
    how = data.draw(st.sampled_from(["replace", "delete", "bytes"]))
    if how == "bytes":
        blob = bytearray(pristine["manifest.json"])
        for _ in range(data.draw(st.integers(1, 4))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
        (ix / "manifest.json").write_bytes(bytes(blob))
    else:
        path = data.draw(st.sampled_from([p for p in _paths(raw) if p]))
        parent = raw
        for k in path[:-1]:
            parent = parent[k]
        if how == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(json_values)
        (ix / "manifest.json").write_text(json.dumps(raw))
    try:
        read_manifest(ix)
    except IndexError_:
        pass
    verify_index(ix)  # a report, never an exception
    try:
        with Retriever.load(ix, model=FakeEncoder()) as r:
            r.search("futbol", k=3)
    except TaseSearchError:
        pass


# ------------------------------------------------------------------------------ the document store
@fuzz(40)
@given(flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), min_size=1, max_size=6))
def test_any_damaged_document_store_is_searched_or_refused(
    tmp_path_factory: pytest.TempPathFactory, pristine: dict[str, bytes], flips: list[tuple[float, int]]
) -> None:
    ix = _scratch(tmp_path_factory) / "ix"
    restore(ix, pristine)
    p = generation_dir(ix) / "docs.sqlite"
    blob = bytearray(p.read_bytes())
    for where, value in flips:
        blob[min(len(blob) - 1, int(where * len(blob)))] = value
    p.write_bytes(bytes(blob))
    reseal(ix)  # crafted to match: only the store's own checks stand
    try:
        with Retriever.load(ix, model=FakeEncoder()) as r:
            hits = r.search("futbol maçı", k=5)
            r.get([h.id for h in hits] + ["d3"])
    except TaseSearchError:
        pass
    verify_index(ix)


# ------------------------------------------------------------------------------ the FAISS structure check
@fuzz(100)
@given(
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.none() | st.floats(0.0, 1.0),
)
def test_the_faiss_check_refuses_or_passes_but_never_crashes(
    tmp_path_factory: pytest.TempPathFactory, pristine: dict[str, bytes], flips: list, cut: float | None
) -> None:
    name = next(k for k in pristine if k.endswith("vectors.faiss"))
    blob = bytearray(pristine[name])
    for where, value in flips:
        blob[min(len(blob) - 1, int(where * len(blob)))] = value
    if cut is not None:
        blob = blob[: int(cut * len(blob))]
    p = _scratch(tmp_path_factory) / "vectors.faiss"
    p.write_bytes(bytes(blob))
    try:
        check_faiss_file(p, "fuzzed")
    except IndexError_:
        pass
    os.unlink(p)
