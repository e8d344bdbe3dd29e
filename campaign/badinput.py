"""Hostile and broken input: every case must work or fail with a clear error, and never damage the index.

Two parts:

* :func:`run_api_fuzz` — seeded random cases through the Python API with the fake encoder (fast):
  corpus files of every format with broken contents (invalid UTF-8, NUL bytes, binary, malformed
  JSONL/CSV, wrong or duplicate ids, 10 MB lines), odd Python documents, queries in any script or
  none, absurd ``k`` and filters, odd ids to delete, index names, settings from the environment.
* :func:`run_cli_cases` — a fixed list of command lines through the real CLI with a tiny real model.

A case is *mishandled* when it raises anything but a tase-search error (for the CLI: a traceback,
or a non-zero exit without a message), when a failed write changed the index, or when the index no
longer verifies.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from campaign.common import fake_encoder, generation, make_docs, snapshot

SCRIPTS = [
    "futbol maçı İstanbul'da ışık ğüşöç İĞÜŞÖÇ",
    "مباراة كرة القدم في إسطنبول",  # Arabic
    "足球比赛 伊斯坦布尔 東京の天気",  # CJK
    "⚽🏟️🌧️😀👍🏽 🇹🇷",  # emoji, ZWJ sequences, flags
    "Футбольный матч в Стамбуле",  # Cyrillic
    "ποδοσφαιρικός αγώνας",  # Greek
    "फ़ुटबॉल मैच",  # Devanagari
    "\u202eRTL override\u202c and \u200bzero\u200dwidth\ufeff",
    "e\u0301 combining a\u0308 i\u0307",
]
CONTROL = "".join(chr(c) for c in list(range(0, 32)) + [127] + list(range(128, 160)))


def _rand_text(rng: random.Random, n: int | None = None) -> str:
    n = rng.randint(0, 40) if n is None else n
    pools = [
        string.ascii_letters + " ",
        "çğıöşüÇĞİÖŞÜ ",
        CONTROL,
        "".join(SCRIPTS),
        "\x00\ufffd\ufeff\u2028\u2029",
        "\ud800\udc80\udfff",  # lone surrogates
    ]
    return "".join(rng.choice(rng.choice(pools)) for _ in range(n))


def _rand_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.randrange(256) for _ in range(n))


# ------------------------------------------------------------------------------ corpus files
def _corpus_file(rng: random.Random, d: Path) -> tuple[Path, dict[str, Any]]:
    """A corpus file with something wrong (or odd) in it, and read_corpus keyword arguments."""
    ext = rng.choice([".txt", ".jsonl", ".csv", ".tsv", ".txt.gz", ".jsonl.gz", ".json", ".bin", ""])
    kind = rng.choice(
        [
            "unicode",
            "invalid-utf8",
            "binary",
            "empty",
            "empty-lines",
            "control-lines",
            "jsonl-mixed",
            "delimited-mixed",
            "bom",
            "long-line",
            "not-gzip",
        ]
    )
    kw: dict[str, Any] = {}
    lines: list[bytes]
    if kind == "unicode":
        lines = [_rand_text(rng).encode("utf-8", "surrogatepass") for _ in range(rng.randint(1, 20))]
    elif kind == "invalid-utf8":
        lines = [b"iyi satir", b"bozuk \xff\xfe satir \xc3", b"son"]
        kw["encoding_errors"] = rng.choice(["strict", "replace"])
    elif kind == "binary":
        lines = [_rand_bytes(rng, rng.randint(1, 2000))]
    elif kind == "empty":
        lines = []
    elif kind == "empty-lines":
        lines = [b""] * rng.randint(1, 50)
    elif kind == "control-lines":
        lines = [rng.choice(CONTROL).encode() * rng.randint(1, 5) for _ in range(rng.randint(1, 10))]
    elif kind == "jsonl-mixed":
        pool = [
            b'{"text": "iyi belge", "id": "x1"}',
            b'{"text": "ayni id", "id": "x1"}',
            b'{"text": "sayi id", "id": 7}',
            b'{"text": "float id", "id": 1.5}',
            b'{"text": "liste id", "id": [1]}',
            b'{"text": "bos id", "id": ""}',
            b'{"text": "null id", "id": null}',
            b'{"text": 12}',
            b'{"text": null}',
            b'{"baslik": "text yok"}',
            b"[1, 2, 3]",
            b'"just a string"',
            b'{"text": "kesik',
            b"{" * 5000 + b"}" * 5000,
            b'{"text": "\\ud800 yalniz vekil", "meta": "\\udfff"}',
            b'{"text": "nul \\u0000 byte", "id": "nul\\u0000id"}',
            b'{"text": "meta", "nested": {"a": [1, {"b": null}]}, "n": NaN}',
            b'{"text": "dup key", "text": "second"}',
            b"",
            b"   ",
        ]
        lines = [rng.choice(pool) for _ in range(rng.randint(1, 8))]
        if rng.random() < 0.3:
            kw["text_column"] = rng.choice(["text", "body", "", " ", "id"])
        if rng.random() < 0.3:
            kw["id_column"] = rng.choice(["id", "doc_id", "text", ""])
    elif kind == "delimited-mixed":
        sep = rng.choice([b",", b"\t"])
        header = rng.choice(
            [b"id,text", b"text", b"id,body", b"", b"text,text", b"id,text,extra", b'"unclosed']
        )
        header = header.replace(b",", sep)
        rows = [
            b"1,merhaba dunya",
            b"2",
            b'3,"tirnak ""icinde"" metin"',
            b'4,"acik tirnak',
            b"5,a,b,c,d",
            b"1,tekrar id",
            b",id yok",
            b"6,",
            b"7,\x00nul",
        ]
        lines = [header] + [r.replace(b",", sep) for r in rng.sample(rows, rng.randint(0, len(rows)))]
        if rng.random() < 0.3:
            kw["text_column"] = rng.choice(["text", "body", "yok"])
    elif kind == "bom":
        lines = [b"\xef\xbb\xbf" + rng.choice([b"ilk satir", b'{"text": "bom"}', b"id,text"]), b"ikinci"]
    elif kind == "long-line":
        n = rng.choice([100_000, 1_000_000, 10_000_000])
        word = rng.choice([b"futbol ", b"a", b"\xc3\xa7", b"\x00"])
        body = (word * (n // len(word) + 1))[:n]
        if ext.startswith(".jsonl"):
            body = b'{"text": "' + body.replace(b"\x00", b" ") + b'"}'
        lines = [body, b"kisa"]
    else:  # not-gzip
        ext = ".txt.gz"
        lines = [b"this is not gzip"]
    raw = b"\n".join(lines) + (b"\n" if lines and rng.random() < 0.8 else b"")
    if ext.endswith(".gz") and kind != "not-gzip":
        raw = gzip.compress(raw) if rng.random() < 0.9 else gzip.compress(raw)[: max(1, len(raw) // 2)]
    path = d / f"corpus-{rng.randrange(10**9)}{ext}"
    path.write_bytes(raw)
    if rng.random() < 0.15:
        kw["fmt"] = rng.choice(["txt", "jsonl", "csv", "tsv", "json", "xml", ""])
    return path, kw


# ------------------------------------------------------------------------------ python objects
def _docs_objects(rng: random.Random) -> Any:
    from tase_search.documents.readers import Document

    def gen_raising() -> Iterator[str]:
        yield "bir"
        raise ValueError("the caller's own iterator failed")

    choices: list[Callable[[], Any]] = [
        lambda: [_rand_text(rng) for _ in range(rng.randint(0, 5))],
        lambda: "a single string",
        lambda: b"bytes",
        lambda: [None],
        lambda: [123, 4.5],
        lambda: [
            {"text": _rand_text(rng), "id": rng.choice([None, "", " ", 1, 1.5, True, [1], _rand_text(rng)])}
        ],
        lambda: [{"id": "no-text"}],
        lambda: [{"text": b"bytes text"}],
        lambda: [
            {"text": "meta", "meta": rng.choice([{1, 2}, object(), float("nan"), {"a": {"b": [None]}}, b"x"])}
        ],
        lambda: [{"text": "dup", "id": "z"}, {"text": "dup2", "id": "z"}],
        lambda: [Document(id=None, text=_rand_text(rng), metadata={}, source=_rand_text(rng, 5), line=1)],
        lambda: [{"text": "x" * rng.choice([1, 10_000_000])}],
        lambda: gen_raising(),
        lambda: [{"text": "ok", _rand_text(rng, 3): _rand_text(rng)}],
    ]
    return rng.choice(choices)()


def _query_case(rng: random.Random) -> tuple[Any, Any, Any]:
    q = rng.choice(
        [
            lambda: _rand_text(rng),
            lambda: rng.choice(SCRIPTS),
            lambda: "",
            lambda: " \t\n ",
            lambda: CONTROL,
            lambda: "x" * 1_000_000,
            lambda: [rng.choice(SCRIPTS), _rand_text(rng)],
            lambda: [],
            lambda: None,
            lambda: 42,
            lambda: [b"bytes"],
        ]
    )()
    k = rng.choice([1, 5, 0, -1, -(10**18), 10**18, 10**4, True, 2.5, "3", None])
    flt = rng.choice(
        [
            None,
            {},
            {"topic": "spor"},
            {"topic": _rand_text(rng)},
            {_rand_text(rng, 4): "x"},
            {"a.b": "1"},
            {'a"b': "1"},
            {"$": "1"},
            {"": "1"},
            {1: "x"},
            {"id": "d1"},
            {"source": "<python>"},
            {"topic": None},
            {"topic": ["spor"]},
        ]
    )
    return q, k, flt


# ------------------------------------------------------------------------------ runner
class _Outcome:
    def __init__(self) -> None:
        self.tried = self.worked = self.refused = self.mishandled = 0
        self.by_kind: dict[str, list[int]] = {}
        self.examples: list[str] = []

    def add(self, kind: str, outcome: str, detail: str = "") -> None:
        self.tried += 1
        row = self.by_kind.setdefault(kind, [0, 0, 0])
        idx = {"worked": 0, "refused": 1, "mishandled": 2}[outcome]
        row[idx] += 1
        setattr(self, outcome, getattr(self, outcome) + 1)
        if outcome == "mishandled" and len(self.examples) < 25:
            self.examples.append(f"{kind}: {detail}"[:400])

    def to_dict(self) -> dict[str, Any]:
        return {
            "tried": self.tried,
            "worked": self.worked,
            "refused_cleanly": self.refused,
            "mishandled": self.mishandled,
            "by_kind": {
                k: {"worked": v[0], "refused": v[1], "mishandled": v[2]}
                for k, v in sorted(self.by_kind.items())
            },
            "examples": self.examples,
        }


def _damage_check(ix: Path, before: tuple[Any, Any], failed: bool) -> str:
    """'' when fine: a failed write left the index exactly as it was; any write left it verified."""
    from tase_search.store.verify import verify_index

    if failed and (generation(ix), snapshot(ix)) != before:
        return "a failed operation changed the index"
    rep = verify_index(ix)
    if not rep.ok:
        return "index no longer verifies: " + "; ".join(rep.problems)
    left = [p.name for p in ix.iterdir() if p.name.startswith((".tmp-gen-", ".manifest.json.tmp-"))]
    if left:
        return f"temporaries left: {left}"
    return ""


def run_api_fuzz(work: Path, n: int, *, seed: int = 0) -> dict[str, Any]:
    """``n`` seeded random bad-input cases through the Python API (fake encoder)."""
    from tase_search.documents.readers import read_corpus
    from tase_search.errors import TaseSearchError
    from tase_search.retriever import Retriever, resolve_index_path
    from tase_search.runtime.config import load_settings

    work = Path(work)
    if work.exists():
        shutil.rmtree(work)
    files = work / "files"
    files.mkdir(parents=True)
    ix = work / "ix"
    enc = fake_encoder()
    Retriever.build(make_docs(40, prefix="p"), model=enc, path=ix).close()
    rng = random.Random(seed)
    out = _Outcome()
    kinds = ["corpus", "corpus", "corpus", "docs", "docs", "query", "query", "delete", "name", "setting"]
    for _ in range(n):
        kind = rng.choice(kinds)
        before = (generation(ix), snapshot(ix))
        failed, outcome, detail = False, "worked", ""
        try:
            if kind == "corpus":
                path, kw = _corpus_file(rng, files)
                kind = f"corpus{''.join(Path(path.name).suffixes) or '(none)'}"
                with Retriever.load(ix, model=enc) as r:
                    r.add(read_corpus(str(path), **kw), on_duplicate=rng.choice(["error", "skip", "replace"]))
            elif kind == "docs":
                docs = _docs_objects(rng)
                with Retriever.load(ix, model=enc) as r:
                    r.add(docs, on_duplicate=rng.choice(["error", "skip", "replace", "bogus"]))
            elif kind == "query":
                q, k, flt = _query_case(rng)
                with Retriever.load(ix, model=enc) as r:
                    res = r.search(q, k=k, filter=flt)
                    json.dumps(
                        [h.to_dict() for h in (res if q is None or isinstance(q, str) else [])],
                        ensure_ascii=False,
                    ).encode("utf-8")
            elif kind == "delete":
                ids = rng.choice(
                    [
                        [_rand_text(rng)],
                        ["\ud800"],
                        [1, None],
                        [],
                        ["p1", "p1"],
                        [str(i) for i in range(5000)],
                    ]
                )
                with Retriever.load(ix, model=enc) as r:
                    r.delete(ids)
            elif kind == "name":
                name = rng.choice(
                    [
                        _rand_text(rng, rng.randint(0, 8)),
                        "..",
                        "../x",
                        "/etc",
                        "~",
                        "a/../../b",
                        "." * 3,
                        "a" * 300,
                        "con",
                        "x\x00y",
                    ]
                )
                root = work / "root"
                p = resolve_index_path(name, root)
                if not ("/" in name or name.startswith((".", "~")) or name == ""):
                    resolved = p.resolve()
                    if root.resolve() not in resolved.parents:
                        raise AssertionError(f"name {name!r} escaped the root: {resolved}")
            else:  # setting
                key = rng.choice(["BATCH_SIZE", "OVERLAP_TOKENS", "MAX_SEQ_LENGTH", "PRECISION", "MODEL"])
                val = rng.choice(
                    ["abc", "-1", "0", "1e9", "99999999999999999999", "", " ", "64", "nan", "٣", "１２"]
                )
                old = os.environ.get("TASE_SEARCH_" + key)
                os.environ["TASE_SEARCH_" + key] = val
                try:
                    load_settings()
                finally:
                    if old is None:
                        os.environ.pop("TASE_SEARCH_" + key, None)
                    else:
                        os.environ["TASE_SEARCH_" + key] = old
        except TaseSearchError:
            failed, outcome = True, "refused"
        except ValueError as exc:
            if "caller's own iterator" in str(exc):  # the caller's exception passes through, index unchanged
                failed, outcome = True, "refused"
            else:
                failed, outcome, detail = True, "mishandled", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - anything else is a finding
            failed, outcome, detail = True, "mishandled", f"{type(exc).__name__}: {exc}"
        if kind.startswith(("corpus", "docs", "delete")):
            problem = _damage_check(ix, before, failed)
            if problem:
                outcome, detail = "mishandled", problem + (f" ({detail})" if detail else "")
        out.add(kind, outcome, detail)
        if out.tried % 50 == 0 and (ix / "manifest.json").is_file():  # keep the index small
            with Retriever.load(ix, model=enc) as r:
                extra = [i for i in _ids(ix) if not i.startswith("p")]
                if extra:
                    r.delete(extra)
    return out.to_dict()


def _ids(ix: Path) -> list[str]:
    return sorted(snapshot(ix) or {})


# ------------------------------------------------------------------------------ CLI cases
def _fifo(path: Path) -> str:
    if not path.exists():
        os.mkfifo(path)
    return str(path)


def _newline_bomb(path: Path, mib: int = 200) -> str:
    """A gzip of ``mib`` MiB of newlines (about 1000:1; ``mib`` members of 1 MiB each, so it is made in
    milliseconds): read line by line it once ran for minutes."""
    if not path.exists():
        member = gzip.compress(b"\n" * (1 << 20), compresslevel=9)
        path.write_bytes(member * mib)
    return str(path)


def cli_cases(d: Path) -> list[tuple[str, list[str], dict[str, str], str | None]]:
    """(name, argv, extra environment, stdin) — run against the index at ``{IX}`` (tiny model)."""
    d.mkdir(parents=True, exist_ok=True)

    def f(name: str, data: bytes) -> str:
        p = d / name
        p.write_bytes(data)
        return str(p)

    big = b"futbol ma\xc3\xa7 " * (10_000_000 // 11)
    ix = "{IX}"
    cases: list[tuple[str, list[str], dict[str, str], str | None]] = [
        ("index: empty file", ["index", f("empty.txt", b""), "-i", ix], {}, None),
        ("index: only empty lines", ["index", f("blank.txt", b"\n\n  \n\t\n"), "-i", ix], {}, None),
        ("index: only control characters", ["index", f("ctl.txt", b"\x00\x01\n\x7f\n"), "-i", ix], {}, None),
        ("index: binary file as txt", ["index", f("bin.txt", bytes(range(256)) * 40), "-i", ix], {}, None),
        (
            "index: binary file, unknown extension",
            ["index", f("x.bin", bytes(range(256))), "-i", ix],
            {},
            None,
        ),
        ("index: invalid UTF-8 strict", ["index", f("bad.txt", b"ok\nbad \xff\xfe\n"), "-i", ix], {}, None),
        (
            "index: invalid UTF-8 replace",
            [
                "index",
                f("bad2.txt", b"ok yeni\nbad \xff\xfe yeni\n"),
                "-i",
                ix,
                "--encoding-errors",
                "replace",
            ],
            {},
            None,
        ),
        ("index: NUL bytes in lines", ["index", f("nul.txt", b"a\x00b futbol\n\x00\n"), "-i", ix], {}, None),
        (
            "index: malformed JSONL",
            ["index", f("bad.jsonl", b'{"text": "ok"}\n{"text": \n'), "-i", ix],
            {},
            None,
        ),
        ("index: JSONL without text", ["index", f("nt.jsonl", b'{"body": "x"}\n'), "-i", ix], {}, None),
        ("index: JSONL array line", ["index", f("arr.jsonl", b"[1,2]\n"), "-i", ix], {}, None),
        (
            "index: JSONL duplicate ids (error)",
            ["index", f("dup.jsonl", b'{"id":"q","text":"a"}\n{"id":"q","text":"b"}\n'), "-i", ix],
            {},
            None,
        ),
        (
            "index: JSONL duplicate ids (skip)",
            [
                "index",
                f("dup2.jsonl", b'{"id":"q","text":"a"}\n{"id":"q","text":"b"}\n'),
                "-i",
                ix,
                "--on-duplicate",
                "skip",
            ],
            {},
            None,
        ),
        (
            "index: JSONL missing ids",
            ["index", f("noid.jsonl", b'{"text":"a yeni"}\n{"text":"b yeni"}\n'), "-i", ix],
            {},
            None,
        ),
        ("index: CSV wrong column", ["index", f("w.csv", b"id,body\n1,x\n"), "-i", ix], {}, None),
        (
            "index: CSV --text-column missing",
            ["index", f("w2.csv", b"id,text\n1,x\n"), "-i", ix, "--text-column", "govde"],
            {},
            None,
        ),
        ("index: CSV ragged rows", ["index", f("r.csv", b"id,text\n1\n2,a,b,c\n"), "-i", ix], {}, None),
        ("index: TSV unclosed quote", ["index", f("q.tsv", b'id\ttext\n1\t"open\n'), "-i", ix], {}, None),
        ("index: not gzip", ["index", f("fake.txt.gz", b"plain"), "-i", ix], {}, None),
        ("index: directory as corpus", ["index", str(d), "-i", ix], {}, None),
        ("index: missing file", ["index", str(d / "nope.txt"), "-i", ix], {}, None),
        ("index: 10 MB line", ["index", f("big.txt", big + b"\n"), "-i", ix], {}, None),
        (
            "index: JSONL integer of 5000 digits",
            ["index", f("int.jsonl", b'{"text": "a", "n": ' + b"9" * 5000 + b"}\n"), "-i", ix],
            {},
            None,
        ),
        (
            "index: JSONL metadata 100 levels deep",
            ["index", f("deep.jsonl", b'{"text": "a", "m": ' + b"[" * 100 + b"]" * 100 + b"}\n"), "-i", ix],
            {},
            None,
        ),
        ("index: /dev/zero as corpus", ["index", "/dev/zero", "--format", "txt", "-i", ix], {}, None),
        ("index: FIFO as corpus", ["index", _fifo(d / "pipe.txt"), "-i", ix], {}, None),
        ("index: /dev/zero on stdin", ["index", "-", "-i", ix], {}, "\x00" * (1 << 20)),
        (
            "index: CSV header of 100k columns",
            [
                "index",
                f("wide.csv", ",".join(f"c{i}" for i in range(100_000)).encode() + b",text\n"),
                "-i",
                ix,
            ],
            {},
            None,
        ),
        (
            "index: gzip of 200 MB of newlines",
            ["index", _newline_bomb(d / "bomb.txt.gz"), "-i", ix],
            {},
            None,
        ),
        (
            "index: --reader-limit bogus",
            ["index", f("ok0.txt", b"a\n"), "-i", ix, "--reader-limit", "x=1"],
            {},
            None,
        ),
        ("index: --batch-size 0", ["index", f("ok1.txt", b"a\n"), "-i", ix, "--batch-size", "0"], {}, None),
        ("index: --batch-size -5", ["index", f("ok2.txt", b"a\n"), "-i", ix, "--batch-size", "-5"], {}, None),
        (
            "index: --batch-size abc",
            ["index", f("ok3.txt", b"a\n"), "-i", ix, "--batch-size", "abc"],
            {},
            None,
        ),
        (
            "index: TASE_SEARCH_BATCH_SIZE=abc",
            ["index", f("ok4.txt", b"a\n"), "-i", ix],
            {"TASE_SEARCH_BATCH_SIZE": "abc"},
            None,
        ),
        (
            "index: TASE_SEARCH_BATCH_SIZE=0",
            ["index", f("ok5.txt", b"a\n"), "-i", ix],
            {"TASE_SEARCH_BATCH_SIZE": "0"},
            None,
        ),
        (
            "index: TASE_SEARCH_OVERLAP_TOKENS=-1",
            ["index", f("ok6.txt", b"a\n"), "-i", ix],
            {"TASE_SEARCH_OVERLAP_TOKENS": "-1"},
            None,
        ),
        (
            "index: bad factory string",
            ["index", f("ok7.txt", b"a\n"), "-i", str(d / "new1"), "--factory", "Flat; rm -rf /"],
            {},
            None,
        ),
        (
            "index: IVF too big to train",
            ["index", f("ok8.txt", b"a\nb\n"), "-i", str(d / "new2"), "--factory", "IVF4096,Flat"],
            {},
            None,
        ),
        ("index: invalid index name", ["index", f("ok9.txt", b"a\n"), "-i", "bad name!"], {}, None),
        ("index: into a non-index directory", ["index", f("ok10.txt", b"a\n"), "-i", str(d)], {}, None),
        ("query: -k 0", ["query", "futbol", "-i", ix, "-k", "0"], {}, None),
        ("query: -k -3", ["query", "futbol", "-i", ix, "-k", "-3"], {}, None),
        ("query: -k huge", ["query", "futbol", "-i", ix, "-k", str(10**18)], {}, None),
        ("query: -k abc", ["query", "futbol", "-i", ix, "-k", "abc"], {}, None),
        ("query: empty", ["query", "", "-i", ix], {}, None),
        ("query: blank", ["query", "   ", "-i", ix], {}, None),
        ("query: control characters only", ["query", "\x01\x02\x7f", "-i", ix], {}, None),
        ("query: Arabic", ["query", SCRIPTS[1], "-i", ix, "--json"], {}, None),
        ("query: CJK", ["query", SCRIPTS[2], "-i", ix], {}, None),
        ("query: emoji", ["query", SCRIPTS[3], "-i", ix, "--json"], {}, None),
        ("query: bidi and zero-width", ["query", SCRIPTS[7], "-i", ix], {}, None),
        (
            "query: only zero-width and bidi characters",
            ["query", "\u200b\u200e\u2066\u2069\ufeff", "-i", ix],
            {},
            None,
        ),
        (
            "query: undecodable bytes (surrogates)",
            ["query", "fut\udcffbol\udc80", "-i", ix, "--json"],
            {},
            None,
        ),
        ("query: 1 MB query", ["query", "futbol " * 150_000, "-i", ix, "-k", "2"], {}, None),
        ("query: filter without =", ["query", "futbol", "-i", ix, "--filter", "topic"], {}, None),
        ("query: filter with empty key", ["query", "futbol", "-i", ix, "--filter", "=spor"], {}, None),
        ("query: filter key with dots", ["query", "futbol", "-i", ix, "--filter", "a.b=1"], {}, None),
        (
            "query: filter value surrogate",
            ["query", "futbol", "-i", ix, "--filter", "topic=\udcff"],
            {},
            None,
        ),
        (
            "query: stdin with blank and control lines",
            ["query", "-", "-i", ix],
            {},
            "futbol\n\n\x01\x02\nkedi\n",
        ),
        ("query: missing index", ["query", "futbol", "-i", str(d / "nope")], {}, None),
        ("query: index name escaping", ["query", "futbol", "-i", "..", "--root", str(d)], {}, None),
        ("delete: unknown ids", ["delete", "nope1", "nope2", "-i", ix], {}, None),
        ("delete: surrogate id", ["delete", "a\udcffb", "-i", ix], {}, None),
        ("delete: empty stdin", ["delete", "-", "-i", ix], {}, ""),
        ("verify: not an index", ["verify", str(d)], {}, None),
        ("info: not an index", ["info", "-i", str(d / "nope")], {}, None),
    ]
    return cases


def run_cli_cases(
    work: Path, model_dir: Path, *, only: list[str] | None = None, skip: list[str] | None = None
) -> dict[str, Any]:
    from click.testing import CliRunner

    from tase_search.cli.app import main
    from tase_search.encoding.encoder import Encoder
    from tase_search.retriever import Retriever

    work = Path(work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    pristine = work / "pristine"
    enc = Encoder.load(str(model_dir), precision="fp32")
    Retriever.build(make_docs(30, prefix="t"), model=enc, path=pristine).close()
    out = _Outcome()
    results = {}
    for name, argv, env, stdin in cli_cases(work / "files"):
        if (only and not any(o in name for o in only)) or (skip and any(o in name for o in skip)):
            continue
        ix = work / "ix"
        if ix.exists():
            shutil.rmtree(ix)
        shutil.copytree(pristine, ix)
        before = (generation(ix), snapshot(ix))
        args = [a.replace("{IX}", str(ix)) for a in argv]
        res = CliRunner().invoke(main, args, env={"TASE_SEARCH_PRECISION": "fp32", **env}, input=stdin)
        clean = res.exception is None or isinstance(res.exception, SystemExit)
        detail = ""
        if not clean:
            outcome, detail = "mishandled", f"{type(res.exception).__name__}: {res.exception}"
        elif res.exit_code != 0 and not res.output.strip():
            outcome, detail = "mishandled", f"exit {res.exit_code} without a message"
        else:
            outcome = "worked" if res.exit_code == 0 else "refused"
        problem = _damage_check(ix, before, res.exit_code != 0)
        if problem:
            outcome, detail = "mishandled", problem
        out.add("cli", outcome, f"{name}: {detail}")
        last = res.output.strip().splitlines()[-1] if res.output.strip() else ""
        results[name] = f"{outcome} (exit {res.exit_code}): {last[:160]}"
    d = out.to_dict()
    d["cases"] = results
    return d
