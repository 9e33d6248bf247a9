"""The CriticalityMonitor's breaches: its score past the avalanche threshold, and a market
feed it has stopped receiving."""

from __future__ import annotations

import dataclasses

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

    def evaluate(self, view: PortfolioMetrics, now: float) -> Breach | None:
        breach = super().evaluate(view, now)
        if breach is None or not view.criticality_drivers:
            return breach
        return dataclasses.replace(
            breach, message=f"{breach.message} (driven by {view.criticality_drivers})"
        )


class MaxMarketAge(PortfolioRule):
    """The monitor judges the market on observations; once it has had some, their stopping
    is a blind spot and halts too."""

    name = "criticality_stale"
    label = "market observation age"
    unit = "s"
    watches = frozenset({Topic.TIME, Topic.CRITICALITY})

    def measure(self, view: PortfolioMetrics, now: float) -> float | None:
        return None if view.market_at is None else now - view.market_at

    def describe(self, value: float) -> str:
        return (
            f"criticality monitor has had no market observation for {fmt(value, 's')} > "
            f"limit {fmt(self.limit, 's')}"
        )
