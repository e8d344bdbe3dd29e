"""Shared helpers for the benchmark scripts: machine facts, data loading, timing, JSON output.

Every benchmark prints one JSON object on stdout (and writes it with ``--out FILE``) followed by a
one-line summary on stderr. Because benchmarks often run on shared or busy machines, each one
reports *ratios* against the obvious alternative measured in the same run, interleaved
(A, B, A, B, ...), together with the load average before and after.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEMO_CORPUS = REPO / "tase_search" / "data" / "demo_tr.txt"
DEMO_QUERIES = REPO / "tase_search" / "data" / "demo_queries.txt"
_FLAGS = ("avx2", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")

# A few Turkish sentences so a benchmark runs even where neither a path nor the demo corpus exists.
FALLBACK_SENTENCES = [
    "Galatasaray dün akşamki maçı iki bir kazandı.",
    "Yarın İstanbul'da kuvvetli yağmur bekleniyor.",
    "Merkez Bankası faiz oranlarını sabit tuttu.",
    "Kapadokya'da balon turları sabah erkenden başlıyor.",
    "Yeni kütüphane hafta sonu da açık olacak.",
    "Deprem bölgesine yardım malzemeleri ulaştırıldı.",
    "Öğrenciler sınav sonuçlarını internetten öğrenebilecek.",
    "Ankara'da trafik yoğunluğu akşam saatlerinde artıyor.",
    "Bu kitabı okumanı tavsiye ederim, çok etkileyici.",
    "Çay bahçesinde arkadaşlarımızla sohbet ettik.",
    "Hastanenin acil servisi yeniden düzenlendi.",
    "Karadeniz'de balıkçılar hamsi sezonunu açtı.",
]


# ----------------------------------------------------------------------------- machine
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> dict[str, bool]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return {}
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return {f: f in flags for f in _FLAGS}


def _cpu_class() -> str:
    """The class the fast paths are chosen by (tase_search.runtime.cpu): amx, avx512-bf16, avx512, avx2."""
    from tase_search.runtime.cpu import cpu_class

    return cpu_class()


def _version(mod: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:  # noqa: BLE001 - absent package: None
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        if out.returncode == 0:
            return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


#: Environment variables that hold a run to a smaller instruction set than the CPU has (oneDNN,
#: CTranslate2, PyTorch's own kernels, MKL) or stand in for its flags (tase-search's CPU class): set,
#: they are recorded with the run, whose figures are then those of that instruction set on this CPU.
ISA_LIMITS = (
    "ONEDNN_MAX_CPU_ISA",
    "CT2_FORCE_CPU_ISA",
    "ATEN_CPU_CAPABILITY",
    "MKL_ENABLE_INSTRUCTIONS",
    "TASE_SEARCH_CPU_FLAGS",
)


def machine_facts() -> dict[str, Any]:
    """What the numbers depend on: cores, CPU, the SIMD flags that matter, library versions."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = os.cpu_count()
    facts: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host_cpus": os.cpu_count(),
        "usable_cpus": affinity,
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_class": _cpu_class(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            m: _version(m)
            for m in ("tase-search", "torch", "faiss-cpu", "sentence-transformers", "transformers", "numpy")
        },
        "git": _git_commit(),
        "loadavg_before": loadavg(),
    }
    limits = {k: os.environ[k] for k in ISA_LIMITS if os.environ.get(k)}
    if limits:  # the run was held to a smaller instruction set than the CPU has (see ISA_LIMITS)
        facts["isa_limits"] = limits
    if "torch" in sys.modules:
        import torch

        facts["torch_threads"] = torch.get_num_threads()
    return facts


def finish(result: dict[str, Any], out: str | None, summary: str) -> dict[str, Any]:
    """Stamp the load average after, print the JSON and the summary, write ``out``."""
    result.setdefault("machine", {})["loadavg_after"] = loadavg()
    text = json.dumps(result, indent=1, ensure_ascii=False, default=_jsonable)
    print(text)
    if out:
        p = Path(out)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text + "\n", encoding="utf-8")
    print(summary, file=sys.stderr)
    return result


def _jsonable(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ----------------------------------------------------------------------------- memory / time
def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far.

    ``VmHWM`` from /proc/self/status, not ``ru_maxrss``: Linux carries ``ru_maxrss`` over an exec,
    so a worker started from a process that had loaded torch would report the parent's peak.
    """
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(r / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def current_rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50 / p90 / p99 / mean of a list of durations, in milliseconds."""
    if not seconds:
        return {}
    xs = sorted(seconds)

    def pct(p: float) -> float:
        i = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
        return round(xs[i] * 1000, 3)

    return {
        "n": len(xs),
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "mean_ms": round(statistics.fmean(xs) * 1000, 3),
    }


def median(xs: Iterable[float]) -> float:
    return float(statistics.median(list(xs)))


class Timer:
    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0


# ----------------------------------------------------------------------------- data
def read_lines(path: str | os.PathLike[str], limit: int | None = None) -> list[str]:
    """Non-empty lines of a text file (one sentence / document per line)."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            s = line.strip()
            if s:
                out.append(s)
                if limit is not None and len(out) >= limit:
                    break
    return out


def read_tsv(path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> list[dict[str, str]]:
    """Rows of a TSV with a header row, as dicts (``columns`` keeps only those)."""
    import csv

    rows = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        for row in reader:
            if columns:
                row = {c: (row.get(c) or "").strip() for c in columns}
            rows.append(row)
    return rows


def read_tquad(path: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """(paragraphs, questions) of a SQuAD-format JSON file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    paras, questions = [], []
    for article in data.get("data", []):
        for p in article.get("paragraphs", []):
            ctx = (p.get("context") or "").strip()
            if ctx:
                paras.append(ctx)
            for qa in p.get("qas", []):
                q = (qa.get("question") or "").strip()
                if q:
                    questions.append(q)
    return paras, questions


def read_texts(path: str | os.PathLike[str]) -> list[str]:
    """Texts of any supported input: .txt lines, .tsv (every text column: tr and en), .json (TQuAD)."""
    p = Path(path)
    if p.suffix == ".json":
        paras, questions = read_tquad(p)
        return paras + questions
    if p.suffix == ".tsv":
        rows = read_tsv(p)
        keys = [k for k in (rows[0].keys() if rows else []) if k in ("tr", "en", "text", "sentence")]
        return [r[k].strip() for r in rows for k in keys if r.get(k) and r[k].strip()]
    return read_lines(p)


def default_texts() -> tuple[list[str], str]:
    """The bundled demo corpus, or a few built-in sentences when it is missing."""
    if DEMO_CORPUS.is_file():
        return read_lines(DEMO_CORPUS), str(DEMO_CORPUS)
    return list(FALLBACK_SENTENCES), "<built-in sentences>"


def cycle_to(texts: Sequence[str], n: int) -> list[str]:
    """``n`` texts, repeating the list when it is shorter (repeats are marked so they stay distinct)."""
    if not texts:
        raise SystemExit("no input texts")
    out = list(texts[:n])
    rep = 1
    while len(out) < n:
        out.extend(f"{t} ({rep})" for t in texts[: n - len(out)])
        rep += 1
    return out


def dedupe(texts: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for t in texts:
        t = " ".join(t.split())
        if t and t not in seen:
            seen[t] = None
    return list(seen)


def add_common_args(parser: Any) -> None:
    parser.add_argument("--out", default=None, help="Also write the JSON result to this file.")
    parser.add_argument("--quick", action="store_true", help="Tiny sizes: a smoke run, not a measurement.")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads for the measured paths (default: torch's own choice).",
    )
