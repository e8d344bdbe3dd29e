"""A writer process: the Python API with the fake encoder of tase_search.testing (no torch: starts in <1 s).

It goes through exactly the same write path as ``tase-search index``/``delete``
(``tase_search.store.commit.commit``), so the fault hooks (``TASE_SEARCH_FAULT``) and kills exercise the
real commit protocol cheaply.

    python -m campaign.apiwriter build INDEX --n 50
    python -m campaign.apiwriter add INDEX --n 20 --start 50
    python -m campaign.apiwriter delete INDEX d1 d2
    python -m campaign.apiwriter loop INDEX --seconds 10 --log writer.jsonl   # concurrency writer

Exit status: 0 done, 1 a tase-search error (message on stderr), 3 the index was locked.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

from campaign.common import fake_encoder, make_docs


def _loop(index: Path, seconds: float, log: Path, seed: int, batch: int, min_commits: int = 0) -> int:
    """Append and delete (and sometimes replace) documents for ``seconds``, and on until at least
    ``min_commits`` commits (a loaded machine must not make a short run too short to test); log every
    commit."""
    from tase_search.errors import IndexLocked
    from tase_search.retriever import Retriever

    rng = random.Random(seed)
    enc = fake_encoder()
    r = Retriever.load(index, model=enc)
    present = {d[0]: (d[1], d[2].get("topic")) for d in _all_docs(r)}
    nxt = 100_000
    refused = commits = 0
    with open(log, "w", encoding="utf-8") as out:
        out.write(json.dumps({"gen": r.manifest.generation, "full": present}, ensure_ascii=False) + "\n")
        out.flush()
        deadline = time.monotonic() + seconds
        hard_stop = deadline + 300  # min_commits never keeps a broken writer going for ever
        while time.monotonic() < deadline or (commits < min_commits and time.monotonic() < hard_stop):
            action = rng.random()
            try:
                if action < 0.5 or len(present) < 20:
                    docs = make_docs(rng.randint(1, batch), prefix="w", start=nxt, seed=seed)
                    nxt += len(docs)
                    r.add(docs)
                    change = {"add": {d["id"]: (d["text"], d["topic"]) for d in docs}, "del": []}
                elif action < 0.85:
                    gone = rng.sample(sorted(present), min(len(present), rng.randint(1, batch)))
                    r.delete(gone)
                    change = {"add": {}, "del": gone}
                else:  # replace: same ids, new text
                    ids = rng.sample(sorted(present), min(len(present), rng.randint(1, 3)))
                    docs = [
                        {
                            "id": i,
                            "text": f"belge {i} yeniden {rng.choice(['futbol', 'kedi', 'borsa'])} {nxt}",
                            "topic": rng.choice(["spor", "hava"]),
                        }
                        for i in ids
                    ]
                    nxt += 1
                    r.add(docs, on_duplicate="replace")
                    change = {"add": {d["id"]: (d["text"], d["topic"]) for d in docs}, "del": []}
            except IndexLocked:
                refused += 1
                time.sleep(0.005)
                continue
            for i in change["del"]:
                present.pop(i, None)
            present.update(change["add"])
            commits += 1
            out.write(json.dumps({"gen": r.manifest.generation, **change}, ensure_ascii=False) + "\n")
            out.flush()
    print(json.dumps({"generation": r.manifest.generation, "documents": len(present), "refused": refused}))
    return 0


def _all_docs(r: object) -> list[tuple[str, str, dict]]:
    """Every live document of the index ``r`` has loaded: (id, text, metadata), over all its segments."""
    from tase_search.store.snapshot import open_documents

    store = open_documents(r.path, r.manifest)  # type: ignore[attr-defined]
    try:
        fetched = store.fetch(sorted(store.pids_matching(None))).values()
        return list({p.doc_id: (p.doc_id, p.text, p.metadata) for p in fetched}.values())
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m campaign.apiwriter")
    ap.add_argument("op", choices=["build", "overwrite", "add", "delete", "loop"])
    ap.add_argument("index", type=Path)
    ap.add_argument("ids", nargs="*")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--prefix", default="d")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--factory", default=None)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument(
        "--min-commits", type=int, default=0, help="loop: keep going past --seconds until this many"
    )
    ap.add_argument("--log", type=Path, default=None)
    ap.add_argument("--ready", type=Path, default=None, help="touch this file once started (for timing)")
    a = ap.parse_args(argv)

    from tase_search.errors import IndexLocked, TaseSearchError
    from tase_search.retriever import Retriever

    if a.ready:
        a.ready.write_text(str(os.getpid()))
    enc = fake_encoder()
    try:
        if a.op in ("build", "overwrite"):
            docs = make_docs(a.n, prefix=a.prefix, start=a.start, seed=a.seed)
            r = Retriever.build(
                docs, model=enc, path=a.index, factory=a.factory, overwrite=a.op == "overwrite"
            )
        elif a.op == "add":
            r = Retriever.load(a.index, model=enc)
            r.add(make_docs(a.n, prefix=a.prefix, start=a.start, seed=a.seed))
        elif a.op == "delete":
            r = Retriever.load(a.index, model=enc)
            r.delete(a.ids)
        else:
            return _loop(a.index, a.seconds, a.log or Path("writer.jsonl"), a.seed, a.batch, a.min_commits)
    except IndexLocked as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except TaseSearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(json.dumps({"generation": r.manifest.generation, "documents": r.manifest.documents}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
