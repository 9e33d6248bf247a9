"""Coming back after a halt: a cool-down, validation, then paper -> 25% -> 50% -> full.

A strategy halted for losing money may still be broken, and whatever caused the halt is often
still around minutes later. So lifting a halt is slow on purpose: the halt must have stood for
its cool-down; the strategy must be fit to trade (see ``Guard.resume_strategy``); and it then
re-enters at a fraction of its size, moving up one rung at a time only when the rung's gate has
passed (time in the stage, trades closed in it), back to full size after the last. A loss past
a stage's floor, or any other breach on the way, halts it again, and the next resume starts
from the bottom.

This module is pure: it decides from the config, a rung and the strategy's metrics. The guard
stores rungs, climbs them from the breaker tick and audits every step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tradeguard.clock import to_iso
from tradeguard.config import RecoveryConfig, RecoveryStage, Trigger, Triggers
from tradeguard.ledger import StageFloor, StrategyMetrics
from tradeguard.state import ScopeStatus
from tradeguard.store.base import Rung


class Ladder:
    """The configured stages, and what a rung on them allows and still needs."""

    def __init__(self, config: RecoveryConfig) -> None:
        self.stages = config.stages

    def first(self, scope: str, version: int, now: float, m: StrategyMetrics, by: str) -> Rung:
        return Rung(scope, version, 0, now, m.trade_count, m.realized_pnl, by)

    def following(self, rung: Rung, now: float, m: StrategyMetrics) -> Rung | None:
        """The next rung; None past the last one (back to full size)."""
        if rung.stage + 1 >= len(self.stages):
            return None
        return Rung(
            rung.scope,
            rung.version,
            rung.stage + 1,
            now,
            m.trade_count,
            m.realized_pnl,
            rung.authorized_by,
        )

    def stage(self, rung: Rung) -> RecoveryStage:
        return self.stages[min(rung.stage, len(self.stages) - 1)]

    def gate(self, rung: Rung, m: StrategyMetrics, now: float) -> str | None:
        """What still stands between the rung and the next, in words; None when it passed."""
        stage = self.stage(rung)
        waiting = []
        left = stage.min_seconds - (now - rung.since)
        if left > 0:
            waiting.append(f"{duration(left)} more in {stage.name}")
        trades = m.trade_count - rung.trades_at_start
        if trades < stage.min_trades:
            waiting.append(f"{stage.min_trades - trades} more closed trades")
        return " and ".join(waiting) or None

    def floor(self, rung: Rung) -> StageFloor | None:
        stage = self.stage(rung)
        if stage.pnl_floor is None:
            return None
        return StageFloor(stage.name, rung.pnl_at_start, stage.pnl_floor)

    def describe(
        self, rung: Rung, m: StrategyMetrics, now: float, held: str | None = None
    ) -> dict[str, Any]:
        """For status pages: where it is, for how long, and what it waits for (``held``: why
        a passed gate did not let it climb at the last tick)."""
        stage = self.stage(rung)
        following = (
            self.stages[rung.stage + 1].name if rung.stage + 1 < len(self.stages) else "full"
        )
        gate = self.gate(rung, m, now) or (
            f"held: {held}" if held else "passed: moves up at the next breaker tick"
        )
        return {
            "summary": f"{stage.name} for {duration(now - rung.since)}; to {following}: {gate}",
            "stage": stage.name,
            "fraction": stage.fraction,
            "since": to_iso(rung.since),
            "in_stage_seconds": round(now - rung.since, 3),
            "next_stage": following,
            "next_gate": gate,
            "stage_pnl": m.realized_pnl - rung.pnl_at_start,
            "pnl_floor": stage.pnl_floor,
            "resumed_by": rung.authorized_by,
        }


def cooldown_seconds(rules: Iterable[str], triggers: Sequence[Triggers], default: float) -> float:
    """How long a halt must stand: the longest cool-down among the rules behind it, each the
    first ``cooldown_seconds`` set for it in ``triggers`` (a strategy's overrides, then the
    global triggers), else ``default``; ``default`` too when no rule is behind it (a manual or
    system halt)."""
    longest = None
    for name in rules:
        found = [
            t.cooldown_seconds
            for t in (getattr(layer, name, None) for layer in triggers)
            if isinstance(t, Trigger) and t.cooldown_seconds is not None
        ]
        seconds = found[0] if found else default
        longest = seconds if longest is None else max(longest, seconds)
    return default if longest is None else longest


def cooldown_left(status: ScopeStatus, seconds: float, now: float) -> str | None:
    """A refusal's words while the halt has not stood long enough, else None."""
    left = seconds - (now - status.since)
    if left <= 0:
        return None
    return (
        f"cool-down: {duration(left)} left of {duration(seconds)} after the halt by "
        f"{status.actor} (until {to_iso(status.since + seconds)})"
    )


def unreconciled(known: Mapping[str, float], held: Mapping[str, float]) -> list[str]:
    """Every symbol where the venues and the guard disagree on the position: a strategy must
    not come back on a book the guard does not know."""
    return [
        f"position in {symbol}: the venues hold {held.get(symbol, 0.0):g}, "
        f"the guard knows {known.get(symbol, 0.0):g}"
        for symbol in sorted(set(known) | set(held))
        if abs(held.get(symbol, 0.0) - known.get(symbol, 0.0)) > 1e-9
    ]


def duration(seconds: float) -> str:
    """``4m 10s``: what a person reads in a refusal."""
    whole = max(0, math.ceil(seconds))  # round up: "0s left" would be a lie
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
