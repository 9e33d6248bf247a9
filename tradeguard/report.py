"""A self-contained HTML report of a session: SVG charts and the timeline, no dependencies.

One file that opens anywhere (an incident review, a compliance archive): the equity curve with
every state change marked, prices, positions over time, the event timeline and the emergency
stop's per-venue report.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WIDTH, HEIGHT, PAD = 900, 260, 40
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#17becf"]
STATE_COLOURS = {
    "soft_halt": "#e6a700",
    "hard_halt": "#d62728",
    "emergency": "#7b0000",
    "halted": "#9467bd",
    "normal": "#2ca02c",
    "active": "#2ca02c",
}


@dataclass
class Session:
    """What the report shows; times are seconds from the session start."""

    title: str
    times: list[float] = field(default_factory=list)
    equity: list[float] = field(default_factory=list)
    prices: dict[str, list[float]] = field(default_factory=dict)
    gross: dict[str, list[float]] = field(default_factory=dict)
    markers: list[tuple[float, str, str]] = field(default_factory=list)  # time, state, label
    timeline: list[tuple[float, str, str]] = field(default_factory=list)  # time, kind, text
    summary: list[tuple[str, str]] = field(default_factory=list)
    stop: dict[str, Any] | None = None


def _scale(
    values: Sequence[float], low: float, high: float, out_low: float, out_high: float
) -> list[float]:
    span = (high - low) or 1.0
    return [out_low + (v - low) / span * (out_high - out_low) for v in values]


def _label(value: float) -> str:
    """An axis end: whole numbers for prices and money, three figures for small values (an
    index near 1 must not read 1 at both ends)."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _segments(xs: Sequence[float], line: Sequence[float | None]) -> list[list[tuple[float, float]]]:
    """The runs of consecutive values, split where a value is missing."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, v in zip(xs, line, strict=True):
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, v))
    return [run for run in runs if run]


def chart(
    title: str,
    times: list[float],
    series: Mapping[str, Sequence[float | None]],
    markers: Sequence[tuple[float, str, str]] = (),
) -> str:
    """``None`` in a series is a gap in its line (no value), never drawn as 0."""
    values = [v for line in series.values() for v in line if v is not None]
    if not times or not values:
        return ""
    low, high = min(values), max(values)
    xs = _scale(times, times[0], times[-1], PAD, WIDTH - 10)
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="{PAD}" y="16" font-weight="bold">{html.escape(title)}</text>',
        f'<text x="2" y="{PAD}" font-size="10">{_label(high)}</text>',
        f'<text x="2" y="{HEIGHT - 22}" font-size="10">{_label(low)}</text>',
    ]
    for i, (name, line) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        for segment in _segments(xs, line):
            ys = _scale([v for _, v in segment], low, high, HEIGHT - 25, PAD)
            if len(segment) == 1:  # a lone value between gaps: a dot, since a line needs two
                x, y = segment[0][0], ys[0]
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.5" fill="{colour}"/>')
                continue
            points = " ".join(f"{x:.1f},{y:.1f}" for (x, _), y in zip(segment, ys, strict=True))
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>'
            )
        parts.append(
            f'<text x="{WIDTH - 150}" y="{30 + 12 * i}" font-size="11" '
            f'fill="{colour}">{html.escape(name)}</text>'
        )
    for n, (t, state, label) in enumerate(markers):
        (x,) = _scale([t], times[0], times[-1], PAD, WIDTH - 10)
        colour = STATE_COLOURS.get(state, "#444")
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{PAD - 10}" y2="{HEIGHT - 25}" '
            f'stroke="{colour}" stroke-dasharray="4 3"><title>{html.escape(label)}'
            f"</title></line>"
        )
        label_y = HEIGHT - 8 - 11 * (n % 3)  # staggered: halts often come close together
        near_end = x > WIDTH - 80  # keep the label inside the chart
        anchor = f'x="{x - 2:.1f}" text-anchor="end"' if near_end else f'x="{x + 2:.1f}"'
        parts.append(
            f'<text {anchor} y="{label_y}" font-size="10" '
            f'fill="{colour}">{html.escape(state)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}:{secs:02d}"


def render(session: Session, path: Path) -> Path:
    rows = "\n".join(
        f"<tr><td>{_clock(t)}</td><td>{html.escape(kind)}</td><td>{html.escape(text)}</td></tr>"
        for t, kind, text in session.timeline
    )
    summary = "\n".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in session.summary
    )
    stop = ""
    if session.stop is not None:  # the verdicts as the stop wrote them: never re-derived here
        venue_rows = "\n".join(
            f"<tr><td>{html.escape(v['venue'])}</td><td>{html.escape(v['outcome'])}</td>"
            f"<td>{v['cancelled']}</td><td>{v['orders_sent']}</td><td>{v['rounds']}</td>"
            f"<td>{(v['cancel_seconds'] or 0):.3f}</td><td>{(v['flatten_seconds'] or 0):.3f}</td>"
            f"<td>{len(v['errors'])}</td></tr>"
            for v in session.stop["venues"]
        )
        stop = (
            f"<h2>Emergency stop</h2><p>{html.escape(session.stop['scope'])}: "
            f"<strong>{html.escape(session.stop['outcome'])}</strong></p>"
            "<table><tr><th>venue</th><th>outcome</th><th>cancelled"
            "</th><th>orders</th><th>rounds</th><th>cancel s</th><th>done after s</th>"
            f"<th>errors retried</th></tr>{venue_rows}</table>"
        )
    normalized = {s: [100 * p / v[0] for p in v] for s, v in session.prices.items() if v}
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(session.title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 960px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; font-size: 13px; }}
</style></head><body>
<h1>{html.escape(session.title)}</h1>
<table>{summary}</table>
{
        chart(
            "Portfolio equity, with every state change",
            session.times,
            {"equity": session.equity},
            session.markers,
        )
    }
{chart("Prices (start = 100)", session.times, normalized)}
{chart("Positions: gross notional by strategy", session.times, session.gross, session.markers)}
{stop}
<h2>Timeline</h2>
<table><tr><th>time</th><th>what</th><th>detail</th></tr>{rows}</table>
</body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
