"""Server-rendered SVG bar charts: the geometry here, the markup in a template partial.

Only numbers and labels leave this module; the template autoescapes the labels (agent
and team names are written by bots and admins), so nothing here builds markup.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from .reports import TransferReport

FONT = 12


def nice_step(raw: float) -> float:
    """The smallest 1, 2 or 5 x 10^k that is >= ``raw``: a tick step people read easily."""
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


# Tick steps for durations: whole seconds, minutes and hours.
DURATION_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200]


def duration_step(raw: float) -> float:
    return next((float(s) for s in DURATION_STEPS if s >= raw), nice_step(raw / 3600) * 3600)


def tick_duration(secs: float | None) -> str:
    """A round duration as 30s, 5m or 2h (axis labels)."""
    secs = round(secs or 0)
    if secs and secs % 3600 == 0:
        return f"{secs // 3600}h"
    if secs and secs % 60 == 0:
        return f"{secs // 60}m"
    return f"{secs}s" if secs < 60 else short_duration(secs)


def axis(top_value: float, step_of=nice_step, ticks: int = 4) -> tuple[float, list[float]]:
    """A round axis end >= ``top_value`` and its tick values (0 included)."""
    step = step_of(max(top_value, 1e-9) / ticks)
    count = max(1, math.ceil(top_value / step))
    return step * count, [step * i for i in range(count + 1)]


def short_duration(secs: float | None) -> str:
    """42s, 3m 05s, 2h 10m."""
    if secs is None:
        return "–"
    secs = round(secs)
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m {secs % 60:02d}s"
    return f"{secs // 3600}h {secs % 3600 // 60:02d}m"


@dataclass
class Bar:
    x: float
    y: float
    w: float
    h: float
    value_text: str
    label: str
    css: str = ""
    text_x: float = 0.0
    text_y: float = 0.0
    text_anchor: str = "middle"


@dataclass
class Tick:
    """A grid line (x1, y1) - (x2, y2) and its label at (tx, ty)."""

    x1: float
    y1: float
    x2: float
    y2: float
    tx: float
    ty: float
    label: str
    anchor: str = "end"


@dataclass
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass
class BarChart:
    title: str
    description: str
    width: int
    height: int
    left: float
    top: float
    plot_w: float
    plot_h: float
    horizontal: bool
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    axis_label: str = ""

    @property
    def bottom(self) -> float:
        return self.top + self.plot_h

    @property
    def right(self) -> float:
        return self.left + self.plot_w


def column_chart(
    items: list[tuple[str, float]],
    *,
    title: str,
    description: str,
    axis_label: str,
    width: int = 560,
    height: int = 250,
) -> BarChart:
    """Vertical bars, one per item, with the value above each bar."""
    left, top, bottom_pad, right_pad = 48.0, 22.0, 40.0, 12.0
    chart = BarChart(
        title=title,
        description=description,
        width=width,
        height=height,
        left=left,
        top=top,
        plot_w=width - left - right_pad,
        plot_h=height - top - bottom_pad,
        horizontal=False,
        axis_label=axis_label,
    )
    # Counts: whole-number ticks.
    top_value, values = axis(
        max((v for _, v in items), default=0) or 1, step_of=lambda raw: max(1.0, nice_step(raw))
    )
    for value in values:
        y = round(chart.bottom - chart.plot_h * value / top_value, 1)
        chart.ticks.append(
            Tick(
                x1=chart.left,
                y1=y,
                x2=chart.right,
                y2=y,
                tx=chart.left - 6,
                ty=y + 4,
                label=f"{value:,.0f}" if value else "0",
            )
        )
    slot = chart.plot_w / max(len(items), 1)
    bar_w = min(56.0, slot * 0.7)
    for i, (label, value) in enumerate(items):
        h = chart.plot_h * value / top_value
        x = chart.left + slot * i + (slot - bar_w) / 2
        chart.bars.append(
            Bar(
                x=round(x, 1),
                y=round(chart.bottom - h, 1),
                w=round(bar_w, 1),
                h=round(h, 1),
                value_text=f"{value:,.0f}",
                label=label,
                text_x=round(x + bar_w / 2, 1),
                text_y=round(chart.bottom - h - 5, 1),
            )
        )
        chart.labels.append(Label(x=round(x + bar_w / 2, 1), y=chart.bottom + 16, text=label))
    return chart


def grouped_bars(
    groups: list[tuple[str, list[tuple[float | None, str]]]],
    *,
    series: list[tuple[str, str]],
    title: str,
    description: str,
    tick_fmt: Callable[[float | None], str] = tick_duration,
    width: int = 560,
) -> BarChart:
    """Horizontal bars: per group (a row label) one bar per series (css, legend label)."""
    left, top, right_pad, bar_h, gap = 150.0, 30.0, 70.0, 16.0, 14.0
    group_h = bar_h * len(series) + gap
    plot_h = group_h * max(len(groups), 1)
    chart = BarChart(
        title=title,
        description=description,
        width=width,
        height=int(top + plot_h + 26),
        left=left,
        top=top,
        plot_w=width - left - right_pad,
        plot_h=plot_h,
        horizontal=True,
        legend=series,
    )
    top_value, ticks = axis(
        max((v for _, values in groups for v, _ in values if v is not None), default=0) or 1,
        step_of=duration_step,
    )
    for value in ticks:
        x = round(chart.left + chart.plot_w * value / top_value, 1)
        chart.ticks.append(
            Tick(
                x1=x,
                y1=chart.top,
                x2=x,
                y2=chart.bottom,
                tx=x,
                ty=chart.bottom + 16,
                label=tick_fmt(value) if value else "0",
                anchor="middle",
            )
        )
    for g, (label, values) in enumerate(groups):
        y0 = chart.top + g * group_h + gap / 2
        chart.labels.append(
            Label(
                x=chart.left - 8,
                y=round(y0 + bar_h * len(series) / 2 + 4, 1),
                text=label,
                anchor="end",
            )
        )
        for s, ((value, text), (css, _legend)) in enumerate(zip(values, series, strict=True)):
            w = chart.plot_w * (value or 0) / top_value
            y = y0 + s * bar_h
            chart.bars.append(
                Bar(
                    x=chart.left,
                    y=round(y + 1, 1),
                    w=round(w, 1),
                    h=bar_h - 2,
                    value_text=text,
                    label=label,
                    css=css,
                    text_x=round(chart.left + w + 5, 1),
                    text_y=round(y + bar_h - 4, 1),
                    text_anchor="start",
                )
            )
    return chart


LENGTH_BUCKET = 10  # chains of this many hops or more share the last column


def length_chart(report: TransferReport) -> BarChart:
    """Issues by number of hops (the last column gathers the longest)."""
    counts: dict[int, int] = {}
    for hops, issues in report.lengths:
        key = min(hops, LENGTH_BUCKET)
        counts[key] = counts.get(key, 0) + issues
    top = max(counts, default=1)
    items = [
        (f"{n}+" if n == LENGTH_BUCKET and top == LENGTH_BUCKET else str(n), counts.get(n, 0))
        for n in range(1, top + 1)
    ]
    return column_chart(
        items,
        title="Issues by number of hops",
        description="How many issues needed 1, 2, 3 ... hops before the end of the range.",
        axis_label="hops per issue",
    )


def accept_chart(report: TransferReport) -> BarChart:
    """Time to accept per team: p50 and p90 bars."""
    groups = [
        (row.team, [(row.p50, short_duration(row.p50)), (row.p90, short_duration(row.p90))])
        for row in report.accept
    ]
    return grouped_bars(
        groups,
        series=[("p50", "median (p50)"), ("p90", "p90")],
        title="Time to accept, per team",
        description="From a handoff's arrival in a team's queue until a human accepted it.",
    )
