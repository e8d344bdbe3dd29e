"""Regenerate the golden vectors of the shipped default model (run after retraining it, on purpose).

python tests/golden/regenerate.py
"""

from __future__ import annotations

import json
from pathlib import Path

from tase_search.encoder import Encoder

SENTENCES = [
    "Dün akşamki futbol maçında ev sahibi takım son dakikada galip geldi.",
    "The home team won the football match in the last minute.",
    "Yarın İstanbul'da sağanak yağış bekleniyor.",
    "Kırmızı elmalar tezgâhta ışıl ışıl parlıyordu.",
]

if __name__ == "__main__":
    enc = Encoder.load("default", precision="fp32")
    vecs = enc.encode_document(SENTENCES)
    out = {
        "model_id": enc.model_id,
        "fingerprint": enc.fingerprint,
        "dimension": enc.dimension,
        "sentences": SENTENCES,
        "vectors": [[round(float(x), 6) for x in v] for v in vecs],
    }
    path = Path(__file__).with_name("default-model.json")
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}")
