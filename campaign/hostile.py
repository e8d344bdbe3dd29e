"""Hostile indexes: crafted files, links out of the index, planted lock files, damage before a write.

Where :mod:`campaign.corruption` damages an index the way a disk or a careless edit does, these
cases are what an attacker (or a badly behaved tool) could leave in an index directory, often
with the manifest's checksums recomputed (:func:`reseal`) so that only the structural checks can
catch them. A case *holds* when the operation ends in a one-line tase-search error (never a
traceback, a hang or a success), nothing outside the index was written or described, and the
index's own files are byte-identical afterwards.

:func:`run_hostile` is the campaign part; the helpers are shared with ``tests/store/test_hardening.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from campaign.common import fake_encoder, make_docs

Bytes = dict[str, bytes]


# ------------------------------------------------------------------------------ helpers
def generation_dir(ix: Path) -> Path:
    """The directory of the newest segment (a freshly built index's only one), or of a format-1 index's
    generation."""
    m = json.loads((ix / "manifest.json").read_text())
    if m.get("format_version", 1) >= 2 and m.get("segments"):
        return ix / m["segments"][-1]["name"]
    return ix / f"gen-{m['generation']:06d}"


def _listed_files(raw: dict[str, Any]) -> dict[str, Any]:
    """The manifest's file list of the directory :func:`generation_dir` names."""
    if raw.get("format_version", 1) >= 2 and raw.get("segments"):
        return raw["segments"][-1]["files"]
    return raw["files"]


def index_bytes(ix: Path) -> Bytes:
    """Every regular file of an index (relative path -> content), the lock file left out: for
    byte-identity."""
    out: Bytes = {}
    for root, _dirs, files in os.walk(ix):
        for name in files:
            p = Path(root) / name
            rel = str(p.relative_to(ix))
            if rel != ".lock" and stat.S_ISREG(
                p.lstat().st_mode
            ):  # a planted FIFO is not read (it would hang)
                out[rel] = p.read_bytes()
    return out


def restore(ix: Path, files: Bytes) -> None:
    """Put an index back to exactly ``files`` (what :func:`index_bytes` returned)."""
    if ix.exists():
        shutil.rmtree(ix)
    for rel, data in files.items():
        p = ix / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def reseal(ix: Path) -> None:
    """Recompute the manifest's sizes and checksums of the current generation's files, as someone crafting
    a consistent index would, so the damage is left to the deeper checks."""
    import hashlib

    path = ix / "manifest.json"
    raw = json.loads(path.read_text())
    gen = generation_dir(ix)
    files = _listed_files(raw)
    for name in files:
        data = (gen / name).read_bytes()
        files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    path.write_text(json.dumps(raw, indent=2))


def sqlite_edit(ix: Path, *sql: str, params: tuple[Any, ...] = ()) -> None:
    """Run SQL against the current generation's document store (in place, behind tase-search's back)."""
    conn = sqlite3.connect(generation_dir(ix) / "docs.sqlite")
    try:
        for i, q in enumerate(sql):
            conn.execute(q, params if i == len(sql) - 1 else ())
        conn.commit()
    finally:
        conn.close()


def hostile_loop_graph(dimension: int, steps: int = 10**15) -> bytes:
    """An ONNX graph with a query graph's inputs and output whose answer waits on a ``Loop`` of
    ``steps`` iterations: what a query bundle could carry to hang every query."""
    from onnx import TensorProto, helper

    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["v_in", "one"], ["v_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [1, dimension]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1, dimension]),
        ],
        [helper.make_tensor("one", TensorProto.FLOAT, [1, dimension], [1.0] * dimension)],
    )

    def const(name: str, kind: int, dims: list[int], vals: list[Any]) -> Any:
        return helper.make_node(
            "Constant", [], [name], value=helper.make_tensor(name + "_v", kind, dims, vals)
        )

    nodes = [
        const("steps", TensorProto.INT64, [], [steps]),
        const("go", TensorProto.BOOL, [], [True]),
        const("v0", TensorProto.FLOAT, [1, dimension], [0.0] * dimension),
        helper.make_node("Loop", ["steps", "go", "v0"], ["sentence_embedding"], body=body),
    ]
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "tokens"])
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    out = [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, [1, dimension])]
    graph = helper.make_graph(nodes, "hostile", inputs, out)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def set_ivf_nlist(path: Path, nlist: int) -> None:
    """Overwrite the list count of an IDMap2-wrapped IVF file, in its header and its inverted lists."""
    raw = bytearray(path.read_bytes())
    if raw[37:39] != b"Iw":
        raise ValueError(f"{path} is not an IDMap2 around an IVF index")
    raw[74:82] = struct.pack("<Q", nlist)  # after "IxM2", the IDMap header, "IwFl" and the IVF header
    at = raw.index(b"ilar")
    raw[at + 4 : at + 12] = struct.pack("<Q", nlist)
    path.write_bytes(bytes(raw))


class FifoFeeder:
    """Writes ``data`` into a FIFO as soon as a reader opens it (so code that wrongly opens one gets data
    and the case fails, instead of blocking for ever); stop it by leaving the ``with`` block."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path, self.data, self.stop = path, data, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader yet
                continue
            try:
                os.write(fd, self.data)
            finally:
                os.close(fd)
            return

    def __enter__(self) -> FifoFeeder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


# ------------------------------------------------------------------------------ cases
Setup = Callable[[Path, Path], None]  # (index, a scratch directory outside it)


def _link_out(name: str) -> Setup:
    def f(ix: Path, outside: Path) -> None:
        secret = outside / "secret.bin"
        secret.write_bytes(b"s" * 123_457)
        p = generation_dir(ix) / name
        p.unlink()
        p.symlink_to(secret)

    return f


def _link_generation(ix: Path, outside: Path) -> None:
    gen = generation_dir(ix)
    shutil.move(gen, outside / "moved-generation")
    gen.symlink_to(outside / "moved-generation")


def _manifest_names(name: str) -> Setup:
    def f(ix: Path, outside: Path) -> None:
        raw = json.loads((ix / "manifest.json").read_text())
        _listed_files(raw)[name] = {"bytes": 1, "sha256": "0" * 64}
        (ix / "manifest.json").write_text(json.dumps(raw))

    return f


def _manifest_set(key: str, value: Any) -> Setup:
    def f(ix: Path, outside: Path) -> None:
        raw = json.loads((ix / "manifest.json").read_text())
        d = raw
        *parents, last = key.split(".")
        for k in parents:
            d = d[k]
        d[last] = value
        (ix / "manifest.json").write_text(json.dumps(raw))

    return f


def _manifest_files(value: Any) -> Setup:
    """Replace the file list of the newest segment (a format-1 manifest's ``files``)."""

    def f(ix: Path, outside: Path) -> None:
        raw = json.loads((ix / "manifest.json").read_text())
        if raw.get("format_version", 1) >= 2 and raw.get("segments"):
            raw["segments"][-1]["files"] = value
        else:
            raw["files"] = value
        (ix / "manifest.json").write_text(json.dumps(raw))

    return f


def _manifest_raw(text: str) -> Setup:
    def f(ix: Path, outside: Path) -> None:
        (ix / "manifest.json").write_text(text)

    return f


def _manifest_special(kind: str) -> Setup:
    def f(ix: Path, outside: Path) -> None:
        (ix / "manifest.json").unlink()
        if kind == "fifo":
            os.mkfifo(ix / "manifest.json")
        else:
            (ix / "manifest.json").symlink_to("/dev/zero")

    return f


def _sql(*sql: str, params: tuple[Any, ...] = (), sealed: bool = True) -> Setup:
    def f(ix: Path, outside: Path) -> None:
        sqlite_edit(ix, *sql, params=params)
        if sealed:
            reseal(ix)

    return f


def _null_text(ix: Path, outside: Path) -> None:
    sqlite_edit(
        ix,
        "PRAGMA writable_schema=ON",
        "UPDATE sqlite_master SET sql = replace(sql, 'text     TEXT NOT NULL', 'text TEXT') WHERE name='documents'",
    )
    sqlite_edit(ix, "UPDATE documents SET text = NULL")
    reseal(ix)


def _zeroed_page(ix: Path, outside: Path) -> None:
    p = generation_dir(ix) / "docs.sqlite"
    raw = bytearray(p.read_bytes())
    raw[4096:8192] = bytes(4096)
    p.write_bytes(bytes(raw))
    reseal(ix)


def _flip(name: str) -> Setup:
    def f(ix: Path, outside: Path) -> None:
        p = generation_dir(ix) / name
        raw = bytearray(p.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        p.write_bytes(bytes(raw))

    return f


def _lock(kind: str) -> Setup:
    def f(ix: Path, outside: Path) -> None:
        victim = outside / "victim.txt"
        victim.write_text("precious\n")
        lock = ix / ".lock"
        lock.unlink(missing_ok=True)
        if kind == "symlink":
            lock.symlink_to(victim)
        elif kind == "hard link":
            os.link(victim, lock)
        else:
            os.mkfifo(lock)

    return f


def _ivf_nlist(ix: Path, outside: Path) -> None:
    set_ivf_nlist(generation_dir(ix) / "vectors.faiss", 10**12)
    reseal(ix)


_RECURSIVE_VIEW = (
    "CREATE VIEW documents(doc_key, id, text, metadata, source, line) AS "
    "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT x, 'd' || x, 't', '{}', NULL, NULL FROM r"
)

#: name -> (setup, operations to try: "load" = load + search + get, "verify", "info", "delete", "add")
CASES: dict[str, tuple[Setup, tuple[str, ...]]] = {
    ".lock is a symlink to a user's file": (_lock("symlink"), ("delete", "add")),
    ".lock is a hard link to a user's file": (_lock("hard link"), ("delete",)),
    ".lock is a FIFO": (_lock("fifo"), ("delete",)),
    "vectors.faiss links out of the index": (
        _link_out("vectors.faiss"),
        ("load", "verify", "info", "delete"),
    ),
    "docs.sqlite links out of the index": (_link_out("docs.sqlite"), ("load", "verify", "info", "delete")),
    "generation directory links out of the index": (_link_generation, ("load", "verify", "delete")),
    "manifest names ../../etc/passwd": (_manifest_names("../../etc/passwd"), ("load", "verify", "delete")),
    "manifest names /etc/shadow": (_manifest_names("/etc/shadow"), ("load", "verify", "delete")),
    "manifest 100k-deep JSON": (_manifest_raw("[" * 100_000 + "]" * 100_000), ("load", "verify", "delete")),
    "manifest over 1 MiB": (_manifest_set("versions.pad", "x" * (2 << 20)), ("load", "verify")),
    "manifest is a FIFO": (_manifest_special("fifo"), ("load", "verify", "delete")),
    "manifest links to /dev/zero": (_manifest_special("zero"), ("load", "verify", "delete")),
    'manifest "generation": "x"': (_manifest_set("generation", "x"), ("load", "verify", "delete")),
    'manifest "files": []': (_manifest_files([]), ("load", "verify", "delete")),
    'manifest "files": {}': (_manifest_files({}), ("load", "verify", "delete")),
    "manifest fingerprint null": (_manifest_set("model.fingerprint", None), ("load", "verify")),
    "manifest fingerprint changed": (_manifest_set("model.fingerprint", "0" * 32), ("verify", "delete")),
    'manifest "rows": "320"': (_manifest_set("rows", "320"), ("load", "verify", "delete")),
    "docs.sqlite NULL text (resealed)": (_null_text, ("load",)),
    "docs.sqlite non-JSON metadata (resealed)": (_sql("UPDATE documents SET metadata = '{x'"), ("load",)),
    "docs.sqlite 100k-deep metadata (resealed)": (
        _sql("UPDATE documents SET metadata = ?", params=("[" * 100_000 + "]" * 100_000,)),
        ("load",),
    ),
    "docs.sqlite recursive VIEW (resealed)": (
        _sql("DROP TABLE documents", _RECURSIVE_VIEW),
        ("load", "verify"),
    ),
    "docs.sqlite zeroed page (resealed)": (_zeroed_page, ("load", "verify", "info")),
    "vectors.faiss IVF nlist 10^12 (resealed)": (_ivf_nlist, ("load", "verify")),
    "vectors.faiss byte flipped, then a write": (_flip("vectors.faiss"), ("delete", "add")),
    "docs.sqlite byte flipped, then a write": (_flip("docs.sqlite"), ("delete", "add")),
    "docs.sqlite text edited, then a write": (
        _sql("UPDATE documents SET text = upper(text)", sealed=False),
        ("delete",),
    ),
    "manifest count wrong, then a write": (_manifest_set("documents", 41), ("delete",)),
}


def _attempt(op: str, ix: Path, enc: Any) -> tuple[str, str]:
    """('refused' | 'worked' | 'crashed', message) of one operation on a hostile index ('clean' for
    ``info``, which may show what the manifest says as long as it neither crashes nor hangs)."""
    from click.testing import CliRunner

    from tase_search.cli.app import main
    from tase_search.errors import TaseSearchError
    from tase_search.retriever import Retriever
    from tase_search.store.manifest import read_manifest
    from tase_search.store.verify import verify_index

    try:
        if op == "verify":
            rep = verify_index(ix)
            return ("worked" if rep.ok else "refused"), "; ".join(rep.problems)[:300]
        if op == "info":
            res = CliRunner().invoke(main, ["info", "--index", str(ix)])
            clean = res.exception is None or isinstance(res.exception, SystemExit)
            return ("clean" if clean else "crashed"), res.output.strip()[-300:]
        if op == "load":
            with Retriever.load(ix, model=enc) as r:
                hits = r.search("futbol maçı", k=5)
                r.get([f"h{i}" for i in range(40)])
            return "worked", f"{len(hits)} hits"
        r = Retriever(ix, read_manifest(ix), encoder=enc)  # a writer opens no files before its lock
        if op == "delete":
            r.delete(["h3"])
        else:
            r.add(make_docs(3, prefix="new"))
        return "worked", "written"
    except TaseSearchError as exc:
        return "refused", str(exc)[:300]
    except Exception as exc:  # noqa: BLE001 - a traceback is what the case must not give
        return "crashed", f"{type(exc).__name__}: {str(exc)[:200]}"


def _pristine(work: Path, factory: str | None) -> Path:
    from tase_search.retriever import Retriever

    path = work / f"pristine-{factory or 'auto'}"
    if not path.exists():
        Retriever.build(
            make_docs(40, prefix="h"), model=fake_encoder(), path=path, factory=factory or None
        ).close()
    return path


def run_hostile(work: Path) -> dict[str, Any]:
    """Every case, every operation it lists: the figures for the campaign's summary."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    enc = fake_encoder()
    tried = held = 0
    per_case: dict[str, str] = {}
    failed: list[dict[str, str]] = []
    for name, (setup, ops) in CASES.items():
        ok_ops = []
        for op in ops:
            source = _pristine(work, "IVF4,Flat" if "IVF" in name else None)
            ix, outside = work / "ix", work / "outside"
            for d in (ix, outside):
                if d.exists() or d.is_symlink():
                    shutil.rmtree(d)
            shutil.copytree(source, ix)
            outside.mkdir()
            setup(ix, outside)
            before_outside = index_bytes(outside)
            before = index_bytes(ix)
            fifo = ix / "manifest.json"
            feeder = FifoFeeder(fifo, b"{}") if fifo.exists() and not fifo.is_file() else None
            if feeder:
                feeder.__enter__()
            try:
                outcome, msg = _attempt(op, ix, enc)
            finally:
                if feeder:
                    feeder.__exit__()
            tried += 1
            problems = []
            if outcome not in ("refused", "clean"):
                problems.append(f"{outcome}: {msg}")
            if index_bytes(outside) != before_outside:
                problems.append("a file outside the index changed")
            if any(s in msg for s in ("123457", "secret.bin", "victim")):
                problems.append("the message describes a file outside the index")
            if op in ("delete", "add") and index_bytes(ix) != before:
                problems.append("the index changed")
            if problems:
                failed.append({"case": name, "op": op, "problems": "; ".join(problems)[:400]})
            else:
                held += 1
                ok_ops.append(op)
        per_case[name] = f"{len(ok_ops)}/{len(ops)} held ({', '.join(ops)})"
    return {"tried": tried, "held": held, "cases": per_case, "failed": failed[:30]}
