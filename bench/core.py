"""What every scenario shares: the result row, timing statistics, the table, the JSON.

This module does not import Django, so the runner can load it before settings exist.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The registry: scenario name -> module ``bench.<name>`` exposing ``run(args) -> list[Row]``.
# To add a scenario, write ``bench/<name>.py`` with a ``run`` function and list it here.
SCENARIOS: dict[str, str] = {
    "idle_sockets": "bench.idle_sockets",  # idles in the background while the others run
    "recall": "bench.recall",
    "store": "bench.store",
    "intake_fanout": "bench.intake_fanout",
    "sustained_intake": "bench.sustained_intake",
    "chat_roundtrip": "bench.chat_roundtrip",
    "catchup": "bench.catchup",
    "report": "bench.report",
    "search": "bench.search",
    "offers": "bench.offers",
    "storms": "bench.storms",  # scale-out only: mass disconnect, a killed Daphne, connect cost
}
# Scenarios that mostly wait: their module also has ``start(args) -> handle``,
# ``wait_opened(handle)`` and ``finish(handle) -> list[Row]``, and the runner lets the
# others run meanwhile (the waiting costs well under 1 % of a core).
BACKGROUND = {"idle_sockets"}


@dataclass
class Row:
    """One measured variant of a scenario next to its bare-framework baseline.

    ``metrics`` holds the measured values; names end in their unit (``_ms``, ``_per_s``)
    or are plain counts. ``primary`` names the metric compared with ``baseline``, which
    is the same quantity measured on the bare framework in the same run:
    ``ratio = metrics[primary] / baseline`` (above 1 for latencies means slower than the
    floor; below 1 for throughputs means a fraction of the bare framework's rate).
    """

    scenario: str
    variant: str
    metrics: dict[str, float]
    primary: str
    baseline: float
    baseline_label: str
    baseline_metrics: dict[str, float] = field(default_factory=dict)
    target: str | None = None
    ok: bool | None = None
    notes: str = ""
    ratio: float = field(init=False)

    def __post_init__(self) -> None:
        value = self.metrics[self.primary]
        self.ratio = value / self.baseline if self.baseline else math.nan


# ---------------------------------------------------------------- statistics
def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 300 samples is the 297th smallest)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_metrics(samples_s: list[float]) -> dict[str, float]:
    """p50 / p99 / mean / max in milliseconds, plus the sample count."""
    ms = [s * 1000 for s in samples_s]
    return {
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "mean_ms": statistics.fmean(ms) if ms else math.nan,
        "max_ms": max(ms, default=math.nan),
        "n": len(ms),
    }


def cpu_metrics(samples_s: list[float]) -> dict[str, float]:
    """p50 / p99 of CPU seconds per call, in milliseconds (``cpu_p50_ms``, ...)."""
    ms = [s * 1000 for s in samples_s]
    return {"cpu_p50_ms": percentile(ms, 50), "cpu_p99_ms": percentile(ms, 99)}


def time_calls(fn: Callable[[int], Any], count: int, warmup: int = 10) -> list[float]:
    """Call ``fn(i)`` ``warmup`` times untimed, then ``count`` times; seconds per call."""
    for i in range(warmup):
        fn(i)
    samples = []
    clock = time.perf_counter
    for i in range(count):
        started = clock()
        fn(i)
        samples.append(clock() - started)
    return samples


def time_pair(
    measured: Callable[[int], Any],
    baseline: Callable[[int], Any],
    count: int,
    warmup: int = 10,
    *,
    max_seconds: float | None = None,
    min_count: int = 100,
    measured_cpu: list[float] | None = None,
    baseline_cpu: list[float] | None = None,
) -> tuple[list[float], list[float]]:
    """Time ``measured(i)`` and ``baseline(i)`` alternately, so noise hits both alike.

    Stops after ``count`` pairs, or once ``max_seconds`` have passed and at least
    ``min_count`` pairs are in (a slow variant then costs bounded time, not ``count``
    slow calls). Returns the two lists of wall-clock seconds per call; the optional
    ``*_cpu`` lists receive this thread's CPU seconds per call, which other processes
    on a busy machine barely change (``thread_time``).
    """
    for i in range(warmup):
        baseline(i)
        measured(i)
    measured_s: list[float] = []
    baseline_s: list[float] = []
    clock, cpu = time.perf_counter, time.thread_time
    deadline = clock() + max_seconds if max_seconds else math.inf
    for i in range(count):
        cpu_started, started = cpu(), clock()
        baseline(i)
        middle, cpu_middle = clock(), cpu()
        measured(i)
        ended, cpu_ended = clock(), cpu()
        baseline_s.append(middle - started)
        measured_s.append(ended - middle)
        if baseline_cpu is not None:
            baseline_cpu.append(cpu_middle - cpu_started)
        if measured_cpu is not None:
            measured_cpu.append(cpu_ended - cpu_middle)
        if ended > deadline and i + 1 >= min_count:
            break
    return measured_s, baseline_s


# ---------------------------------------------------------------- output
def _fmt_metric(name: str, value: float) -> str:
    if name.endswith("_ms"):
        return f"{name[:-3]} {value:.2f}ms"
    if name.endswith("_per_s"):
        return f"{value:,.0f} {name[:-6].replace('_', ' ')}/s"
    if name == "n":
        return ""
    if float(value).is_integer():
        return f"{name} {int(value)}"
    return f"{name} {value:.3g}"


def format_metrics(metrics: dict[str, float], keys: Iterable[str] | None = None) -> str:
    keys = keys or [k for k in metrics if k not in ("mean_ms", "max_ms", "n", "locked")]
    return "  ".join(filter(None, (_fmt_metric(k, metrics[k]) for k in keys if k in metrics)))


def _fmt_baseline(row: Row) -> str:
    if row.baseline_metrics:
        keys = [k for k in ("req_per_s", "p50_ms", "p99_ms") if k in row.baseline_metrics]
        return f"{row.baseline_label}  {format_metrics(row.baseline_metrics, keys)}"
    return f"{row.baseline_label}  {_fmt_metric(row.primary, row.baseline)}"


def _fmt_target(row: Row) -> str:
    if row.target is None:
        return ""
    return f"{row.target} {'ok' if row.ok else 'MISSED'}"


def table(rows: list[Row]) -> str:
    """A plain-text table, one line per row (fits a README code block)."""
    header = ("scenario", "variant", "result", "baseline (same run)", "ratio", "target")
    lines = [
        (
            r.scenario,
            r.variant,
            format_metrics(r.metrics),
            _fmt_baseline(r),
            f"{r.ratio:.2f}x" if not math.isnan(r.ratio) else "-",
            _fmt_target(r),
        )
        for r in rows
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *lines, strict=True)]

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [fmt(header), fmt(tuple("-" * w for w in widths))]
    out.extend(fmt(line) for line in lines)
    return "\n".join(out)


def write_json(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"meta": meta, "rows": [asdict(r) for r in rows]}
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
