"""Write tests/golden/default-model.json from the shipped default model (fp32).

Run after the bundled weights change:  python tests/golden/make_golden.py
"""

from __future__ import annotations

import json
from pathlib import Path

SENTENCES = [
    "Galatasaray derbiyi 2-1 kazandı.",
    "Yarın İstanbul'da kuvvetli yağmur bekleniyor.",
    "Kırmızı elmalar pazarda tanesi beş liradan satılıyor.",
    "The train to Kars leaves at nine in the morning.",
    "Deprem bölgesinde yardım çalışmaları sürüyor.",
    "IŞIK ılık süt içti; şoför öğle yemeğine çıktı.",
    "Fiyat: 12,5 TL (KDV dahil) — son gün 31.12.2026",
    "How do earthquakes happen?",
]


def main() -> None:
    from tase_search.encoding.encoder import Encoder

    enc = Encoder.load("default", precision="fp32")
    vectors = enc.encode_document(SENTENCES)
    queries = enc.encode_query(SENTENCES)  # the query prompt makes these other vectors
    out = {
        "model_id": enc.model_id,
        "fingerprint": enc.fingerprint,
        "dimension": enc.dimension,
        "sentences": SENTENCES,
        "query_prompt": enc.query_prompt,
        "passage_prompt": enc.passage_prompt,
        "vectors": [[round(float(x), 6) for x in row] for row in vectors],
        "query_vectors": [[round(float(x), 6) for x in row] for row in queries],
    }
    path = Path(__file__).with_name("default-model.json")
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path} ({enc.model_id}, {enc.fingerprint})")


if __name__ == "__main__":
    main()
