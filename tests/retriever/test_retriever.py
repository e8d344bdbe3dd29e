"""Retriever: build, load, search, add, delete, retype; mostly with the fake encoder, some with the tiny model."""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from store_helpers import newest_segment

import tase_search.documents.ingest as ingest_mod
import tase_search.store.vectors as vectors_mod
from tase_search.documents.readers import Document
from tase_search.errors import IndexCorrupt, IndexMismatch, IndexNotFound, InputError
from tase_search.retriever import TMP_PREFIX, Hit, Retriever, resolve_index_path
from tase_search.store.manifest import read_manifest, sha256_file
from tase_search.testing import FakeEncoder

CORPUS = [
    {"id": "spor1", "text": "Galatasaray maçı 2-1 kazandı, taraftarlar sevindi.", "topic": "spor"},
    {"id": "spor2", "text": "Fenerbahçe deplasmanda berabere kaldı.", "topic": "spor"},
    {"id": "spor3", "text": "Milli takım futbol maçı için İzmir'e gitti.", "topic": "spor"},
    {"id": "hava1", "text": "Yarın İstanbul'da yağmur bekleniyor.", "topic": "hava"},
    {"id": "hava2", "text": "Ankara'da hava güneşli ve ılık olacak.", "topic": "hava"},
    {"id": "eko1", "text": "Merkez bankası faiz kararını açıkladı.", "topic": "ekonomi"},
    {"id": "eko2", "text": "Enflasyon verileri beklentinin altında geldi.", "topic": "ekonomi"},
    {"id": "bilim1", "text": "Deprem bölgesinde yeni ölçümler yapıldı.", "topic": "bilim", "year": 2023},
]


def build(path: Path, enc: FakeEncoder, docs: list | None = None, **kw: object) -> Retriever:
    return Retriever.build(CORPUS if docs is None else docs, model=enc, path=path, **kw)


def ids_of(hits: list[Hit]) -> list[str]:
    return [h.id for h in hits]


def gen_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def assert_consistent(path: Path) -> None:
    """Manifest counts agree with every segment's SQLite store and FAISS index (each segment's own
    counts; the totals over live documents and passages); checksums match; nothing else is left."""
    import faiss

    from tase_search.store.segment import segments_of

    m = read_manifest(path)
    live_docs = live_rows = dead = 0
    for s in segments_of(m):
        seg = path / s.name
        con = sqlite3.connect(seg / "docs.sqlite")
        docs = con.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        passages = con.execute("SELECT COUNT(*) FROM passages").fetchone()[0]
        tomb = con.execute("SELECT COUNT(*) FROM tombstones").fetchone()[0]
        orphans = con.execute(
            "SELECT COUNT(*) FROM passages p LEFT JOIN documents d ON d.doc_key = p.doc_key WHERE d.id IS NULL"
        ).fetchone()[0]
        con.close()
        assert (s.documents, s.rows, s.tombstones, orphans) == (docs, passages, tomb, 0)
        index = faiss.read_index(str(seg / "vectors.faiss"))
        assert index.ntotal == s.rows + s.tombstones
        for name, info in s.files.items():
            assert (seg / name).stat().st_size == info["bytes"]
            assert sha256_file(seg / name) == info["sha256"]
        live_docs, live_rows, dead = (
            live_docs + s.live_documents,
            live_rows + s.live_rows,
            dead + s.dead_vectors,
        )
    assert (m.documents, m.rows, m.tombstones) == (live_docs, live_rows, dead)
    # only what the current manifest names (and the previous one kept for readers); no temporaries
    assert not [p for p in path.iterdir() if p.name.startswith(TMP_PREFIX)]
    names = {s.name for s in segments_of(m)}
    assert (
        len([p for p in path.iterdir() if p.name.startswith(("gen-", "seg-")) and p.name not in names]) <= 2
    )


# ============================================================================ build / search
def test_build_and_search(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    r = build(tmp_path / "idx", fake_encoder)
    assert len(r) == 8
    assert r.manifest.generation == 1 and r.manifest.factory == "Flat" and r.manifest.index_type == "auto"
    hits = r.search("Yarın İstanbul'da yağmur bekleniyor.", k=3)
    assert isinstance(hits, list) and len(hits) == 3
    top = hits[0]
    assert top.id == "hava1"
    assert top.score == pytest.approx(1.0, abs=1e-5)
    assert top.text == "Yarın İstanbul'da yağmur bekleniyor."
    assert top.metadata == {"topic": "hava"}
    assert top.source == "<python>"
    assert [h.rank for h in hits] == [1, 2, 3]
    assert all(isinstance(h.score, float) and -1.0001 <= h.score <= 1.0001 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    p = top.passage
    assert (p.index, p.count, p.start, p.end, p.text) == (0, 1, 0, len(top.text), top.text)
    d = top.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["passage"]["count"] == 1 and d["rank"] == 1 and d["id"] == "hava1"
    assert_consistent(tmp_path / "idx")


def test_load_and_search_same_results(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    r = build(tmp_path / "idx", fake_encoder)
    before = [(h.id, h.score) for h in r.search("futbol maçı", k=5)]
    r2 = Retriever.load(tmp_path / "idx", model=FakeEncoder())
    assert [(h.id, h.score) for h in r2.search("futbol maçı", k=5)] == before
    assert Retriever.exists(tmp_path / "idx") and not Retriever.exists(tmp_path / "nope")


def test_input_kinds(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    docs = [
        "düz metin belge",
        Document(id="d1", text="bir Document nesnesi", metadata={"k": "v"}, source="x.jsonl", line=3),
        {"text": "sözlük belge", "id": 42, "lang": "tr"},
        "   ",  # empty: skipped
    ]
    r = Retriever.build(docs, model=fake_encoder, path=tmp_path / "idx")
    assert len(r) == 3
    got = {d["id"]: d for d in r.get(["d1", "42", "1", "missing"])}
    assert set(got) == {"d1", "42", "1"}  # the string got an automatic id
    assert got["d1"]["source"] == "x.jsonl" and got["d1"]["line"] == 3 and got["d1"]["metadata"] == {"k": "v"}
    assert got["42"]["metadata"] == {"lang": "tr"}
    # automatic ids continue after a reload and never collide with explicit ones
    r.add([{"id": "2", "text": "açık id iki"}, "otomatik bir", "otomatik iki"])
    ids = {d["id"] for d in r.get([str(i) for i in range(10)])}
    assert ids == {"1", "2", "3", "4"}
    assert len(r) == 6


@pytest.mark.parametrize(
    ("docs", "match"),
    [
        ("a single string", "not a single string"),
        ([{"id": "x"}], "no string 'text'"),
        ([{"text": 5}], "no string 'text'"),
        ([3.5], "float"),
        ([{"id": "  ", "text": "boş id"}], "empty id"),
    ],
)
def test_bad_documents(tmp_path: Path, fake_encoder: FakeEncoder, docs: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        Retriever.build(docs, model=fake_encoder, path=tmp_path / "idx")  # type: ignore[arg-type]
    assert not (tmp_path / "idx").exists()  # a failed first build leaves no directory behind


def test_filter(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    r = build(tmp_path / "idx", fake_encoder)
    hits = r.search("Galatasaray maçı", k=10, filter={"topic": "hava"})
    assert sorted(ids_of(hits)) == ["hava1", "hava2"]
    assert r.search("maç", k=10, filter={"topic": "yok"}) == []
    assert ids_of(r.search("maç", filter={"id": "eko2"})) == ["eko2"]
    assert ids_of(r.search("maç", filter={"year": 2023})) == ["bilim1"]
    assert ids_of(r.search("maç", filter={"year": {"$gte": 2000}, "topic": {"$in": ["bilim", "x"]}})) == [
        "bilim1"
    ]
    assert ids_of(r.search("maç", filter={"topic": "spor", "id": "spor2"})) == ["spor2"]
    assert ids_of(r.search("maç", filter={"source": "<python>"}, k=20)) != []
    assert r.search("maç", filter={"a.b": "x"}) == []  # a dot is part of the field name
    with pytest.raises(InputError):
        r.search("maç", filter={"": "x"})
    with pytest.raises(InputError, match=r"operator '\$regex' on 'topic' is not valid"):
        r.search("maç", filter={"topic": {"$regex": "s"}})


def test_multiple_queries(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    r = build(tmp_path / "idx", fake_encoder)
    qs = ["Fenerbahçe deplasmanda berabere kaldı.", "Enflasyon verileri beklentinin altında geldi."]
    res = r.search(qs, k=2)
    assert len(res) == 2 and all(len(h) == 2 for h in res)
    assert [h[0].id for h in res] == ["spor2", "eko2"]
    # same answers as one at a time
    assert [ids_of(h) for h in res] == [ids_of(r.search(q, k=2)) for q in qs]
    assert r.search([], k=3) == []
    assert r.search(("tuple query",), k=1)[0][0].id
    with pytest.raises(InputError, match="query #1"):
        r.search(["ok", 5], k=1)  # type: ignore[list-item]


def test_k_bounds(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    r = build(tmp_path / "idx", fake_encoder)
    assert len(r.search("maç", k=1000)) == 8
    assert len(set(ids_of(r.search("maç", k=1000)))) == 8  # one hit per document
    for bad in (0, -1, True, 2.5, "3"):
        with pytest.raises(InputError, match="k="):
            r.search("maç", k=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("q", ["", "   ", "\n\t"])
def test_empty_query(tmp_path: Path, fake_encoder: FakeEncoder, q: str) -> None:
    r = build(tmp_path / "idx", fake_encoder)
    with pytest.raises(InputError, match="empty"):
        r.search(q)
    with pytest.raises(InputError, match="empty"):
        r.search(["fine", q])


def test_empty_index(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    r = Retriever.build(["", "  "], model=fake_encoder, path=tmp_path / "idx")
    assert len(r) == 0 and r.search("bir şey", k=5) == []
    assert r.search(["a", "b"], k=5) == [[], []]
    r.add(["şimdi bir belge var"])
    assert ids_of(r.search("belge", k=5)) == ["1"]


# ============================================================================ append / duplicates
def test_append_embeds_only_new_documents(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    r = build(tmp_path / "idx", fake_encoder)
    assert fake_encoder.calls["document"] == 8
    new = [{"id": "yeni1", "text": "Yeni bir kedi haberi."}, {"id": "yeni2", "text": "Köpek parkta koştu."}]
    res = r.add(new)
    assert (res.added, res.passages, res.skipped_duplicate, res.replaced) == (2, 2, 0, 0)
    assert res.ids == ["yeni1", "yeni2"]
    assert fake_encoder.calls["document"] == 10
    assert r.manifest.generation == 2 and len(r) == 10
    # from a fresh load too
    enc2 = FakeEncoder()
    r2 = Retriever.load(tmp_path / "idx", model=enc2)
    r2.add([{"id": "yeni3", "text": "Kuşlar göç etti."}])
    assert enc2.calls["document"] == 1
    assert r2.search("Kuşlar göç etti.", k=1)[0].id == "yeni3"
    assert r2.search("Galatasaray maçı 2-1 kazandı, taraftarlar sevindi.", k=1)[0].id == "spor1"
    assert_consistent(tmp_path / "idx")


def test_duplicate_ids_in_input(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    docs = [{"id": "a", "text": "ilk metin"}, {"id": "b", "text": "ikinci"}, {"id": "a", "text": "son metin"}]
    with pytest.raises(InputError, match="'a'"):
        Retriever.build(docs, model=fake_encoder, path=tmp_path / "e")
    assert not Retriever.exists(tmp_path / "e")
    r = Retriever.build(docs, model=fake_encoder, path=tmp_path / "s", on_duplicate="skip")
    assert r.get(["a"])[0]["text"] == "ilk metin" and len(r) == 2
    r = Retriever.build(docs, model=fake_encoder, path=tmp_path / "r", on_duplicate="replace")
    assert r.get(["a"])[0]["text"] == "son metin" and len(r) == 2
    assert_consistent(tmp_path / "r")
    with pytest.raises(InputError, match="on_duplicate"):
        Retriever.build(docs, model=fake_encoder, path=tmp_path / "x", on_duplicate="merge")


@pytest.mark.parametrize("factory", [None, "HNSW32,Flat"])
def test_duplicate_ids_on_append(tmp_path: Path, fake_encoder: FakeEncoder, factory: str | None) -> None:
    path = tmp_path / "idx"
    r = build(path, fake_encoder, factory=factory)
    dup = [{"id": "hava1", "text": "Hava bugün karlı ve soğuk."}, {"id": "yeni", "text": "Yeni belge."}]
    gen = r.manifest.generation
    with pytest.raises(InputError, match="'hava1'"):
        r.add(dup)
    assert read_manifest(path).generation == gen and len(Retriever.load(path, model=fake_encoder)) == 8
    res = r.add(dup, on_duplicate="skip")
    assert (res.added, res.skipped_duplicate) == (1, 1)
    assert r.get(["hava1"])[0]["text"] == "Yarın İstanbul'da yağmur bekleniyor."
    res = r.add(
        [{"id": "hava1", "text": "Hava bugün karlı ve soğuk.", "topic": "kar"}], on_duplicate="replace"
    )
    assert (res.added, res.replaced) == (1, 1)
    assert r.get(["hava1"])[0]["metadata"] == {"topic": "kar"}
    hits = r.search("Yarın İstanbul'da yağmur bekleniyor.", k=20)
    assert len(hits) == 9 and len(set(ids_of(hits))) == 9
    assert next(h for h in hits if h.id == "hava1").text == "Hava bugün karlı ve soğuk."
    assert r.search("Hava bugün karlı ve soğuk.", k=1)[0].score == pytest.approx(1.0, abs=1e-5)
    assert_consistent(path)


def test_replace_across_chunks_with_training_index(
    tmp_path: Path, fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replaced document whose vectors still wait for IVF training must not leave orphan vectors."""
    monkeypatch.setattr(ingest_mod, "CHUNK_DOCS", 4)
    docs = [{"id": str(i % 15), "text": f"belge numara {i} kelime{i}"} for i in range(20)]
    path = tmp_path / "idx"
    r = Retriever.build(docs, model=fake_encoder, path=path, factory="IVF4,Flat", on_duplicate="replace")
    assert len(r) == 15
    assert_consistent(path)
    r2 = Retriever.load(path, model=FakeEncoder())
    assert r2.search("belge numara 19 kelime19", k=1)[0].id == "4"
    assert "belge numara 4 kelime4" not in [h.text for h in r2.search("kelime4", k=15)]


def test_ivf_too_few_vectors_to_train(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    with pytest.raises(InputError, match="could not be trained"):
        build(tmp_path / "idx", fake_encoder, factory="IVF64,Flat")
    assert not Retriever.exists(tmp_path / "idx")
    # the directory is still usable for a build
    build(tmp_path / "idx", fake_encoder)


def test_custom_factory_recorded(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    r = build(tmp_path / "idx", fake_encoder, factory="HNSW16,Flat")
    assert (r.manifest.factory, r.manifest.index_type, r.manifest.search_params) == (
        "HNSW16,Flat",
        "custom",
        f"efSearch={vectors_mod.HNSW_EF_SEARCH}",
    )
    assert r.search("Deprem bölgesinde yeni ölçümler yapıldı.", k=1)[0].id == "bilim1"
    with pytest.raises(InputError):
        build(tmp_path / "bad", fake_encoder, factory="NotAFactory")
    with pytest.raises(InputError):
        build(tmp_path / "bad2", fake_encoder, backend="annoy", factory="Flat")


def test_numpy_backend(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    r = build(tmp_path / "np", fake_encoder, backend="numpy")
    f = build(tmp_path / "fa", fake_encoder)
    q = "Milli takım futbol maçı"
    a, b = r.search(q, k=8), f.search(q, k=8)
    assert [round(h.score, 5) for h in a] == [round(h.score, 5) for h in b]  # ties may come in any order
    assert a[0].id == b[0].id == "spor3" and sorted(ids_of(a)) == sorted(ids_of(b))
    r.delete(["spor3"])
    assert "spor3" not in ids_of(Retriever.load(tmp_path / "np", model=fake_encoder).search(q, k=8))


# ============================================================================ delete
@pytest.mark.parametrize("factory", [None, "HNSW32,Flat"])
def test_delete_never_returns_deleted(tmp_path: Path, fake_encoder: FakeEncoder, factory: str | None) -> None:
    path = tmp_path / "idx"
    docs = [{"id": f"d{i}", "text": f"belge {i} konu{i % 4} kelime{i}", "g": str(i % 3)} for i in range(30)]
    r = build(path, fake_encoder, docs, factory=factory)
    gone = [f"d{i}" for i in (1, 4, 9, 16, 25)]
    assert r.delete(gone + ["nope"]) == gone
    m = read_manifest(path)
    assert m.documents == 25 and m.rows == 25
    assert m.tombstones == 5  # a deletions file beside the segment: its vectors stay until a merge
    for rr in (r, Retriever.load(path, model=FakeEncoder())):
        for i in (1, 4, 9, 16, 25):
            hits = rr.search(f"belge {i} konu{i % 4} kelime{i}", k=30)
            assert len(hits) == 25 and not set(ids_of(hits)) & set(gone)
            assert not set(ids_of(rr.search("belge", k=5, filter={"g": str(i % 3)}))) & set(gone)
    assert r.get(gone) == []
    assert_consistent(path)
    more = [f"d{i}" for i in (2, 3, 5)]
    r.delete(more)
    m = read_manifest(path)
    assert (m.documents, m.rows, m.tombstones) == (22, 22, 8)
    assert r.optimize()["segments_after"] == 1  # a merge drops the deleted rows
    m = read_manifest(path)
    assert (m.documents, m.rows, m.tombstones) == (22, 22, 0)
    hits = r.search("belge 3 konu3 kelime3", k=30)
    assert len(hits) == 22 and not set(ids_of(hits)) & set(gone + more)
    assert_consistent(path)
    assert r.delete([]) == []


def test_delete_everything(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    r = build(tmp_path / "idx", fake_encoder)
    r.delete([d["id"] for d in CORPUS])
    assert len(r) == 0 and r.search("maç", k=3) == []
    assert_consistent(tmp_path / "idx")


# ============================================================================ auto retype
def test_auto_retype_flat_to_hnsw_to_ivf(
    tmp_path: Path, fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vectors_mod, "FLAT_MAX", 10)
    monkeypatch.setattr(vectors_mod, "HNSW_MAX", 40)
    path = tmp_path / "idx"
    docs = [{"id": f"d{i}", "text": f"belge {i} kelime{i} konu{i % 5}"} for i in range(60)]
    r = build(path, fake_encoder, docs[:6])
    assert r.manifest.factory == "Flat"
    calls = fake_encoder.calls["document"]
    r.add(docs[6:12])  # a segment of its own; merged, 12 >= 10: HNSW, without re-embedding the first six
    r.optimize()
    assert fake_encoder.calls["document"] == calls + 6
    m = read_manifest(path)
    assert (m.factory, m.index_type, m.search_params) == ("HNSW32,Flat", "auto", "efSearch=96")
    assert_consistent(path)
    for i in (0, 7, 11):
        assert r.search(docs[i]["text"], k=1)[0].id == f"d{i}"
    r.add(docs[12:45])  # merged, 45 >= 40: IVF
    r.optimize()
    m = read_manifest(path)
    assert m.factory.startswith("IVF") and m.factory.endswith(",SQ8") and "nprobe" in m.search_params
    assert_consistent(path)
    r2 = Retriever.load(path, model=FakeEncoder())
    assert len(r2.search("belge", k=100)) == 45
    assert r2.search(docs[30]["text"], k=1)[0].id == "d30"
    # a custom factory is never retyped
    c = build(tmp_path / "custom", fake_encoder, docs[:30], factory="Flat")
    assert c.manifest.factory == "Flat" and c.manifest.index_type == "custom"


def test_build_past_threshold_starts_as_hnsw(
    tmp_path: Path, fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vectors_mod, "FLAT_MAX", 5)
    r = build(tmp_path / "idx", fake_encoder)
    assert r.manifest.factory == "HNSW32,Flat"
    assert r.search("Ankara'da hava güneşli ve ılık olacak.", k=1)[0].id == "hava2"


# ============================================================================ streaming builds
_VOCAB = [
    f"kelime{j}" for j in range(300)
] + "futbol maç yağmur hava deprem ekonomi şehir kedi köpek okul".split()


def _random_docs(n: int, seed: int = 0) -> list[dict[str, str]]:
    rng = np.random.default_rng(seed)
    return [{"id": f"d{i}", "text": f"belge{i} " + " ".join(rng.choice(_VOCAB, size=6))} for i in range(n)]


class _IndexSpy:
    """Records what every FaissIndex does during a write: adds (type, rows before, rows added), trains."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.adds: list[tuple[str, int, int]] = []
        self.trains: list[tuple[str, int]] = []
        self.full_copies = 0
        cls = vectors_mod.FaissIndex
        add, train, recon = cls.add, cls.train, cls.reconstruct_all

        def spy_add(idx, vecs, ids):  # noqa: ANN001, ANN202
            self.adds.append((idx.factory, idx.ntotal, len(ids)))
            return add(idx, vecs, ids)

        def spy_train(idx, vecs):  # noqa: ANN001, ANN202
            self.trains.append((idx.factory, len(vecs)))
            return train(idx, vecs)

        def spy_recon(idx):  # noqa: ANN001, ANN202
            self.full_copies += 1
            return recon(idx)

        monkeypatch.setattr(cls, "add", spy_add)
        monkeypatch.setattr(cls, "train", spy_train)
        monkeypatch.setattr(cls, "reconstruct_all", spy_recon)

    def peak_rows(self, factory: str) -> int:
        return max((before + n for f, before, n in self.adds if f == factory), default=0)


def test_large_auto_build_streams_into_its_final_type(
    tmp_path: Path, fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An auto build crossing the Flat threshold switches to HNSW mid-ingest (moving the few Flat rows
    once) instead of filling a Flat copy of everything and re-typing it at the end."""
    monkeypatch.setattr(vectors_mod, "FLAT_MAX", 50)
    monkeypatch.setattr(vectors_mod, "MOVE_BATCH", 16)  # the move itself goes in slices
    monkeypatch.setattr(ingest_mod, "CHUNK_DOCS", 20)
    docs = _random_docs(400)
    ref = build(tmp_path / "ref", FakeEncoder(), docs, factory="Flat")
    spy = _IndexSpy(monkeypatch)
    path = tmp_path / "idx"
    build(path, fake_encoder, iter(docs))  # a generator: the size is not known in advance
    m = read_manifest(path)
    assert (m.factory, m.index_type, m.documents, m.rows) == ("HNSW32,Flat", "auto", 400, 400)
    assert spy.peak_rows("Flat") < 50 + 20  # Flat held only up to the threshold (plus one chunk)
    assert spy.peak_rows("HNSW32,Flat") == 400 and spy.full_copies == 0
    moved = [n for f, before, n in spy.adds if f == "HNSW32,Flat" and n and before < 60]
    assert moved[:4] == [16, 16, 16, 12]  # the 60 Flat rows, moved once, in MOVE_BATCH slices
    assert fake_encoder.calls["document"] == 400  # nothing re-embedded
    assert_consistent(path)
    # same answers as an exact Flat index over the same documents
    r2 = Retriever.load(path, model=FakeEncoder())
    queries = [" ".join(d["text"].split()[1:4]) for d in docs[::20]] + [d["text"] for d in docs[5::50]]
    hnsw, exact = r2.search(queries, k=10), ref.search(queries, k=10)
    same = sum(
        np.allclose([h.score for h in a], [h.score for h in b], atol=1e-5) for a, b in zip(hnsw, exact)
    )
    assert same >= 0.9 * len(queries)
    for d in docs[5::50]:
        assert r2.search(d["text"], k=1)[0].id == d["id"]


def test_auto_build_crossing_both_thresholds_ends_ivf(
    tmp_path: Path, fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vectors_mod, "FLAT_MAX", 30)
    monkeypatch.setattr(vectors_mod, "HNSW_MAX", 120)
    monkeypatch.setattr(ingest_mod, "CHUNK_DOCS", 20)
    spy = _IndexSpy(monkeypatch)
    path = tmp_path / "idx"
    docs = _random_docs(300, seed=1)
    build(path, fake_encoder, docs)
    m = read_manifest(path)
    assert m.factory == vectors_mod.choose_factory(120) and m.rows == 300
    assert len(spy.trains) == 1 and spy.trains[0][1] == 120  # trained once, when it became IVF
    assert spy.peak_rows("HNSW32,Flat") == 120 and spy.peak_rows("Flat") == 40 and spy.full_copies == 0
    assert_consistent(path)
    r = Retriever.load(path, model=FakeEncoder())
    assert r.search(docs[250]["text"], k=1)[0].id == "d250"


def test_ivf_trains_once_enough_vectors_then_streams(
    tmp_path: Path, fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A type that needs training holds vectors back only until TRAIN_SAMPLE, trains once, then streams."""
    import faiss

    monkeypatch.setattr(vectors_mod, "TRAIN_SAMPLE", 64)
    monkeypatch.setattr(ingest_mod, "CHUNK_DOCS", 16)
    spy = _IndexSpy(monkeypatch)
    path = tmp_path / "idx"
    docs = _random_docs(300, seed=2)
    build(path, fake_encoder, docs, factory="IVF4,Flat")
    assert spy.trains == [("IVF4,Flat", 64)]  # once, on the first 64 vectors, not on all 300
    assert [(before, n) for _, before, n in spy.adds[:2]] == [(0, 64), (64, 16)]  # held-back, then streamed
    assert max(n for _, _, n in spy.adds[1:]) == 16 and sum(n for _, _, n in spy.adds) == 300
    m = read_manifest(path)
    assert (m.factory, m.index_type, m.documents, m.rows) == ("IVF4,Flat", "custom", 300, 300)
    assert_consistent(path)
    # every passage id is in the vector index exactly once, and maps back to its document
    index = faiss.read_index(str(newest_segment(path) / "vectors.faiss"))
    ids = faiss.vector_to_array(faiss.downcast_index(index).id_map)
    con = sqlite3.connect(newest_segment(path) / "docs.sqlite")
    pids = [row[0] for row in con.execute("SELECT pid FROM passages ORDER BY pid")]
    con.close()
    assert sorted(ids.tolist()) == pids
    r = Retriever.load(path, model=FakeEncoder())
    for i in (0, 63, 64, 150, 299):  # held back, streamed, last
        assert r.search(docs[i]["text"], k=1)[0].id == f"d{i}"


def test_ivf_smaller_than_training_sample_trains_at_the_end(
    tmp_path: Path, fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_mod, "CHUNK_DOCS", 16)
    spy = _IndexSpy(monkeypatch)
    build(tmp_path / "idx", fake_encoder, _random_docs(50, seed=3), factory="IVF4,Flat")
    assert spy.trains == [("IVF4,Flat", 50)] and [n for _, _, n in spy.adds] == [50]
    assert_consistent(tmp_path / "idx")


# ============================================================================ errors / paths
class _PromptedFake(FakeEncoder):
    """The fake encoder with e5-style role prompts (same weights fingerprint as the plain fake)."""

    query_prompt = "query: "
    passage_prompt = "passage: "


def test_prompts_are_recorded_and_other_prompts_refused(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    path = tmp_path / "idx"
    build(path, _PromptedFake())
    m = read_manifest(path).model
    assert (m.query_prompt, m.passage_prompt) == ("query: ", "passage: ")
    assert Retriever.load(path, model=_PromptedFake()).search("maç", k=1)
    with pytest.raises(IndexMismatch, match="prompts"):  # same weights, no prompts: other vectors
        Retriever.load(path, model=fake_encoder)
    plain = tmp_path / "plain"
    build(plain, fake_encoder)
    assert read_manifest(plain).model.query_prompt is None
    with pytest.raises(IndexMismatch, match="prompts"):
        Retriever.load(plain, model=_PromptedFake())


def test_other_model_is_refused(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    path = tmp_path / "idx"
    build(path, fake_encoder)
    with pytest.raises(IndexMismatch) as e:
        Retriever.load(path, model=FakeEncoder(model_id="baska-model"))
    assert "'fake'" in str(e.value) and "'baska-model'" in str(e.value)
    with pytest.raises(IndexMismatch, match="dimension"):
        Retriever.load(path, model=FakeEncoder(dim=32))
    r = Retriever(path, read_manifest(path), encoder=None)
    r._encoder = FakeEncoder(model_id="baska-model")  # an encoder swapped in behind the check
    with pytest.raises(IndexMismatch):
        r.add(["yeni"])
    assert read_manifest(path).generation == 1


def test_index_not_found(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFound, match="no index at"):
        Retriever.load(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "x").write_text("x")
    with pytest.raises(IndexNotFound, match="no manifest"):
        Retriever.load(tmp_path / "half")


def test_build_refuses_foreign_directory(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    docs_dir = tmp_path / "Documents"
    docs_dir.mkdir()
    (docs_dir / "tez.docx").write_bytes(b"important")
    with pytest.raises(InputError, match="not a tase-search index"):
        build(docs_dir, fake_encoder)
    with pytest.raises(InputError, match="not a tase-search index"):
        build(docs_dir, fake_encoder, overwrite=True)
    assert gen_files(docs_dir) == ["tez.docx"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        build(tmp_path / "file", fake_encoder)


def test_build_over_existing_index(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    path = tmp_path / "idx"
    build(path, fake_encoder)
    with pytest.raises(InputError, match="already exists"):
        build(path, fake_encoder, docs=["başka"])
    assert read_manifest(path).generation == 1
    r = build(path, FakeEncoder(model_id="yeni-model"), docs=["tamamen yeni"], overwrite=True)
    m = read_manifest(path)
    assert m.generation == 2 and m.documents == 1 and m.model.id == "yeni-model"
    assert gen_files(path) == [
        ".lock",
        ".verified.json",
        "manifest.json",
        "seg-000002",
    ]  # + the write's stamps; the replaced index's segment is gone
    assert ids_of(r.search("yeni", k=5)) == ["1"]


def test_corrupt_generation_detected(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    path = tmp_path / "idx"
    build(path, fake_encoder)
    vec = newest_segment(path) / "vectors.faiss"
    vec.write_bytes(vec.read_bytes()[:-10])
    with pytest.raises(IndexCorrupt, match="bytes"):
        Retriever.load(path, model=fake_encoder).search("maç")


def test_resolve_index_path(tmp_path: Path) -> None:
    assert resolve_index_path("haberler", root=tmp_path) == tmp_path / "haberler"
    assert resolve_index_path(None, root=tmp_path) == tmp_path / "default"
    assert resolve_index_path(tmp_path / "x") == tmp_path / "x"
    assert resolve_index_path("./rel/idx") == Path("./rel/idx")
    for bad in ("kötü isim", "-x", "a b", "x" * 200):
        with pytest.raises(InputError, match="not valid"):
            resolve_index_path(bad)


def test_refresh_and_old_readers(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    path = tmp_path / "idx"
    writer = build(path, fake_encoder)
    reader = Retriever.load(path, model=FakeEncoder())
    assert len(reader.search("maç", k=20)) == 8  # opened generation 1
    writer.add([{"id": "n1", "text": "Yeni maç haberi."}])
    writer.add([{"id": "n2", "text": "Bir maç daha."}])  # generation 1 is now removed from disk
    assert len(reader.search("maç", k=20)) == 8  # still serves its open generation
    assert reader.refresh() is True and reader.refresh() is False
    assert len(reader.search("maç", k=20)) == 10
    info = reader.info()
    assert (info["documents"], info["generation"], info["model"]) == (10, 3, "fake")
    assert info["sources"] == {"<python>": 10} and info["bytes_on_disk"] > 0


# ============================================================================ Turkish text
def test_turkish_text_round_trips(tmp_path: Path, fake_encoder: FakeEncoder) -> None:
    texts = {
        "t1": "İstanbul'da ılık bir sabah; IĞDIR, Şişli ve Çağlayan.",
        "t2": "ığüşöç İĞÜŞÖÇ — “tırnak” ve ‘tek’ … €",
        "t3": unicodedata.normalize("NFD", "Şırnak'ta kış"),  # decomposed input is stored composed
    }
    Retriever.build(
        [{"id": k, "text": v, "şehir": "Iğdır"} for k, v in texts.items()],
        model=fake_encoder,
        path=tmp_path / "i",
    )
    r2 = Retriever.load(tmp_path / "i", model=FakeEncoder())
    for k, v in texts.items():
        stored = r2.get([k])[0]
        assert stored["text"] == unicodedata.normalize("NFC", v)
        assert stored["metadata"] == {"şehir": "Iğdır"}
    hit = r2.search("İstanbul'da ılık", k=1)[0]
    assert hit.id == "t1" and hit.text == texts["t1"] and hit.passage.text == texts["t1"]
    assert ids_of(r2.search("kış", filter={"şehir": "Iğdır"}, k=5))
    assert r2.search("Şırnak'ta kış", k=1)[0].id == "t3"  # NFC query finds the NFD-input document


# ============================================================================ tiny real model
LONG = (
    "İstanbul'da bugün yağmur var ve hava çok güzel değil. "
    "Galatasaray maçı yarın Ankara'da oynanacak, öğrenciler okuldan sonra maça gidecek. "
    "Bilgisayar ve yazılım dersleri için yeni bir okul açıldı. "
    "Kedi ve köpek şarkı dinledi, çay ve kahve içildi. "
    "Deprem sonrası ekonomi toparlanıyor, şehir yeniden kuruluyor. "
    "İzmir'de 2024 yılında 37 yeni park yapıldı; Fenerbahçe 3-0 kazandı. "
    "Müzik festivali 19 Mayıs'ta başlayacak, ışık gösterisi olacak. "
    "Iğdır ve Şırnak'ta kış erken geldi, yollar 8 saat kapalı kaldı."
)


def test_long_documents_split_into_passages(tmp_path: Path, tiny_encoder: object) -> None:
    docs = [
        {"id": "uzun", "text": LONG.strip()},
        {"id": "kisa", "text": "Kedi çay içti."},
        {"id": "orta", "text": "Galatasaray maçı İstanbul'da."},
    ]
    r = Retriever.build(docs, model=tiny_encoder, path=tmp_path / "idx")  # type: ignore[arg-type]
    m = r.manifest
    assert m.documents == 3 and m.rows > 3 and m.model.max_seq_length == 32
    hits = r.search("Galatasaray maçı", k=3)
    assert sorted(ids_of(hits)) == ["kisa", "orta", "uzun"]  # one hit per document
    long_hit = next(h for h in hits if h.id == "uzun")
    text = LONG.strip()
    assert long_hit.text == text
    p = long_hit.passage
    assert p.count == m.rows - 2 and 0 <= p.index < p.count
    assert 0 <= p.start < p.end <= len(text) and p.text == text[p.start : p.end] and len(p.text) < len(text)
    # the passages cover the whole document, in order, overlapping
    parts = tiny_encoder.split_passages(text, overlap=m.overlap_tokens)  # type: ignore[attr-defined]
    assert parts[0].start == 0 and parts[-1].end == len(text)
    assert all(a.start < b.start <= a.end for a, b in zip(parts, parts[1:]))
    assert [x.index for x in parts] == list(range(len(parts))) and {x.count for x in parts} == {len(parts)}
    # each passage is findable: querying with a passage's own text returns the document and that passage
    third = parts[len(parts) // 2]
    hit = r.search(text[third.start : third.end], k=1)[0]
    assert hit.id == "uzun" and hit.passage.index == third.index
    assert hit.score == pytest.approx(1.0, abs=1e-4)
    short = next(h for h in hits if h.id == "kisa").passage
    assert (short.index, short.count, short.start, short.end) == (0, 1, 0, len("Kedi çay içti."))


def test_tiny_model_end_to_end(tmp_path: Path, tiny_encoder: object, tiny_model_dir: Path) -> None:
    path = tmp_path / "idx"
    r = Retriever.build(CORPUS, model=tiny_encoder, path=path)  # type: ignore[arg-type]
    m = read_manifest(path)
    assert m.model.id == str(tiny_model_dir.resolve()) and m.model.dimension == 32
    assert m.model.fingerprint == tiny_encoder.fingerprint  # type: ignore[attr-defined]
    q = "Yarın İstanbul'da yağmur bekleniyor."
    hits = r.search(q, k=3)
    assert hits[0].id == "hava1" and hits[0].score == pytest.approx(1.0, abs=1e-4)
    # loading by the manifest's model id (a path) gives the same vectors and answers
    r2 = Retriever.load(path, precision="fp32")
    hits2 = r2.search(q, k=3)
    assert [(h.id, round(h.score, 4)) for h in hits2] == [(h.id, round(h.score, 4)) for h in hits]
    r2.add([{"id": "yeni", "text": "Kedi ve köpek parkta."}])
    r2.delete(["eko1"])
    r3 = Retriever.load(path, model=tiny_encoder)  # type: ignore[arg-type]
    assert r3.search("Kedi ve köpek parkta.", k=1)[0].id == "yeni"
    assert "eko1" not in ids_of(r3.search("Merkez bankası faiz kararını açıkladı.", k=20))
    assert len(r3) == 8
    assert_consistent(path)
    emb = tiny_encoder.encode_query(["İĞNE ışık", "iğne ışık"])  # type: ignore[attr-defined]
    assert emb.dtype == np.float32 and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert np.allclose(emb[0], emb[1], atol=1e-5)  # the tokenizer lowercases; İ folds to i, not i + U+0307


def test_tiny_model_other_weights_refused(
    tmp_path: Path, tiny_encoder: object, other_tiny_model_dir: Path
) -> None:
    path = tmp_path / "idx"
    Retriever.build(CORPUS[:3], model=tiny_encoder, path=path)  # type: ignore[arg-type]
    r = Retriever.load(path, model=str(other_tiny_model_dir), precision="fp32")
    with pytest.raises(IndexMismatch) as e:
        r.search("maç")
    assert str(other_tiny_model_dir.resolve()) in str(e.value)


# ----------------------------------------------------------------------------- background adds
def test_adds_run_on_a_worker_overlapping_the_next_encode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunk N's FAISS add runs on the worker thread while chunk N+1 is encoded, in chunk order, and
    the index equals what in-line adds give (same ids, same answers)."""
    import threading

    monkeypatch.setattr(ingest_mod, "CHUNK_DOCS", 5)
    encoded = threading.Condition()
    n_encoded = [0]

    class SignallingEncoder(FakeEncoder):
        def encode_document(self, texts, **kw):  # type: ignore[no-untyped-def]
            with encoded:
                n_encoded[0] += 1
                encoded.notify_all()
            return super().encode_document(texts, **kw)

    calls: list[tuple[str, list[int], bool]] = []
    real_add = vectors_mod.FaissIndex.add

    def add(self, vectors, ids):  # type: ignore[no-untyped-def]
        chunk = len(calls)
        # in line, chunk+1's encode cannot start before this add returns: the wait would time out
        with encoded:
            overlapped = (
                encoded.wait_for(lambda: n_encoded[0] >= chunk + 2, timeout=5.0) if chunk < 2 else False
            )
        calls.append((threading.current_thread().name, ids.tolist(), overlapped))
        real_add(self, vectors, ids)

    monkeypatch.setattr(vectors_mod.FaissIndex, "add", add)
    docs = [{"id": f"d{i}", "text": f"belge {i} kelime{i} konu{i % 3}"} for i in range(23)]
    path = tmp_path / "idx"
    r = Retriever.build(docs, model=SignallingEncoder(), path=path, factory="Flat")
    assert [len(ids) for _, ids, _ in calls] == [5, 5, 5, 5, 3]
    assert all(name.startswith("tase-search-add") for name, _, _ in calls)
    flat = [i for _, ids, _ in calls for i in ids]
    assert flat == sorted(flat) and len(set(flat)) == 23  # in chunk order, each row once
    assert calls[0][2] and calls[1][2]  # the next chunk was being encoded while these adds ran
    assert_consistent(path)
    monkeypatch.setattr(vectors_mod.FaissIndex, "add", real_add)
    inline = Retriever.build(docs, model=FakeEncoder(), path=tmp_path / "ref", factory="Flat")
    for q in ("belge 7 kelime7", "konu2", "kelime19"):
        assert [(h.id, round(h.score, 5)) for h in r.search(q, k=5)] == [
            (h.id, round(h.score, 5)) for h in inline.search(q, k=5)
        ]


def test_a_failing_background_add_fails_the_write_and_keeps_the_index(
    tmp_path: Path, fake_encoder: FakeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_mod, "CHUNK_DOCS", 4)
    path = tmp_path / "idx"
    build(path, fake_encoder)
    before = Retriever.load(path, model=FakeEncoder())
    n, top = len(before), ids_of(before.search("kedi", k=3))
    real_add = vectors_mod.FaissIndex.add
    seen = []

    def add(self, vectors, ids):  # type: ignore[no-untyped-def]
        seen.append(len(ids))
        if len(seen) == 2:
            raise RuntimeError("simulated FAISS failure in the worker")
        real_add(self, vectors, ids)

    monkeypatch.setattr(vectors_mod.FaissIndex, "add", add)
    more = [{"id": f"n{i}", "text": f"yeni belge {i}"} for i in range(12)]
    with pytest.raises(RuntimeError, match="simulated FAISS failure"):
        Retriever.load(path, model=FakeEncoder()).add(more)
    after = Retriever.load(path, model=FakeEncoder())
    assert len(after) == n and ids_of(after.search("kedi", k=3)) == top
    assert not any(p.name.startswith(TMP_PREFIX) for p in path.iterdir())
    assert_consistent(path)


def test_the_main_error_wins_over_a_failing_add_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An input error found while an add is in flight is the error reported, and the worker is joined."""
    import threading

    monkeypatch.setattr(ingest_mod, "CHUNK_DOCS", 4)
    real_add = vectors_mod.FaissIndex.add

    def add(self, vectors, ids):  # type: ignore[no-untyped-def]
        raise RuntimeError("add failed too")

    monkeypatch.setattr(vectors_mod.FaissIndex, "add", add)
    docs = [{"id": f"d{i}", "text": f"belge {i}"} for i in range(4)] + [{"id": "d1", "text": "tekrar"}]
    with pytest.raises(InputError, match="'d1'"):
        Retriever.build(docs, model=FakeEncoder(), path=tmp_path / "idx", factory="Flat")
    assert not Retriever.exists(tmp_path / "idx")
    assert not [t for t in threading.enumerate() if t.name.startswith("tase-search-add")]
    monkeypatch.setattr(vectors_mod.FaissIndex, "add", real_add)


# ----------------------------------------------------------------------------- memory-mapped reads
@pytest.mark.parametrize("factory", ["Flat", "HNSW32,Flat", "IVF8,SQ8"])
def test_searching_maps_the_index_and_answers_like_a_full_read(
    tmp_path: Path, fake_encoder: FakeEncoder, factory: str
) -> None:
    docs = [{"id": f"d{i}", "text": f"belge {i} kelime{i % 17} konu{i % 5}"} for i in range(400)]
    path = tmp_path / "idx"
    built = Retriever.build(docs, model=fake_encoder, path=path, factory=factory)
    built.search("konu3", k=3)
    assert not built._vectors.read_only  # the default reads the file: steady latency for long-lived use
    r = Retriever.load(path, model=fake_encoder, mmap=True)
    r.search("konu3", k=3)
    assert r._vectors.read_only  # mapped on request
    m = read_manifest(path)
    full = vectors_mod.FaissIndex.load(
        newest_segment(path) / "vectors.faiss", m.factory, m.model.dimension, m.search_params
    )
    assert not full.read_only
    q = fake_encoder.encode_query(["belge 7 kelime7", "konu2", "kelime13 konu1"])
    s1, i1 = r._vectors.search(q, 10)
    s2, i2 = full.search(q, 10)
    assert (i1 == i2).all() and np.allclose(s1, s2)
    r.add([{"id": "yeni", "text": "tamamen yeni bir belge"}])  # writes open their own, writable copy
    assert r.search("tamamen yeni bir belge", k=1)[0].id == "yeni"


def test_a_mapped_index_refuses_writes_with_an_error_not_an_abort(
    tmp_path: Path, fake_encoder: FakeEncoder
) -> None:
    from tase_search.errors import IndexWriteError

    path = tmp_path / "idx"
    build(path, fake_encoder)
    m = read_manifest(path)
    mapped = vectors_mod.FaissIndex.load(
        newest_segment(path) / "vectors.faiss", m.factory, m.model.dimension, m.search_params, mmap=True
    )
    v = fake_encoder.encode_document(["bir", "iki"])
    with pytest.raises(IndexWriteError, match="read-only"):
        mapped.add(v, np.array([900, 901]))
    with pytest.raises(IndexWriteError, match="read-only"):
        mapped.remove(np.array([0]))
    assert mapped.ntotal == m.rows + m.tombstones
