"""How many threads the encoder and FAISS may use: an explicit count, or one that leaves busy cores alone.

Why: torch starts one intra-op thread per core it sees. When another process already keeps a core
busy, those threads fight it for the core and every matrix multiply waits for the slowest one:
indexing 10k lines took 121 s with torch's default on a 2-core machine with one core taken, and 35 s
with one thread (``bench/threads.py`` measures it again). The default here counts the cores this
process may run on (CPU affinity, a cgroup quota), subtracts the ones other processes keep busy right
now, and caps the result at :data:`MAX_DEFAULT_THREADS`.

The count is applied once, before torch is imported where possible (``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS``, read by torch's and FAISS's OpenMP at import), and through
``torch.set_num_threads`` / ``faiss.omp_set_num_threads`` when they are already loaded.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

#: The automatic count never goes above this: encoding batches of short texts gains little from more
#: threads, and a shared server keeps the rest. ``--threads`` / the ``threads`` setting go higher.
MAX_DEFAULT_THREADS = 8
#: How long the CPUs are watched to see how busy they are (seconds).
SAMPLE_SECONDS = 0.05
_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def available_cpus() -> int:
    """CPUs this process may use: its affinity set, further limited by a cgroup v2 CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def _cgroup_quota(path: Path = Path("/sys/fs/cgroup/cpu.max")) -> float | None:
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def _cpu_times(cpus: set[int] | None) -> tuple[float, float] | None:
    """(busy, total) jiffies summed over ``cpus`` (all when None), from /proc/stat."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    busy = total = 0.0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            continue
        try:
            cpu = int(name[3:])
            fields = [float(x) for x in rest.split()]
        except ValueError:
            continue
        if cpus is not None and cpu not in cpus:
            continue
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
        total += sum(fields[:8])
        busy += sum(fields[:8]) - idle
    return (busy, total) if total else None


def busy_cpus(sample: float = SAMPLE_SECONDS, sleep: Callable[[float], None] = time.sleep) -> float:
    """How many of this process's CPUs other processes keep busy now (0.0 when it cannot tell).

    Measured over ``sample`` seconds from /proc/stat on Linux; elsewhere the 1-minute load average.
    """
    try:
        cpus: set[int] | None = set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = None
    before = _cpu_times(cpus)
    if before is not None:
        sleep(sample)
        after = _cpu_times(cpus)
        if after is not None and after[1] > before[1]:
            n = len(cpus) if cpus else (os.cpu_count() or 1)
            return n * (after[0] - before[0]) / (after[1] - before[1])
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def default_threads(*, cpus: int | None = None, busy: float | None = None) -> int:
    """The automatic thread count: free CPUs (available minus busy, rounded), at least 1, at most
    :data:`MAX_DEFAULT_THREADS`."""
    n = available_cpus() if cpus is None else cpus
    load = busy_cpus() if busy is None else busy
    return max(1, min(MAX_DEFAULT_THREADS, n - int(round(load))))


def resolve_threads(setting: int) -> tuple[int, str]:
    """``(threads, where the number came from)`` for a ``threads`` setting (0 = automatic).

    A positive setting is used as given. Under automatic, an ``OMP_NUM_THREADS`` the user exported
    is kept; otherwise :func:`default_threads` decides.
    """
    if setting > 0:
        return setting, "setting"
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env), "OMP_NUM_THREADS"
    return default_threads(), "free CPUs"


def apply_threads(n: int) -> None:
    """Use ``n`` threads for torch and FAISS in this process (and the OpenMP children it starts)."""
    if n < 1:
        raise ValueError(f"thread count {n} must be >= 1")
    for var in _ENV_VARS:
        os.environ[var] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    faiss = sys.modules.get("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(n)
