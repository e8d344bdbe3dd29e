#!/usr/bin/env python
"""Write N distinct short Turkish documents, one per line, built deterministically from real text.

For indexing at scale (``bench/end_to_end.py`` on 1,000,000 documents) without a million-document
Turkish corpus. How the documents are made:

1. **Real sentences.** Every source is read and cut into sentences: ``.txt`` files line by line
   (e.g. the UD Turkish sentences), ``.tsv`` files by their ``tr`` column (the Turkish side of a
   bitext), ``.json`` files as SQuAD-format (TQuAD) paragraphs. Lines, cells and paragraphs are
   split at sentence ends (``. ! ? …`` followed by a space and a capital letter, digit or quote;
   not after a one- or two-letter abbreviation such as ``b.`` or ``Dr.``). Whitespace is collapsed,
   text NFC-normalised, sentences shorter than ``--min-chars`` or longer than ``--max-chars`` are
   dropped, and exact duplicates removed. The sentences are shuffled with ``--seed`` (so every source
   is spread over the file) and written first; if ``--n`` is smaller, only the first ``--n`` are.
2. **Combinations**, until there are ``--n`` documents, each made from two different real sentences
   ``a`` and ``b`` drawn at random (seeded):

   * *pair* (half of the draws, when ``a b`` fits in ``--max-chars``): the two sentences joined
     with a space, like a two-sentence snippet;
   * *splice* (otherwise): the first part of ``a`` (its first 40-70% of words, at least 2) followed by
     the last part of ``b`` (its last 30-60%, at least 2), like a headline or a sentence with another
     continuation, which keeps the length of a single sentence.

   A combination equal to a document already written (real or combined) is drawn again, so every
   line is distinct.

Everything depends only on the sources (in the order given), ``--n``, ``--seed`` and the length
limits: the same command writes the same file. A JSON summary goes to stdout (count, unique, mean
characters, how many of each kind, sentences per source) and to ``--summary FILE``.

    python bench/make_corpus.py --output runs/bench/corpus-1m.txt --n 1000000 \\
        /work/shared/data/corpus/ud-turkish-sentences.txt /work/shared/data/bitext/train/*.tsv \\
        /work/shared/data/tquad/*.json
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
import sys
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# A sentence end: . ! ? … (possibly followed by closing quotes/brackets), whitespace, then a capital
# letter, a digit or an opening quote/bracket.
_SPLIT = re.compile(r"(?<=[.!?…])([\"'”’)\]]*)\s+(?=[\"'“‘(\[]?[A-ZÇĞİÖŞÜÂÎÛ0-9])")
# The piece before a split ends with a one- or two-letter word and a dot (b. / Dr. / vb.): no split.
_ABBREV = re.compile(r"(?:^|[\s(])[A-Za-zÇĞİÖŞÜçğıöşüâîû]{1,2}\.$")
_MAX_REDRAWS = 1000


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph (see the module docstring for the rule)."""
    text = " ".join(text.split())
    if not text:
        return []
    pieces: list[str] = []
    pos = 0
    for m in _SPLIT.finditer(text):
        pieces.append(text[pos : m.start(1) + len(m.group(1))])
        pos = m.end()
    pieces.append(text[pos:])
    out: list[str] = []
    for p in pieces:
        if out and _ABBREV.search(out[-1]):
            out[-1] = out[-1] + " " + p
        else:
            out.append(p)
    return [s.strip() for s in out if s.strip()]


def _unquote(cell: str) -> str:
    """A TSV cell written with CSV quoting ("...""..."): the text inside."""
    if len(cell) >= 2 and cell[0] == '"' and cell[-1] == '"':
        return cell[1:-1].replace('""', '"')
    return cell


def read_source(path: Path) -> Iterator[str]:
    """Raw texts of one source: .txt lines, the ``tr`` column of a .tsv, TQuAD paragraphs of a .json."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        for article in data.get("data", []):
            for para in article.get("paragraphs", []):
                ctx = para.get("context")
                if isinstance(ctx, str):
                    yield ctx
    elif suffix == ".tsv":
        csv.field_size_limit(sys.maxsize)
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, [])
            if "tr" not in header:
                raise SystemExit(f"{path}: no 'tr' column in the header ({', '.join(header)})")
            col = header.index("tr")
            for row in reader:
                if len(row) > col:
                    yield _unquote(row[col])
    else:
        with open(path, encoding="utf-8") as fh:
            yield from fh


def _key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _combine(a: str, b: str, rng: random.Random, max_chars: int) -> tuple[str, str]:
    if rng.random() < 0.5 and len(a) + 1 + len(b) <= max_chars:
        return "pair", f"{a} {b}"
    wa, wb = a.split(), b.split()
    ka = max(2, min(len(wa), round(len(wa) * rng.uniform(0.4, 0.7))))
    kb = max(2, min(len(wb), round(len(wb) * rng.uniform(0.3, 0.6))))
    text = " ".join(wa[:ka] + wb[-kb:])
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0]
    return "splice", text


def make_corpus(
    sources: list[Path],
    output: Path,
    n: int,
    *,
    seed: int = 0,
    min_chars: int = 10,
    max_chars: int = 300,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    seen: set[int] = set()
    real: list[str] = []
    per_source = []
    for path in sources:
        kept = 0
        for raw in read_source(path):
            for s in split_sentences(unicodedata.normalize("NFC", raw)):
                if min_chars <= len(s) <= max_chars and (k := _key(s)) not in seen:
                    seen.add(k)
                    real.append(s)
                    kept += 1
        per_source.append({"path": str(path), "sentences": kept})
    if len(real) < 2:
        raise SystemExit(
            f"only {len(real)} usable sentences in {', '.join(map(str, sources))}: need at least 2"
        )
    rng = random.Random(seed)
    rng.shuffle(real)
    output.parent.mkdir(parents=True, exist_ok=True)
    kinds = {"real": 0, "pair": 0, "splice": 0}
    total_chars = 0
    written: set[int] = set()
    with open(output, "w", encoding="utf-8", newline="\n") as fh:
        for s in real[:n]:
            fh.write(s + "\n")
            written.add(_key(s))
            total_chars += len(s)
        kinds["real"] = min(n, len(real))
        for _ in range(n - kinds["real"]):
            for _attempt in range(_MAX_REDRAWS):
                i, j = rng.randrange(len(real)), rng.randrange(len(real) - 1)
                j += j >= i  # a different sentence
                kind, text = _combine(real[i], real[j], rng, max_chars)
                k = _key(text)
                if len(text) >= min_chars and k not in seen:
                    break
            else:
                raise SystemExit(
                    f"could only make {sum(kinds.values())} distinct documents from {len(real)} sentences; "
                    "give more source text or a smaller --n"
                )
            seen.add(k)
            written.add(k)
            fh.write(text + "\n")
            kinds[kind] += 1
            total_chars += len(text)
    count = sum(kinds.values())
    return {
        "output": str(output),
        "count": count,
        "unique": len(written),
        "mean_chars": round(total_chars / max(1, count), 1),
        "kinds": kinds,
        "real_sentences_available": len(real),
        "sources": per_source,
        "config": {"n": n, "seed": seed, "min_chars": min_chars, "max_chars": max_chars},
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", help="Real text: .txt (lines), .tsv ('tr' column), .json (TQuAD).")
    p.add_argument("--output", "-o", required=True, help="The corpus file to write (one document per line).")
    p.add_argument("--n", type=int, default=1_000_000, help="Documents to write (default 1,000,000).")
    p.add_argument(
        "--seed", type=int, default=0, help="Seed for the shuffle and the combinations (default 0)."
    )
    p.add_argument("--min-chars", type=int, default=10, help="Shortest sentence/document kept (default 10).")
    p.add_argument("--max-chars", type=int, default=300, help="Longest sentence/document kept (default 300).")
    p.add_argument("--summary", default=None, help="Also write the JSON summary to this file.")
    return p


def run(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    if args.n < 1:
        raise SystemExit("--n must be at least 1")
    missing = [s for s in args.sources if not Path(s).is_file()]
    if missing:
        raise SystemExit(f"no such file: {', '.join(missing)}")
    res = make_corpus(
        [Path(s) for s in args.sources],
        Path(args.output),
        args.n,
        seed=args.seed,
        min_chars=args.min_chars,
        max_chars=args.max_chars,
    )
    text = json.dumps(res, ensure_ascii=False)
    print(text)
    if args.summary:
        Path(args.summary).write_text(text + "\n", encoding="utf-8")
    print(
        f"make_corpus: {res['count']} documents ({res['kinds']['real']} real sentences, "
        f"{res['kinds']['pair']} pairs, {res['kinds']['splice']} splices), mean {res['mean_chars']} chars "
        f"-> {res['output']}",
        file=sys.stderr,
    )
    return res


if __name__ == "__main__":
    run()
