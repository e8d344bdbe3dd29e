"""Offline tests for training/: loaders, hub row handling, sampler, config, tiny training runs, fp16 export.

Models are built in the test from configs (random init, 32-d, 2 layers) with tokenizers trained
here on a few sentences, so nothing is downloaded and every test takes seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("yaml")
datasets = pytest.importorskip("datasets")

from tase_search.errors import DataError, InputError  # noqa: E402
from tase_search.training import data as tdata  # noqa: E402
from tase_search.training import pipeline  # noqa: E402

CORPUS = [
    "Merhaba, nasılsın?",
    "Hello, how are you?",
    "Kırmızı şapkalı kız çiçek topluyor.",
    "The girl in the red hat is picking flowers.",
    "Bugün hava çok güzel.",
    "The weather is very nice today.",
    "Kedi masanın üstünde uyuyor.",
    "The cat is sleeping on the table.",
    "Yarın İstanbul'a gideceğim.",
    "I will go to Istanbul tomorrow.",
    "Bu kitabı okudun mu?",
    "Did you read this book?",
]
PAIRS = list(zip(CORPUS[0::2], CORPUS[1::2], strict=True))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _tsv(path: Path, header: str, rows: list[tuple[str, ...]]) -> Path:
    return _write(path, header + "\n" + "".join("\t".join(r) + "\n" for r in rows))


# --------------------------------------------------------------------------- loaders
def test_read_pairs_tsv_csv_jsonl(tmp_path: Path) -> None:
    tsv = _tsv(tmp_path / "a.tsv", "tr\ten", PAIRS + [PAIRS[0]])
    ds = tdata.read_pairs(tsv, ["tr", "en"])
    assert ds.column_names == ["tr", "en"]
    assert len(ds) == len(PAIRS)  # the duplicate row is dropped
    csvf = _write(tmp_path / "b.csv", 'src,tgt\n"a, quoted",b\nc,d\n')
    ds = tdata.read_pairs(csvf, ["src", "tgt"], names=["anchor", "positive"])
    assert ds[0] == {"anchor": "a, quoted", "positive": "b"}
    jl = _write(
        tmp_path / "c.jsonl",
        json.dumps({"q": "x", "p": "y"}) + "\n\n" + json.dumps({"q": "z", "p": "w"}) + "\n",
    )
    assert len(tdata.read_pairs(jl, ["q", "p"])) == 2
    both = tdata.read_pairs([tsv, tsv], ["tr", "en"], dedup=False)
    assert len(both) == 2 * (len(PAIRS) + 1)


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("empty.tsv", "", "empty"),
        ("header_only.tsv", "tr\ten\n", "no data rows"),
        ("missing_col.tsv", "tr\tde\nx\ty\n", ":1: header"),
        ("fields.tsv", "tr\ten\na\tb\nc\td\te\n", ":3: expected 2 TSV fields"),
        ("empty_field.tsv", "tr\ten\na\tb\nc\t \n", ":3: field 'en' is empty"),
        ("bad.jsonl", '{"tr": "a", "en": "b"}\n{"tr": \n', ":2: invalid JSON"),
        ("nofield.jsonl", '{"tr": "a"}\n', ":1: field 'en'"),
    ],
)
def test_read_pairs_errors_name_file_and_line(tmp_path: Path, name: str, content: str, needle: str) -> None:
    path = _write(tmp_path / name, content)
    with pytest.raises(DataError) as err:
        tdata.read_pairs(path, ["tr", "en"])
    assert str(path) in str(err.value)
    assert needle in str(err.value)


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        tdata.read_pairs(tmp_path / "nope.tsv")
    with pytest.raises(DataError, match="format"):
        tdata.read_pairs(_write(tmp_path / "x.txt", "a\n"))


def test_sts_loaders(tmp_path: Path) -> None:
    path = _tsv(
        tmp_path / "sts.tsv",
        "score\tsentence1\tsentence2",
        [("5.0", "a", "b"), ("1.0", "c", "d"), ("4.2", "e", "f")],
    )
    ds = tdata.read_sts(path)
    assert ds.column_names == ["sentence1", "sentence2", "score"]
    assert ds["score"] == pytest.approx([1.0, 0.2, 0.84])
    pos = tdata.sts_positive_pairs(path, min_score=4.0)
    assert pos["anchor"] == ["a", "e"]
    bad = _tsv(tmp_path / "bad.tsv", "score\tsentence1\tsentence2", [("x", "a", "b")])
    with pytest.raises(DataError, match="not a number"):
        tdata.read_sts(bad)
    with pytest.raises(DataError, match="outside"):
        tdata.read_sts(_tsv(tmp_path / "big.tsv", "score\tsentence1\tsentence2", [("7", "a", "b")]))


def _squad(tmp_path: Path) -> Path:
    ctx = "Ankara Türkiye'nin başkentidir. İstanbul en kalabalık şehirdir. Nüfusu on beş milyondur."
    obj = {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": ctx,
                        "qas": [
                            {
                                "question": "Türkiye'nin başkenti neresidir?",
                                "answers": [{"answer_start": 0, "text": "Ankara"}],
                            },
                            {
                                "question": "En kalabalık şehir hangisi?",
                                "answers": [{"answer_start": "32", "text": "İstanbul"}],
                            },
                        ],
                    }
                ],
            }
        ]
    }
    return _write(tmp_path / "squad.json", json.dumps(obj, ensure_ascii=False))


def test_read_squad_paragraph_and_sentence(tmp_path: Path) -> None:
    path = _squad(tmp_path)
    para = tdata.read_squad(path)
    assert len(para) == 2 and para[0]["positive"].startswith("Ankara")
    sent = tdata.read_squad(path, target="sentence")
    assert sent["positive"] == ["Ankara Türkiye'nin başkentidir.", "İstanbul en kalabalık şehirdir."]
    cut = tdata.read_squad(path, max_chars=20)
    assert len(cut[0]["positive"]) <= 20
    with pytest.raises(DataError, match="SQuAD"):
        tdata.read_squad(_write(tmp_path / "x.json", "[]"))
    with pytest.raises(DataError, match="invalid JSON"):
        tdata.read_squad(_write(tmp_path / "y.json", "{"))


def test_split_sentences() -> None:
    text = "Bir. İki! Üç? dört"
    spans = tdata.split_sentences(text)
    assert [text[a:b] for a, b in spans] == ["Bir.", "İki!", "Üç? dört"]


# --------------------------------------------------------------------------- hub rows
NLI_ROWS = [
    {"premise": "Bir adam koşuyor.", "hypothesis": "Bir kişi hareket ediyor.", "label": 0},
    {"premise": "Bir adam koşuyor.", "hypothesis": "Adam uyuyor.", "label": 2},
    {"premise": "Bir adam koşuyor.", "hypothesis": "Adam yarışta.", "label": 1},
    {"premise": "Çocuk top oynuyor.", "hypothesis": "Bir çocuk oynuyor.", "label": 0},
    {"premise": "Kadın şarkı söylüyor.", "hypothesis": "Kadın sessiz.", "label": 2},
    {"premise": "Etiketsiz.", "hypothesis": "Altın etiket yok.", "label": -1},
]


def test_nli_rows_to_examples() -> None:
    triplets, pairs = tdata.nli_rows_to_examples(NLI_ROWS)
    assert triplets == [("Bir adam koşuyor.", "Bir kişi hareket ediyor.", "Adam uyuyor.")]
    assert pairs == [("Çocuk top oynuyor.", "Bir çocuk oynuyor.")]
    triplets, pairs = tdata.nli_rows_to_examples(NLI_ROWS, hard_negatives=False)
    assert not triplets and len(pairs) == 2


def test_load_nli_tr_with_fixture_loader() -> None:
    calls = []

    def loader(hub_id: str, config: str, split: str) -> object:
        calls.append((hub_id, config, split))
        return datasets.Dataset.from_list(NLI_ROWS if config == "snli_tr" else NLI_ROWS[3:4])

    out = tdata.load_nli_tr(loader=loader)
    assert calls == [("boun-tabi/nli_tr", "snli_tr", "train"), ("boun-tabi/nli_tr", "multinli_tr", "train")]
    assert out["triplets"].column_names == ["anchor", "positive", "negative"]
    assert len(out["triplets"]) == 1 and len(out["pairs"]) == 1  # the repeated pair is deduplicated

    def failing(*_a: object, **_k: object) -> object:
        raise ConnectionError("offline")

    with pytest.raises(DataError, match="network"):
        tdata.load_nli_tr(loader=failing)


def test_parallel_rows_nested_and_flat() -> None:
    rows = [
        {"translation": {"tr": "Merhaba", "en": "Hello"}},
        {"translation": {"tr": "Merhaba", "en": "Hello"}},
        {"translation": {"tr": "", "en": "Empty"}},
        {"translation": {"tr": "x" * 50, "en": "long"}},
    ]
    assert tdata.parallel_rows_to_pairs(rows, "translation.tr", "translation.en", max_chars=40) == [
        ("Merhaba", "Hello")
    ]
    ds = tdata.load_parallel_hub(
        "some/corpus",
        "translation.tr",
        "translation.en",
        loader=lambda *a, **k: datasets.Dataset.from_list(rows),
    )
    assert ds.column_names == ["tr", "en"] and len(ds) == 2
    flat = tdata.load_parallel_hub(
        "x/y", "src", "tgt", loader=lambda *a, **k: datasets.Dataset.from_list([{"src": "a", "tgt": "b"}])
    )
    assert flat[0] == {"src": "a", "tgt": "b"}


# --------------------------------------------------------------------------- sampler
def test_sampler_no_duplicates_and_buckets() -> None:
    texts = [f"s{i} " + "x " * (i % 50) for i in range(400)]
    anchors = texts + texts[:100]  # 100 anchors appear twice
    positives = [t + "!" for t in texts] + [f"other {i}" for i in range(100)]
    ds = datasets.Dataset.from_dict({"anchor": anchors, "positive": positives})
    sampler = tdata.BucketedNoDuplicatesBatchSampler(ds, batch_size=16, drop_last=False, bucket_batches=4)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(ds)))  # every row exactly once
    for b in batches:
        seen = [t for i in b for t in (anchors[i], positives[i])]
        assert len(seen) == len(set(seen)), "a text repeats inside a batch"
    # bucketing: the length spread inside a batch is far below the spread of the data
    spread = [
        max(len(anchors[i]) for i in b) - min(len(anchors[i]) for i in b) for b in batches if len(b) > 1
    ]
    assert sum(spread) / len(spread) < 0.5 * (max(map(len, anchors)) - min(map(len, anchors)))
    # a new epoch reshuffles, the same epoch repeats
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_sampler_ignores_label_column() -> None:
    ds = datasets.Dataset.from_dict(
        {"a": ["x", "y", "z"], "b": ["p", "q", "r"], "label": [[0.1], [0.1], [0.1]]}
    )
    batches = list(tdata.BucketedNoDuplicatesBatchSampler(ds, batch_size=3, drop_last=False))
    assert batches and sorted(batches[0]) == [0, 1, 2]


# --------------------------------------------------------------------------- config
def test_config_overrides_and_vars(tmp_path: Path) -> None:
    cfg_path = _write(
        tmp_path / "c.yaml",
        """
name: t
data_root: /nowhere
base_model: some-model
stages:
  - tasks:
      - data: {type: pairs, paths: ["${data_root}/bitext/*.tsv"]}
        loss: {type: mnrl}
""",
    )
    cfg = pipeline.load_config(
        cfg_path, ["data_root=/data", "stages.0.lr=1e-4", "stages.0.batch_size=8", "extra.x=1"]
    )
    st = cfg["stages"][0]
    assert st["tasks"][0]["data"]["paths"] == ["/data/bitext/*.tsv"]
    assert st["lr"] == pytest.approx(1e-4) and st["batch_size"] == 8 and st["epochs"] == 1.0
    assert cfg["extra"] == {"x": 1} and st["name"] == "stage1" and st["tasks"][0]["name"] == "task1"
    with pytest.raises(InputError, match="key=value"):
        pipeline.load_config(cfg_path, ["novalue"])
    with pytest.raises(InputError, match="index"):
        pipeline.load_config(cfg_path, ["stages.3.lr=1"])
    with pytest.raises(InputError, match="not found"):
        pipeline.load_config(tmp_path / "missing.yaml")
    bad = _write(
        tmp_path / "bad.yaml",
        "name: t\nbase_model: m\nstages:\n  - {lr: 1, tasks: [{data: {}, loss: {}}], bogus: 1}\n",
    )
    with pytest.raises(InputError, match="unknown keys"):
        pipeline.load_config(bad)
    undefined = _write(
        tmp_path / "u.yaml", "base_model: ${nope}\nstages: [{tasks: [{data: {}, loss: {}}]}]\n"
    )
    with pytest.raises(InputError, match="nope"):
        pipeline.load_config(undefined)


def test_shipped_configs_parse(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2] / "training" / "configs"
    paper = pipeline.load_config(root / "paper.yaml", ["data_root=/d"])
    assert paper["base_model"] == "flan-t5-small"
    s1, s2 = paper["stages"]
    assert (s1["epochs"], s1["batch_size"], s1["lr"]) == (3.5, 32, 1e-5)
    assert (s2["epochs"], s2["batch_size"], s2["lr"]) == (1.2, 16, 1e-4)
    assert s1["tasks"][0]["data"]["paths"] == ["/d/bitext/train/*.tsv"]
    assert s2["tasks"][0]["data"]["type"] == "nli_tr"
    ship = pipeline.load_config(root / "tase-minilm-tr.yaml", ["data_root=/d"])
    assert all("/d/" in json.dumps(t["data"]) for t in ship["stages"][0]["tasks"])
    assert "dev" not in json.dumps(ship["stages"]).replace("/dev/null", "")  # never trains on dev files
    for path in sorted((root / "experiments").glob("*.yaml")):  # experiments: same rules
        exp = pipeline.load_config(path, ["data_root=/d"])
        assert exp["stages"] and all(
            "/d/" in json.dumps(t["data"]) for st in exp["stages"] for t in st["tasks"]
        )
        assert "dev" not in json.dumps(exp["stages"]).replace("/dev/null", ""), path


# --------------------------------------------------------------------------- tiny models
def _tiny_tokenizer(kind: str) -> object:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if kind == "bert":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=False)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok.train_from_iterator(
            CORPUS * 3, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials)
        )
        from tokenizers.processors import TemplateProcessing

        tok.post_processor = TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B [SEP]",
            special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=tok,
            unk_token="[UNK]",
            pad_token="[PAD]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
            model_max_length=64,
        )
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(
        CORPUS * 3,
        trainers.UnigramTrainer(vocab_size=120, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>"),
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=64
    )


def _tiny_model_dir(tmp_path: Path, kind: str) -> Path:
    out = tmp_path / f"tiny-{kind}"
    tok = _tiny_tokenizer(kind)
    if kind == "bert":
        from transformers import BertConfig, BertModel

        cfg = BertConfig(
            vocab_size=len(tok),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
        model = BertModel(cfg)
    else:
        from transformers import T5Config, T5EncoderModel

        cfg = T5Config(
            vocab_size=len(tok),
            d_model=32,
            d_kv=16,
            d_ff=64,
            num_layers=2,
            num_heads=2,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
        model = T5EncoderModel(cfg)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _tiny_config(tmp_path: Path, base: Path, extra_tasks: str = "", teacher: str = "") -> Path:
    _tsv(tmp_path / "bitext.tsv", "tr\ten", PAIRS * 2)
    _tsv(
        tmp_path / "sts.tsv",
        "score\tsentence1\tsentence2",
        [("5", PAIRS[0][0], CORPUS[4]), ("1", CORPUS[6], CORPUS[8]), ("3", CORPUS[2], CORPUS[10])],
    )
    return _write(
        tmp_path / "tiny.yaml",
        f"""
name: tiny
data_root: {tmp_path}
base_model: {base}
{teacher}
precision: fp32
threads: 1
max_seq_length: 32
stages:
  - name: s1
    batch_size: 4
    lr: 1.0e-3
    max_steps: 3
    save_steps: 2
    logging_steps: 1
    tasks:
      - name: bitext
        data: {{type: pairs, paths: ["${{data_root}}/bitext.tsv"], columns: [tr, en]}}
        loss: {{type: mnrl_symmetric}}
{extra_tasks}
""",
    )


def _trained_changes(base: Path, out: Path) -> None:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from tase_search.encoding.st_loader import load_sentence_transformer

    before = load_sentence_transformer(str(base)).encode(CORPUS[:2])
    after = SentenceTransformer(str(out / "model"), device="cpu").encode(CORPUS[:2])
    assert after.shape == before.shape
    assert not np.allclose(before, after, atol=1e-4)


def test_tiny_bert_trains_multitask_and_writes_run_json(tmp_path: Path) -> None:
    base = _tiny_model_dir(tmp_path, "bert")
    extra = """      - name: sts
        data: {type: sts, path: "${data_root}/sts.tsv"}
        loss: {type: cosent}
      - name: distill
        data: {type: pairs, paths: ["${data_root}/bitext.tsv"], columns: [tr, en]}
        loss: {type: align_distill, teacher_column: en, mse_weight: 2.0}
"""
    cfg = pipeline.load_config(_tiny_config(tmp_path, base, extra, teacher=f"teacher: {base}"))
    out = pipeline.train(cfg, tmp_path / "run")
    assert (out / "model.safetensors").is_file() and (out / "modules.json").is_file()
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["stages"][0]["steps"] == 3 and run["stages"][0]["pairs_per_second"] > 0
    assert set(run["stages"][0]["tasks"]) == {"bitext", "sts", "distill"}
    assert any(f.endswith("bitext.tsv") and len(h) == 64 for f, h in run["data_files"].items())
    assert run["versions"]["sentence-transformers"] and run["config"]["name"] == "tiny"
    assert (tmp_path / "run" / "stage-1" / "checkpoints").is_dir()
    assert not any(p.name.startswith("checkpoint-") for p in out.iterdir())
    cache = pipeline._load_teacher_cache(tmp_path / "run" / "teacher-cache.npz", str(base))
    assert set(cache) == {en for _, en in PAIRS}  # teacher embeddings reusable by --resume
    assert pipeline._load_teacher_cache(tmp_path / "run" / "teacher-cache.npz", "other-teacher") == {}
    _trained_changes(base, tmp_path / "run")


def test_tiny_t5_encoder_trains(tmp_path: Path) -> None:
    base = _tiny_model_dir(tmp_path, "t5")
    cfg = pipeline.load_config(_tiny_config(tmp_path, base))
    pipeline.train(cfg, tmp_path / "run")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tmp_path / "run" / "model"), device="cpu")
    assert type(model[0].auto_model).__name__ == "T5EncoderModel"
    _trained_changes(base, tmp_path / "run")


def test_resume_skips_finished_stage(tmp_path: Path) -> None:
    base = _tiny_model_dir(tmp_path, "bert")
    cfg = pipeline.load_config(_tiny_config(tmp_path, base))
    pipeline.train(cfg, tmp_path / "run")
    pipeline.train(cfg, tmp_path / "run", resume=True)  # stage model exists: skipped, export redone
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["stages"][0]["skipped_on_resume"] and run["stages"][0]["steps"] == 3  # record kept
    assert len(run["previous_runs"]) == 1


def test_resume_from_checkpoint(tmp_path: Path) -> None:
    base = _tiny_model_dir(tmp_path, "bert")
    cfg = pipeline.load_config(_tiny_config(tmp_path, base), ["stages.0.max_steps=4"])
    pipeline.train(cfg, tmp_path / "run", max_steps=2)  # stops at step 2 with checkpoint-2
    import shutil

    shutil.rmtree(tmp_path / "run" / "stage-1" / "model")  # pretend the stage was interrupted
    pipeline.train(cfg, tmp_path / "run", resume=True)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["stages"][-1]["resumed_from"].endswith("checkpoint-2")
    assert run["stages"][-1]["steps"] == 4


def test_missing_data_fails_before_training(tmp_path: Path) -> None:
    base = _tiny_model_dir(tmp_path, "bert")
    cfg = pipeline.load_config(_tiny_config(tmp_path, base), ["data_root=/definitely/not/here"])
    with pytest.raises(DataError, match="not/here"):
        pipeline.train(cfg, tmp_path / "run")


def test_export_fp16_round_trip(tmp_path: Path) -> None:
    import numpy as np
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer

    from tase_search.encoding.st_loader import load_sentence_transformer

    base = _tiny_model_dir(tmp_path, "bert")
    model = load_sentence_transformer(str(base))
    model.save(str(tmp_path / "fp32"))
    (tmp_path / "fp32" / "checkpoint-5").mkdir()
    (tmp_path / "fp32" / "optimizer.pt").write_bytes(b"x")
    out = pipeline.export_fp16(tmp_path / "fp32", tmp_path / "fp16")
    tensors = load_file(str(out / "model.safetensors"))
    assert all(str(t.dtype) == "torch.float16" for t in tensors.values() if t.is_floating_point())
    assert not (out / "checkpoint-5").exists() and not (out / "optimizer.pt").exists()
    a = model.encode(CORPUS)
    b = SentenceTransformer(str(out), device="cpu").encode(CORPUS)
    assert np.allclose(a, b, atol=2e-2)
    with pytest.raises(Exception, match="modules.json"):
        pipeline.export_fp16(tmp_path, tmp_path / "x")


def test_build_loss_unknown_and_cached() -> None:
    with pytest.raises(InputError, match="unknown loss"):
        pipeline.build_loss({"type": "nope"}, model=None)


# --------------------------------------------------------------------------- vocab
def test_extend_wordpiece_keeps_old_ids_and_adds_letters() -> None:
    from tase_search.training.vocab import extend_wordpiece

    tj = {
        "normalizer": {"type": "BertNormalizer", "lowercase": True, "strip_accents": None},
        "model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "[UNK]": 1, "the": 2, "##s": 3}},
    }
    new, added = extend_wordpiece(tj, ["[PAD]", "kırmızı", "##lar", "the", "ş"], max_new=1000)
    vocab = new["model"]["vocab"]
    assert vocab["the"] == 2 and vocab["##s"] == 3
    assert {"kırmızı", "##lar", "ş", "##ş", "ı", "##ı"} <= set(added)
    assert sorted(vocab.values()) == list(range(len(vocab)))
    assert new["normalizer"]["type"] == "Sequence"
    assert new["normalizer"]["normalizers"][1]["strip_accents"] is False
    assert tj["normalizer"]["strip_accents"] is None  # input untouched


def test_extend_model_vocab_tiny(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from tase_search.training.vocab import extend_model_vocab

    base = _tiny_model_dir(tmp_path, "bert")
    turkish = CORPUS[0::2] * 5 + ["Kırmızı kırmızı kırmızılar şapkalar şapkalı"] * 10
    report = extend_model_vocab(
        base,
        tmp_path / "ext",
        turkish,
        english_probe=CORPUS[1::2],
        vocab_size=400,
        max_new=300,
        min_frequency=1,
    )
    assert report.added > 0 and report.new_size == report.old_size + report.added
    model = SentenceTransformer(str(tmp_path / "ext"), device="cpu")
    assert model[0].auto_model.get_input_embeddings().weight.shape[0] == report.new_size
    assert "[UNK]" not in model.tokenizer.tokenize("İstanbul şapkalı")
    assert report.tr_tokens_after <= report.tr_tokens_before


# --------------------------------------------------------------------------- CLI
def test_cli_train_help_and_errors(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tase_search.cli.train import train

    runner = CliRunner()
    res = runner.invoke(train, ["-h"])
    assert res.exit_code == 0 and "Example" in res.output and "--set" in res.output
    res = runner.invoke(train, [str(tmp_path / "missing.yaml")])
    assert res.exit_code != 0 and "not found" in res.output
    bad = _write(tmp_path / "c.yaml", "name: x\nbase_model: m\nstages: [{tasks: [{data: {}, loss: {}}]}]\n")
    res = runner.invoke(train, [str(bad), "--set", "oops"])
    assert res.exit_code != 0 and "key=value" in res.output


def test_cli_train_runs_tiny_config(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tase_search.cli.train import train

    base = _tiny_model_dir(tmp_path, "bert")
    cfg = _tiny_config(tmp_path, base)
    res = CliRunner().invoke(train, [str(cfg), "--output", str(tmp_path / "run"), "--max-steps", "1"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "run" / "model" / "modules.json").is_file()


# --------------------------------------------------------------------------- ablation
def test_ablation_configs_equal_budget_and_differ_only_where_meant() -> None:
    from tase_search.training import ablate

    cfgs = {r: ablate.load_row_config(r, "/d") for r in ablate.ROWS}
    assert {ablate.step_budget(c) for c in cfgs.values()} == {240}
    for c in cfgs.values():
        assert c["base_model"] == "all-minilm-l6-v2" and c["question"]
        assert (c["seed"], c["threads"], c["precision"], c["max_seq_length"], c["save_max_seq_length"]) == (
            42,
            1,
            "auto",
            96,
            256,
        )
        assert {(s["batch_size"], s["lr"]) for s in c["stages"]} == {(64, 5e-5)}
        text = json.dumps(c["stages"])
        assert "/d/" in text and "dev" not in text  # never trains on dev files
    tasks = {r: [[t["name"] for t in s["tasks"]] for s in c["stages"]] for r, c in cfgs.items()}
    assert tasks["both"] == tasks["stage1"] + tasks["stage2"] == tasks["both-distill"]
    both, distill = cfgs["both"], cfgs["both-distill"]
    assert both["stages"][1] == distill["stages"][1]  # the same stage 2
    assert both["stages"][0]["tasks"][0]["loss"] == {"type": "mnrl_symmetric"}
    assert distill["stages"][0]["tasks"][0]["loss"]["type"] == "align_distill"
    assert both["stages"][0]["tasks"][0]["data"] == distill["stages"][0]["tasks"][0]["data"]
    assert not both.get("teacher") and distill["teacher"] == "all-minilm-l6-v2"
    # --max-steps re-splits the total budget in the configs' proportions
    assert [s["max_steps"] for s in ablate.load_row_config("both", "/d", max_steps=2)["stages"]] == [1, 1]
    assert [s["max_steps"] for s in ablate.load_row_config("stage2", "/d", max_steps=7)["stages"]] == [7]
    with pytest.raises(InputError, match="no ablation row"):
        ablate.load_row_config("nope", "/d")


def _ablation_data_root(root: Path) -> Path:
    """Tiny train + dev files in the shared data layout (only the dev tasks the test evaluates)."""
    for sub in ("bitext/train", "bitext/dev", "stsb-tr", "tquad"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    _tsv(root / "bitext/train/tiny.tsv", "tr\ten", PAIRS)
    _tsv(root / "bitext/dev/tatoeba-dev-tur-eng.tsv", "tr\ten", PAIRS[:4])
    sts = [
        ("5", PAIRS[0][0], CORPUS[4]),
        ("4.5", CORPUS[2], CORPUS[6]),
        ("1", CORPUS[6], CORPUS[8]),
        ("3", CORPUS[2], CORPUS[10]),
    ]
    _tsv(root / "stsb-tr/train.tsv", "score\tsentence1\tsentence2", sts)
    _tsv(root / "stsb-tr/dev.tsv", "score\tsentence1\tsentence2", sts)
    squad = _squad(root)
    (root / "tquad/train-v0.1.json").write_bytes(squad.read_bytes())
    squad.rename(root / "tquad/dev-v0.1.json")
    return root


@pytest.mark.slow  # trains and evaluates every ablation row, then runs again to check the reuse
def test_ablate_trains_rows_resumes_and_writes_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tase_search.training import ablate

    base = _tiny_model_dir(tmp_path, "bert")
    data = _ablation_data_root(tmp_path / "data")
    out = tmp_path / "abl"
    argv = [
        "--data-root",
        str(data),
        "--output",
        str(out),
        "--max-steps",
        "2",
        "--base-model",
        str(base),
        "--teacher",
        str(base),
        "--set",
        "precision=fp32",
        "--set",
        "max_seq_length=32",
        "--tasks",
        "tatoeba-dev,stsb-tr,tquad",
        "--limit",
        "4",
        "--table-out",
        str(tmp_path / "t.md"),
        "--json-out",
        str(tmp_path / "t.json"),
    ]
    assert ablate.main(argv) == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "t.json").read_text())
    assert list(report["rows"]) == list(ablate.ROWS)
    for row, info in report["rows"].items():
        assert info["trained_now"] and info["steps"] == info["step_budget"] == 2, row
        assert info["train_seconds"] > 0 and (out / row / "model" / "modules.json").is_file()
    assert report["rows"]["both-distill"]["teacher_seconds"] > 0
    assert list(report["eval"]["models"]) == ["base", *ablate.ROWS]
    table = (tmp_path / "t.md").read_text()
    head = next(line for line in table.splitlines() if line.startswith("| model"))
    assert "tatoeba-dev.tr-en accuracy" in head and "stsb-tr spearman" in head and "tquad ndcg@10" in head
    assert f"| base ({base}) | 0 | - |" in table and "| both-distill | 2 |" in table
    assert "## Per task" in table  # format_table's task x model view follows
    # a second session trains nothing and reuses the cached evaluations
    capsys.readouterr()
    assert ablate.main(argv) == 0
    again = json.loads((tmp_path / "t.json").read_text())
    assert not any(info["trained_now"] for info in again["rows"].values())
    assert again["eval"]["models"] == report["eval"]["models"]
    assert capsys.readouterr().out.count("evaluation reused") == 5
    # a different budget in the same output is refused, not silently mixed
    assert ablate.main([*argv[:4], "--max-steps", "4", *argv[6:]]) == 2
    assert "2-step budget" in capsys.readouterr().err


def test_ablate_missing_data_names_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tase_search.training import ablate

    data = _ablation_data_root(tmp_path / "data")
    (data / "tquad/train-v0.1.json").unlink()
    (data / "stsb-tr/dev.tsv").unlink()
    with pytest.raises(DataError) as err:
        ablate.run_ablation(data, tmp_path / "abl", ["stage2"], tasks=["stsb-tr"])
    msg = str(err.value)
    assert str(data / "tquad/train-v0.1.json") in msg and str(data / "stsb-tr/dev.tsv") in msg
    assert "laid out like the shared data folder" in msg and not (tmp_path / "abl").exists()
    assert (
        ablate.main(["--data-root", str(tmp_path / "none"), "--output", str(tmp_path / "abl"), "--no-eval"])
        == 2
    )
    err_text = capsys.readouterr().err
    assert "does not exist" in err_text and "bitext/train/*.tsv" in err_text


# --------------------------------------------------------------------------- hard negatives
def test_hard_negative_spec_is_checked_at_config_load(tmp_path: Path) -> None:
    base = _tiny_model_dir(tmp_path, "bert")
    text = (
        _tiny_config(tmp_path, base)
        .read_text()
        .replace(
            "loss: {type: mnrl_symmetric}",
            "loss: {type: mnrl_symmetric}\n        hard_negatives: {range_mx: 5}",
        )
    )
    with pytest.raises(
        InputError, match=r"task 'bitext'.*unknown key\(s\) \['range_mx'\].*valid: num_negatives"
    ):
        pipeline.load_config(_write(tmp_path / "bad.yaml", text))
    text = text.replace("range_mx: 5", "range_min: 5, range_max: 5")
    with pytest.raises(InputError, match="range_min 5 must be < range_max 5"):
        pipeline.load_config(_write(tmp_path / "bad.yaml", text))


def test_mined_negatives_are_wrong_translations_and_cached(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from tase_search.training.mining import mine_pair_negatives

    base = _tiny_model_dir(tmp_path, "bert")
    model = SentenceTransformer(str(base), device="cpu")
    model.train()
    ds = tdata.read_pairs([str(_tsv(tmp_path / "b.tsv", "tr\ten", PAIRS))], ["tr", "en"])
    logs: list[str] = []
    out = mine_pair_negatives(
        ds, model, {"range_max": 5, "relative_margin": 0.0}, cache_dir=tmp_path / "c", log=logs.append
    )
    assert out.column_names == ["tr", "en", "negative_1"] and 0 < len(out) <= len(PAIRS)
    truth = dict(PAIRS)
    english = set(truth.values())
    for row in out:
        assert row["en"] == truth[row["tr"]]
        assert row["negative_1"] in english and row["negative_1"] != row["en"]  # a real, wrong translation
    assert model.training  # mining ran in eval mode and restored the training mode
    assert len(list((tmp_path / "c").glob("hard-negatives-*.jsonl"))) == 1
    again = mine_pair_negatives(
        ds, model, {"range_max": 5, "relative_margin": 0.0}, cache_dir=tmp_path / "c", log=logs.append
    )
    assert again.to_list() == out.to_list() and "from" in logs[-1]  # second call read the cache
    with pytest.raises(InputError, match="two-column pair task"):
        mine_pair_negatives(out, model, {}, log=logs.append)


def test_pipeline_trains_with_mined_negatives_and_align_distill(tmp_path: Path) -> None:
    base = _tiny_model_dir(tmp_path, "bert")
    extra = """      - name: distill
        data: {type: pairs, paths: ["${data_root}/bitext.tsv"], columns: [tr, en]}
        loss: {type: align_distill, teacher_column: en}
        hard_negatives: {range_max: 5, relative_margin: 0.0}
"""
    cfg = pipeline.load_config(_tiny_config(tmp_path, base, extra, teacher=f"teacher: {base}"))
    pipeline.train(cfg, tmp_path / "run")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    stage = run["stages"][0]
    assert stage["tasks"]["distill"]["columns"][:3] == ["tr", "en", "negative_1"]
    assert stage["mining_seconds"] >= 0
    _trained_changes(base, tmp_path / "run")


def test_align_distill_mse_ignores_negative_columns() -> None:
    import torch

    from tase_search.training.losses import AlignDistillLoss

    class Stub(torch.nn.Module):
        def forward(self, f: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {"sentence_embedding": f["x"]}

    label = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    cols = [{"x": label.clone()}, {"x": label.clone()}]
    loss = AlignDistillLoss(Stub(), mnrl_weight=0.0, mse_weight=1.0)
    assert loss(cols, label).item() == 0.0
    far = {"x": -label}  # a hard negative far from the teacher label must not add to the MSE term
    assert loss([*cols, far], label).item() == 0.0
    rank = AlignDistillLoss(Stub(), mnrl_weight=1.0, mse_weight=0.0, scale=1.0)
    hard = {"x": label.flip(0)}  # each row's negative is the other row's positive: ranking gets harder
    assert rank([*cols, hard], label).item() > rank(cols, label).item() + 0.1


# --------------------------------------------------------------------------- weight interpolation
def test_interpolate_state_dicts_math_and_errors() -> None:
    import torch

    from tase_search.errors import ModelError
    from tase_search.training.merge import interpolate_state_dicts

    a = {"w": torch.tensor([0.0, 2.0], dtype=torch.float16), "ids": torch.tensor([1, 2])}
    b = {"w": torch.tensor([4.0, 6.0], dtype=torch.float16), "ids": torch.tensor([1, 2])}
    out = interpolate_state_dicts(a, b, 0.25)
    assert out["w"].dtype == torch.float16 and out["w"].tolist() == [1.0, 3.0]
    assert out["ids"].tolist() == [1, 2]
    with pytest.raises(InputError, match=r"outside \[0, 1\]"):
        interpolate_state_dicts(a, b, 1.5)
    with pytest.raises(ModelError, match=r"only in the second \['x'\]"):
        interpolate_state_dicts(a, {**b, "x": torch.zeros(1)}, 0.5)
    with pytest.raises(ModelError, match=r"'w' has shape \(2,\) in the first model and \(3,\)"):
        interpolate_state_dicts(a, {**b, "w": torch.zeros(3)}, 0.5)
    with pytest.raises(ModelError, match="integer buffer 'ids' differs"):
        interpolate_state_dicts(a, {**b, "ids": torch.tensor([1, 3])}, 0.5)


def test_interpolate_models_endpoints_midpoint_and_tokenizer_check(tmp_path: Path) -> None:
    import shutil

    import numpy as np
    import torch
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer
    from transformers import BertModel

    from tase_search.errors import ModelError
    from tase_search.training.merge import interpolate_models, main

    (tmp_path / "a").mkdir()
    first = _tiny_model_dir(tmp_path / "a", "bert")
    second = tmp_path / "b"
    shutil.copytree(first, second)  # same tokenizer, fresh random weights
    BertModel(BertModel.config_class.from_pretrained(str(first))).save_pretrained(second)
    enc = {
        k: SentenceTransformer(str(p), device="cpu").encode(CORPUS) for k, p in (("a", first), ("b", second))
    }
    assert not np.allclose(enc["a"], enc["b"], atol=1e-2)  # two random inits really differ
    for w, want in ((0.0, "a"), (1.0, "b")):
        out = interpolate_models(str(first), str(second), w, tmp_path / f"m{w}")
        got = SentenceTransformer(str(out), device="cpu").encode(CORPUS)
        assert np.allclose(got, enc[want], atol=2e-2), w
    mid = interpolate_models(str(first), str(second), 0.5, tmp_path / "mid", fp16=False)
    sa, sb, sm = (load_file(str(p / "model.safetensors")) for p in (first, second, mid))
    k = next(k for k in sm if "query.weight" in k)
    assert torch.allclose(sm[k], (sa[k] + sb[k]) / 2, atol=1e-6)
    t5 = _tiny_model_dir(tmp_path / "a", "t5")
    with pytest.raises(ModelError, match="different tokenizers"):
        interpolate_models(str(first), str(t5), 0.5, tmp_path / "bad")
    assert main([str(first), str(second), "--weight", "2", "--output", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_pipeline_interpolate_step(tmp_path: Path) -> None:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    base = _tiny_model_dir(tmp_path, "bert")
    text = _tiny_config(tmp_path, base).read_text() + f"interpolate: {{with: {base}, weight: 1.0}}\n"
    cfg = pipeline.load_config(_write(tmp_path / "i.yaml", text))
    assert cfg["interpolate"] == {"with": str(base), "weight": 1.0}
    out = pipeline.train(cfg, tmp_path / "run")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["interpolate"]["weight"] == 1.0 and run["stages"][0]["steps"] == 3
    # weight 1.0 on the base: the exported model is the base again, though the stage trained
    got = SentenceTransformer(str(out), device="cpu").encode(CORPUS)
    assert np.allclose(got, SentenceTransformer(str(base), device="cpu").encode(CORPUS), atol=2e-2)
    trained = SentenceTransformer(str(tmp_path / "run" / "stage-1" / "model"), device="cpu").encode(CORPUS)
    assert not np.allclose(got, trained, atol=1e-4)
    bad = _write(tmp_path / "bad.yaml", text.replace("weight: 1.0", "wieght: 1.0"))
    with pytest.raises(InputError, match=r"bad.yaml: 'interpolate' has unknown keys \['wieght'\]"):
        pipeline.load_config(bad)


# --------------------------------------------------------------------------- packaging
REPO = Path(__file__).resolve().parents[2]


def test_training_is_a_module_of_the_package() -> None:
    import tase_search.training

    assert Path(tase_search.training.__file__).resolve().parent == REPO / "training"
    source = (REPO / "tase_search" / "cli" / "train.py").read_text(encoding="utf-8")
    assert "sys.path" not in source and "from ..training import pipeline" in source
    from tase_search.training.config import config_path, shipped_configs

    assert {"paper", "tase-e5-tr", "tase-minilm-tr", "ablation/both"} <= set(shipped_configs())
    assert config_path("paper") == REPO / "training" / "configs" / "paper.yaml"
    with pytest.raises(InputError, match="shipped config"):
        config_path("../pyproject")


def test_core_import_and_cli_help_without_datasets() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['datasets'] = None\n"
        "import tase_search, tase_search.evaluation, tase_search.evaluation.labelled_data\n"
        "from tase_search.cli import main\n"
        "for args in (['--help'], ['train', '--help'], ['eval', '--help']):\n"
        "    try:\n"
        "        main(args, standalone_mode=False)\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, (args, exc.code)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "CONFIG is a YAML file or the name of a shipped config" in res.stdout


def test_shipped_configs_name_no_data_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml
    from click.testing import CliRunner

    from tase_search.cli.train import train
    from tase_search.training.config import CONFIG_DIR

    for path in CONFIG_DIR.rglob("*.yaml"):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert "data_root" not in raw and "/work/" not in path.read_text(encoding="utf-8"), path
    with pytest.raises(InputError, match=r"--set data_root="):
        pipeline.load_config("paper")
    monkeypatch.chdir(tmp_path)  # any directory: the shipped config is found by name
    res = CliRunner().invoke(train, ["tase-e5-tr"])
    assert res.exit_code != 0 and "--set data_root=" in res.output


@pytest.mark.slow
def test_wheel_ships_training_and_its_configs(tmp_path: Path) -> None:
    import subprocess
    import sys
    import zipfile

    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    names = set(zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist())
    for path in (REPO / "training").rglob("*"):
        if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts:
            assert f"tase_search/training/{path.relative_to(REPO / 'training')}" in names, path
    meta = next(n for n in names if n.endswith("METADATA"))
    requires = [
        line
        for line in zipfile.ZipFile(next(tmp_path.glob("*.whl"))).read(meta).decode().splitlines()
        if line.startswith("Requires-Dist: datasets")
    ]
    assert requires and all("extra ==" in line for line in requires)


# --------------------------------------------------------------------------- checkpoint selection
def test_eval_config_is_checked(tmp_path: Path) -> None:
    from tase_search.training.selection import build_selection

    base = _tiny_model_dir(tmp_path, "bert")
    cfg_path = _tiny_config(tmp_path, base)
    with pytest.raises(InputError, match="unknown keys"):
        pipeline.load_config(cfg_path, ["eval.bogus=1"])
    with pytest.raises(InputError, match="need eval.evaluators"):
        pipeline.load_config(cfg_path, ["eval.steps=5"])
    sts = f"{{type: sts, path: {tmp_path / 'sts.tsv'}, name: dev}}"
    cfg = pipeline.load_config(cfg_path, [f"eval.evaluators=[{sts}]", "eval.metric_for_best_model=other_x"])
    with pytest.raises(InputError, match="dev_spearman"):
        build_selection(cfg["eval"])
    sel = build_selection(pipeline.load_config(cfg_path, [f"eval.evaluators=[{sts}]"])["eval"])
    assert sel is not None and sel.metric == "dev_spearman" and sel.load_best
    assert sel.training_args(7) == {
        "eval_strategy": "steps",
        "eval_steps": 7,
        "save_steps": 7,
        "metric_for_best_model": "dev_spearman",
        "greater_is_better": True,
        "load_best_model_at_end": True,
    }


def test_stage_model_is_the_best_checkpoint_by_the_evaluator(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    base = _tiny_model_dir(tmp_path, "bert")
    sts = f"{{type: sts, path: {tmp_path / 'sts.tsv'}, name: dev}}"
    cfg = pipeline.load_config(
        _tiny_config(tmp_path, base),
        [f"eval.evaluators=[{sts}]", "eval.steps=1", "stages.0.save_total_limit=5"],
    )
    pipeline.train(cfg, tmp_path / "run")
    stage = json.loads((tmp_path / "run" / "run.json").read_text())["stages"][0]
    scores = [(e["step"], e["eval_dev_spearman"]) for e in stage["log_history"] if "eval_dev_spearman" in e]
    assert [s for s, _ in scores] == [1, 2, 3]
    best_step = max(scores, key=lambda s: s[1])[0]  # the first of equal scores, as the trainer keeps it
    sel = stage["selection"]
    assert sel["metric"] == "dev_spearman" and sel["loaded_best"]
    assert sel["best_checkpoint"].endswith(f"checkpoint-{best_step}")
    assert sel["best_metric"] == pytest.approx(dict(scores)[best_step])
    saved = load_file(str(tmp_path / "run" / "stage-1" / "model" / "model.safetensors"))
    best = load_file(str(Path(sel["best_checkpoint"]) / "model.safetensors"))
    assert saved.keys() == best.keys() and all((saved[k] == best[k]).all() for k in saved)
    if best_step != 3:  # the last step's weights were not kept
        last = load_file(
            str(tmp_path / "run" / "stage-1" / "checkpoints" / "checkpoint-3" / "model.safetensors")
        )
        assert any((saved[k] != last[k]).any() for k in saved)
