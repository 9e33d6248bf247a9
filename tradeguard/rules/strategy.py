"""Strategy kill switches: drawdown, consecutive losses, win rate, position size, and the
recovery ladder's P&L floor."""

from __future__ import annotations

from tradeguard.config import WinRate
from tradeguard.ledger import StrategyMetrics
from tradeguard.model import Action, Breach
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


class RecoveryPnlFloor(StrategyRule):
    """While a strategy climbs the recovery ladder: realized P&L since its stage began must not
    fall below the stage's ``pnl_floor``. Falling below fails the recovery: halted again, and
    the next resume starts from the bottom. Inactive (measures nothing) at full size."""

    name = "recovery_pnl_floor"
    label = "P&L in recovery stage"
    watches = frozenset({Topic.TRADES, Topic.METRICS})

    def __init__(self) -> None:
        self.limit = 0.0  # the floor is the stage's, carried by the metrics
        self.action = Action.HALT_STRATEGY

    def measure(self, view: StrategyMetrics, now: float) -> float | None:
        floor = view.recovery_floor
        if floor is None:
            return None
        return view.realized_pnl - floor.pnl_at_start - floor.floor  # margin above the floor

    def evaluate(self, view: StrategyMetrics, now: float) -> Breach | None:
        margin = self.measure(view, now)
        if margin is None or margin >= 0:
            return None
        floor = view.recovery_floor
        assert floor is not None
        pnl = margin + floor.floor
        message = (
            f"recovery failed: P&L {pnl:,.2f} since stage {floor.stage} began is below its "
            f"floor {floor.floor:,.2f}"
        )
        return Breach(self.name, view.scope, pnl, floor.floor, self.action, message, now)

    def short_desc(self) -> str:
        return "P&L within a recovery stage below the stage's pnl_floor -> halt_strategy"
