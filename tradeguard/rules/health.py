"""Automated health triggers: P&L velocity, volatility, stale feeds, stuck agents, agent capital."""

from __future__ import annotations

from tradeguard.ledger import PortfolioMetrics, StrategyMetrics
from tradeguard.rules.base import PortfolioRule, StrategyRule, Topic, fmt


class MaxPnlVelocity(PortfolioRule):
    name = "pnl_velocity"
    label = "loss from the window's equity high"
    unit = "%"
    watches = frozenset({Topic.EQUITY, Topic.METRICS})

    def measure(self, view: PortfolioMetrics, now: float) -> float | None:
        return view.pnl_velocity


class MaxVolatility(PortfolioRule):
    name = "volatility"
    label = "realized volatility vs baseline"
    unit = "x"
    watches = frozenset({Topic.PRICES, Topic.METRICS})

    def measure(self, view: PortfolioMetrics, now: float) -> float | None:
        return view.volatility_ratio


class MaxFeedAge(PortfolioRule):
    """A price feed that stopped updating hides every price-driven limit, so it halts too."""

    name = "feed_stale"
    label = "price feed age"
    unit = "s"
    watches = frozenset({Topic.TIME, Topic.PRICES})

    def measure(self, view: PortfolioMetrics, now: float) -> float | None:
        stalest = view.feed_age(now)
        return None if stalest is None else stalest[1]

    def describe(self, value: float) -> str:
        return f"price feed silent for {fmt(value, 's')} > limit {fmt(self.limit, 's')}"


class MaxEquityAge(PortfolioRule):
    """Equity that stopped arriving hides drawdown, daily loss and velocity: it halts too.
    Watched only once equity has been reported (some hosts report metrics instead)."""

    name = "equity_stale"
    label = "equity report age"
    unit = "s"
    watches = frozenset({Topic.TIME, Topic.EQUITY})

    def measure(self, view: PortfolioMetrics, now: float) -> float | None:
        return None if view.equity_at is None else now - view.equity_at

    def describe(self, value: float) -> str:
        return f"no equity report for {fmt(value, 's')} > limit {fmt(self.limit, 's')}"


class MaxSilence(StrategyRule):
    """An agent that has sent a heartbeat and then goes quiet is stuck; one that never did is
    not watched (it may not send heartbeats at all)."""

    name = "stuck_agent"
    label = "time since heartbeat"
    unit = "s"
    watches = frozenset({Topic.TIME, Topic.HEARTBEAT})

    def measure(self, view: StrategyMetrics, now: float) -> float | None:
        return None if view.last_heartbeat is None else now - view.last_heartbeat

    def describe(self, value: float) -> str:
        return f"stuck: no heartbeat for {fmt(value, 's')} > limit {fmt(self.limit, 's')}"


class MaxAgentCapital(StrategyRule):
    """Applies only to strategies with an allocated capital."""

    name = "agent_capital"
    label = "gross notional / allocated capital"
    unit = "x"
    watches = frozenset({Topic.POSITIONS, Topic.PRICES, Topic.METRICS})

    def measure(self, view: StrategyMetrics, now: float) -> float | None:
        if view.allocated_capital is None:
            return None
        return view.gross_notional / view.allocated_capital
