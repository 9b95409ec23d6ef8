"""The reports' charts as plain SVG strings: no script, no stylesheet, nothing fetched.

Server-rendered for the admin pages and, rasterised by the workers (workers/images.py), for the
account-review mail. Every text is escaped; sizes are fixed, so that a mail client or a PNG
renderer lays them out alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

from gateway.reports.units import UnitsReport, shown

FONT = "DejaVu Sans, Arial, Helvetica, sans-serif"
WIDTH = 640
COLOURS = {
    "met": "#2e7d32",
    "warned": "#f9a825",
    "missed": "#c62828",
    "running": "#90a4ae",
    "bar": "#1565c0",
    "accent": "#0d2b52",
    "target": "#c62828",
    "axis": "#455a64",
    "grid": "#e0e0e0",
    # the units report's movements
    "purchased": "#1565c0",
    "reserved": "#7e57c2",
    "consumed": "#2e7d32",
    "forfeited": "#c62828",
    "expired": "#6d4c41",
    "credited": "#f9a825",
}
SEGMENTS = ("met", "warned", "missed", "running")
UNIT_KINDS = ("purchased", "reserved", "consumed", "forfeited", "expired", "credited")
MAX_BINS = 15  # three times the target at most; beyond it, the last bin


@dataclass(frozen=True)
class Chart:
    svg: str  # the whole <svg> element
    width: int
    height: int


@dataclass(frozen=True)
class StackedRow:
    label: str
    met: int
    warned: int
    missed: int
    running: int


def attainment_bars(title: str, rows: Sequence[StackedRow]) -> Chart:
    """One horizontal bar per row, its Initial Responses met, warned, missed and running, with
    the share attained ((met + warned) / decided) written after it."""
    left, bar_height, gap, top = 150, 22, 10, 56
    height = top + len(rows) * (bar_height + gap) + 30
    scale = WIDTH - left - 90
    parts = [_title(title), _legend(SEGMENTS, 40)]
    for i, row in enumerate(rows):
        y = top + i * (bar_height + gap)
        counts = [getattr(row, name) for name in SEGMENTS]
        total = sum(counts) or 1
        x = float(left)
        parts.append(_text(left - 8, y + 15, row.label, anchor="end"))
        for name, count in zip(SEGMENTS, counts, strict=True):
            width = scale * count / total
            if width > 0:
                parts.append(_rect(x, y, width, bar_height, COLOURS[name]))
                if width >= 18:
                    parts.append(_text(x + width / 2, y + 15, str(count), "middle", "#ffffff"))
            x += width
        decided = row.met + row.warned + row.missed
        share = f"{100 * (row.met + row.warned) / decided:.0f} %" if decided else "–"
        parts.append(_text(left + scale + 8, y + 15, share, weight="bold"))
    if not rows:
        parts.append(_text(WIDTH / 2, top + 20, "no Service Requests", "middle"))
        height = top + 40
    return _svg(height, parts)


def histogram(
    title: str,
    values: Sequence[float],
    target: float,
    *,
    tick: Callable[[float], str] = lambda v: f"{v:g}",
    target_label: str = "target",
) -> Chart:
    """How many values fall in each fifth of `target` from 0 (the last bin also holds all that
    lie beyond it), with a dashed line at `target`."""
    width = target / 5
    bins = max(6, min(MAX_BINS, math.ceil(max([target * 1.2, *values]) / width)))
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int(value // width))] += 1
    left, bottom, plot_h = 48, 205, 160
    plot_w = WIDTH - left - 20
    peak = max(counts) or 1
    parts = [_title(title), _axis(left, bottom, plot_w, plot_h, peak)]
    for i, count in enumerate(counts):
        h = plot_h * count / peak
        x = left + plot_w * i / bins
        parts.append(_rect(x + 2, bottom - h, plot_w / bins - 4, h, COLOURS["bar"]))
        if count:
            parts.append(_text(x + plot_w / bins / 2, bottom - h - 4, str(count), "middle"))
    every = 1 if bins <= 10 else 2
    for i in range(0, bins, every):  # the last bin holds all beyond its start: "+"
        label = tick(width * i) + ("+" if i == bins - 1 else "")
        parts.append(_text(left + plot_w * i / bins, bottom + 16, label, "middle", size=11))
    tx = left + plot_w * 5 / bins
    parts.append(
        f'<line x1="{tx:.1f}" y1="{bottom - plot_h - 6}" x2="{tx:.1f}" y2="{bottom}" '
        f'stroke="{COLOURS["target"]}" stroke-width="2" stroke-dasharray="6 3"/>'
    )
    parts.append(_text(tx + 4, bottom - plot_h, target_label, colour=COLOURS["target"]))
    return _svg(bottom + 30, parts)


def monthly_bars(title: str, months: Sequence[tuple[str, int, int]]) -> Chart:
    """Per month (label, count, of which reached Director level): a bar, its darker part the
    Director escalations."""
    left, bottom, plot_h = 48, 200, 140
    plot_w = WIDTH - left - 20
    peak = max([count for _, count, _ in months] or [0]) or 1
    parts = [
        _title(title),
        _legend(("escalations", "director"), 40),
        _axis(left, bottom, plot_w, plot_h, peak),
    ]
    slot = plot_w / max(1, len(months))
    for i, (label, count, director) in enumerate(months):
        x = left + slot * i + slot * 0.2
        h, dh = plot_h * count / peak, plot_h * director / peak
        parts.append(_rect(x, bottom - h, slot * 0.6, h, COLOURS["bar"]))
        parts.append(_rect(x, bottom - dh, slot * 0.6, dh, COLOURS["accent"]))
        parts.append(_text(x + slot * 0.3, bottom - h - 4, str(count), "middle"))
        parts.append(_text(x + slot * 0.3, bottom + 16, label, "middle", size=11))
    return _svg(bottom + 30, parts)


@dataclass(frozen=True)
class UnitMonth:
    label: str  # YYYY-MM
    units: dict[str, Decimal]  # movement (UNIT_KINDS) -> units


def unit_bars(title: str, months: Sequence[UnitMonth]) -> Chart:
    """Per month, one bar per movement of SecureHands units side by side (purchased, reserved,
    consumed, forfeited, expired, credited), each with its units written above it when there
    is room."""
    left, bottom, plot_h = 48, 210, 140
    plot_w = WIDTH - left - 20
    values = [m.units.get(kind, Decimal(0)) for m in months for kind in UNIT_KINDS]
    peak = math.ceil(max([*values, Decimal(0)])) or 1
    parts = [
        _title(title),
        _legend(UNIT_KINDS, 40, x=12),
        _axis(left, bottom, plot_w, plot_h, peak),
    ]
    slot = plot_w / max(1, len(months))
    bar = slot * 0.8 / len(UNIT_KINDS)
    for i, month in enumerate(months):
        x0 = left + slot * i + slot * 0.1
        for j, kind in enumerate(UNIT_KINDS):
            units = month.units.get(kind, Decimal(0))
            h = plot_h * float(units) / peak
            x = x0 + bar * j
            parts.append(_rect(x + 1, bottom - h, bar - 2, h, COLOURS[kind]))
            if units and bar >= 14:
                parts.append(_text(x + bar / 2, bottom - h - 4, shown(units), "middle", size=10))
        parts.append(_text(left + slot * (i + 0.5), bottom + 16, month.label, "middle", size=11))
    if not months:
        parts.append(_text(WIDTH / 2, bottom - plot_h / 2, "no months", "middle"))
    return _svg(bottom + 30, parts)


def units_chart(report: UnitsReport) -> str:
    """The units report's months as SVG (summed over its customers when it has several: the
    months' labels are each customer's office months)."""
    summed: dict[str, dict[str, Decimal]] = {}
    for customer in report.customers:
        for month in customer.months:
            units = summed.setdefault(month.month or "", {})
            for kind in UNIT_KINDS:
                units[kind] = units.get(kind, Decimal(0)) + getattr(month, kind)
    if not report.customers:
        summed = {month: {} for month in report.period.months()}
    who = report.customer or "all customers"
    months = [UnitMonth(label, units) for label, units in summed.items()]
    return unit_bars(f"SecureHands units per month, {who}", months).svg


def _axis(left: float, bottom: float, width: float, height: float, peak: int) -> str:
    lines = [
        f'<line x1="{left}" y1="{bottom}" x2="{left + width}" y2="{bottom}" '
        f'stroke="{COLOURS["axis"]}"/>'
    ]
    for count in sorted({peak, peak // 2} - {0}):  # whole numbers: these are counts
        y = bottom - height * count / peak
        lines.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + width}" y2="{y:.1f}" '
            f'stroke="{COLOURS["grid"]}"/>'
        )
        lines.append(_text(left - 6, y + 4, str(count), "end", size=11))
    return "".join(lines)


def _legend(names: Sequence[str], y: float, x: float = 150.0) -> str:
    colours = {**COLOURS, "escalations": COLOURS["bar"], "director": COLOURS["accent"]}
    parts = []
    for name in names:
        parts.append(_rect(x, y - 10, 12, 12, colours[name]))
        parts.append(_text(x + 16, y, name, size=11))
        x += 24 + 7 * len(name) + 16
    return "".join(parts)


def _title(text: str) -> str:
    return _text(12, 20, text, size=15, weight="bold")


def _rect(x: float, y: float, width: float, height: float, fill: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(0.0, width):.1f}" '
        f'height="{max(0.0, height):.1f}" fill="{fill}"/>'
    )


def _text(
    x: float,
    y: float,
    text: str,
    anchor: str = "start",
    colour: str = "#212121",
    size: int = 12,
    weight: str = "normal",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{colour}" '
        f'font-size="{size}" font-weight="{weight}" font-family={quoteattr(FONT)}>'
        f"{escape(text)}</text>"
    )


def _svg(height: float, parts: Sequence[str]) -> Chart:
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" role="img">'
        f'<rect width="100%" height="100%" fill="#ffffff"/>{"".join(parts)}</svg>'
    )
    return Chart(svg, WIDTH, round(height))
