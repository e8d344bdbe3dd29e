"""txtai: TaseVectors as a txtai Embeddings database's vectors model (the custom ``method`` hook)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("txtai")

from bilingual import CORPUS, TEXTS, BilingualEncoder  # noqa: E402
from doc_examples import run_example  # noqa: E402
from txtai import Embeddings  # noqa: E402

from tase_search.encoding.encoder import Encoder  # noqa: E402
from tase_search.integrations.txtai import METHOD, TaseVectors  # noqa: E402

pytestmark = pytest.mark.integrations


def _rows() -> list[dict]:
    return [{"id": i, "text": t, "topic": topic} for i, t, topic in CORPUS]


def _ids(results: list[dict]) -> list[str]:
    return [r["id"] for r in results]


def test_index_query_filter_delete() -> None:
    encoder = BilingualEncoder()
    db = Embeddings(method=METHOD, path=encoder, content=True)
    db.index(_rows())
    assert isinstance(db.model, TaseVectors)
    assert encoder.calls == {"query": 0, "document": len(CORPUS)}  # indexing: encode_document
    assert _ids(db.search("Ege'de deprem", 1)) == ["doga-1"]
    (hit,) = db.search("earthquake in the Aegean", 1)
    assert (hit["id"], hit["text"], 0 < hit["score"] <= 1) == ("doga-1", TEXTS[6], True)
    assert encoder.calls["query"] == 2  # queries: encode_query
    # txtai's SQL: similar() plus a metadata filter
    sql = "select id, topic, score from txtai where similar('football match') and topic = 'spor'"
    assert {r["topic"] for r in db.search(sql, 5)} == {"spor"}
    assert _ids(db.search(sql, 1)) == ["spor-1"]
    assert db.delete(["spor-1"]) == ["spor-1"]
    assert "spor-1" not in _ids(db.search("football match", 8)) and db.count() == len(CORPUS) - 1
    db.upsert([{"id": "spor-3", "text": "Futbol maçı berabere bitti.", "topic": "spor"}])
    assert _ids(db.search("football", 1)) == ["spor-3"]


def test_saved_database_reloads_with_the_model_path(
    tmp_path: Path, tiny_model_dir: Path, tiny_encoder
) -> None:
    db = Embeddings(method=METHOD, path=str(tiny_model_dir), content=True)
    db.index(_rows())
    before = db.search(TEXTS[3], 3)
    db.save(str(tmp_path / "db"))
    again = Embeddings()
    again.load(str(tmp_path / "db"))
    assert isinstance(again.model, TaseVectors)
    assert _ids(again.search(TEXTS[3], 3)) == _ids(before) and _ids(before)[0] == "hava-2"
    # the vectors are tase-search's own: txtai's query vector is encode_query's
    got = again.batchtransform([(None, "futbol maçı", None)], "query")[0]
    # loaded as Encoder.load does by default (precision auto: bf16 weights on a bf16 CPU)
    assert np.allclose(got, Encoder.load(str(tiny_model_dir)).encode_query(["futbol maçı"])[0], atol=1e-5)
    assert float(np.dot(got, tiny_encoder.encode_query(["futbol maçı"])[0])) > 0.99


def test_doc_example() -> None:
    run_example("txtai", encoder=BilingualEncoder())
