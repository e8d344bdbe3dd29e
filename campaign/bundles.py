"""Hostile query bundles: what a handed-over index could carry in ``query-bundle/`` to delete, read or
hang outside itself.

Each case damages the bundle of a fresh copy of an index built with a real (tiny) model, then tries the
operations a user runs: ``query`` (load and search), ``add`` (a write, which refreshes the bundle) and
``verify``. A case *holds* when every operation ends within its time bound with an answer or a one-line
tase-search error (never a traceback or a hang), the files outside the index are byte-identical, and a
query still answers (from the model when the bundle is refused).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from campaign.hostile import hostile_loop_graph, index_bytes

Setup = Callable[[Path, Path], None]  # (index, the folder the user keeps next to it)
#: Longest an operation may take before the case counts as a hang (the graph time limit is lowered to
#: one second for the run).
BOUND_S = 60.0


def _bundle_path(ix: Path) -> Path:
    return ix / "query-bundle" / "bundle.json"


def _edit(change: Callable[[dict[str, Any]], dict[str, Any]]) -> Setup:
    def f(ix: Path, outside: Path) -> None:
        p = _bundle_path(ix)
        p.write_text(json.dumps(change(json.loads(p.read_text(encoding="utf-8")))), encoding="utf-8")

    return f


def _raw(text: str) -> Setup:
    def f(ix: Path, outside: Path) -> None:
        _bundle_path(ix).write_text(text, encoding="utf-8")

    return f


def _folder_link(to_parent: bool) -> Setup:
    def f(ix: Path, outside: Path) -> None:
        shutil.rmtree(ix / "query-bundle")
        (ix / "query-bundle").symlink_to(Path("..") if to_parent else outside)

    return f


def _file_link(which: str, target: str | None = None) -> Setup:
    def f(ix: Path, outside: Path) -> None:
        folder = ix / "query-bundle"
        name = "bundle.json" if which == "bundle" else json.loads(_bundle_path(ix).read_text())[which]
        dest = Path(target) if target else outside / "thesis.txt"
        (folder / name).unlink(missing_ok=True)  # the graph is in the store unless the index is portable
        (folder / name).symlink_to(dest)

    return f


def _fifo(ix: Path, outside: Path) -> None:
    _bundle_path(ix).unlink()
    os.mkfifo(_bundle_path(ix))


def _loop(ix: Path, outside: Path) -> None:
    """The index carries a looping graph (as a portable one) and names its true size and hash."""
    import hashlib

    b = json.loads(_bundle_path(ix).read_text())
    data = hostile_loop_graph(int(b["dimension"]))
    (ix / "query-bundle" / b["graph"]).write_bytes(data)
    b.update(graph_bytes=len(data), graph_sha256=hashlib.sha256(data).hexdigest())
    _bundle_path(ix).write_text(json.dumps(b), encoding="utf-8")


def _narrow(b: dict[str, Any]) -> dict[str, Any]:
    return {**b, "dimension": 16, "probe_vectors": [r[:16] for r in b["probe_vectors"]]}


CASES: dict[str, Setup] = {
    "query-bundle links to the user's folder": _folder_link(False),
    "query-bundle links to .. (the folder holding the index)": _folder_link(True),
    "graph file (in the index) links to a user's file": _file_link("graph"),
    "tokenizer file links to a user's file": _file_link("tokenizer"),
    "bundle.json links to /dev/zero": _file_link("bundle", "/dev/zero"),
    "bundle.json is a FIFO": _fifo,
    "bundle.json names an absolute graph path": _edit(lambda b: {**b, "graph": "/etc/passwd"}),
    "bundle.json names ../ tokenizer": _edit(lambda b: {**b, "tokenizer": "../../thesis.txt"}),
    "bundle.json 200k-deep": _raw("[" * 200_000 + "]" * 200_000),
    "bundle.json wrongly typed fields": _edit(lambda b: {**b, "dimension": "x", "pad_id": None}),
    "graph loops 10^15 times": _loop,
    "bundle for 16-d vectors in a 32-d index": _edit(_narrow),
}


def _attempt(op: str, ix: Path) -> tuple[str, str]:
    from tase_search.errors import TaseSearchError
    from tase_search.retriever import Retriever
    from tase_search.store.verify import verify_index

    try:
        if op == "verify":
            rep = verify_index(ix)
            return ("worked" if rep.ok else "refused"), "; ".join(rep.problems)[:300]
        r = Retriever.load(ix, precision="fp32")
        if op == "add":
            r.add([f"yeni belge {time.time_ns()}"])
            r = Retriever.load(ix, precision="fp32")
        hits = r.search("kedi", k=3)
        return ("worked" if hits else "no answer"), r.query_path_note or "bundle used"
    except TaseSearchError as exc:
        return "refused", str(exc)[:300]
    except Exception as exc:  # noqa: BLE001 - a traceback is what a case must not give
        return "crashed", f"{type(exc).__name__}: {str(exc)[:200]}"


def _bounded(op: str, ix: Path) -> tuple[str, str, float]:
    out: list[tuple[str, str]] = []
    t0 = time.monotonic()
    th = threading.Thread(target=lambda: out.append(_attempt(op, ix)), daemon=True)
    th.start()
    th.join(BOUND_S)
    took = time.monotonic() - t0
    if th.is_alive():
        return "hung", f"still running after {BOUND_S:g} s", took
    return (*out[0], took)


def run_hostile_bundles(work: Path, model: Path) -> dict[str, Any]:
    """Every case × query, add, verify: the figures for the campaign's summary."""
    from tase_search.encoding import onnx_runtime as ort_path
    from tase_search.retriever import Retriever

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    pristine = work / "pristine"
    os.environ.setdefault("TASE_SEARCH_QUERY_GRAPHS", str(work / "graphs"))
    if not pristine.exists():
        docs = ["futbol maçı istanbul'da", "yarın yağmur var", "kedi ve köpek", "müzik ve şarkı"]
        Retriever.build(docs, model=str(model), path=pristine, precision="fp32").close()
    saved_limit = ort_path.RUN_TIME_LIMIT_S
    ort_path.RUN_TIME_LIMIT_S = 1.0
    tried = held = 0
    per_case: dict[str, str] = {}
    failed: list[dict[str, str]] = []
    try:
        for name, setup in CASES.items():
            ok = []
            for op in ("query", "add", "verify"):
                box = work / "box"
                if box.exists():
                    shutil.rmtree(box)
                ix, outside = box / "idx", box / "users-files"
                shutil.copytree(pristine, ix, symlinks=True)
                outside.mkdir()
                (outside / "thesis.txt").write_text("four years of work", encoding="utf-8")
                (box / "next-to-the-index.txt").write_text("keep me", encoding="utf-8")
                setup(ix, outside)
                before = {**index_bytes(outside), "next": (box / "next-to-the-index.txt").read_bytes()}
                outcome, msg, took = _bounded(op, ix)
                after = {**index_bytes(outside), "next": (box / "next-to-the-index.txt").read_bytes()}
                tried += 1
                problems = []
                good = {"query": ("worked",), "add": ("worked",), "verify": ("refused", "worked")}[op]
                if outcome not in good:
                    problems.append(f"{outcome}: {msg}")
                if after != before:
                    problems.append("a file outside the index changed")
                if "four years" in msg or "keep me" in msg:
                    problems.append("the message shows a file outside the index")
                if problems:
                    failed.append({"case": name, "op": op, "problems": "; ".join(problems)[:400]})
                else:
                    held += 1
                    ok.append(f"{op} {took:.1f}s")
            per_case[name] = f"{len(ok)}/3 held ({', '.join(ok)})"
    finally:
        ort_path.RUN_TIME_LIMIT_S = saved_limit
    return {"tried": tried, "held": held, "cases": per_case, "failed": failed}
