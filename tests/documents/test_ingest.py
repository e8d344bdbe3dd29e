"""Ingest of vectors computed elsewhere (``add_encoded``): the same index as ``add``, the same dedup rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tase_search.documents.ingest import EncodedBatch
from tase_search.errors import InputError
from tase_search.retriever import Retriever
from tase_search.store.manifest import read_manifest
from tase_search.testing import FakeEncoder

DOCS = [
    {"id": "a", "text": "Galatasaray maçı 2-1 kazandı.", "topic": "spor"},
    {"id": "b", "text": "Yarın İstanbul'da yağmur bekleniyor.", "topic": "hava"},
    {"text": "Kedi bahçede uyudu."},
    {"id": "c", "text": "Borsa güne yükselişle başladı.", "topic": "ekonomi"},
]


def _encoded(enc: FakeEncoder, docs: list[dict[str, Any]], size: int = 2) -> list[EncodedBatch]:
    """What a parallel engine would hand over: each batch's passages and their vectors."""
    out = []
    for i in range(0, len(docs), size):
        part = docs[i : i + size]
        spans = [enc.split_passages(d["text"], overlap=32) for d in part]
        texts = [d["text"][p.start : p.end] for d, ps in zip(part, spans) for p in ps]
        out.append(EncodedBatch(part, spans, enc.encode_document(texts)))
    return out


def _state(r: Retriever) -> tuple:
    hits = [(h.id, round(h.score, 5)) for h in r.search("futbol maçı", k=4, mode="dense")]
    stored = sorted((d["id"], d["text"], str(d["metadata"])) for d in r.get(["a", "b", "c", "1"]))
    return r.manifest.documents, r.manifest.rows, hits, stored


def test_encoded_batches_make_the_index_add_makes(tmp_path: Path) -> None:
    enc = FakeEncoder()
    seed = [{"id": "s", "text": "Fenerbahçe futbol maçı 3-0 bitti."}]
    plain = Retriever.build(seed, model=enc, path=tmp_path / "plain")
    plain.add(DOCS)
    encoded = Retriever.build(seed, model=enc, path=tmp_path / "encoded")
    res = encoded.add_encoded(_encoded(enc, DOCS))
    assert (res.added, res.passages) == (4, encoded.manifest.rows - 1)
    assert _state(encoded) == _state(plain)
    again = encoded.add_encoded(_encoded(enc, DOCS, size=3))  # the same documents: nothing to write
    assert (again.added, again.unchanged) == (0, 4)
    assert read_manifest(tmp_path / "encoded").generation == encoded.manifest.generation


def test_encoded_duplicates_follow_on_duplicate(tmp_path: Path) -> None:
    enc = FakeEncoder()
    r = Retriever.build(DOCS, model=enc, path=tmp_path / "ix")
    changed = [{"id": "a", "text": "Beşiktaş deplasmanda kazandı.", "topic": "spor"}]
    with pytest.raises(InputError, match="'a'.*already in the index"):
        r.add_encoded(_encoded(enc, changed))
    res = r.add_encoded(_encoded(enc, changed), on_duplicate="replace")
    assert res.replaced == 1 and r.get(["a"])[0]["text"] == changed[0]["text"]
    assert r.search(changed[0]["text"], k=1, mode="dense")[0].id == "a"


def test_encoded_batches_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    enc = FakeEncoder()
    r = Retriever.build(DOCS[:1], model=enc, path=tmp_path / "ix")
    (batch,) = _encoded(enc, DOCS[1:2])
    with pytest.raises(InputError, match=r"vectors of shape \(1, 3\), expected \(1, "):
        r.add_encoded([EncodedBatch(batch.documents, batch.passages, np.zeros((1, 3), np.float32))])
    with pytest.raises(InputError, match="1 documents but 0 passage lists"):
        r.add_encoded([EncodedBatch(batch.documents, [], batch.vectors[:0])])
    messy = [{"id": "m", "text": "  Boşluklu   metin  "}]
    with pytest.raises(InputError, match="changes when cleaned"):
        r.add_encoded(_encoded(enc, messy))
    assert r.manifest.generation == 1 and r.manifest.documents == 1
