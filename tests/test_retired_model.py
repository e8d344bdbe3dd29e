"""The earlier default, tase-minilm-tr, is not bundled: naming it says how to get its weights."""

from __future__ import annotations

import pytest

from tase_search.errors import ModelError
from tase_search.models import resolve
from tase_search.models.registry import DEFAULT_MODEL, get_entry
from tase_search.retriever import Retriever
from tase_search.testing import FakeEncoder


def test_default_is_the_bundled_e5_model():
    assert DEFAULT_MODEL == "tase-e5-tr"
    name, location = resolve("default")
    assert name == "tase-e5-tr" and location.endswith("tase-e5-tr")


def test_retired_model_names_the_way_to_its_weights():
    with pytest.raises(ModelError, match=r"not bundled.*training/configs/tase-minilm-tr.yaml.*--model DIR"):
        resolve("tase-minilm-tr")
    assert get_entry("tase-minilm-tr").retired


def test_index_built_with_the_retired_model_gives_the_message_and_opens_with_its_weights(tmp_path):
    old = FakeEncoder(model_id="tase-minilm-tr")
    Retriever.build(
        ["Galatasaray derbiyi kazandı.", "Yarın yağmur yağacak."], model=old, path=tmp_path / "ix"
    )
    with pytest.raises(ModelError, match="not bundled"):
        Retriever.load(tmp_path / "ix").search("maç")
    # named with its weights (here: the same fake weights), the index opens and answers
    hits = Retriever.load(tmp_path / "ix", model=FakeEncoder(model_id="tase-minilm-tr")).search(
        "derbiyi", k=1
    )
    assert hits[0].text.startswith("Galatasaray")
