"""Evaluator objects: primary metrics, the trainer's view, and recall/MRR/nDCG against sentence-transformers."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")

from tase_search.errors import DataError, InputError  # noqa: E402
from tase_search.evaluation import RetrievalTask  # noqa: E402
from tase_search.evaluation.evaluators import (  # noqa: E402
    RetrievalEvaluator,
    StsEvaluator,
    build_evaluator,
)


class TableEncoder:
    """Fixed unit vectors per text; numpy for tase-search, torch when sentence-transformers asks for tensors."""

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors
        self.model_card_data = SimpleNamespace(set_evaluation_metrics=lambda *a, **k: None)

    def encode(self, texts: list[str], convert_to_tensor: bool = False, **_: object) -> object:
        emb = np.stack([self.vectors[t] for t in texts]).astype(np.float32)
        if convert_to_tensor:
            import torch

            return torch.from_numpy(emb)
        return emb

    encode_query = encode_document = encode


def _synthetic(seed: int = 1, n_queries: int = 40, n_docs: int = 80, dim: int = 16):
    rng = np.random.default_rng(seed)
    docs = rng.normal(size=(n_docs, dim))
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    qrels = [
        set(rng.choice(n_docs, size=int(rng.integers(1, 5)), replace=False).tolist())
        for _ in range(n_queries)
    ]
    queries = np.stack([docs[sorted(r)].mean(axis=0) + rng.normal(scale=0.35, size=dim) for r in qrels])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    vectors = {f"q{i}": v for i, v in enumerate(queries)} | {f"d{j}": v for j, v in enumerate(docs)}
    task = RetrievalTask("syn", [f"q{i}" for i in range(n_queries)], [f"d{j}" for j in range(n_docs)], qrels)
    return task, TableEncoder(vectors)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_retrieval_metrics_equal_sentence_transformers_information_retrieval(seed: int) -> None:
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from sentence_transformers.util import cos_sim

    task, enc = _synthetic(seed)
    ours = RetrievalEvaluator(task).evaluate(enc)
    ir = InformationRetrievalEvaluator(
        queries={q: q for q in task.queries},
        corpus={d: d for d in task.corpus},
        relevant_docs={
            q: {task.corpus[j] for j in rel} for q, rel in zip(task.queries, task.qrels, strict=True)
        },
        mrr_at_k=[10],
        ndcg_at_k=[10],
        accuracy_at_k=[1],
        precision_recall_at_k=[1, 5, 10],
        map_at_k=[10],
        score_functions={"cosine": cos_sim},
        name="syn",
        write_csv=False,
        show_progress_bar=False,
    )
    theirs = ir(enc)
    assert max(len(r) for r in task.qrels) > 1  # several relevant documents: recall differs from hit rate
    for metric in ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "accuracy@1"):
        assert ours[metric] == pytest.approx(theirs[f"syn_cosine_{metric}"], abs=1e-6), metric
    assert 0.0 < ours["recall@1"] < ours["accuracy@1"] < 1.0  # the set is neither trivial nor hopeless


def test_evaluator_is_a_sentence_evaluator_with_a_primary_metric() -> None:
    from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

    task, enc = _synthetic()
    ev = RetrievalEvaluator(task, "mrr@10")
    assert isinstance(ev, SentenceEvaluator) and ev.greater_is_better
    out = ev(enc)
    assert ev.primary_metric == "syn_mrr@10" and out[ev.primary_metric] == ev.evaluate(enc)["mrr@10"]
    assert all(k.startswith("syn_") and isinstance(v, float) for k, v in out.items())
    with pytest.raises(InputError, match="no metric 'nope'"):
        RetrievalEvaluator(task, "nope")(enc)


def test_build_evaluator_from_specs(tmp_path: Path) -> None:
    sts = tmp_path / "sts.tsv"
    sts.write_text("score\tsentence1\tsentence2\n5\ta\ta\n1\ta\tb\n3\tb\tc\n", encoding="utf-8")
    ev = build_evaluator({"type": "sts", "path": str(sts), "name": "stsb"})
    assert isinstance(ev, StsEvaluator) and ev.primary_metric == "stsb_spearman" and len(ev.pairs) == 3
    with pytest.raises(InputError, match="unknown evaluator type 'nope'"):
        build_evaluator({"type": "nope"})
    with pytest.raises(InputError, match="missing key 'path'"):
        build_evaluator({"type": "sts"})
    with pytest.raises(DataError, match="not found"):  # files are read when the evaluator is made
        build_evaluator({"type": "sts", "path": str(tmp_path / "missing.tsv")})
