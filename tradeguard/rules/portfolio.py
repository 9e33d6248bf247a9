"""Portfolio circuit breakers: daily loss, drawdown, correlation spike, margin utilization."""

from __future__ import annotations

from tradeguard.ledger import PortfolioMetrics
from tradeguard.rules.base import PortfolioRule, Topic


class MaxDailyLoss(PortfolioRule):
    name = "portfolio_daily_loss"
    label = "daily loss"
    unit = "%"
    watches = frozenset({Topic.EQUITY, Topic.METRICS})

    def measure(self, view: PortfolioMetrics, now: float) -> float | None:
        return view.daily_loss


class MaxPortfolioDrawdown(PortfolioRule):
    name = "portfolio_drawdown"
    label = "portfolio drawdown"
    unit = "%"
    watches = frozenset({Topic.EQUITY, Topic.METRICS})

    def measure(self, view: PortfolioMetrics, now: float) -> float | None:
        return view.drawdown


class MaxCorrelation(PortfolioRule):
    name = "correlation_spike"
    label = "average pairwise correlation"
    watches = frozenset({Topic.PRICES, Topic.METRICS})

    def measure(self, view: PortfolioMetrics, now: float) -> float | None:
        return view.correlation


class MaxMarginUtilization(PortfolioRule):
    name = "margin_utilization"
    label = "margin utilization"
    unit = "%"
    watches = frozenset({Topic.MARGIN, Topic.METRICS})

    def measure(self, view: PortfolioMetrics, now: float) -> float | None:
        return view.margin_utilization
