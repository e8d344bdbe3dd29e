"""Damage an index in many ways; ``verify`` must report it and loading must fail loudly.

A case is *detected* when ``verify_index`` reports a problem (and ``tase-search verify`` exits 1
with a message, no traceback) **and** loading + searching raises a tase-search error
(``IndexCorrupt`` / ``IndexMismatch`` / ``IndexNotFound``) instead of returning results. Each case
also tries a write (a delete): it must refuse and leave every file as it was, so damage is never
carried into a new version (*writes refused*).

The load-time checksum only runs for indexes up to ``VERIFY_ON_LOAD_BYTES``; the campaign also
reports how many cases still fail loudly at load with it switched off (as for a large index),
where the remaining ones are left to ``tase-search verify``.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from campaign.common import fake_encoder, make_docs

Damage = Callable[[Path, random.Random], None]


def _gen(ix: Path) -> Path:
    """The newest segment's directory (what most damage is done to)."""
    from campaign.hostile import generation_dir

    return generation_dir(ix)


def _set_newest(key: str, value: Any) -> Damage:
    """Set ``key`` of the newest segment's manifest entry (``value`` may be a function of the old one)."""

    def f(ix: Path, rng: random.Random) -> None:
        def edit(m: dict[str, Any]) -> None:
            entry = m["segments"][-1]
            entry[key] = value(entry[key]) if callable(value) else value

        _edit_manifest(ix, edit)

    return f


def _edit_manifest(ix: Path, fn: Callable[[dict[str, Any]], None]) -> None:
    m = json.loads((ix / "manifest.json").read_text())
    fn(m)
    (ix / "manifest.json").write_text(json.dumps(m))


def _truncate(name: str) -> Damage:
    def f(ix: Path, rng: random.Random) -> None:
        p = _gen(ix) / name
        size = p.stat().st_size
        with open(p, "r+b") as fh:
            fh.truncate(rng.randint(0, size - 1))

    return f


def _overwrite(name: str, *, lo: float = 0.2, hi: float = 0.8, max_len: int = 256) -> Damage:
    def f(ix: Path, rng: random.Random) -> None:
        p = _gen(ix) / name
        size = p.stat().st_size
        off = rng.randint(int(size * lo), int(size * hi))
        n = rng.randint(1, max_len)
        with open(p, "r+b") as fh:
            fh.seek(off)
            old = fh.read(n)
            fh.seek(off)
            fh.write(bytes((b ^ 0xFF) for b in old))  # always different bytes

    return f


def _replace_with_garbage(name: str) -> Damage:
    def f(ix: Path, rng: random.Random) -> None:
        p = _gen(ix) / name
        p.write_bytes(rng.randbytes(p.stat().st_size))

    return f


def _empty(name: str) -> Damage:
    def f(ix: Path, rng: random.Random) -> None:
        (_gen(ix) / name).write_bytes(b"")

    return f


def _from_previous_generation(name: str) -> Damage:
    def f(ix: Path, rng: random.Random) -> None:
        gens = sorted(p for p in ix.glob("seg-*") if p.is_dir())
        shutil.copyfile(gens[0] / name, gens[-1] / name)

    return f


def _sql_delete_row(ix: Path, rng: random.Random) -> None:
    conn = sqlite3.connect(_gen(ix) / "docs.sqlite")
    conn.execute("DELETE FROM passages WHERE pid = (SELECT MAX(pid) FROM passages)")
    conn.commit()
    conn.close()


def _sql_change_text(ix: Path, rng: random.Random) -> None:
    """A valid SQLite file whose texts no longer match the vectors (same size: only the checksum knows)."""
    conn = sqlite3.connect(_gen(ix) / "docs.sqlite")
    conn.execute("UPDATE documents SET text = upper(text) WHERE doc_key % 7 = 0")
    conn.commit()
    conn.close()


def _manifest_of(other: Path) -> Damage:
    def f(ix: Path, rng: random.Random) -> None:
        shutil.copyfile(other / "manifest.json", ix / "manifest.json")

    return f


def _set(key: str, value: Any) -> Damage:
    def f(ix: Path, rng: random.Random) -> None:
        def edit(m: dict[str, Any]) -> None:
            parts = key.split(".")
            d = m
            for part in parts[:-1]:
                d = d[part]
            d[parts[-1]] = value(d[parts[-1]]) if callable(value) else value

        _edit_manifest(ix, edit)

    return f


def _manifest_truncated(ix: Path, rng: random.Random) -> None:
    p = ix / "manifest.json"
    raw = p.read_bytes()
    p.write_bytes(raw[: rng.randint(1, len(raw) - 2)])


def _manifest_not_utf8(ix: Path, rng: random.Random) -> None:
    p = ix / "manifest.json"
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] = 0xFF
    p.write_bytes(bytes(raw))


def _remove_generation(ix: Path, rng: random.Random) -> None:
    shutil.rmtree(_gen(ix))


def _remove_file(name: str) -> Damage:
    def f(ix: Path, rng: random.Random) -> None:
        (_gen(ix) / name).unlink()

    return f


def _zero_page(name: str, page: int = 1) -> Damage:
    def f(ix: Path, rng: random.Random) -> None:
        p = _gen(ix) / name
        raw = bytearray(p.read_bytes())
        raw[page * 4096 : (page + 1) * 4096] = bytes(4096)
        p.write_bytes(bytes(raw))

    return f


def _link_previous(name: str) -> Damage:
    def f(ix: Path, rng: random.Random) -> None:
        gens = sorted(p for p in ix.glob("seg-*") if p.is_dir())
        (gens[-1] / name).unlink()
        (gens[-1] / name).symlink_to(gens[0] / name)

    return f


def _manifest_is_array(ix: Path, rng: random.Random) -> None:
    (ix / "manifest.json").write_text("[1, 2, 3]\n")


def cases(other_model_index: Path) -> dict[str, tuple[Damage, bool]]:
    """name -> (damage, random: worth repeating with other seeds)."""
    return {
        "vectors.faiss truncated": (_truncate("vectors.faiss"), True),
        "docs.sqlite truncated": (_truncate("docs.sqlite"), True),
        "docs.sqlite bytes overwritten mid-file": (_overwrite("docs.sqlite"), True),
        "docs.sqlite one byte flipped": (_overwrite("docs.sqlite", lo=0.05, hi=0.95, max_len=1), True),
        "vectors.faiss bytes overwritten mid-file": (_overwrite("vectors.faiss"), True),
        "vectors.faiss one byte flipped": (_overwrite("vectors.faiss", lo=0.05, hi=0.95, max_len=1), True),
        "vectors.faiss replaced by random bytes": (_replace_with_garbage("vectors.faiss"), True),
        "docs.sqlite replaced by random bytes": (_replace_with_garbage("docs.sqlite"), True),
        "vectors.faiss empty": (_empty("vectors.faiss"), False),
        "docs.sqlite empty": (_empty("docs.sqlite"), False),
        "vectors.faiss missing": (_remove_file("vectors.faiss"), False),
        "docs.sqlite missing": (_remove_file("docs.sqlite"), False),
        "vectors.faiss from the previous generation": (_from_previous_generation("vectors.faiss"), False),
        "docs.sqlite from the previous generation": (_from_previous_generation("docs.sqlite"), False),
        "docs.sqlite row deleted with SQL": (_sql_delete_row, False),
        "docs.sqlite texts changed with SQL (same size)": (_sql_change_text, False),
        "generation directory missing": (_remove_generation, False),
        "manifest from an index of another model": (_manifest_of(other_model_index), False),
        "manifest format version 3": (_set("format_version", 3), False),
        "manifest format version missing": (_set("format_version", None), False),
        "manifest model dimension changed": (_set("model.dimension", lambda d: d * 2), False),
        "manifest row count changed": (_set("rows", lambda n: n + 1), False),
        "manifest document count changed": (_set("documents", lambda n: n - 1), False),
        "manifest checksum changed": (
            _set_newest("files", lambda f: {**f, "docs.sqlite": {**f["docs.sqlite"], "sha256": "0" * 64}}),
            False,
        ),
        "manifest names a missing segment": (_set_newest("name", "seg-999999"), False),
        "manifest segment count changed": (_set_newest("documents", lambda n: n + 1), False),
        "manifest truncated": (_manifest_truncated, True),
        "manifest not UTF-8": (_manifest_not_utf8, False),
        "manifest is a JSON array": (_manifest_is_array, False),
        "manifest unknown field": (_set("surprise", 1), False),
        "manifest model fingerprint changed": (_set("model.fingerprint", "0" * 32), False),
        "manifest lists no files": (_set_newest("files", {}), False),
        "manifest generation not a number": (_set("generation", "x"), False),
        "manifest row count a string": (_set("rows", lambda n: str(n)), False),
        "docs.sqlite page zeroed": (_zero_page("docs.sqlite"), False),
        "vectors.faiss replaced by a link to the previous generation's": (
            _link_previous("vectors.faiss"),
            False,
        ),
    }


def _build(path: Path, model_id: str, docs: int) -> None:
    from tase_search.retriever import Retriever

    enc = fake_encoder()
    if model_id != "fake":  # another model: other weights and dimension, other documents
        from tase_search.testing import FakeEncoder

        enc = FakeEncoder(32, model_id=model_id)
    r = Retriever.build(
        make_docs(docs, prefix="k", seed=0 if model_id == "fake" else 7), model=enc, path=path, overwrite=True
    )
    r.delete(["k0"])  # a deletions file in the first segment
    r.add(make_docs(2, prefix="k2-", seed=1))  # a second segment, so an older one exists on disk
    r.close()


def _loud_load(ix: Path, enc: Any) -> tuple[bool, str]:
    """True when loading + searching raises a tase-search error (not results, not a crash)."""
    from tase_search.errors import TaseSearchError
    from tase_search.retriever import Retriever

    try:
        with Retriever.load(ix, model=enc) as r:
            hits = r.search("futbol maçı", k=5)
            r.get([h.id for h in hits])
    except TaseSearchError as exc:
        return True, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a crash is loud, but not clean
        return False, f"unclean {type(exc).__name__}: {exc}"
    return False, f"returned {len(hits)} hits silently"


def _write_refused(ix: Path, enc: Any) -> tuple[bool, str]:
    """A write (a delete) on the damaged index must refuse and leave every file as it was: damage is never
    copied into a new version that would then verify as good."""
    from campaign.hostile import index_bytes
    from tase_search.errors import TaseSearchError
    from tase_search.retriever import Retriever
    from tase_search.store.manifest import read_manifest

    before = index_bytes(ix)
    try:
        Retriever(ix, read_manifest(ix), encoder=enc).delete(["k5"])
        outcome = False, "the write went ahead"
    except TaseSearchError as exc:
        outcome = True, f"{type(exc).__name__}: {exc}"
    except FileNotFoundError as exc:  # no manifest to write against
        outcome = True, f"no manifest ({exc.filename})"
    except Exception as exc:  # noqa: BLE001
        outcome = False, f"unclean {type(exc).__name__}: {exc}"
    if index_bytes(ix) != before:
        return False, "the index changed: " + outcome[1]
    return outcome


def _cli_verify(ix: Path) -> tuple[bool, str]:
    from click.testing import CliRunner

    from tase_search.cli.app import main

    res = CliRunner().invoke(main, ["verify", str(ix)])
    clean = res.exception is None or isinstance(res.exception, SystemExit)
    text = res.output.strip().splitlines()[-1] if res.output.strip() else ""
    return res.exit_code != 0 and clean, text


def run_corruption(work: Path, *, repeats: int = 3, seed: int = 0, docs: int = 300) -> dict[str, Any]:
    from tase_search.errors import TaseSearchError
    from tase_search.store import snapshot
    from tase_search.store.verify import verify_index

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    pristine, other = work / "pristine", work / "other-model"
    _build(pristine, "fake", docs)
    _build(other, "other-model", docs)
    enc = fake_encoder()
    rng = random.Random(seed)
    tried = detected = 0
    loud_without_checksum = writes_refused = 0
    per_case: dict[str, str] = {}
    missed: list[dict[str, str]] = []
    for name, (damage, is_random) in cases(other).items():
        n_ok = 0
        reps = repeats if is_random else 1
        for _ in range(reps):
            ix = work / "ix"
            if ix.exists():
                shutil.rmtree(ix)
            shutil.copytree(pristine, ix)
            damage(ix, rng)
            try:
                rep = verify_index(ix)
                v_ok, v_msg = (not rep.ok), "; ".join(rep.problems)[:300]
            except TaseSearchError as exc:
                v_ok, v_msg = True, str(exc)[:300]
            except Exception as exc:  # noqa: BLE001
                v_ok, v_msg = False, f"verify crashed: {exc!r}"
            c_ok, c_msg = _cli_verify(ix)
            l_ok, l_msg = _loud_load(ix, enc)
            saved = snapshot.VERIFY_ON_LOAD_BYTES
            snapshot.VERIFY_ON_LOAD_BYTES = -1
            try:
                l2_ok, _ = _loud_load(ix, enc)
            finally:
                snapshot.VERIFY_ON_LOAD_BYTES = saved
            w_ok, w_msg = _write_refused(ix, enc)
            tried += 1
            loud_without_checksum += l2_ok
            writes_refused += w_ok
            if not w_ok:
                missed.append({"case": name, "write": w_msg[:300]})
            if v_ok and c_ok and l_ok:
                detected += 1
                n_ok += 1
            else:
                missed.append({"case": name, "verify": v_msg, "cli": c_msg, "load": l_msg})
            last = f"verify: {v_msg[:120]} | load: {l_msg[:120]}"
        per_case[name] = f"{n_ok}/{reps}  ({last})"
    return {
        "tried": tried,
        "detected": detected,
        "loud_at_load_without_checksum": loud_without_checksum,
        "writes_refused": writes_refused,
        "cases": per_case,
        "missed": missed[:20],
    }
