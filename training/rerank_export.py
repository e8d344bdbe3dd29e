"""Export a trained reranker for bundling: fp16 safetensors that borrow the encoder's word embeddings
and tokenizer (:mod:`tase_search.query.rerank_bundle`), then a check that the export scores as the
checkpoint does.

    python -m training.rerank_export runs/tase-rerank-tr/model --output tase_search/models/tase-rerank-tr

The check scores a few dev-like pairs with the checkpoint (fp32) and the export (fp32 compute over
fp16 weights) and fails when any probability differs by more than ``--tolerance``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PAIRS = [
    ("Türkiye'nin başkenti neresidir?", "Ankara, Türkiye Cumhuriyeti'nin başkentidir."),
    ("Türkiye'nin başkenti neresidir?", "İstanbul Boğazı Karadeniz'i Marmara Denizi'ne bağlar."),
    (
        "Who wrote the Kitab-ı Bahriye?",
        "Kitâb-ı Bahriye, Pîrî Reis tarafından yazılmış bir denizcilik kitabıdır.",
    ),
    ("pizza hamuru nasıl yapılır", "Cebirde bir denklem, iki ifadenin eşitliğini belirtir."),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "checkpoint", type=Path, help="a trained reranker directory (model.safetensors, config.json)"
    )
    ap.add_argument("--output", type=Path, required=True)
    ap.add_argument("--source-model", default="tase-e5-tr", help="the registered model it was trained from")
    ap.add_argument("--tolerance", type=float, default=0.01)
    ap.add_argument(
        "--all-queries",
        action="store_true",
        help="let it read every query (default: questions only, as it was trained: rerank.json)",
    )
    a = ap.parse_args(argv)

    from tase_search.query.rerank import Reranker
    from tase_search.query.rerank_bundle import write_shared

    spec = write_shared(a.checkpoint, a.output, a.source_model)
    if not a.all_queries:
        (a.output / "rerank.json").write_text(json.dumps({"queries": "questions"}) + "\n", encoding="utf-8")
    full = Reranker.load(str(a.checkpoint.resolve()), precision="fp32")
    exported = Reranker.load(str(a.output.resolve()), precision="fp32")
    worst = 0.0
    for q, p in PAIRS:
        worst = max(worst, abs(float(full.score(q, [p])[0]) - float(exported.score(q, [p])[0])))
    size = sum(f.stat().st_size for f in a.output.iterdir() if f.is_file())
    report = {
        "borrowed": sorted(spec["tensors"]),
        "tokenizer_shared": spec["tokenizer"],
        "bytes": size,
        "max_abs_diff": worst,
    }
    print(json.dumps(report, indent=2))
    if worst > a.tolerance:
        print(f"export differs from the checkpoint by {worst:.4f} > {a.tolerance}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
