"""Write tests/golden/reranker.json from the bundled reranker (fp32).

Run after its weights change:  python tests/golden/make_golden_reranker.py
"""

from __future__ import annotations

import json
from pathlib import Path

PAIRS = [
    [
        "Türkiye'nin başkenti neresidir?",
        "Ankara, Türkiye Cumhuriyeti'nin başkentidir ve ikinci büyük şehridir.",
    ],
    [
        "Türkiye'nin başkenti neresidir?",
        "Cebirde bir denklem, iki ifadenin birbirine eşit olduğunu belirtir.",
    ],
    [
        "Kitab-ı Bahriye'yi kim yazdı?",
        "Kitâb-ı Bahriye, Pîrî Reis'in 1521'de tamamladığı denizcilik kitabıdır.",
    ],
    [
        "Who wrote the Kitab-ı Bahriye?",
        "Kitâb-ı Bahriye, Pîrî Reis'in 1521'de tamamladığı denizcilik kitabıdır.",
    ],
    ["pizza hamuru nasıl yapılır?", "Osmanlı donanması 16. yüzyılda Akdeniz'de üstünlük kurdu."],
    [
        "Deprem nasıl oluşur?",
        "Depremler, yer kabuğundaki fay hatları boyunca biriken gerilimin aniden boşalmasıyla oluşur.",
    ],
]


def main() -> None:
    from tase_search.query.rerank import Reranker

    rr = Reranker.load("tase-rerank-tr", precision="fp32")
    probs = [float(rr.score(q, [p])[0]) for q, p in PAIRS]
    path = Path(__file__).with_name("reranker.json")
    out = {"model": "tase-rerank-tr", "pairs": PAIRS, "probabilities": [round(p, 6) for p in probs]}
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path}: {[round(p, 3) for p in probs]}")


if __name__ == "__main__":
    main()
