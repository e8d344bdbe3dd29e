"""A small Turkish corpus and a toy bilingual encoder for the integration tests.

``BilingualEncoder`` is the hashed bag-of-words :class:`~tase_search.testing.FakeEncoder` with a glossary
in front: English words are replaced by the Turkish words the corpus uses, so an English query finds
its Turkish document the way the real model's shared space does, in microseconds and without weights.
It counts texts per role (``calls["query"]``, ``calls["document"]``), so a test can check that a
toolkit's queries reach ``encode_query`` and its documents ``encode_document``.
"""

from __future__ import annotations

import re

import numpy as np

from tase_search.testing import FakeEncoder

GLOSSARY = {
    "football": "futbol",
    "basketball": "basketbol",
    "rain": "yağmur",
    "tomorrow": "yarın",
    "sunny": "güneşli",
    "weather": "hava",
    "bank": "bankası",
    "interest": "faiz",
    "inflation": "enflasyon",
    "earthquake": "deprem",
    "aegean": "ege",
    "concert": "konserinde",
}

#: id, text, topic. One document per topic word above, so each query has one right answer.
CORPUS = [
    ("spor-1", "Galatasaray futbol maçını son dakikada attığı golle kazandı.", "spor"),
    ("spor-2", "Basketbol takımı deplasmanda rakibini on sayı farkla yendi.", "spor"),
    ("hava-1", "Yarın İstanbul'da kuvvetli yağmur bekleniyor.", "hava"),
    ("hava-2", "Hafta sonu hava güneşli ve sıcak olacak.", "hava"),
    ("ekonomi-1", "Merkez bankası faiz oranını sabit tuttu.", "ekonomi"),
    ("ekonomi-2", "Enflasyon geçen ay beklentilerin üzerinde gerçekleşti.", "ekonomi"),
    ("doga-1", "Ege Denizi'nde büyüklüğü 5,1 olan bir deprem meydana geldi.", "doga"),
    ("kultur-1", "Açık hava konserinde binlerce kişi şarkılara eşlik etti.", "kultur"),
]
TEXTS = [t for _, t, _ in CORPUS]
IDS = [i for i, _, _ in CORPUS]
METADATAS = [{"topic": topic} for _, _, topic in CORPUS]

_WORD = re.compile(r"\w+", re.UNICODE)


class BilingualEncoder(FakeEncoder):
    """FakeEncoder that reads English through :data:`GLOSSARY` (256 dimensions: few hash collisions)."""

    def __init__(self, dim: int = 256) -> None:
        super().__init__(dim, model_id="bilingual-fake")

    def _vector(self, text: str) -> np.ndarray:
        words = [GLOSSARY.get(w, w) for w in _WORD.findall(text.lower())]
        return super()._vector(" ".join(words))
