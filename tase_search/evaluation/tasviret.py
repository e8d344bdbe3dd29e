"""The Tasviret check from the paper: do captions of the same image embed closer than random pairs?

TasvirEt gives (at least) two Turkish captions per Flickr8k image. A good Turkish encoder puts two
captions of one image close together (they describe the same scene in different words) and
captions of different images further apart. Reported:

* ``same_mean`` / ``same_std`` - cosine of every same-image caption pair;
* ``random_mean`` / ``random_std`` - cosine of as many random different-image pairs (fixed seed);
* ``gap`` = ``same_mean - random_mean`` (the paper's headline);
* ``auc`` - ROC-AUC of same pairs (positives) vs random pairs (negatives), via ranks;
* ``caption_r@1`` - each caption searches all other captions; a hit when the nearest one comes
  from the same image (captions whose image has no other caption are skipped);
* counts: ``n_images``, ``n_captions``, ``n_same_pairs``, ``n_random_pairs``, ``n_r1_queries``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from ..encoding.protocols import QueryEncoder
from ..errors import DataError, TaseSearchError
from .labelled_data import read_table
from .stats import roc_auc

__all__ = ["evaluate_tasviret", "load_captions", "plot_histogram", "tasviret_metrics", "tasviret_scores"]


def load_captions(path: str | Path, *, limit: int | None = None) -> tuple[list[str], list[str]]:
    """``(image_ids, captions)`` from a TSV with ``image_id`` and ``caption`` columns (header row)."""
    rows = read_table(
        path, ("image_id", "caption"), what="Tasviret captions", fmt="tsv", limit=limit, allow_empty=True
    )
    rows = [r for r in rows if r["caption"]]
    if not rows:
        raise DataError(f"Tasviret captions file {str(path)!r} has no non-empty captions")
    return [r["image_id"] for r in rows], [r["caption"] for r in rows]


def tasviret_metrics(embeddings: np.ndarray, image_ids: Sequence[str], *, seed: int = 0) -> dict[str, Any]:
    """The Tasviret metrics from unit-length caption embeddings and their image ids.

    Also returns the raw pair cosines under ``"_same"`` and ``"_random"`` (numpy arrays; dropped by
    :func:`evaluate_tasviret`) for plotting.
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    ids = list(image_ids)
    if emb.shape[0] != len(ids):
        raise DataError(f"{emb.shape[0]} embeddings but {len(ids)} image ids")
    groups: dict[str, list[int]] = {}
    for i, img in enumerate(ids):
        groups.setdefault(img, []).append(i)
    same_pairs = [p for members in groups.values() for p in combinations(members, 2)]
    if not same_pairs:
        raise DataError("no image has two captions: the Tasviret check needs caption pairs of the same image")
    if len(groups) < 2:
        raise DataError("all captions belong to one image: the Tasviret check needs at least two images")
    img_num = np.unique(np.asarray(ids), return_inverse=True)[1]
    rng = np.random.default_rng(seed)
    n = len(same_pairs)
    rand_a = np.empty(0, dtype=np.int64)
    rand_b = np.empty(0, dtype=np.int64)
    while rand_a.size < n:  # rejection sampling: uniform over ordered different-image pairs
        a = rng.integers(0, len(ids), size=2 * n)
        b = rng.integers(0, len(ids), size=2 * n)
        keep = img_num[a] != img_num[b]
        rand_a = np.concatenate([rand_a, a[keep]])
        rand_b = np.concatenate([rand_b, b[keep]])
    rand_a, rand_b = rand_a[:n], rand_b[:n]
    sa, sb = np.asarray(same_pairs).T
    same = np.einsum("ij,ij->i", emb[sa], emb[sb]).astype(np.float64)
    rand = np.einsum("ij,ij->i", emb[rand_a], emb[rand_b]).astype(np.float64)

    # caption -> caption R@1 (exact; captions with a partner only)
    queries = np.asarray([i for members in groups.values() if len(members) > 1 for i in members])
    hits = 0
    for s in range(0, queries.size, 1024):
        q = queries[s : s + 1024]
        sims = emb[q] @ emb.T
        sims[np.arange(q.size), q] = -np.inf
        best = np.argmax(sims, axis=1)  # ties: lowest caption number
        hits += int((img_num[best] == img_num[q]).sum())
    return {
        "same_mean": float(same.mean()),
        "same_std": float(same.std()),
        "random_mean": float(rand.mean()),
        "random_std": float(rand.std()),
        "gap": float(same.mean() - rand.mean()),
        "auc": roc_auc(same, rand),
        "caption_r@1": float(hits / queries.size),
        "n_images": len(groups),
        "n_captions": len(ids),
        "n_same_pairs": n,
        "n_random_pairs": n,
        "n_r1_queries": int(queries.size),
        "_same": same,
        "_random": rand,
    }


def plot_histogram(same: np.ndarray, rand: np.ndarray, path: str | Path, *, title: str = "Tasviret") -> Path:
    """Write a PNG histogram of same-image vs random-pair cosines to ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise TaseSearchError("plotting needs matplotlib: pip install 'tase-search[train]'") from exc
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(min(same.min(), rand.min(), 0.0), 1.0, 41)
    ax.hist(rand, bins=bins, alpha=0.6, label=f"different images (mean {rand.mean():.3f})", color="tab:gray")
    ax.hist(same, bins=bins, alpha=0.6, label=f"same image (mean {same.mean():.3f})", color="tab:blue")
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("caption pairs")
    ax.set_title(f"{title}: gap {same.mean() - rand.mean():.3f}")
    ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(out, dpi=120)
    except OSError as exc:
        raise TaseSearchError(f"could not write plot {str(out)!r}: {exc}") from exc
    finally:
        plt.close(fig)
    return out


def evaluate_tasviret(
    encoder: QueryEncoder,
    path: str | Path,
    *,
    seed: int = 0,
    plot: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Run the Tasviret check on a captions TSV (``image_id``, ``caption`` columns; header row).

    Captions are encoded with ``encode_query`` (a symmetric task). ``plot`` writes a PNG histogram
    of both cosine distributions (needs matplotlib). ``limit`` keeps the first N caption rows.
    Returns the metrics described in the module docstring.
    """
    ids, captions = load_captions(path, limit=limit)
    return tasviret_scores(encoder, ids, captions, seed=seed, plot=plot)


def tasviret_scores(
    encoder: QueryEncoder,
    image_ids: Sequence[str],
    captions: Sequence[str],
    *,
    seed: int = 0,
    plot: str | None = None,
) -> dict[str, Any]:
    """The Tasviret metrics of ``encoder`` for loaded captions (see :func:`evaluate_tasviret`)."""
    ids = list(image_ids)
    emb = encoder.encode_query(list(captions))
    m = tasviret_metrics(emb, ids, seed=seed)
    same, rand = m.pop("_same"), m.pop("_random")
    if plot:
        name = getattr(encoder, "model_id", "")
        plot_histogram(same, rand, plot, title=f"Tasviret {name}".strip())
        m["plot"] = str(plot)
    return m
