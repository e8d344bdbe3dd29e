"""Kill writers (SIGKILL, and Ctrl-C = SIGINT) at many points and check the index after each.

Two ways to pick the point:

* **named points** — ``TASE_SEARCH_FAULT=<point>`` makes the writer kill itself at each commit phase
  (see :data:`tase_search.store.lock.FAULT_POINTS`), so every phase is covered deterministically;
* **random delays** — the writer is killed after a random delay, either from its start (mostly
  start-up, reading and encoding) or from the moment its temporary generation appears (the write
  itself). The phase it died in is then read off the disk (:func:`campaign.common.phase_on_disk`).

Two kinds of writer: ``cli`` runs the real ``tase-search index`` (new index, append, ``--overwrite``)
and ``tase-search delete`` with a tiny real model; ``api`` runs :mod:`campaign.apiwriter` (Python API,
fake encoder, starts in under a second). Both go through the same commit (``tase_search.store.commit.commit``).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaign.common import (
    REPO,
    Snapshot,
    check_next_write,
    check_state,
    fake_encoder,
    generation,
    leftovers,
    make_docs,
    phase_on_disk,
    snapshot,
    write_jsonl,
    write_txt,
)
from tase_search.store.lock import FAULT_ENV, FAULT_POINTS

OPS = ("index", "add", "delete", "overwrite")
#: After a kill at these points the new state must be visible; at all others the old one.
COMMITTED_POINTS = ("committed", "cleaned")


@dataclass
class Op:
    name: str
    argv: list[str]
    base: Path | None  # pristine index copied in before each trial (None: no index yet)
    old: Snapshot | None
    new: Snapshot | None = None
    t_total: float = 0.0  # seconds, unkilled
    t_write: float = 0.0  # seconds from the temporary generation appearing to exit


@dataclass
class Stats:
    tried: int = 0
    survived: int = 0
    by_phase: Counter = field(default_factory=Counter)
    survived_by_phase: Counter = field(default_factory=Counter)
    by_op: Counter = field(default_factory=Counter)
    states: Counter = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)

    def add(self, rec: dict[str, Any]) -> None:
        self.tried += 1
        self.by_phase[rec["phase"]] += 1
        self.by_op[rec["op"]] += 1
        self.states[rec["state"]] += 1
        if rec["ok"]:
            self.survived += 1
            self.survived_by_phase[rec["phase"]] += 1
        else:
            self.failures.append(rec)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tried": self.tried,
            "survived": self.survived,
            "by_phase": {p: f"{self.survived_by_phase[p]}/{n}" for p, n in sorted(self.by_phase.items())},
            "by_op": dict(sorted(self.by_op.items())),
            "final_state": dict(sorted(self.states.items())),
            "failures": self.failures[:20],
        }


def _reset(ix: Path, base: Path | None) -> None:
    if ix.exists():
        shutil.rmtree(ix)
    if base is not None:
        shutil.copytree(base, ix)


def let_children_see_ctrl_c() -> None:
    """A process started in the background by a non-interactive shell ignores SIGINT, and so would
    the writers it starts (an ignored signal stays ignored across exec): Ctrl-C trials would then
    test nothing. A handler (unlike SIG_IGN) is reset to the default in children, so install one."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        try:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        except ValueError:  # not the main thread: leave it (the Ctrl-C checks below will say so)
            pass


def _cli() -> list[str]:
    exe = Path(sys.executable).with_name("tase-search")
    if exe.is_file():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from tase_search.cli import main; sys.exit(main())"]


class KillCampaign:
    """Prepare the four write operations once, then kill them over and over."""

    def __init__(
        self,
        work: Path,
        *,
        driver: str = "cli",
        model_dir: Path | None = None,
        base_docs: int = 400,
        add_docs: int = 200,
        seed: int = 0,
    ) -> None:
        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.driver = driver
        let_children_see_ctrl_c()
        self.rng = random.Random(seed)
        self.ix = self.work / "ix"
        self.env = dict(os.environ)
        self.env.pop(FAULT_ENV, None)
        self.env.update(
            TASE_SEARCH_NO_PROGRESS="1",
            HF_HUB_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        )
        if driver == "cli":
            if model_dir is None:
                raise ValueError("the cli driver needs model_dir")
            from tase_search.encoding.encoder import Encoder

            self.encoder: Any = Encoder.load(str(model_dir), precision="fp32")
            self.env["TASE_SEARCH_PRECISION"] = "fp32"
        else:
            self.encoder = fake_encoder()
        self.model_dir = model_dir
        self.ops = self._prepare(base_docs, add_docs)

    # ------------------------------------------------------------------ setup
    def _prepare(self, base_docs: int, add_docs: int) -> dict[str, Op]:
        from tase_search.retriever import Retriever

        base = self.work / "base"
        _reset(base, None)
        docs = make_docs(base_docs, prefix="b")
        Retriever.build(docs, model=self.encoder, path=base).close()
        old = snapshot(base)
        fresh = make_docs(base_docs // 2, prefix="n", seed=1)
        more = make_docs(add_docs, prefix="a", seed=2)
        gone = [d["id"] for d in docs[: max(1, base_docs // 10)]]
        txt = write_txt(self.work / "fresh.txt", fresh)
        jsonl = write_jsonl(self.work / "more.jsonl", more)
        ix = str(self.ix)
        if self.driver == "cli":
            cli, model = _cli(), ["--model", str(self.model_dir)]
            argv = {
                "index": [*cli, "index", str(txt), "--index", ix, *model],
                "add": [*cli, "index", str(jsonl), "--index", ix],
                "delete": [*cli, "delete", *gone, "--index", ix],
                "overwrite": [*cli, "index", str(txt), "--index", ix, "--overwrite", *model],
            }
        else:
            w = [sys.executable, "-m", "campaign.apiwriter"]
            n = str(len(fresh))
            argv = {
                "index": [*w, "build", ix, "--n", n, "--prefix", "n", "--seed", "1"],
                "add": [*w, "add", ix, "--n", str(add_docs), "--prefix", "a", "--seed", "2"],
                "delete": [*w, "delete", ix, *gone],
                "overwrite": [*w, "overwrite", ix, "--n", n, "--prefix", "n", "--seed", "1"],
            }
        ops = {
            "index": Op("index", argv["index"], None, None),
            "add": Op("add", argv["add"], base, old),
            "delete": Op("delete", argv["delete"], base, old),
            "overwrite": Op("overwrite", argv["overwrite"], base, old),
        }
        for op in ops.values():
            self._calibrate(op)
        return ops

    def _calibrate(self, op: Op) -> None:
        """Run once unkilled: the new state, and how long the whole run and the write take."""
        _reset(self.ix, op.base)
        old_gen = generation(self.ix)
        t0 = time.monotonic()
        proc = subprocess.Popen(op.argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t_tmp = self._wait_for_write(proc)
        t_commit = None
        while t_tmp is not None and proc.poll() is None:  # until the manifest is replaced
            if generation(self.ix) != old_gen:
                t_commit = time.monotonic()
                break
            time.sleep(0.001)
        _, err = proc.communicate(timeout=600)
        t1 = time.monotonic()
        if proc.returncode != 0:
            raise RuntimeError(f"calibration of {op.name} failed ({proc.returncode}): {err.decode()[-2000:]}")
        op.t_total = t1 - t0
        # the write proper: temporary generation appears .. manifest replaced (not interpreter exit)
        op.t_write = max(0.005, (t_commit or t1) - (t_tmp if t_tmp is not None else t1))
        op.new = snapshot(self.ix)

    def _wait_for_write(self, proc: subprocess.Popen[bytes]) -> float | None:
        """Poll until the writer's temporary generation appears; its time, or None if it exited first."""
        while proc.poll() is None:
            if self.ix.is_dir() and (any(self.ix.glob(".tmp-gen-*")) or any(self.ix.glob(".tmp-seg-*"))):
                return time.monotonic()
            time.sleep(0.001)
        return None

    # ------------------------------------------------------------------ trials
    def trial(
        self, op_name: str, *, fault: str | None = None, when: str = "write", sig: int = signal.SIGKILL
    ) -> dict[str, Any] | None:
        """One kill. ``fault``: a named point (the writer kills itself there); else a random delay
        from the start (``when="start"``) or from the temporary generation appearing (``"write"``).
        Returns None when the writer finished before the signal (not a kill)."""
        op = self.ops[op_name]
        _reset(self.ix, op.base)
        old_gen = generation(self.ix)
        env = dict(self.env)
        if fault:
            env[FAULT_ENV] = fault if sig == signal.SIGKILL else f"{fault}:int"
        proc = subprocess.Popen(
            op.argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        phase_at_signal = None
        if not fault:
            if when == "start":
                delay = self.rng.uniform(0, op.t_total)
            else:
                if self._wait_for_write(proc) is None:
                    proc.communicate()
                    return None
                delay = self.rng.uniform(0, 1.1 * op.t_write)  # a tenth lands just after the commit
            try:
                proc.wait(timeout=delay)
                proc.communicate()
                return None  # finished first: not a kill
            except subprocess.TimeoutExpired:
                pass
            phase_at_signal = phase_on_disk(self.ix, old_gen)
            proc.send_signal(sig)
        _, err_b = proc.communicate(timeout=600)
        err = err_b.decode(errors="replace")
        rc = proc.returncode
        if sig == signal.SIGKILL and rc != -signal.SIGKILL:
            return (
                None if not fault else self._record(op, f"at {fault}", rc, err, [f"not killed (exit {rc})"])
            )
        if sig == signal.SIGINT and rc == 0:  # finished before the signal arrived (or ignored it)
            return (
                None
                if not fault
                else self._record(op, f"at {fault}", rc, err, ["Ctrl-C was ignored (exit 0)"])
            )
        if fault:
            phase = f"at {fault}"
        else:
            seen = phase_on_disk(self.ix, old_gen) if sig == signal.SIGKILL else phase_at_signal
            phase = f"random delay {'from start' if when == 'start' else 'in write'}: {seen}"
        problems: list[str] = []
        if sig == signal.SIGINT:
            problems += self._check_interrupt(rc, err)
        left = leftovers(self.ix)
        check = check_state(self.ix, op.old, op.new, self.encoder)
        problems += check["problems"]
        if fault:
            want = "new" if fault in COMMITTED_POINTS else "old"
            if check["state"] != want:
                problems.append(f"killed at {fault}: state is {check['state']}, expected {want}")
        if sig == signal.SIGINT:
            if left:
                problems.append(f"Ctrl-C left temporaries: {left}")
            if "nothing was changed" in err and check["state"] != "old":
                problems.append("said 'nothing was changed' but the index changed")
            if "after the write was saved" in err and check["state"] != "new":
                problems.append("said 'saved' but the index is the old one")
        problems += check_next_write(self.ix, self.encoder, make_docs(3, prefix="probe"))
        rec = self._record(op, phase, rc, err, problems)
        rec["state"] = check["state"]
        rec["left_temporaries"] = len(left)
        return rec

    def _check_interrupt(self, rc: int, err: str) -> list[str]:
        problems = []
        if "Traceback" in err:
            problems.append("Ctrl-C printed a traceback: " + err[-500:])
        # 130: interrupted inside the command (the normal case). Around it: 1 (click's "Aborted!"
        # while parsing arguments), -SIGINT (Python's own exit for a Ctrl-C that arrives after the
        # command returned, during interpreter shutdown: the shell shows 130 too).
        if rc not in (1, 130, -signal.SIGINT):
            problems.append(f"Ctrl-C exit status {rc} (expected 130)")
        if rc == 130 and "interrupted" not in err:
            problems.append("Ctrl-C without a message")
        return problems

    @staticmethod
    def _record(op: Op, phase: str, rc: int, err: str, problems: list[str]) -> dict[str, Any]:
        return {
            "op": op.name,
            "phase": phase,
            "exit": rc,
            "ok": not problems,
            "state": "?",
            "problems": problems,
            "stderr": err[-300:] if problems else "",
        }

    # ------------------------------------------------------------------ campaigns
    def run(
        self,
        kills: int,
        *,
        interrupts: int = 0,
        hooks: bool = True,
        ops: tuple[str, ...] = OPS,
        start_share: float = 0.3,
        log: Any = None,
    ) -> dict[str, Any]:
        """``kills`` SIGKILLs in all: every named point of every op first (if ``hooks``), then random
        delays (a ``start_share`` of them from the writer's start, the rest inside the write); plus
        ``interrupts`` Ctrl-Cs at random delays inside the write."""
        t0 = time.monotonic()
        stats, int_stats = Stats(), Stats()
        plan: list[tuple[str, str | None]] = []
        if hooks:
            plan = [(o, p) for p in FAULT_POINTS for o in ops]
        not_killed = 0
        i = 0
        while stats.tried < kills:
            if i < len(plan):
                o, point = plan[i]
                rec = self.trial(o, fault=point)
            else:
                o = ops[i % len(ops)]
                rec = self.trial(o, when="start" if self.rng.random() < start_share else "write")
            i += 1
            if rec is None:
                not_killed += 1
                if not_killed > 20 * kills + 50:
                    raise RuntimeError("the writers keep finishing before the kill; check the calibration")
                continue
            stats.add(rec)
            if log:
                log(
                    f"kill {stats.tried}/{kills} {rec['op']:<9} {rec['phase']:<45} {'ok' if rec['ok'] else 'FAIL'}"
                )
        j = not_interrupted = 0
        while int_stats.tried < interrupts:
            o = ops[j % len(ops)]
            j += 1
            if j <= len(ops) * 2:  # first: the hook at a mid-write point, deterministic
                rec = self.trial(o, fault=("faiss" if j % 2 else "renamed"), sig=signal.SIGINT)
            else:
                rec = self.trial(o, when="write", sig=signal.SIGINT)
            if rec is None:
                not_interrupted += 1
                if not_interrupted > 20 * interrupts + 50:
                    raise RuntimeError("the writers keep finishing before Ctrl-C; is SIGINT ignored?")
                continue
            int_stats.add(rec)
            if log:
                log(
                    f"ctrl-c {int_stats.tried}/{interrupts} {rec['op']:<9} {rec['phase']:<45} "
                    f"{'ok' if rec['ok'] else 'FAIL'}"
                )
        return {
            "driver": self.driver,
            "kills": stats.to_dict(),
            "interrupts": int_stats.to_dict(),
            "finished_before_kill": not_killed,
            "finished_before_ctrl_c": not_interrupted,
            "op_seconds": {k: round(v.t_total, 2) for k, v in self.ops.items()},
            "write_seconds": {k: round(v.t_write, 3) for k, v in self.ops.items()},
            "seconds": round(time.monotonic() - t0, 1),
        }
