"""Run the whole campaign and print a JSON summary with the figures.

    python -m campaign.run --kills 200 --readers 4 --bad-inputs 500 --out runs/campaign.json

Parts (each can be skipped with ``--skip``): ``kills`` (SIGKILL + Ctrl-C of the real CLI with a tiny
model; ``--driver api`` uses the fast Python-API writer instead), ``concurrency`` (readers + writer +
lock probe, then the stale-lock check), ``corruption``, ``hostile`` (crafted indexes, planted links and
lock files, hostile query bundles), ``http`` (the HTTP API against other sites' Host names, idle and
half-sent sockets, a full disk at the lock, deep metadata, duplicate ids, random bodies), ``bad-inputs`` (API fuzz with the fake encoder plus fixed CLI cases with the tiny model) and
``disk-full`` (tmpfs, including a sweep of the free space in 4 KiB steps; root only).
Progress goes to stderr; the summary JSON to stdout and ``--out`` (with the full details).
Exit status 0 when nothing was lost or let in.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

PARTS = ("kills", "concurrency", "corruption", "hostile", "http", "bad-inputs", "disk-full")


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m campaign.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=200, help="SIGKILLs of writers (named points first)")
    ap.add_argument("--interrupts", type=int, default=20, help="Ctrl-Cs (SIGINT) of writers")
    ap.add_argument("--driver", choices=["cli", "api"], default="cli", help="writers: real CLI or Python API")
    ap.add_argument(
        "--api-kills", type=int, default=0, help="extra SIGKILLs of the fast Python-API writer (cheap, many)"
    )
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--concurrency-seconds", type=float, default=20.0)
    ap.add_argument(
        "--bad-inputs", type=int, default=500, help="random API bad-input cases (+ fixed CLI cases)"
    )
    ap.add_argument("--corruption-repeats", type=int, default=3, help="seeds per random corruption case")
    ap.add_argument("--disk-steps", type=int, default=40, help="free-space steps of the disk-full sweep")
    ap.add_argument("--skip", action="append", default=[], choices=PARTS)
    ap.add_argument("--skip-cli-cases", action="append", default=[], metavar="TEXT", help="e.g. '10 MB'")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=Path("runs/campaign-work"))
    ap.add_argument("--model", type=Path, default=None, help="model directory (default: build the tiny one)")
    ap.add_argument("--out", type=Path, default=Path("runs/campaign.json"))
    a = ap.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["TASE_SEARCH_NO_PROGRESS"] = "1"
    from campaign.common import tiny_model

    t0 = time.monotonic()
    a.work.mkdir(parents=True, exist_ok=True)
    work = a.work.resolve()
    model = (a.model or tiny_model(work / "tiny-model")).resolve()
    full: dict[str, Any] = {
        "started": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "command": "python -m campaign.run " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
    }
    full["git"] = _git()
    seconds: dict[str, float] = {}

    if "kills" not in a.skip:
        from campaign.faults import KillCampaign

        t = time.monotonic()
        _log(f"kills: preparing ({a.driver} writers, calibration runs)")
        kc = KillCampaign(work / "kills", driver=a.driver, model_dir=model, seed=a.seed)
        _log(
            "kills: " + ", ".join(f"{k} {v.t_total:.1f}s (write {v.t_write:.2f}s)" for k, v in kc.ops.items())
        )
        full["kills"] = kc.run(a.kills, interrupts=a.interrupts, log=_log)
        seconds["kills"] = time.monotonic() - t
        if a.api_kills:
            t = time.monotonic()
            _log(f"kills: {a.api_kills} more with the Python-API writer")
            ka = KillCampaign(work / "kills-api", driver="api", seed=a.seed + 1)
            full["kills_api"] = ka.run(a.api_kills, log=_log)
            seconds["kills_api"] = time.monotonic() - t

    if "concurrency" not in a.skip:
        from campaign.concurrency import run_concurrency, stale_lock_check

        t = time.monotonic()
        _log(f"concurrency: {a.readers} readers, 1 writer, {a.concurrency_seconds:.0f}s")
        full["concurrency"] = run_concurrency(
            work / "concurrency", readers=a.readers, seconds=a.concurrency_seconds, seed=a.seed
        )
        _log("concurrency: stale lock")
        full["stale_lock"] = stale_lock_check(work / "concurrency")
        seconds["concurrency"] = time.monotonic() - t

    if "corruption" not in a.skip:
        from campaign.corruption import run_corruption

        t = time.monotonic()
        _log("corruption")
        full["corruption"] = run_corruption(work / "corruption", repeats=a.corruption_repeats, seed=a.seed)
        seconds["corruption"] = time.monotonic() - t

    if "hostile" not in a.skip:
        from campaign.hostile import run_hostile

        t = time.monotonic()
        _log("hostile indexes")
        full["hostile"] = run_hostile(work / "hostile")
        seconds["hostile"] = time.monotonic() - t
        from campaign.bundles import run_hostile_bundles

        t = time.monotonic()
        _log("hostile query bundles (tiny model)")
        full["hostile_bundles"] = run_hostile_bundles(work / "hostile-bundles", model)
        seconds["hostile_bundles"] = time.monotonic() - t

    if "http" not in a.skip:
        import importlib.util

        from campaign.http import run_http

        missing = [m for m in ("fastapi", "uvicorn", "httpx") if importlib.util.find_spec(m) is None]
        if missing:  # the serve extra is not installed
            _log(f"http: skipped ({', '.join(missing)} not installed: pip install -e '.[serve]' httpx)")
        else:
            t = time.monotonic()
            _log("HTTP API")
            full["http"] = run_http(work / "http", seed=a.seed)
            seconds["http"] = time.monotonic() - t

    if "bad-inputs" not in a.skip:
        from campaign.badinput import run_api_fuzz, run_cli_cases

        t = time.monotonic()
        _log(f"bad inputs: {a.bad_inputs} API cases")
        api = run_api_fuzz(work / "bad-api", a.bad_inputs, seed=a.seed)
        _log("bad inputs: CLI cases (tiny model)")
        cli = run_cli_cases(work / "bad-cli", model, skip=a.skip_cli_cases or None)
        full["bad_inputs"] = {"api": api, "cli": cli}
        seconds["bad_inputs"] = time.monotonic() - t

    if "disk-full" not in a.skip:
        from campaign.resources import disk_full_check, disk_full_sweep

        t = time.monotonic()
        _log("disk full (tmpfs)")
        full["disk_full"] = disk_full_check(work / "disk")
        _log(f"disk full: sweep of {a.disk_steps} free-space steps of 4 KiB around the threshold")
        full["disk_full_sweep"] = disk_full_sweep(work / "disk", steps=a.disk_steps)
        seconds["disk_full"] = time.monotonic() - t

    full["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
    full["wall_seconds"] = round(time.monotonic() - t0, 1)
    summary = summarize(full)
    full["summary"] = summary
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(full, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    _log(f"done in {full['wall_seconds']:.0f}s; details in {a.out}")
    return 0 if summary["ok"] else 1


def _git() -> str:
    import subprocess

    from campaign.common import REPO

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        )
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return head.stdout.strip() + ("+uncommitted" if dirty.stdout.strip() else "")


def summarize(full: dict[str, Any]) -> dict[str, Any]:
    """The figures: what was tried, and how much of it survived / was served / was handled."""
    s: dict[str, Any] = {"ok": True}

    def bad(cond: bool) -> None:
        if cond:
            s["ok"] = False

    if "kills" in full:
        k, i = full["kills"]["kills"], full["kills"]["interrupts"]
        s["kills"] = {
            "writer": full["kills"]["driver"],
            "survived/tried": f"{k['survived']}/{k['tried']}",
            "by_phase": k["by_phase"],
            "by_op": k["by_op"],
            "final_state": k["final_state"],
        }
        s["ctrl_c"] = {"survived/tried": f"{i['survived']}/{i['tried']}", "final_state": i["final_state"]}
        bad(k["survived"] != k["tried"] or i["survived"] != i["tried"])
    if "kills_api" in full:
        k = full["kills_api"]["kills"]
        s["kills_api_writer"] = {"survived/tried": f"{k['survived']}/{k['tried']}", "by_phase": k["by_phase"]}
        bad(k["survived"] != k["tried"])
    if "concurrency" in full:
        c = full["concurrency"]
        s["concurrency"] = {
            "readers": c["readers"],
            "seconds": c["seconds"],
            "queries_served": c["queries_served"],
            "query_errors": c["query_errors"],
            "inconsistent_results": c["inconsistent_results"],
            "generations_committed": c["generations_committed"],
            "generations_seen_by_readers": c["generations_seen_by_readers"],
            "second_writer_refused_with_pid": c["lock_probe"]["refused_with_pid"],
            "second_writer_refused_pid_not_yet_written": c["lock_probe"]["refused_without_pid"],
        }
        bad(bool(c["problems"]) or c["query_errors"] > 0 or c["inconsistent_results"] > 0)
    if "stale_lock" in full:
        s["stale_lock_recovered"] = full["stale_lock"]["ok"]
        bad(not full["stale_lock"]["ok"])
    if "corruption" in full:
        c = full["corruption"]
        s["corruption"] = {
            "detected/tried": f"{c['detected']}/{c['tried']}",
            "loud_at_load_without_checksum": f"{c['loud_at_load_without_checksum']}/{c['tried']}",
            "writes_refused/tried": f"{c['writes_refused']}/{c['tried']}",
        }
        bad(c["detected"] != c["tried"] or c["writes_refused"] != c["tried"])
    if "hostile" in full:
        h = full["hostile"]
        s["hostile"] = {"held/tried": f"{h['held']}/{h['tried']}", "cases": len(h["cases"])}
        bad(h["held"] != h["tried"])
    if "hostile_bundles" in full:
        h = full["hostile_bundles"]
        s["hostile_bundles"] = {"held/tried": f"{h['held']}/{h['tried']}", "cases": len(h["cases"])}
        bad(h["held"] != h["tried"])
    if "http" in full:
        h = full["http"]
        s["http"] = {"held/tried": f"{h['held']}/{h['tried']}"}
        bad(h["held"] != h["tried"])
    if "bad_inputs" in full:
        api, cli = full["bad_inputs"]["api"], full["bad_inputs"]["cli"]
        s["bad_inputs"] = {
            "tried": api["tried"] + cli["tried"],
            "mishandled": api["mishandled"] + cli["mishandled"],
            "api": f"{api['worked']} worked, {api['refused_cleanly']} refused cleanly, {api['mishandled']} mishandled",
            "cli": f"{cli['worked']} worked, {cli['refused_cleanly']} refused cleanly, {cli['mishandled']} mishandled",
        }
        bad(api["mishandled"] + cli["mishandled"] > 0)
    if "disk_full" in full:
        d = full["disk_full"]
        s["disk_full"] = "skipped" if d.get("ok") is None else ("ok" if d["ok"] else "FAILED")
        bad(d.get("ok") is False)
    if "disk_full_sweep" in full:
        d = full["disk_full_sweep"]
        if d.get("ok") is None:
            s["disk_full_sweep"] = "skipped"
        else:
            s["disk_full_sweep"] = {
                "ok": d["ok"],
                "steps": f"{d['tried']} of {d['step_bytes']} bytes around {d['threshold_free_bytes']} free",
                "old_intact/new_verified": f"{d['old']}/{d['new']}",
            }
        bad(d.get("ok") is False)
    s["seconds"] = full.get("seconds", {})
    s["wall_seconds"] = full.get("wall_seconds")
    return s


if __name__ == "__main__":
    sys.exit(main())
