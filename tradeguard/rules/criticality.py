"""The CriticalityMonitor's breaches: its score past the avalanche threshold, and a market
feed it has stopped receiving."""

from __future__ import annotations

import dataclasses
import math

from tradeguard.ledger import PortfolioMetrics
from tradeguard.model import Breach
from tradeguard.rules.base import PortfolioRule, Topic, fmt


class MaxCriticality(PortfolioRule):
    """Systemic stress across the 15 indicators past ``avalanche_deploy_threshold``."""

    name = "criticality"
    label = "criticality score"
    watches = frozenset({Topic.CRITICALITY, Topic.METRICS})

    def measure(self, view: PortfolioMetrics, now: float) -> float | None:
        return view.criticality

    def describe(self, value: float) -> str:
        if value == math.inf:
            return "criticality monitor is warmed up but can measure no indicator: blind"
        return super().describe(value)

    def evaluate(self, view: PortfolioMetrics, now: float) -> Breach | None:
        breach = super().evaluate(view, now)
        if breach is None or not view.criticality_drivers:
            return breach
        return dataclasses.replace(
            breach, message=f"{breach.message} (driven by {view.criticality_drivers})"
        )


class MaxMarketAge(PortfolioRule):
    """Once the monitor has had market data, two silences are blind spots and halt too: no
    new observation, and no finished cycle (a monitor thread that hangs or died)."""

    name = "criticality_stale"
    label = "criticality monitor silence"
    unit = "s"
    watches = frozenset({Topic.TIME, Topic.CRITICALITY})

    def measure(self, view: PortfolioMetrics, now: float) -> float | None:
        if view.market_at is None:
            return None
        return now - min(view.market_at, view.criticality_at or view.market_at)

    def describe(self, value: float) -> str:
        return (
            f"criticality monitor has had no market observation or finished no cycle for "
            f"{fmt(value, 's')} > limit {fmt(self.limit, 's')}"
        )
