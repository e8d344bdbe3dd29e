"""Losses: the config's loss specs (:func:`build_loss`), and one not in sentence-transformers.

:class:`AlignDistillLoss` embeds a (Turkish, English) batch once and uses it twice: symmetric MNRL
pulls each Turkish sentence to its own translation and away from the other translations in the
batch (fast alignment - what the paper's stage 1 does), and an MSE term keeps both student
embeddings on the frozen English teacher's embedding of the English side (Reimers & Gurevych
2020). The MSE term is what keeps English retrieval and the teacher's semantic geometry (STS,
caption similarity) that plain MNRL on bitext destroys; the MNRL term aligns faster than MSE alone.
One forward pass for both objectives halves the cost of running them as two tasks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tase_search.errors import InputError

__all__ = ["LOSS_TYPES", "AlignDistillLoss", "build_loss", "embed_features"]


def embed_features(model: Any, sentence_features: Iterable[dict[str, Tensor]]) -> list[Tensor]:
    """Sentence embeddings (float32) for each input column of a batch."""
    return [model(f)["sentence_embedding"].float() for f in sentence_features]


class AlignDistillLoss(nn.Module):
    """Symmetric in-batch MNRL on (anchor, positive) + MSE of every column to the teacher label.

    Inputs: columns ``anchor, positive[, negative...]`` and ``label`` = teacher embedding (of the
    English side). Extra columns are hard negatives for the ranking term only: the MSE term pulls
    just the anchor and the positive onto the teacher, since the label is the positive's. ``mse_weight`` scales the squared distance summed over dimensions (for unit vectors it
    is ``2 - 2 cos``), so it is on the same scale as the ranking loss; ``mnrl_weight=0`` gives pure
    distillation, ``mse_weight=0`` pure MNRL.
    """

    def __init__(
        self,
        model: Any,
        scale: float = 20.0,
        mnrl_weight: float = 1.0,
        mse_weight: float = 1.0,
        symmetric: bool = True,
    ) -> None:
        super().__init__()
        self.model = model
        self.scale = scale
        self.mnrl_weight = mnrl_weight
        self.mse_weight = mse_weight
        self.symmetric = symmetric

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        embs = embed_features(self.model, sentence_features)
        loss = embs[0].new_zeros(())
        if self.mnrl_weight and len(embs) >= 2:
            a = F.normalize(embs[0], dim=-1)
            b = F.normalize(torch.cat(embs[1:]), dim=-1)  # extra columns act as hard negatives
            scores = a @ b.T * self.scale
            target = torch.arange(a.shape[0], device=a.device)
            rank = F.cross_entropy(scores, target)
            if self.symmetric:
                rank = (rank + F.cross_entropy(scores[:, : a.shape[0]].T, target)) / 2
            loss = loss + self.mnrl_weight * rank
        if self.mse_weight and labels is not None:
            t = labels.float()
            dim = embs[0].shape[-1]
            if t.shape[-1] != dim:  # one teacher embedding per column, concatenated (self-distillation)
                t = t.view(t.shape[0], -1, dim)
                mse = torch.stack(
                    [((e - t[:, i]) ** 2).sum(-1).mean() for i, e in enumerate(embs[: t.shape[1]])]
                )
            else:  # one teacher embedding (of the positive) for anchor and positive
                mse = torch.stack([((e - t) ** 2).sum(-1).mean() for e in embs[:2]])
            mse = mse.mean()
            loss = loss + self.mse_weight * mse
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "mnrl_weight": self.mnrl_weight,
            "mse_weight": self.mse_weight,
            "symmetric": self.symmetric,
        }

    @property
    def citation(self) -> str:
        return (
            "Reimers & Gurevych 2020, Making Monolingual Sentence Embeddings Multilingual using Knowledge "
            "Distillation; Henderson et al. 2017 (MNRL)"
        )


# --------------------------------------------------------------------------- from a config
LOSS_TYPES = ("mnrl", "mnrl_symmetric", "cached_mnrl", "mse", "cosent", "align_distill")


def build_loss(spec: dict[str, Any], model: Any) -> Any:
    """A loss spec → loss module. ``align_distill`` (training.losses) = symmetric MNRL + teacher MSE in one pass."""
    try:
        from sentence_transformers.sentence_transformer import losses
    except ImportError:  # pragma: no cover - sentence-transformers < 6
        from sentence_transformers import losses  # type: ignore[no-redef]

    kind = spec.get("type")
    scale = float(spec.get("scale", 20.0))
    if kind == "mnrl":
        return losses.MultipleNegativesRankingLoss(model, scale=scale)
    if kind == "mnrl_symmetric":
        try:  # sentence-transformers >= 6: the symmetric loss is an option of MNRL
            return losses.MultipleNegativesRankingLoss(
                model,
                scale=scale,
                directions=("query_to_doc", "doc_to_query"),
                partition_mode="per_direction",
            )
        except TypeError:
            return losses.MultipleNegativesSymmetricRankingLoss(model, scale=scale)
    if kind == "cached_mnrl":
        return losses.CachedMultipleNegativesRankingLoss(
            model, scale=scale, mini_batch_size=int(spec.get("mini_batch_size", 32))
        )
    if kind == "mse":
        return losses.MSELoss(model)
    if kind == "cosent":
        return losses.CoSENTLoss(model, scale=float(spec.get("scale", 20.0)))
    if kind == "align_distill":
        return AlignDistillLoss(
            model,
            scale=scale,
            mnrl_weight=float(spec.get("mnrl_weight", 1.0)),
            mse_weight=float(spec.get("mse_weight", 1.0)),
            symmetric=bool(spec.get("symmetric", True)),
        )
    raise InputError(f"unknown loss {kind!r}: choose from {', '.join(LOSS_TYPES)}")


def _needs_teacher(loss_spec: dict[str, Any]) -> bool:
    return loss_spec.get("type") in ("mse", "align_distill") and loss_spec.get("mse_weight", 1.0) != 0
