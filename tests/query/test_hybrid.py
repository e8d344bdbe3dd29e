"""Hybrid search: the keyword (FTS5) part written with the documents, the three modes, fusion, filters,
passages, one hit per document, indexes without a keyword part, ``sparse build``, stale parts, verify."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from store_helpers import live_rows, needs_older, newest_segment, older_version

from tase_search.cli.app import main
from tase_search.encoding.passages import Passage
from tase_search.errors import IndexCorrupt, InputError
from tase_search.query import modes
from tase_search.retriever import Retriever
from tase_search.store.manifest import read_manifest
from tase_search.store.verify import verify_index
from tase_search.testing import FakeEncoder

DOCS = [
    {"id": "tc", "text": "Turkcell'in hisseleri bugün yükseldi.", "topic": "ekonomi"},
    {"id": "gs", "text": "Galatasaray maçı yarın İstanbul'da oynanacak.", "topic": "spor"},
    {"id": "fb", "text": "Fenerbahçe futbol maçını İstanbul'da kazandı.", "topic": "spor"},
    {"id": "sat", "text": "Türksat uydusu uzaya fırlatıldı.", "topic": "bilim"},
    {"id": "en", "text": "We go to Boston every year for the marathon.", "topic": "gezi"},
    {
        "id": "long",
        "text": "Kedi bahçede uyudu. Köpek havladı. Turkcell'e yeni abone geldi.",
        "topic": "karışık",
    },
]


class SentenceEncoder(FakeEncoder):
    """The fake encoder, with each sentence of a document its own passage."""

    def split_passages(self, text: str, overlap: int = 32) -> list[Passage]:
        spans, start = [], 0
        for i, ch in enumerate(text):
            if ch == "." and (i + 1 == len(text) or text[i + 1] == " "):
                spans.append((start, i + 1))
                start = i + 2
        spans = spans or [(0, len(text))]
        return [Passage(s, e, n, len(spans)) for n, (s, e) in enumerate(spans)]


@pytest.fixture
def index(tmp_path: Path) -> Retriever:
    return Retriever.build(DOCS, model=SentenceEncoder(), path=tmp_path / "ix")


def ids(hits: list) -> list[str]:
    return [h.id for h in hits]


def fts_rows(path: Path) -> list[int]:
    """The passages the keyword part indexes, over every segment (deleted ones left out)."""
    return [r[0] for r in live_rows(path, "keywords")]


def test_sparse_finds_names_through_suffixes(index: Retriever) -> None:
    hits = index.search("Turkcell'e", k=5, mode="sparse")
    assert set(ids(hits)) == {"tc", "long"}  # Turkcell'in and Turkcell'e are one word
    long = next(h for h in hits if h.id == "long")
    assert (
        long.passage.text == "Turkcell'e yeni abone geldi." and long.passage.count == 3
    )  # the passage that matched
    assert all(h.score > 0 for h in hits) and hits[0].rank == 1
    assert ids(index.search("TÜRKSAT", k=3, mode="sparse")) == ["sat"]
    assert index.search("Kremlin", k=3, mode="sparse") == []  # no keyword in common: nothing


def test_every_mode_keeps_filters_k_and_one_hit_per_document(index: Retriever) -> None:
    for mode in ("dense", "sparse", "hybrid", "auto"):
        hits = index.search("İstanbul maçı", k=10, mode=mode, filter={"topic": "spor"})
        assert hits and set(ids(hits)) <= {"gs", "fb"}, mode
        assert len(ids(hits)) == len(set(ids(hits))), mode
        assert index.search("İstanbul maçı", k=1, mode=mode, filter={"topic": "yok"}) == []
        assert len(index.search("Turkcell kedi köpek", k=2, mode=mode)) <= 2
    both = index.search("Turkcell kedi köpek", k=10, mode="hybrid")
    assert ids(both).count("long") == 1  # three matching passages, one hit


def test_hybrid_fuses_both_rankings(index: Retriever) -> None:
    dense = index.search("Turkcell'in hisseleri bugün yükseldi.", k=6, mode="dense")
    hybrid = index.search("Turkcell'in hisseleri bugün yükseldi.", k=6, mode="hybrid")
    assert hybrid[0].id == dense[0].id == "tc" and hybrid[0].score == pytest.approx(1.0)  # first in both
    weighted = index.search("Turkcell", k=6, mode="hybrid", fusion="weighted", dense_weight=0.2)
    assert weighted[0].id in ("tc", "long") and 0 <= weighted[-1].score <= weighted[0].score <= 1
    with pytest.raises(InputError, match="fusion 'max' is not one of rrf, weighted"):
        index.search("Turkcell", mode="hybrid", fusion="max")
    with pytest.raises(InputError, match="dense_weight=1.5 is not valid"):
        index.search("Turkcell", mode="hybrid", dense_weight=1.5)
    with pytest.raises(InputError, match="search mode 'bm25' is not one of"):
        index.search("Turkcell", mode="bm25")


def test_auto_picks_by_query_and_corpus_language(index: Retriever, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(modes, "AUTO", {"same": "sparse", "cross": "dense"})
    assert index.search("Turkcell", k=3, mode="auto") == index.search("Turkcell", k=3, mode="sparse")
    en = "Where do we go every year?"  # English, over a corpus that is mostly Turkish
    assert index.search(en, k=3, mode="auto") == index.search(en, k=3, mode="dense")
    assert index.search("Turkcell", k=3) == index.search("Turkcell", k=3, mode="sparse")  # the default


def test_hybrid_weighs_dense_more_for_a_query_in_another_language(index: Retriever) -> None:
    en, tr = "Where do we go every year for the marathon?", "Turkcell hisseleri yükseldi mi?"
    assert index.search(en, k=6) == index.search(en, k=6, mode="dense")  # auto: across languages, dense
    assert index.search(en, k=6, mode="hybrid") == index.search(en, k=6, mode="hybrid", dense_weight=0.8)
    assert index.search(en, k=6, mode="hybrid") != index.search(en, k=6, mode="hybrid", dense_weight=0.5)
    assert index.search(tr, k=6, mode="hybrid") == index.search(tr, k=6, mode="hybrid", dense_weight=0.5)


def test_sparse_mode_needs_no_model(index: Retriever) -> None:
    r = Retriever.load(index.path, model="/no/such/model")  # the model would fail to load if asked for
    assert ids(r.search("Türksat", k=1, mode="sparse")) == ["sat"]


def test_add_replace_delete_keep_the_keyword_part_in_step(index: Retriever) -> None:
    index.add([{"id": "new", "text": "Aselsan yeni radar üretti."}])
    assert ids(index.search("Aselsan", mode="sparse")) == ["new"]
    index.add([{"id": "new", "text": "Roketsan yeni füze denedi."}], on_duplicate="replace")
    assert index.search("Aselsan", mode="sparse") == [] and ids(index.search("Roketsan", mode="sparse")) == [
        "new"
    ]
    index.delete(["tc", "long"])
    assert index.search("Turkcell", mode="sparse") == []
    m = read_manifest(index.path)
    assert len(fts_rows(index.path)) == m.rows
    assert verify_index(index.path).ok


def test_index_without_keyword_part_searches_dense_and_says_how_to_add_one(tmp_path: Path) -> None:
    r = Retriever.build(DOCS, model=FakeEncoder(), path=tmp_path / "old", sparse=False)
    assert r.info()["sparse"] == "none" and "sparse build" in (r.sparse_note or "")
    assert r.search("Turkcell", k=2) == r.search("Turkcell", k=2, mode="dense")  # auto falls back
    with pytest.raises(InputError, match="mode 'sparse' is not available: .*tase-search sparse build"):
        r.search("Turkcell", mode="sparse")
    gen = r.manifest.generation
    assert r.build_sparse() == len(DOCS)  # from the stored text: nothing is embedded
    assert (
        r.manifest.generation > gen and r.info()["sparse"] == "current" and r.sparse_note is None
    )  # a write, then a merge gives every segment one
    assert set(ids(r.search("Turkcell", mode="sparse"))) == {"tc", "long"}
    gen = r.manifest.generation
    assert r.build_sparse() == 0 and r.manifest.generation == gen  # already current: no new version
    assert verify_index(r.path).ok


@needs_older
def test_keyword_part_written_around_by_an_older_version_is_rebuilt(tmp_path: Path) -> None:
    """An older version can write around the keyword part only of an index it can open, one of format 1
    (it refuses a segmented one, below): its rows go unindexed, the part is stale (reported, not
    searched, verify says so) and the first write of this version (which upgrades the index to
    segments) rebuilds it."""
    ix = tmp_path / "old"
    code = (
        "import json; from tase_search import Retriever; from tase_search.store import sparse; "
        "from tase_search.testing import FakeEncoder; "
        "r = Retriever.build(json.loads(sys.argv[2]), model=FakeEncoder(), path=sys.argv[1]); "
        "sparse.present = lambda conn: False; "  # a writer that does not know the keyword part
        "r.add([{'id': 'old', 'text': 'Aselsan radarı teslim edildi.'}])"
    )
    done = older_version(code, ix, json.dumps(DOCS))
    assert done.returncode == 0, done.stderr[-2000:]
    if read_manifest(ix).format_version != 1:
        pytest.skip("the version at MAIN writes another format")
    r = Retriever.load(ix, model=FakeEncoder())
    assert "without it" in r.info()["sparse"] and r.sparse_note is not None
    assert r.search("Aselsan", k=3) == r.search("Aselsan", k=3, mode="dense")  # not searched while stale
    rep = verify_index(r.path)
    assert rep.ok and any("out of date" in c for c in rep.checked)
    r.delete(["gs"])  # any write brings it up to date
    assert read_manifest(ix).format_version == 2
    assert r.info()["sparse"] == "current" and ids(r.search("Aselsan", mode="sparse")) == ["old"]
    assert ids(r.search("Galatasaray", mode="sparse")) == []
    assert verify_index(r.path).ok


@needs_older
def test_an_older_version_refuses_a_segmented_index(index: Retriever) -> None:
    """So it cannot write around a segmented index's keyword part: the write is refused, nothing changes."""
    before = (index.path / "manifest.json").read_bytes()
    code = (
        "from tase_search import Retriever; from tase_search.testing import FakeEncoder; "
        "Retriever.load(sys.argv[1], model=FakeEncoder()).add([{'id': 'x', 'text': 'Aselsan radarı.'}])"
    )
    done = older_version(code, index.path)
    assert done.returncode != 0 and "format version 2 is not supported" in done.stderr
    assert (index.path / "manifest.json").read_bytes() == before
    assert verify_index(index.path).ok and index.info()["sparse"] == "current"


def test_verify_checks_the_keyword_part(index: Retriever, tmp_path: Path) -> None:
    rep = verify_index(index.path)
    assert rep.ok and any(
        c.endswith("sparse: FTS5 integrity, one keyword row per passage") for c in rep.checked
    )
    bad = tmp_path / "bad"
    shutil.copytree(index.path, bad)
    db = newest_segment(bad) / "docs.sqlite"
    con = sqlite3.connect(db)
    con.execute("DELETE FROM sparse_content WHERE id = (SELECT MIN(id) FROM sparse_content)")
    con.commit()
    con.close()
    problems = verify_index(bad).problems
    assert any("keyword index holds" in p for p in problems), problems
    assert any("FTS5 integrity check failed" in p for p in problems), problems


def test_a_foreign_table_named_sparse_is_refused(index: Retriever, tmp_path: Path) -> None:
    bad = tmp_path / "foreign"
    shutil.copytree(index.path, bad)
    db = newest_segment(bad) / "docs.sqlite"
    con = sqlite3.connect(db)
    con.execute("DROP TABLE sparse")
    con.execute("CREATE TABLE sparse (terms TEXT)")
    con.commit()
    con.close()
    from tase_search.store.docs import DocStore

    with pytest.raises(IndexCorrupt, match="not the keyword index tase-search creates"):
        DocStore(db, readonly=True)


# ------------------------------------------------------------------------------ the command line
@pytest.fixture
def cli_index(tmp_path: Path, tiny_encoder: object) -> tuple[CliRunner, Path]:
    path = tmp_path / "cli"
    Retriever.build(DOCS, model=tiny_encoder, path=path, sparse=False)  # type: ignore[arg-type]
    env = {"TASE_SEARCH_QUERY_BACKEND": "torch", "TASE_SEARCH_PRECISION": "fp32"}
    return CliRunner(env=env), path


def test_cli_modes_sparse_build_and_info(cli_index: tuple[CliRunner, Path]) -> None:
    runner, path = cli_index
    res = runner.invoke(main, ["query", "Turkcell", "--index", str(path), "--json"])
    assert res.exit_code == 0, res.output
    assert "searched by meaning only" in res.stderr and f"sparse build --index {path}" in res.stderr
    res = runner.invoke(main, ["query", "Turkcell", "--index", str(path), "--mode", "sparse"])
    assert (
        res.exit_code == 1
        and "mode 'sparse' is not available" in res.output
        and "Traceback" not in res.output
    )
    assert "dense only" in runner.invoke(main, ["info", "--index", str(path)]).output
    res = runner.invoke(main, ["sparse", "build", str(path), "--json"])
    assert res.exit_code == 0, res.output
    built = json.loads(res.stdout)
    assert built["action"] == "built" and built["passages"] == read_manifest(path).rows > 0
    assert (
        json.loads(runner.invoke(main, ["sparse", "build", str(path), "--json"]).stdout)["action"]
        == "unchanged"
    )
    res = runner.invoke(main, ["query", "Turkcell'e", "--index", str(path), "--mode", "sparse", "--json"])
    assert res.exit_code == 0, res.output
    assert {json.loads(x)["id"] for x in res.stdout.splitlines()} == {"tc", "long"}
    assert "searched by meaning only" not in res.stderr
    res = runner.invoke(
        main,
        [
            "query",
            "Türksat",
            "--index",
            str(path),
            "--mode",
            "hybrid",
            "--fusion",
            "weighted",
            "-k",
            "1",
            "--json",
        ],
    )
    assert res.exit_code == 0 and json.loads(res.stdout)["id"] == "sat", res.output
    assert "BM25" in runner.invoke(main, ["info", "--index", str(path)]).output
