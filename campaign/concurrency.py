"""Readers querying in a loop while one writer appends, deletes and replaces; plus lock checks.

Every reader result is checked against the committed generation it was answered from: the writer
logs each commit (generation number and change), so the checker knows the exact document set of
every generation and recomputes the expected top-k with the (deterministic) fake encoder:

* all hits exist in that generation, with that generation's text;
* exactly ``min(k, candidates)`` hits; scores match a recomputation and come in order;
* nothing outside the hits scores higher (the index is exact Flat), so no half-written or
  mixed-generation state can pass.

Readers never take the lock; a probe thread keeps trying to take it while the writer works and
must be refused with "locked by PID <writer>". :func:`stale_lock_check` stops a writer inside its
write (SIGSTOP, lock held), checks a second writer is refused, kills the first and checks the next
writer recovers (stale lock and temporary generation are no obstacle).

    python -m campaign.concurrency reader INDEX --seconds 10 --out r0.jsonl --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from campaign.common import QUERIES, REPO, TOPICS, fake_encoder, leftovers, make_docs
from tase_search.testing import stop_at, wait_until_stopped


# ------------------------------------------------------------------------------ reader process
def reader_main(
    index: Path, seconds: float, out: Path, seed: int, reload_every: int = 7, until: Path | None = None
) -> int:
    """Query in a loop for ``seconds`` and, with ``until``, on until that file exists (the writer is done)."""
    from tase_search.retriever import Retriever

    rng = random.Random(seed)
    enc = fake_encoder()
    r = Retriever.load(index, model=enc)
    n = 0
    with open(out, "w", encoding="utf-8") as fh:
        deadline = time.monotonic() + seconds
        hard_stop = deadline + 600

        def going() -> bool:
            now = time.monotonic()
            return now < deadline or (until is not None and not until.exists() and now < hard_stop)

        while going():
            q = rng.choice(QUERIES) + (
                " " + rng.choice(["yarın", "bugün", "maç"]) if rng.random() < 0.3 else ""
            )
            k = rng.randint(1, 12)
            flt = {"topic": rng.choice(TOPICS)} if rng.random() < 0.2 else None
            try:
                if n and n % reload_every == 0:  # sometimes a fresh load, mostly refresh()
                    r.close()
                    r = Retriever.load(index, model=enc)
                else:
                    r.refresh()
                # dense: the check below recomputes each hit's score as the vectors' inner product
                hits = r.search(q, k=k, filter=flt, mode="dense")
                rec: dict[str, Any] = {
                    "gen": r.manifest.generation,
                    "q": q,
                    "k": k,
                    "filter": flt,
                    "hits": [[h.id, h.score, h.text] for h in hits],
                }
            except Exception as exc:  # noqa: BLE001 - every error is a finding
                where = traceback.extract_tb(exc.__traceback__)[-3:]
                rec = {
                    "error": f"{type(exc).__name__}: {exc}",
                    "where": [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in where],
                }
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    return 0


# ------------------------------------------------------------------------------ checking
class _States:
    """Document set of every committed generation, rebuilt from the writer's log (merges included)."""

    def __init__(self, log: Path) -> None:
        self.by_gen: dict[int, dict[str, tuple[str, str]]] = {}
        cur: dict[str, tuple[str, str]] = {}
        with open(log, encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                if "full" in rec:
                    cur = {k: tuple(v) for k, v in rec["full"].items()}
                else:
                    for i in rec["del"]:
                        cur.pop(i, None)
                    cur.update({k: tuple(v) for k, v in rec["add"].items()})
                self.by_gen[rec["gen"]] = dict(cur)
        # a write publishes its segment, then the merges it calls for (documents unchanged), and the
        # writer logs the last generation: those between two logged ones hold the later one's documents
        logged = sorted(self.by_gen)
        for before, after in zip(logged, logged[1:]):
            for gen in range(before + 1, after):
                self.by_gen[gen] = self.by_gen[after]


def check_reads(log: Path, outs: list[Path], *, exact: bool = True) -> dict[str, Any]:
    from tase_search.text.normalize import clean_document

    states = _States(log)
    enc = fake_encoder()
    vec_cache: dict[str, np.ndarray] = {}

    def dvec(text: str) -> np.ndarray:
        v = vec_cache.get(text)
        if v is None:
            v = vec_cache[text] = enc.encode_document([text])[0]
        return v

    served = errors = inconsistent = 0
    gens_seen: set[int] = set()
    examples: list[str] = []
    for out in outs:
        with open(out, encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                if "error" in rec:
                    errors += 1
                    if len(examples) < 10:
                        examples.append(f"{rec['error']} at {' < '.join(reversed(rec.get('where', [])))}")
                    continue
                served += 1
                bad = _check_one(rec, states, enc, dvec, clean_document, exact)
                gens_seen.add(rec["gen"])
                if bad:
                    inconsistent += 1
                    if len(examples) < 10:
                        examples.append(f"gen {rec['gen']} q={rec['q']!r} k={rec['k']}: {bad}")
    return {
        "queries_served": served,
        "query_errors": errors,
        "inconsistent_results": inconsistent,
        "generations_committed": len(states.by_gen),
        "generations_seen_by_readers": len(gens_seen),
        "examples": examples,
    }


def _check_one(rec: dict[str, Any], states: _States, enc: Any, dvec: Any, clean: Any, exact: bool) -> str:
    docs = states.by_gen.get(rec["gen"])
    if docs is None:
        return "answered from a generation that was never committed"
    flt = rec["filter"]
    cands = {i: t for i, (t, topic) in docs.items() if not flt or topic == flt["topic"]}
    hits = rec["hits"]
    if len(hits) != min(rec["k"], len(cands)):
        return f"{len(hits)} hits, expected {min(rec['k'], len(cands))}"
    qv = enc.encode_query([clean(rec["q"])])[0]
    prev = np.inf
    for hid, score, text in hits:
        if cands.get(hid) != text:
            return f"hit {hid!r} is not in that generation (or has other text)"
        want = float(qv @ dvec(text))
        if abs(want - score) > 1e-4:
            return f"hit {hid!r} scored {score:.5f}, recomputed {want:.5f}"
        if score > prev + 1e-5:
            return "hits out of order"
        prev = score
    if exact and hits and len(hits) == rec["k"]:
        floor = min(s for _, s, _ in hits)
        hit_ids = {h[0] for h in hits}
        for i, t in cands.items():
            if i not in hit_ids and float(qv @ dvec(t)) > floor + 1e-4:
                return f"missed {i!r}, which scores higher than a hit"
    return ""


# ------------------------------------------------------------------------------ orchestration
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TASE_SEARCH_FAULT", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return env


def _probe_lock(index: Path, writer_pid: int, stop: threading.Event, counts: dict[str, Any]) -> None:
    from tase_search.errors import IndexLocked
    from tase_search.store.lock import WriterLock

    while not stop.is_set():
        lock = WriterLock(index)
        try:
            lock.acquire()
        except IndexLocked as exc:
            msg = str(exc)
            if f"locked by PID {writer_pid}" in msg:
                counts["refused_with_pid"] += 1
            elif "locked by" in msg:
                counts["refused_without_pid"] += 1
            else:
                counts["refused_unclear"].append(msg)
        else:
            counts["acquired_while_idle"] += 1
            lock.release()
        stop.wait(0.03)


def run_concurrency(
    work: Path,
    *,
    readers: int = 4,
    seconds: float = 10.0,
    docs: int = 300,
    factory: str | None = None,
    seed: int = 0,
    probe: bool = True,
    min_commits: int = 0,
) -> dict[str, Any]:
    """Readers and one writer for ``seconds``; with ``min_commits`` the writer goes on until it has made
    that many commits and the readers until the writer is done (so a slow machine still tests them)."""
    from tase_search.retriever import Retriever
    from tase_search.store.verify import verify_index

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    ix = work / "ix"
    Retriever.build(
        make_docs(docs, prefix="c", seed=seed), model=fake_encoder(), path=ix, factory=factory, overwrite=True
    ).close()
    env = _env()
    log = work / "writer.jsonl"
    done = work / "writer-done"
    done.unlink(missing_ok=True)
    t0 = time.monotonic()
    writer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "campaign.apiwriter",
            "loop",
            str(ix),
            "--seconds",
            str(seconds),
            "--log",
            str(log),
            "--seed",
            str(seed),
            "--min-commits",
            str(min_commits),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    outs = [work / f"reader-{i}.jsonl" for i in range(readers)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "campaign.concurrency",
                "reader",
                str(ix),
                "--seconds",
                str(seconds),
                "--out",
                str(o),
                "--seed",
                str(seed * 100 + i),
                "--until",
                str(done),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i, o in enumerate(outs)
    ]
    counts: dict[str, Any] = {
        "refused_with_pid": 0,
        "refused_without_pid": 0,
        "acquired_while_idle": 0,
        "refused_unclear": [],
    }
    stop = threading.Event()
    th = threading.Thread(target=_probe_lock, args=(ix, writer.pid, stop, counts), daemon=True)
    if probe:
        th.start()
    w_out, w_err = writer.communicate(timeout=seconds + 600)
    done.write_text("done")
    stop.set()
    if probe:
        th.join()
    reader_errs = [p.communicate(timeout=seconds + 900)[1].decode(errors="replace") for p in procs]
    wall = time.monotonic() - t0
    problems = []
    if writer.returncode != 0:
        problems.append(f"writer failed ({writer.returncode}): {w_err.decode(errors='replace')[-1000:]}")
    for p, e in zip(procs, reader_errs):
        if p.returncode != 0:
            problems.append(f"reader failed ({p.returncode}): {e[-1000:]}")
    res = check_reads(log, [o for o in outs if o.exists()], exact=factory is None or factory == "Flat")
    rep = verify_index(ix)
    if not rep.ok:
        problems.extend(rep.problems)
    if leftovers(ix):
        problems.append(f"temporaries left: {leftovers(ix)}")
    wstat = json.loads(w_out.decode().strip().splitlines()[-1]) if writer.returncode == 0 else {}
    return {
        "readers": readers,
        "seconds": round(wall, 1),
        "factory": factory or "Flat",
        **{k: v for k, v in res.items() if k != "examples"},
        "queries_per_second": round(res["queries_served"] / max(seconds, 1e-9), 1),
        "writer_refused_by_probe": wstat.get("refused", 0),
        "lock_probe": {k: (v if not isinstance(v, list) else len(v)) for k, v in counts.items()},
        "final_verify_ok": rep.ok,
        "problems": problems
        + res["examples"]
        + [f"unclear lock message: {m}" for m in counts["refused_unclear"]],
    }


def stale_lock_check(work: Path, point: str = "ingested") -> dict[str, Any]:
    """A writer stopped inside its write holds the lock: a second writer is refused naming its PID;
    once it is killed, its lock and temporary generation are stale and the next writer proceeds."""
    from tase_search.retriever import Retriever
    from tase_search.store.verify import verify_index

    work = Path(work)
    ix = work / "ix-lock"
    Retriever.build(make_docs(50, prefix="s"), model=fake_encoder(), path=ix, overwrite=True).close()
    env = _env()
    w = [sys.executable, "-m", "campaign.apiwriter"]
    first = subprocess.Popen(
        [*w, "add", str(ix), "--n", "5", "--prefix", "x"],
        env={**env, **stop_at(point)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    problems: list[str] = []
    try:
        wait_until_stopped(first, timeout=60)
    except AssertionError as exc:
        return {"ok": False, "problems": [f"the first writer never reached the stop point: {exc}"]}
    second = subprocess.run(
        [*w, "delete", str(ix), "s1"], env=env, capture_output=True, text=True, timeout=120
    )
    refused = second.returncode == 3 and f"locked by PID {first.pid}" in second.stderr
    if not refused:
        problems.append(
            f"second writer not refused with the PID (exit {second.returncode}): {second.stderr[-300:]}"
        )
    os.kill(first.pid, signal.SIGKILL)
    first.communicate()
    stale = {"lock_file_pid": (ix / ".lock").read_text().strip(), "temporaries": leftovers(ix)}
    third = subprocess.run(
        [*w, "delete", str(ix), "s1"], env=env, capture_output=True, text=True, timeout=120
    )
    if third.returncode != 0:
        problems.append(f"writer after the stale lock failed ({third.returncode}): {third.stderr[-300:]}")
    if leftovers(ix):
        problems.append(f"stale temporaries not removed: {leftovers(ix)}")
    rep = verify_index(ix)
    if not rep.ok:
        problems.extend(rep.problems)
    with Retriever.load(ix, model=fake_encoder()) as r:
        if r.manifest.documents != 49:
            problems.append(f"expected 49 documents after the delete, found {r.manifest.documents}")
    return {
        "ok": not problems,
        "second_writer_message": second.stderr.strip().splitlines()[-1] if second.stderr.strip() else "",
        "stale": stale,
        "problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m campaign.concurrency")
    sub = ap.add_subparsers(dest="cmd", required=True)
    rd = sub.add_parser("reader")
    rd.add_argument("index", type=Path)
    rd.add_argument("--seconds", type=float, default=10)
    rd.add_argument("--out", type=Path, required=True)
    rd.add_argument("--seed", type=int, default=0)
    rd.add_argument("--until", type=Path, default=None, help="after --seconds, go on until this file exists")
    run = sub.add_parser("run")
    run.add_argument("--work", type=Path, default=Path("runs/campaign-work/concurrency"))
    run.add_argument("--readers", type=int, default=4)
    run.add_argument("--seconds", type=float, default=10)
    run.add_argument("--factory", default=None)
    a = ap.parse_args(argv)
    if a.cmd == "reader":
        return reader_main(a.index, a.seconds, a.out, a.seed, until=a.until)
    res = run_concurrency(a.work, readers=a.readers, seconds=a.seconds, factory=a.factory)
    res["stale_lock"] = stale_lock_check(a.work)
    print(json.dumps(res, indent=1, ensure_ascii=False))
    return 0 if not res["problems"] and res["stale_lock"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
