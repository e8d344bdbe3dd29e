"""The bundled reranker gives the recorded probabilities (fp32), and orders the obvious cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

GOLDEN = json.loads(Path(__file__).with_name("reranker.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def reranker():  # noqa: ANN201 - Reranker (imported lazily)
    from tase_search.query.rerank import Reranker

    return Reranker.load("tase-rerank-tr", precision="fp32")


def test_the_bundled_reranker_gives_its_recorded_probabilities(reranker) -> None:  # noqa: ANN001
    got = [float(reranker.score(q, [p])[0]) for q, p in GOLDEN["pairs"]]
    np.testing.assert_allclose(got, GOLDEN["probabilities"], atol=2e-4)


def test_the_bundled_reranker_reads_questions_and_borrows_the_encoders_embeddings(reranker) -> None:  # noqa: ANN001
    from tase_search.query.rerank_bundle import is_shared

    assert reranker.questions_only and reranker.blend and reranker.model_id == "tase-rerank-tr"
    from tase_search.models import resolve

    assert is_shared(resolve("tase-rerank-tr")[1])
    q = "Türkiye'nin başkenti neresidir?"
    probs = reranker.score(q, [p for qq, p in GOLDEN["pairs"][:2]])
    assert probs[0] > 0.5 > 0.2 > probs[1]
