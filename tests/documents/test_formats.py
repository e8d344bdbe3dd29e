"""tase_search.evaluation.labelled_data: one reader per data format, and the same file read alike by training and evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tase_search.documents.readers import read_corpus
from tase_search.errors import DataError
from tase_search.evaluation import bitext_tasks, squad_task
from tase_search.evaluation.labelled_data import read_squad, read_sts, read_table
from tase_search.evaluation.sts import load_sts

# A line starting with '"' and an unbalanced quote: RFC 4180 quoting would merge or strip these.
QUOTED_TSV = (
    "tr\ten\n"
    '"Merhaba," dedi.\t"Hello," he said.\n'
    '"açık tırnak\tan "open quote\n'
    "Çay içer misin?\tWould you like tea?\n"
)
ROWS = [
    ('"Merhaba," dedi.', '"Hello," he said.'),
    ('"açık tırnak', 'an "open quote'),
    ("Çay içer misin?", "Would you like tea?"),
]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_tsv_quotes_are_ordinary_characters(tmp_path: Path) -> None:
    rows = read_table(_write(tmp_path / "b.tsv", QUOTED_TSV), ("tr", "en"))
    assert [(r["tr"], r["en"]) for r in rows] == ROWS


def test_csv_follows_rfc4180_and_jsonl_reads_keys(tmp_path: Path) -> None:
    csv_rows = read_table(_write(tmp_path / "b.csv", 'tr,en\n"a, ""b""",c\n'), ("tr", "en"))
    assert csv_rows == [{"tr": 'a, "b"', "en": "c"}]
    jl = _write(tmp_path / "b.jsonl", json.dumps({"TR": "x", "en": 3}) + "\n")
    with pytest.raises(DataError, match=r"b\.jsonl:1: field 'tr' missing"):
        read_table(jl, ("tr", "en"))
    assert read_table(jl, ("en",)) == [{"en": "3"}]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", ":1: the file is empty"),
        ("tr\ten\n", "no data rows"),
        ("tr\tde\nx\ty\n", ":1: header ['tr', 'de'] lacks column(s) ['en']"),
        ("tr\ten\na\tb\tc\n", ":2: expected 2 TSV fields"),
        ("tr\ten\na\t \n", ":2: field 'en' is empty"),
    ],
)
def test_table_errors_name_file_and_line(tmp_path: Path, content: str, needle: str) -> None:
    path = _write(tmp_path / "t.tsv", content)
    with pytest.raises(DataError) as err:
        read_table(path, ("tr", "en"))
    assert str(path) in str(err.value) and needle in str(err.value)


def test_header_case_bom_aliases_and_optional(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_bytes("\ufeffQuery-ID\tDoc_ID\nq1\td1\n".encode())
    rows = read_table(path, ("query_id", "doc_id"), optional=("score",), aliases={"query_id": ("query-id",)})
    assert rows == [{"query_id": "q1", "doc_id": "d1"}]


def test_sts_and_squad_readers(tmp_path: Path) -> None:
    sts = read_sts(_write(tmp_path / "s.tsv", "score\tsentence1\tsentence2\n4.5\ta\tb\n1\t\tskipped\n"))
    assert (sts.scores, sts.sentences1, sts.sentences2) == ([4.5], ["a"], ["b"])
    with pytest.raises(DataError, match=r"x\.tsv:2: score 'high' is not a number"):
        read_sts(_write(tmp_path / "x.tsv", "score\tsentence1\tsentence2\nhigh\ta\tb\n"))
    doc = {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": " Ankara başkenttir. ",
                        "qas": [{"id": "q1", "question": "Başkent?", "answers": [{"answer_start": "1"}]}],
                    },
                    {"context": "", "qas": [{"id": "q2", "question": "skipped"}]},
                ],
            }
        ]
    }
    squad = read_squad(_write(tmp_path / "q.json", json.dumps(doc, ensure_ascii=False)))
    assert squad.paragraphs == ["Ankara başkenttir."] and squad.raw_paragraphs == [" Ankara başkenttir. "]
    assert [(q.id, q.question, q.paragraph, q.answer_start) for q in squad.questions] == [
        ("q1", "Başkent?", 0, 1)
    ]


def test_corpus_reader_and_evaluation_read_tsv_alike(tmp_path: Path) -> None:
    path = _write(tmp_path / "b.tsv", QUOTED_TSV)
    tr_en = bitext_tasks(path)[0]
    assert tr_en.queries == [r[0] for r in ROWS] and tr_en.corpus == [r[1] for r in ROWS]
    assert [d.text for d in read_corpus(str(path), text_column="tr")] == [r[0] for r in ROWS]


def test_training_and_evaluation_parse_the_same_files(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    from tase_search.training import data as tdata

    bitext = _write(tmp_path / "b.tsv", QUOTED_TSV)
    assert tdata.read_table(bitext, ["tr", "en"]) == ROWS
    assert [tuple(r.values()) for r in tdata.read_pairs(bitext, ["tr", "en"], dedup=False)] == ROWS
    tr_en = bitext_tasks(bitext)[0]
    assert list(zip(tr_en.queries, tr_en.corpus, strict=True)) == ROWS

    sts_path = _write(
        tmp_path / "s.tsv", 'score\tsentence1\tsentence2\n5\t"Alıntı" dedi\tbir\n2.5\tiki\t"üç\n0\t\tboş\n'
    )
    gold, s1, s2 = load_sts(sts_path)
    ds = tdata.read_sts(sts_path)
    assert ds["sentence1"] == s1 == ['"Alıntı" dedi', "iki"] and ds["sentence2"] == s2 == ["bir", '"üç']
    assert ds["score"] == pytest.approx([g / 5 for g in gold])

    doc = {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {"context": "Ankara başkenttir.", "qas": [{"id": "a", "question": '"Başkent" neresi?'}]},
                    {"context": "İzmir bir liman kentidir.", "qas": [{"id": "b", "question": "Liman?"}]},
                ],
            }
        ]
    }
    squad_path = _write(tmp_path / "q.json", json.dumps(doc, ensure_ascii=False))
    task = squad_task(squad_path)
    train_rows = tdata.read_squad(squad_path)
    assert train_rows["anchor"] == task.queries
    assert train_rows["positive"] == [task.corpus[next(iter(r))] for r in task.qrels]
