"""What grows grows by one file and one registration: a corpus format, a fusion method, a document
backend. Each is added here from this test module with one ``register`` call, and then works end to end:
the library uses it and the CLI's choices accept it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tase_search.cli.index import index_cmd
from tase_search.cli.query import query_cmd
from tase_search.documents import formats as formats_mod
from tase_search.documents.document import Document
from tase_search.documents.formats import CorpusFormat, ParseContext
from tase_search.documents.readers import ReadStats, detect_format, read_corpus
from tase_search.encoding import backends as backends_mod
from tase_search.query import fusion as fusion_mod


# --------------------------------------------------------------------- a corpus format: markdown paragraphs
def read_paragraphs(lines: Iterable[tuple[int, str]], ctx: ParseContext) -> Iterator[Document]:
    """One document per paragraph (lines up to a blank one), ``#`` headings left out."""
    start, text = 0, []
    for lineno, line in [*lines, (0, "")]:
        line = line.rstrip("\r\n")
        if line.strip() and not line.startswith("#"):
            start = start or lineno
            text.append(line.strip())
        elif text:
            yield Document(None, " ".join(text), {}, ctx.source, start)
            start, text = 0, []


@pytest.fixture
def markdown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats_mod, "_REGISTRY", dict(formats_mod.formats()))
    formats_mod.register(CorpusFormat("md", (".md",), read_paragraphs, columns=False, summary="paragraphs"))


def test_a_registered_corpus_format_is_read_and_offered(markdown: None, tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("# Başlık\n\nİlk paragraf\niki satır.\n\nİkinci paragraf.\n", encoding="utf-8")
    assert detect_format(str(path)) == "md"
    stats = ReadStats()
    docs = list(read_corpus(str(path), stats=stats))
    assert [(d.text, d.line) for d in docs] == [("İlk paragraf iki satır.", 3), ("İkinci paragraf.", 6)]
    assert stats.read == 2
    ctx = index_cmd.make_context("index", [str(path), "--format", "md"])
    assert ctx.params["fmt"] == "md"


def test_an_unregistered_format_is_refused_by_the_cli() -> None:
    import click

    with pytest.raises(click.BadParameter, match="'md' is not one of"):
        index_cmd.make_context("index", ["x.md", "--format", "md"])


# --------------------------------------------------------------------- a fusion method: dense first, then sparse
def dense_first(
    dense: Sequence[tuple[Any, float]], sparse: Sequence[tuple[Any, float]], dense_weight: float
) -> list[tuple[Any, float]]:
    seen = [key for key, _ in dense] + [key for key, _ in sparse if key not in dict(dense)]
    return [(key, 1.0 / (rank + 1)) for rank, key in enumerate(seen)]


def test_a_registered_fusion_method_is_used_and_offered(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_encoder: Any
) -> None:
    from tase_search import Retriever

    monkeypatch.setattr(fusion_mod, "_REGISTRY", dict(fusion_mod.methods()))
    fusion_mod.register("dense-first", dense_first)

    r = Retriever.build(
        ["maç 2-1 bitti", "yarın yağmur yağacak", "borsa yükseldi"], fake_encoder, tmp_path / "i"
    )
    hits = r.search("maç yağmur", k=3, mode="hybrid", fusion="dense-first")
    assert [h.rank for h in hits] == [1, 2, 3]
    with pytest.raises(Exception, match="is not one of"):
        r.search("maç", mode="hybrid", fusion="no-such-fusion")
    ctx = query_cmd.make_context("query", ["maç", "--fusion", "dense-first"])
    assert ctx.params["fusion"] == "dense-first"


# --------------------------------------------------------------------- a document backend
class _EchoBackend:
    """The attributes a document backend module has (here an object, as a test can make one)."""

    NAME = "echo"
    RUNNER = object

    @staticmethod
    def missing() -> str | None:
        return "the echo package (a test backend)"

    @staticmethod
    def unsupported(model: Any) -> str | None:
        return None

    @staticmethod
    def write(model: Any, out: Path) -> None:  # pragma: no cover - never converted
        raise AssertionError


def test_a_registered_document_backend_is_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends_mod, "_MODULES", dict(backends_mod._MODULES))
    backends_mod.register(_EchoBackend)
    assert "echo" in backends_mod.backend_names()
    assert backends_mod.why_not("echo", model=None) == "the echo package (a test backend)"
    ctx = index_cmd.make_context("index", ["corpus.txt", "--backend", "echo"])
    assert ctx.params["backend"] == "echo"
