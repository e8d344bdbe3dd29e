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


def test_index_of_the_earlier_bundled_weights_names_how_to_open_it(tmp_path):
    """An index built with the first tase-e5-tr weights, opened with today's: the message says which
    version it was made with and how to open or rebuild it, not only a fingerprint mismatch."""
    from tase_search.errors import IndexMismatch
    from tase_search.models.registry import earlier_version

    v1 = "6199b8d183a6d866a096533c23a63be6"
    old = FakeEncoder(model_id="tase-e5-tr")
    old.fingerprint = v1
    Retriever.build(
        ["Galatasaray derbiyi kazandı.", "Yarın yağmur yağacak."], model=old, path=tmp_path / "ix"
    )
    with pytest.raises(
        IndexMismatch, match=r"earlier version of 'tase-e5-tr'.*git worktree add.*--overwrite"
    ):
        Retriever.load(tmp_path / "ix", model=FakeEncoder(model_id="tase-e5-tr")).search("maç")
    assert earlier_version("tase-e5-tr", v1) and earlier_version("tase-e5-tr", "0" * 32) is None
