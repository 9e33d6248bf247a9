"""Replay a market history through the CriticalityMonitor and a guard, day by day.

The guard's other portfolio triggers (volatility, correlation, feeds, ...) are turned off in
the replay: it shows what the monitor makes the guard do, nothing else.

Each row of the history is one cycle: the bars go in through ``guard.update_bars``, the
guard's clock is set to the row's time, and ``criticality_tick`` runs. What the guard then does
(a soft halt when the score crosses the threshold, by default) is recorded; a simulated risk
desk lifts the halt once the score has stayed below the threshold for ``reset_after`` cycles,
so one replay shows every episode, not only the first. The rows before ``start`` warm the
indicators up and are not reported.

The guard comes from the caller (the CLI passes ``tradeguard.Guard``): the guard imports this
package to run the monitor, so this package must not import the guard back. ``ReplayGuard``
names the little the replay needs of it.
"""

from __future__ import annotations

import html
import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tradeguard.clock import Clock, FakeClock
from tradeguard.config import STRATEGY_TRIGGERS, Config, Triggers
from tradeguard.criticality.data import History
from tradeguard.criticality.names import INDICATOR_NAMES
from tradeguard.errors import ResumeRefused
from tradeguard.model import PORTFOLIO, PortfolioState, Role, Scope
from tradeguard.report import chart
from tradeguard.state import ScopeStatus
from tradeguard.store.base import Approval

if TYPE_CHECKING:  # numpy and scipy load with the monitor; an annotation needs none of them
    from tradeguard.criticality.monitor import Reading

DESK = ("replay-desk-1", "replay-desk-2")  # the simulated risk managers who lift halts


class ReplayGuard(Protocol):
    """What the replay does with a guard: feed it bars, run its criticality cycle, read the
    portfolio's state, and lift a halt as the simulated desk."""

    def update_bars(self, bars: Mapping[str, Mapping[str, float]], ts: object = ...) -> None: ...

    def criticality_tick(self) -> Reading | None: ...

    def status_of(self, scope: Scope) -> ScopeStatus: ...

    def reset(self, user: str, reason: str = ...) -> Approval: ...

    def approve(self, request_id: str, user: str) -> object: ...

    def close(self) -> None: ...


class GuardFactory(Protocol):
    """Builds the replay's guard from its configuration and simulated clock (``Guard`` is one)."""

    def __call__(self, config: Config, *, clock: Clock) -> ReplayGuard: ...


@dataclass(frozen=True)
class Action:
    """A state change of the portfolio during the replay."""

    day: date
    before: str
    after: str
    by: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(),
            "before": self.before,
            "after": self.after,
            "by": self.by,
            "reason": self.reason,
        }


@dataclass
class Result:
    name: str
    threshold: float
    days: list[date] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)
    prices: list[float] = field(default_factory=list)  # an equal-weight index, for the plot
    contributions: dict[str, list[float]] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)

    @property
    def crossings(self) -> list[tuple[date, float]]:
        """The days the score went above the threshold (from at or below it, or no score)."""
        out, above = [], False
        for day, score in zip(self.days, self.scores, strict=True):
            now_above = score is not None and score > self.threshold
            if now_above and not above:
                assert score is not None
                out.append((day, score))
            above = now_above
        return out

    @property
    def max_score(self) -> float | None:
        known = [s for s in self.scores if s is not None]
        return max(known) if known else None

    def share_above(self, start: date, end: date) -> float | None:
        """The share of days in [start, end] with a score above the threshold."""
        inside = [s for d, s in zip(self.days, self.scores, strict=True) if start <= d <= end]
        known = [s for s in inside if s is not None]
        return sum(s > self.threshold for s in known) / len(known) if known else None

    def lead(self, onset: date, before_days: int = 90, after_days: int = 10) -> int | None:
        """Days from the first crossing within [onset - before_days, onset + after_days] to
        the onset: positive when the monitor fired ahead of it; None when it did not fire."""
        for day, _score in self.crossings:
            if -after_days <= (onset - day).days <= before_days:
                return (onset - day).days
        above = [
            d
            for d, s in zip(self.days, self.scores, strict=True)
            if s is not None
            and s > self.threshold
            and -after_days <= (onset - d).days <= before_days
        ]
        return (onset - above[0]).days if above else None  # already above when the span began

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.name,
            "threshold": self.threshold,
            "max_score": self.max_score,
            "crossings": [{"date": d.isoformat(), "score": s} for d, s in self.crossings],
            "daily": [
                {"date": d.isoformat(), "score": s}
                for d, s in zip(self.days, self.scores, strict=True)
            ],
            "actions": [a.to_dict() for a in self.actions],
        }


def replay(
    history: History,
    config: Config,
    make_guard: GuardFactory,
    *,
    start: date | None = None,
    end: date | None = None,
    reset_after: int = 10,
) -> Result:
    """Run ``history`` through a fresh guard from ``make_guard`` (its state in a temporary
    directory)."""
    if not history.times:
        raise ValueError("the history has no rows")
    if start is not None and end is not None and start > end:
        raise ValueError(f"--from {start} is after --to {end}")
    first_day, last_day = history.times[0].date(), history.times[-1].date()
    if (start is not None and start > last_day) or (end is not None and end < first_day):
        raise ValueError(f"the history runs from {first_day} to {last_day}: nothing to replay")
    if reset_after < 1:
        raise ValueError("reset_after must be at least 1 day")
    c = config.criticality
    warm = c.window + c.percentile_window
    first = 0
    if start is not None:
        reported = [i for i, t in enumerate(history.times) if t.date() >= start]
        first = max(0, (reported[0] if reported else len(history.times)) - warm)
    last = len(history.times)
    if end is not None:
        last = sum(t.date() <= end for t in history.times)
    result = Result(history.name, c.avalanche_deploy_threshold)
    with tempfile.TemporaryDirectory(prefix="tradeguard-replay-") as tmp:
        users = {**config.users, **dict.fromkeys(DESK, Role.RISK_MANAGER)}
        others = {
            name: getattr(config.triggers, name).model_copy(update={"enabled": False})
            for name in Triggers.model_fields
            if name not in STRATEGY_TRIGGERS
        }
        run = config.model_copy(
            update={
                "users": users,
                "state": config.state.model_copy(update={"path": Path(tmp) / "replay.db"}),
                "triggers": config.triggers.model_copy(update=others),
            }
        )
        clock = FakeClock(history.times[first].timestamp())
        guard = make_guard(run, clock=clock)
        try:
            _run(
                guard,
                clock,
                history,
                range(first, last),
                start=start,
                reset_after=reset_after,
                result=result,
            )
        finally:
            guard.close()
    return result


def _run(
    guard: ReplayGuard,
    clock: FakeClock,
    history: History,
    rows: range,
    *,
    start: date | None,
    reset_after: int,
    result: Result,
) -> None:
    seen = guard.status_of(PORTFOLIO).version
    quiet = 0  # cycles in a row below the threshold
    index = history.equal_weight_index()
    for i in rows:
        at: datetime = history.times[i]
        clock.set(max(clock.time(), at.timestamp()))
        bars = history.bars(i)
        guard.update_bars(
            {s: {k: v for k, v in b._asdict().items() if math.isfinite(v)} for s, b in bars.items()}
        )
        reading = guard.criticality_tick()
        score = None if reading is None else reading.score
        quiet = quiet + 1 if score is not None and score <= result.threshold else 0
        status = guard.status_of(PORTFOLIO)
        if status.version != seen:
            seen = status.version
            if start is None or at.date() >= start:
                before = result.actions[-1].after if result.actions else "normal"
                result.actions.append(
                    Action(at.date(), before, str(status.state), status.actor, status.reason)
                )
        if status.state != PortfolioState.NORMAL and quiet >= reset_after and _lift(guard):
            seen = guard.status_of(PORTFOLIO).version  # recorded here, with its re-halt if any
            if start is None or at.date() >= start:
                result.actions.append(
                    Action(
                        at.date(), str(status.state), "normal", DESK[0], "score below the threshold"
                    )
                )
                after = guard.status_of(PORTFOLIO)
                if after.state != PortfolioState.NORMAL:  # the cause still stands: halted again
                    result.actions.append(
                        Action(at.date(), "normal", str(after.state), after.actor, after.reason)
                    )
        if start is not None and at.date() < start:
            continue
        result.days.append(at.date())
        result.scores.append(score)
        result.prices.append(float(index[i]))
        measured = {} if reading is None else {r.name: r.contribution for r in reading.indicators}
        for name in INDICATOR_NAMES:
            result.contributions.setdefault(name, []).append(measured.get(name) or 0.0)


def _lift(guard: ReplayGuard) -> bool:
    """The simulated desk: one reset, and the second person where an emergency needs one.
    False when the cool-down has not run out yet (the desk tries again tomorrow)."""
    try:
        request = guard.reset(DESK[0], reason="replay: the score has stayed below the threshold")
    except ResumeRefused:
        return False
    if request.status == "pending":
        guard.approve(request.id, DESK[1])
    return True


def render(result: Result, path: Path) -> Path:
    """The score against the threshold over an equal-weight index of the assets, the
    indicators that contributed most, and every crossing and guard action marked."""
    t = [float(i) for i in range(len(result.days))]
    position = {d: i for i, d in enumerate(result.days)}
    markers = [(float(position[a.day]), a.after, f"{a.day} {a.reason}") for a in result.actions]
    score = [None if s is None else 100 * s for s in result.scores]  # no score: a gap
    top = sorted(result.contributions, key=lambda n: -sum(result.contributions[n]))[:5]
    charts = [
        chart("equal-weight index of the assets", t, {"index": result.prices}, markers),
        chart(
            "criticality score (%) and threshold",
            t,
            {"score": score, "threshold": [100 * result.threshold] * len(t)},
            markers,
        ),
        chart(
            "largest contributions (%)",
            t,
            {n: [100 * v for v in result.contributions[n]] for n in top},
        ),
    ]
    rows = (
        "\n".join(f"<tr><td>{d}</td><td>{s:.3f}</td></tr>" for d, s in result.crossings)
        or "<tr><td colspan=2>none</td></tr>"
    )
    actions = "\n".join(
        f"<tr><td>{a.day}</td><td>{html.escape(a.before)} -> {html.escape(a.after)}</td>"
        f"<td>{html.escape(a.by)}</td><td>{html.escape(a.reason)}</td></tr>"
        for a in result.actions
    )
    span = f"{result.days[0]} to {result.days[-1]}" if result.days else "no days"
    highest = "none" if result.max_score is None else f"{result.max_score:.3f}"
    path.write_text(
        f"""<!doctype html><html><head><meta charset="utf-8">
<title>tradeguard criticality replay: {html.escape(result.name)}</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:auto}}td,th{{padding:2px 8px;
text-align:left}}</style></head><body>
<h1>Criticality replay: {html.escape(result.name)}</h1>
<p>{span}; threshold {result.threshold:.2f}; highest score {highest}.
The x axis counts trading days from the start.</p>
{"".join(charts)}
<h2>Crossings</h2><table><tr><th>date</th><th>score</th></tr>{rows}</table>
<h2>What the guard did</h2><table><tr><th>date</th><th>state</th><th>by</th><th>why</th></tr>
{actions}</table></body></html>
""",
        encoding="utf-8",
    )
    return path
