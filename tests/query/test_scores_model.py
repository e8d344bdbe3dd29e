"""The bundled model's calibrated scores on a small corpus of Turkish encyclopedia paragraphs: off-topic
questions below the "probably not relevant" line in every mode, the median real question's top hit at
or above the "probably relevant" line, and LangChain's ``score_threshold`` returning nothing off topic."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from tase_search.evaluation.calibrate import OFF_TOPIC
from tase_search.query.calibration import PROBABLY_NOT_RELEVANT, PROBABLY_RELEVANT
from tase_search.retriever import Retriever

pytestmark = pytest.mark.slow

PARAGRAPHS = [
    "Osmanlı İmparatorluğu, 1299 yılında Osman Gazi tarafından Söğüt'te kurulan bir devlettir. "
    "Devlet, 1453'te II. Mehmed'in İstanbul'u fethetmesiyle imparatorluk hâline geldi. İmparatorluk "
    "1922'de saltanatın kaldırılmasıyla sona erdi.",
    "İbrahim Müteferrika, 1727 yılında İstanbul'da ilk Türk matbaasını kurdu. Matbaada basılan ilk "
    "kitap Vankulu Lügati adlı sözlüktü. Müteferrika ölümüne kadar on yedi eser bastı.",
    "Pîrî Reis, 1513 yılında ceylan derisi üzerine bir dünya haritası çizdi. Harita, Amerika kıtasının "
    "doğu kıyılarını gösteren en eski haritalardan biridir. Bugün Topkapı Sarayı Müzesi'nde saklanır.",
    "Fotosentez, yeşil bitkilerin güneş ışığını kullanarak karbondioksit ve sudan glikoz üretmesidir. "
    "Bu süreçte yapraklardaki klorofil ışığı soğurur. Fotosentezin yan ürünü olarak oksijen açığa çıkar.",
    "Cebir, sayıların yerine harflerin kullanıldığı bir matematik dalıdır. Denklemler cebirin temel "
    "konusudur. Harezmi, dokuzuncu yüzyılda yazdığı kitapla cebirin kurucusu sayılır.",
    "Van Gölü, Türkiye'nin en büyük gölüdür ve sodalı suyu nedeniyle içinde yalnızca inci kefali "
    "yaşayabilir. Göl, Doğu Anadolu Bölgesi'nde yer alır. Gölün ortasında Akdamar Adası bulunur.",
    "Mimar Sinan, Osmanlı İmparatorluğu'nun en ünlü mimarıdır. Süleymaniye Camii ve Edirne'deki "
    "Selimiye Camii onun eserleridir. Sinan, Selimiye'yi ustalık eseri olarak nitelendirmiştir.",
    "Fenerbahçe Spor Kulübü 1907 yılında İstanbul'un Kadıköy semtinde kuruldu. Kulübün futbol takımı "
    "Süper Lig'de birçok kez şampiyon oldu. Takım maçlarını Şükrü Saracoğlu Stadyumu'nda oynar.",
]
QUESTIONS = [
    "Osmanlı Devleti hangi yılda kuruldu?",
    "İlk Türk matbaasını kim kurdu?",
    "Pîrî Reis haritasını ne zaman çizdi?",
    "Fotosentezde hangi gaz açığa çıkar?",
    "Cebirin kurucusu kimdir?",
    "Van Gölü'nde hangi balık yaşar?",
    "Selimiye Camii'ni kim yaptı?",
    "Fenerbahçe hangi yıl kuruldu?",
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    from tase_search.encoding.encoder import Encoder

    encoder = Encoder.load("default", query_backend="torch")
    path = tmp_path_factory.mktemp("scores") / "ix"
    docs = [{"id": str(i), "text": t} for i, t in enumerate(PARAGRAPHS)]
    return Retriever.build(docs, model=encoder, path=path, factory="Flat", progress="off")


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid", "auto"])
def test_off_topic_low_and_real_questions_high(index: Retriever, mode: str) -> None:
    off = index.search(OFF_TOPIC, k=3, mode=mode)
    tops = [hits[0].score for hits in off if hits]
    assert all(h.score_kind == "probability" for hits in off for h in hits)
    assert max(tops, default=0.0) < PROBABLY_NOT_RELEVANT, sorted(zip(tops, OFF_TOPIC))[-3:]
    real = index.search(QUESTIONS, k=3, mode=mode)
    right = [hits[0].score for i, hits in enumerate(real) if hits and hits[0].id == str(i)]
    assert statistics.median(hits[0].score for hits in real) >= PROBABLY_RELEVANT, [
        round(h[0].score, 3) for h in real
    ]
    assert len(right) >= len(QUESTIONS) - 1


def test_langchain_score_threshold_returns_nothing_off_topic(index: Retriever, tmp_path: Path) -> None:
    pytest.importorskip("langchain_core")
    from tase_search.integrations.langchain import TaseEmbeddings, TaseVectorStore

    store = TaseVectorStore(index.path, TaseEmbeddings(index.encoder))
    assert (
        store.similarity_search_with_relevance_scores("pizza hamuru nasıl yapılır", k=4, score_threshold=0.8)
        == []
    )
    found = store.similarity_search_with_relevance_scores(
        "İlk Türk matbaasını kim kurdu?", k=4, score_threshold=0.5
    )
    assert [d.id for d, _ in found] == ["1"]
