"""is_question: what a reranker trained on questions reads."""

from __future__ import annotations

import pytest

from tase_search.query.question import is_question


@pytest.mark.parametrize(
    "query",
    [
        "Pîrî Reis nerede doğdu?",
        "Osmanlı'da ilk matbaayı kim kurdu",
        "İstanbul'un nüfusu kaç",
        "Ankara başkent mi",
        "bu kitap güzel midir",
        "hangi yıl kuruldu",
        "oksijen nedir",
        "What is the capital of Turkey",
        "how do birds fly",
        "is oxygen a metal",
        "Who wrote Kitab-ı Bahriye?",
        "ne zaman",
    ],
)
def test_questions(query: str) -> None:
    assert is_question(query)


@pytest.mark.parametrize(
    "query",
    [
        "Oksijen",
        "İbrahim Müteferrika",
        "Muhibbe Darga",
        "mustafa behçet efendi",
        "Makina ve Kimya Endüstrisi Kurumu",
        "Atmaca missile",
        "Ottoman Empire",
        "Force",
        "kaçak yapılaşma",
        "is",
        "",
        "   ",
    ],
)
def test_not_questions(query: str) -> None:
    assert not is_question(query)
