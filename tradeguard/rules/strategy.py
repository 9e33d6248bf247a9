"""Strategy kill switches: drawdown, consecutive losses, win rate, position size."""

from __future__ import annotations

from tradeguard.config import WinRate
from tradeguard.ledger import StrategyMetrics
from tradeguard.rules.base import StrategyRule, Topic


class MaxStrategyDrawdown(StrategyRule):
    name = "strategy_drawdown"
    label = "strategy drawdown"
    unit = "%"
    watches = frozenset({Topic.EQUITY, Topic.TRADES, Topic.METRICS})

    def measure(self, view: StrategyMetrics, now: float) -> float | None:
        return view.drawdown


class MaxConsecutiveLosses(StrategyRule):
    name = "consecutive_losses"
    label = "consecutive losses"
    inclusive = True
    watches = frozenset({Topic.TRADES, Topic.METRICS})

    def measure(self, view: StrategyMetrics, now: float) -> float | None:
        return float(view.consecutive_losses)


class MinWinRate(StrategyRule):
    """Judged only once ``min_trades`` trades are in: a win rate over three trades is noise."""

    name = "win_rate"
    label = "win rate"
    unit = "%"
    below = True
    watches = frozenset({Topic.TRADES, Topic.METRICS})

    def __init__(self, trigger: WinRate) -> None:
        super().__init__(trigger)
        self.min_trades = trigger.min_trades

    def measure(self, view: StrategyMetrics, now: float) -> float | None:
        if view.trade_count < self.min_trades:
            return None
        return view.win_rate

    def short_desc(self) -> str:
        return f"{super().short_desc()} (after {self.min_trades} trades)"


class MaxPositionSize(StrategyRule):
    """Largest position's notional over portfolio equity; unmeasurable exposure is a breach."""

    name = "position_size"
    label = "largest position / equity"
    unit = "%"
    watches = frozenset({Topic.POSITIONS, Topic.PRICES, Topic.EQUITY, Topic.METRICS})

    def measure(self, view: StrategyMetrics, now: float) -> float | None:
        return view.position_size

    def describe(self, value: float) -> str:
        if value == float("inf"):
            return "position held but portfolio equity unknown or not positive: cannot size it"
        return super().describe(value)
