"""Tests for tase_search.documents.readers: formats, gzip, stdin, encoding and every InputError."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import os
import sys
import tracemalloc
from pathlib import Path

import pytest

from tase_search.documents.readers import FORMATS, Document, ReadStats, detect_format, read_corpus
from tase_search.errors import InputError
from tase_search.store.content import content_id

DATA = Path(__file__).resolve().parents[2] / "tase_search" / "data"


def write(path: Path, content: str | bytes, *, gz: bool = False) -> Path:
    data = content.encode("utf-8") if isinstance(content, str) else content
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def read(path: Path | str, **kwargs: object) -> list[Document]:
    return list(read_corpus(str(path), **kwargs))  # type: ignore[arg-type]


def set_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


# ------------------------------------------------------------------------------ detection
@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.txt", "txt"),
        ("a.TXT", "txt"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.tsv", "tsv"),
        ("a.csv", "csv"),
        ("a.txt.gz", "txt"),
        ("dir.v2/a.jsonl.gz", "jsonl"),
        ("a.csv.GZ", "csv"),
        ("-", "txt"),
    ],
)
def test_detect_format(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt
    assert fmt in FORMATS


@pytest.mark.parametrize("name", ["corpus.json", "corpus.parquet", "corpus", "corpus.gz", "x.txt.bz2"])
def test_detect_format_unknown(name: str) -> None:
    with pytest.raises(InputError) as err:
        detect_format(name)
    msg = str(err.value)
    assert name in msg
    for fmt in FORMATS:
        assert fmt in msg
    assert "--format" in msg


def test_unknown_extension_reported_by_read_corpus(tmp_path: Path) -> None:
    p = write(tmp_path / "c.json", '[{"text": "a"}]')
    with pytest.raises(InputError, match=r"c\.json.*--format"):
        read_corpus(str(p))


def test_format_forced(tmp_path: Path) -> None:
    p = write(tmp_path / "c.data", '{"text": "merhaba"}\n')
    assert [d.text for d in read(p, fmt="jsonl")] == ["merhaba"]
    assert [d.text for d in read(p, fmt="txt")] == ['{"text": "merhaba"}']
    assert [d.text for d in read(p, fmt="NDJSON")] == ["merhaba"]


def test_bad_forced_format(tmp_path: Path) -> None:
    p = write(tmp_path / "c.txt", "a\n")
    with pytest.raises(InputError, match="'xml'.*txt, jsonl, tsv, csv"):
        read_corpus(str(p), fmt="xml")


def test_bad_encoding_errors_mode(tmp_path: Path) -> None:
    p = write(tmp_path / "c.txt", "a\n")
    with pytest.raises(InputError, match="ignore"):
        read_corpus(str(p), encoding_errors="ignore")


# ------------------------------------------------------------------------------------ txt
def test_txt_one_document_per_line(tmp_path: Path) -> None:
    p = write(tmp_path / "c.txt", "Futbol maçı başladı.\n\n   \nİstanbul'da yağmur var.\r\nson satır")
    stats = ReadStats()
    docs = read(p, stats=stats)
    assert [(d.id, d.text, d.metadata, d.source, d.line) for d in docs] == [
        (content_id("Futbol maçı başladı."), "Futbol maçı başladı.", {}, str(p), 1),
        (content_id("İstanbul'da yağmur var."), "İstanbul'da yağmur var.", {}, str(p), 4),
        (content_id("son satır"), "son satır", {}, str(p), 5),
    ]
    assert all(len(d.id or "") == 16 for d in docs)  # the same in every run: a re-index finds the line
    assert (stats.read, stats.skipped_empty, stats.replaced_encoding) == (3, 2, 0)
    assert stats.per_source == {str(p): 3}
    assert "3 documents read" in stats.summary()


def test_txt_cleaned(tmp_path: Path) -> None:
    p = write(tmp_path / "c.txt", "  s\u0327eker\x00bayramı\t \n\x00\x01\n")
    stats = ReadStats()
    assert [d.text for d in read(p, stats=stats)] == ["şeker bayramı"]
    assert stats.skipped_empty == 1


def test_txt_binary_junk_does_not_crash(tmp_path: Path) -> None:
    p = write(tmp_path / "c.txt", b"ok\x00\x00\x01satir\n")
    assert [d.text for d in read(p)] == ["ok   satir"]


def test_txt_rejects_column_options(tmp_path: Path) -> None:
    p = write(tmp_path / "c.txt", "a\tb\n")
    with pytest.raises(InputError, match="txt"):
        read_corpus(str(p), text_column="text")
    with pytest.raises(InputError, match="txt"):
        read_corpus(str(p), id_column="id")


def test_txt_is_streamed(tmp_path: Path) -> None:
    n = 1_000_000
    p = tmp_path / "big.txt"
    with p.open("w", encoding="utf-8") as fh:
        fh.write("satır numarası\n" * n)  # ~16 MB
    tracemalloc.start()
    try:
        it = read_corpus(str(p))
        head = list(itertools.islice(it, 1000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    it.close()
    assert head[-1].line == 1000
    assert peak < 2_000_000, f"reading 1000 of {n} lines peaked at {peak} bytes: not streaming"


def test_stats_accumulate_across_files(tmp_path: Path) -> None:
    a = write(tmp_path / "a.txt", "x\ny\n")
    b = write(tmp_path / "b.txt", "z\n\n")
    stats = ReadStats()
    read(a, stats=stats)
    read(b, stats=stats)
    assert (stats.read, stats.skipped_empty) == (3, 1)
    assert stats.per_source == {str(a): 2, str(b): 1}


# ---------------------------------------------------------------------------------- jsonl
def test_jsonl_fields(tmp_path: Path) -> None:
    lines = [
        {"id": "spor-001", "text": "Maç 2-1 bitti.", "topic": "spor", "tags": ["futbol"], "n": 3},
        {"id": 42, "text": "Sayısal kimlik."},
        {"text": "Kimliksiz belge.", "extra": None},
        {"id": None, "text": "Boş kimlik."},
        {"id": "", "text": "Boş dize kimlik."},
    ]
    p = write(tmp_path / "c.jsonl", "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    docs = read(p)
    assert [d.id for d in docs] == ["spor-001", "42", None, None, None]
    assert docs[0].metadata == {"topic": "spor", "tags": ["futbol"], "n": 3}
    assert docs[0].text == "Maç 2-1 bitti."
    assert docs[2].metadata == {"extra": None}
    assert [d.line for d in docs] == [1, 2, 3, 4, 5]
    json.dumps([d.metadata for d in docs])


def test_jsonl_custom_columns(tmp_path: Path) -> None:
    p = write(tmp_path / "c.ndjson", '{"key": "k1", "body": "gövde", "text": "başka alan"}\n')
    (doc,) = read(p, text_column="body", id_column="key")
    assert (doc.id, doc.text, doc.metadata) == ("k1", "gövde", {"text": "başka alan"})


def test_jsonl_blank_and_empty_text_skipped(tmp_path: Path) -> None:
    p = write(tmp_path / "c.jsonl", '{"text": "a"}\n\n   \n{"text": "  \\u0000 "}\n{"text": "b"}\n')
    stats = ReadStats()
    docs = read(p, stats=stats)
    assert [(d.text, d.line) for d in docs] == [("a", 1), ("b", 5)]
    assert stats.skipped_empty == 3


def test_jsonl_text_cleaned(tmp_path: Path) -> None:
    p = write(tmp_path / "c.jsonl", '{"text": " satır\\u0000bir\\nsatır iki \\ud800 "}\n')
    assert [d.text for d in read(p)] == ["satır bir\nsatır iki \ufffd"]


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ("not json", "not valid JSON"),
        ('{"text": "a"', "not valid JSON"),
        ('["text", "a"]', "found an array"),
        ('"just a string"', "found a string"),
        ("42", "found a number"),
        ('{"body": "a", "lang": "tr"}', "no 'text' field.*'body', 'lang'"),
        ('{"text": 5}', "'text' field must be a string, found a number"),
        ('{"text": null}', "found null"),
        ('{"text": ["a"]}', "found an array"),
        ('{"text": "a", "id": [1]}', "'id' field must be a string or an integer, found an array"),
        ('{"text": "a", "id": true}', "found a boolean"),
        ('{"text": "a", "id": 1.5}', "found a number"),
    ],
)
def test_jsonl_bad_lines(tmp_path: Path, line: str, pattern: str) -> None:
    p = write(tmp_path / "c.jsonl", '{"text": "iyi satır"}\n' + line + "\n")
    with pytest.raises(InputError, match=pattern) as err:
        read(p)
    assert f"{p}:2:" in str(err.value)


def test_jsonl_missing_explicit_id(tmp_path: Path) -> None:
    p = write(tmp_path / "c.jsonl", '{"text": "a", "key": "1"}\n{"text": "b"}\n')
    with pytest.raises(InputError, match=r"c\.jsonl:2: no 'key' field"):
        read(p, id_column="key")


# ------------------------------------------------------------------------------- csv/tsv
def test_csv_basic(tmp_path: Path) -> None:
    content = 'id,text,topic\n1,"Maç, uzatmada bitti.",spor\n2,"Çok satırlı\nbir metin ""alıntı""",tarih\n3,son,hava\n'
    p = write(tmp_path / "c.csv", content)
    docs = read(p)
    assert [(d.id, d.text, d.metadata, d.line) for d in docs] == [
        ("1", "Maç, uzatmada bitti.", {"topic": "spor"}, 2),
        ("2", 'Çok satırlı\nbir metin "alıntı"', {"topic": "tarih"}, 3),
        ("3", "son", {"topic": "hava"}, 5),
    ]


def test_csv_without_id_column(tmp_path: Path) -> None:
    p = write(tmp_path / "c.csv", "text,lang\nmerhaba,tr\n")
    (doc,) = read(p)
    assert (doc.id, doc.metadata) == (None, {"lang": "tr"})


def test_csv_empty_id_cell_is_none(tmp_path: Path) -> None:
    p = write(tmp_path / "c.csv", "id,text\n,merhaba\n")
    assert read(p)[0].id is None


def test_tsv_basic_and_quotes_are_literal(tmp_path: Path) -> None:
    content = 'sentence\tno\tlang\n"Merhaba" dedi.\t7\ttr\n"açık tırnak\t8\ttr\nson\t9\ttr\n'
    p = write(tmp_path / "c.tsv", content)
    docs = read(p, text_column="sentence", id_column="no")
    assert [(d.id, d.text, d.metadata, d.line) for d in docs] == [
        ("7", '"Merhaba" dedi.', {"lang": "tr"}, 2),
        ("8", '"açık tırnak', {"lang": "tr"}, 3),
        ("9", "son", {"lang": "tr"}, 4),
    ]


def test_tsv_crlf_blank_and_empty(tmp_path: Path) -> None:
    p = write(tmp_path / "c.tsv", "id\ttext\r\na\tbir\r\n\r\nb\t  \r\nc\tüç\r\n")
    stats = ReadStats()
    docs = read(p, stats=stats)
    assert [(d.id, d.text, d.line) for d in docs] == [("a", "bir", 2), ("c", "üç", 5)]
    assert stats.skipped_empty == 2


def test_csv_missing_text_column(tmp_path: Path) -> None:
    p = write(tmp_path / "c.csv", "id,body\n1,a\n")
    with pytest.raises(InputError, match=r"c\.csv:1: no 'text' column.*'id', 'body'"):
        read(p)


def test_tsv_missing_named_columns(tmp_path: Path) -> None:
    p = write(tmp_path / "c.tsv", "id\ttext\n1\ta\n")
    with pytest.raises(InputError, match="no 'body' column.*'id', 'text'"):
        read(p, text_column="body")
    with pytest.raises(InputError, match="no 'key' column.*'id', 'text'"):
        read(p, id_column="key")


def test_csv_duplicate_header(tmp_path: Path) -> None:
    p = write(tmp_path / "c.csv", "text,a,a\nx,1,2\n")
    with pytest.raises(InputError, match="duplicate column.*a"):
        read(p)


@pytest.mark.parametrize("row", ["1,a,extra", "1"])
def test_csv_wrong_field_count(tmp_path: Path, row: str) -> None:
    p = write(tmp_path / "c.csv", f"id,text\n1,ok\n{row}\n")
    with pytest.raises(InputError, match="field.*header has 2") as err:
        read(p)
    assert f"{p}:3:" in str(err.value)


def test_csv_empty_file(tmp_path: Path) -> None:
    assert read(write(tmp_path / "c.csv", "")) == []


def test_csv_huge_field(tmp_path: Path) -> None:
    big = "kelime " * 1_500_000  # ~10.5 MB
    p = write(tmp_path / "c.csv", f'id,text\n1,"{big}"\n')
    (doc,) = read(p)
    assert len(doc.text) == len(big.strip())


def test_same_column_for_text_and_id(tmp_path: Path) -> None:
    p = write(tmp_path / "c.csv", "text\na\n")
    with pytest.raises(InputError, match="both"):
        read_corpus(str(p), text_column="text", id_column="text")


# ------------------------------------------------------------------------------- encoding
def test_bom_dropped(tmp_path: Path) -> None:
    p = write(tmp_path / "c.csv", b"\xef\xbb\xbfid,text\n1,merhaba\n")
    assert read(p)[0].id == "1"
    p = write(tmp_path / "c.txt", b"\xef\xbb\xbfilk\n")
    assert read(p)[0].text == "ilk"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("c.txt", b"iyi\nk\xf6t\xfc\n"),
        ("c.jsonl", b'{"text": "iyi"}\n{"text": "k\xf6t\xfc"}\n'),
        ("c.csv", b"text\nk\xf6t\xfc\n"),
        ("c.tsv", b"text\nk\xf6t\xfc\n"),
    ],
)
def test_invalid_utf8_strict(tmp_path: Path, name: str, content: bytes) -> None:
    p = write(tmp_path / name, content)
    with pytest.raises(InputError, match="invalid UTF-8.*--encoding-errors replace") as err:
        read(p)
    assert f"{p}:2:" in str(err.value)


def test_invalid_utf8_replaced_and_counted(tmp_path: Path) -> None:
    p = write(tmp_path / "c.txt", b"k\xf6t\xfc\niyi\n\xff\xfe\n")
    stats = ReadStats()
    docs = read(p, encoding_errors="replace", stats=stats)
    assert [d.text for d in docs] == ["k\ufffdt\ufffd", "iyi", "\ufffd\ufffd"]
    assert stats.replaced_encoding == 2
    assert "invalid UTF-8 replaced" in stats.summary()


def test_invalid_utf8_in_gzip_names_line(tmp_path: Path) -> None:
    p = write(tmp_path / "c.txt.gz", b"a\nb\nc\xc3\n", gz=True)
    with pytest.raises(InputError, match=r"c\.txt\.gz:3: invalid UTF-8"):
        read(p)


# ----------------------------------------------------------------------------------- gzip
@pytest.mark.parametrize(
    ("name", "content", "kwargs"),
    [
        ("c.txt.gz", "bir\niki\n", {}),
        ("c.jsonl.gz", '{"text": "bir"}\n{"text": "iki"}\n', {}),
        ("c.tsv.gz", "text\nbir\niki\n", {}),
        ("c.csv.gz", "text\nbir\niki\n", {}),
    ],
)
def test_gzip_formats(tmp_path: Path, name: str, content: str, kwargs: dict[str, str]) -> None:
    p = write(tmp_path / name, content, gz=True)
    assert [d.text for d in read(p, **kwargs)] == ["bir", "iki"]


def test_gzip_detected_by_magic_without_gz_suffix(tmp_path: Path) -> None:
    p = write(tmp_path / "c.txt", "sıkıştırılmış\n", gz=True)
    assert [d.text for d in read(p)] == ["sıkıştırılmış"]


def test_gz_suffix_but_not_gzip(tmp_path: Path) -> None:
    p = write(tmp_path / "c.txt.gz", "düz metin\n")
    with pytest.raises(InputError, match=r"c\.txt\.gz.*not a valid gzip"):
        read(p)


def test_empty_gz_file(tmp_path: Path) -> None:
    p = write(tmp_path / "c.txt.gz", b"")
    with pytest.raises(InputError, match="not a valid gzip"):
        read(p)


def test_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress(("satır\n" * 5000).encode())
    p = write(tmp_path / "c.txt.gz", data[: len(data) // 2])
    with pytest.raises(InputError, match=r"c\.txt\.gz:\d+: corrupt or truncated gzip"):
        read(p)


def test_corrupt_gzip(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(b"abc\n" * 100))
    data[12:20] = b"\xff" * 8
    p = write(tmp_path / "c.txt.gz", bytes(data))
    with pytest.raises(InputError, match=r"c\.txt\.gz"):
        read(p)


# ---------------------------------------------------------------------------------- paths
def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "yok.txt"
    with pytest.raises(InputError, match="not found") as err:
        read_corpus(str(p))
    assert str(p) in str(err.value)


def test_directory(tmp_path: Path) -> None:
    d = tmp_path / "dir.txt"
    d.mkdir()
    with pytest.raises(InputError, match="is a directory") as err:
        read_corpus(str(d))
    assert str(d) in str(err.value)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read anything")
def test_unreadable(tmp_path: Path) -> None:
    p = write(tmp_path / "c.txt", "a\n")
    p.chmod(0)
    try:
        with pytest.raises(InputError, match="not readable") as err:
            read_corpus(str(p))
        assert str(p) in str(err.value)
    finally:
        p.chmod(0o644)


def test_errors_are_eager_reading_is_lazy(tmp_path: Path) -> None:
    p = write(tmp_path / "c.jsonl", "bozuk\n")
    it = read_corpus(str(p))  # valid path and format: no error yet
    with pytest.raises(InputError, match=":1: not valid JSON"):
        next(it)


# ---------------------------------------------------------------------------------- stdin
def test_stdin_txt(monkeypatch: pytest.MonkeyPatch) -> None:
    set_stdin(monkeypatch, "bir\n\nikinci satır\n".encode())
    stats = ReadStats()
    docs = read("-", stats=stats)
    assert [(d.text, d.source, d.line) for d in docs] == [
        ("bir", "<stdin>", 1),
        ("ikinci satır", "<stdin>", 3),
    ]
    assert stats.per_source == {"<stdin>": 2}
    assert not sys.stdin.closed


def test_stdin_jsonl(monkeypatch: pytest.MonkeyPatch) -> None:
    set_stdin(monkeypatch, b'{"id": "a", "text": "x", "topic": "spor"}\n')
    (doc,) = read("-", fmt="jsonl")
    assert (doc.id, doc.text, doc.metadata) == ("a", "x", {"topic": "spor"})


def test_stdin_gzip(monkeypatch: pytest.MonkeyPatch) -> None:
    set_stdin(monkeypatch, gzip.compress("bir\nıki\n".encode()))
    assert [d.text for d in read("-")] == ["bir", "ıki"]


def test_stdin_invalid_utf8(monkeypatch: pytest.MonkeyPatch) -> None:
    set_stdin(monkeypatch, b"a\n\xff\n")
    with pytest.raises(InputError, match="<stdin>:2: invalid UTF-8"):
        read("-")


def test_stdin_text_only_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("bir\niki\n"))
    assert [d.text for d in read("-")] == ["bir", "iki"]


# ------------------------------------------------------------------------- bundled data
def test_demo_corpus_reads() -> None:
    # The demo command indexes demo_tr.jsonl and demo_tr.txt together: the two are disjoint.
    stats = ReadStats()
    docs = read(DATA / "demo_tr.txt", stats=stats) + read(DATA / "demo_tr.jsonl", stats=stats)
    assert 180 <= len(docs) <= 260
    assert stats.skipped_empty == 0
    assert sum(len(d.text.split()) >= 80 for d in docs) >= 12
    assert len({d.text for d in docs}) == len(docs)
    assert all(any(c in d.text for c in "çğıöşüÇĞİÖŞÜ") for d in docs if len(d.text) > 60)


def test_demo_jsonl_reads() -> None:
    docs = read(DATA / "demo_tr.jsonl")
    assert len(docs) >= 25
    ids = [d.id for d in docs]
    assert len(set(ids)) == len(ids) and all(ids)
    assert all(set(d.metadata) == {"topic"} for d in docs)
    assert sum(d.metadata["topic"] == "spor" for d in docs) >= 3
    assert len({d.metadata["topic"] for d in docs}) >= 10


def test_demo_queries() -> None:
    queries = (DATA / "demo_queries.txt").read_text(encoding="utf-8").splitlines()
    assert 6 <= len([q for q in queries if q.strip()]) <= 12
