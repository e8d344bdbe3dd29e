"""Encoder.load is the one way a model is loaded, fast paths included: the index command, the Retriever,
the toolkits and the Ray workers all call it, and it makes the checks every caller needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tase_search.cli.app import main
from tase_search.encoding.encoder import Encoder
from tase_search.errors import InputError


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record the keyword arguments of each Encoder.load; the real one runs."""
    calls: list[dict[str, Any]] = []
    real = Encoder.load.__func__  # type: ignore[attr-defined]

    def recording(cls: type, spec: str = "default", **kw: Any) -> Any:
        calls.append({"spec": spec, **kw})
        return real(cls, spec, **kw)

    monkeypatch.setattr(Encoder, "load", classmethod(recording))
    return calls


def test_the_index_command_loads_through_it_with_its_backend(
    tmp_path: Path, tiny_model_dir: Path, loads: list
) -> None:
    corpus = tmp_path / "a.txt"
    corpus.write_text("Ankara'da hava güzel.\n", encoding="utf-8")
    args = ["index", str(corpus), "--index", str(tmp_path / "idx"), "--model", str(tiny_model_dir)]
    out = CliRunner(env={"TASE_SEARCH_PRECISION": "fp32"}).invoke(
        main, [*args, "--backend", "torch", "--quiet"]
    )
    assert out.exit_code == 0, out.output
    (call,) = loads
    assert call["backend"] == "torch" and call["build_backend"] is True and callable(call["stage"])


def test_the_retriever_and_the_toolkits_load_through_it(
    tmp_path: Path, tiny_model_dir: Path, loads: list
) -> None:
    from tase_search.integrations import load_encoder
    from tase_search.retriever import Retriever

    r = Retriever.build(["Ankara"], model=str(tiny_model_dir), path=tmp_path / "idx", precision="fp32")
    Retriever.load(r.path, precision="fp32").encoder  # noqa: B018 - loads the index's model
    load_encoder(str(tiny_model_dir), precision="fp32")
    assert [c["spec"] for c in loads] == [str(tiny_model_dir)] * 3


def test_a_ray_worker_loads_through_it(tiny_model_dir: Path, loads: list) -> None:
    from tase_search.distributed.ray_engine import EncodeActor, EncoderSpec

    EncodeActor(EncoderSpec(model=str(tiny_model_dir), precision="fp32"))
    assert [c["spec"] for c in loads] == [str(tiny_model_dir)]


def test_a_window_longer_than_the_model_is_refused_by_the_loader(tiny_model_dir: Path) -> None:
    with pytest.raises(InputError, match="max_seq_length 100000 is more than model"):
        Encoder.load(str(tiny_model_dir), precision="fp32", max_seq_length=100_000)
