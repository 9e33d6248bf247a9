"""The triggers: each one's limit, the action taken when it is crossed, and its parameters.

A bare number in YAML is shorthand for ``{limit: number}`` (the seed's form). Strategy-level
triggers may be replaced per strategy; portfolio-level ones act only on the whole book.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, model_validator

from tradeguard.config.fields import (
    PORTFOLIO_ACTIONS,
    Fraction,
    Frozen,
    LaxAction,
    Positive,
    PositiveInt,
    non_negative,
)
from tradeguard.model import Action


def _correlation(value: float) -> float:
    if not -1 < value < 1:
        raise ValueError("must be in (-1, 1)")
    return value


class Trigger(Frozen):
    """A trigger's limit and the action taken when it is crossed.

    A bare number in YAML is shorthand for ``{limit: number}`` (the seed's form).
    """

    portfolio_scope: ClassVar[bool] = False

    enabled: bool = True
    limit: float
    action: LaxAction
    # how long a halt this trigger caused must stand before it may be lifted (None: the
    # global recovery.cooldown_seconds)
    cooldown_seconds: Annotated[float, AfterValidator(non_negative)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return {"limit": data}
        return data

    @model_validator(mode="after")
    def _action_fits_scope(self) -> Trigger:
        if self.portfolio_scope and self.action not in PORTFOLIO_ACTIONS:
            allowed = ", ".join(a.value for a in PORTFOLIO_ACTIONS)
            raise ValueError(f"action of a portfolio trigger must be one of {allowed}")
        return self


class StrategyDrawdown(Trigger):
    limit: Fraction = 0.05
    action: LaxAction = Action.HALT_STRATEGY


class ConsecutiveLosses(Trigger):
    limit: PositiveInt = 5  # a count: int narrows float
    action: LaxAction = Action.HALT_STRATEGY


class WinRate(Trigger):
    limit: Fraction = 0.30
    action: LaxAction = Action.HALT_STRATEGY
    min_trades: PositiveInt = 20


class PositionSize(Trigger):
    """Largest single position's notional as a fraction of portfolio equity."""

    limit: Positive = 0.20
    action: LaxAction = Action.HALT_STRATEGY


class AgentCapital(Trigger):
    """Gross notional as a multiple of the strategy's allocated capital."""

    limit: Positive = 1.0
    action: LaxAction = Action.HALT_STRATEGY


class StuckAgent(Trigger):
    """Seconds without a heartbeat before an agent that has sent one is called stuck."""

    limit: Positive = 300.0
    action: LaxAction = Action.HALT_STRATEGY


class PortfolioDailyLoss(Trigger):
    portfolio_scope = True
    limit: Fraction = 0.03
    action: LaxAction = Action.SOFT_HALT


class PortfolioDrawdown(Trigger):
    portfolio_scope = True
    limit: Fraction = 0.10
    action: LaxAction = Action.HARD_HALT


class CorrelationSpike(Trigger):
    """Average pairwise correlation of log returns over the last ``window`` price snapshots."""

    portfolio_scope = True
    limit: Annotated[float, AfterValidator(_correlation)] = 0.80
    action: LaxAction = Action.SOFT_HALT
    window: PositiveInt = 60
    min_observations: PositiveInt = 20

    @model_validator(mode="after")
    def _window_holds_minimum(self) -> CorrelationSpike:
        if self.min_observations > self.window:
            raise ValueError("min_observations must be <= window")
        if self.min_observations < 3:
            raise ValueError("min_observations must be >= 3 for a correlation to mean anything")
        return self


class MarginUtilization(Trigger):
    """margin_used / (margin_used + margin_available)."""

    portfolio_scope = True
    limit: Fraction = 0.90
    action: LaxAction = Action.SOFT_HALT


class PnlVelocity(Trigger):
    """Loss of ``limit`` (fraction of equity) from the highest equity within ``window_seconds``."""

    portfolio_scope = True
    limit: Fraction = 0.02
    action: LaxAction = Action.SOFT_HALT
    window_seconds: Positive = 60.0


class Volatility(Trigger):
    """Realized volatility of the last ``window`` returns as a multiple of the baseline before."""

    portfolio_scope = True
    limit: Positive = 3.0
    action: LaxAction = Action.SOFT_HALT
    window: PositiveInt = 20
    baseline_window: PositiveInt = 200
    min_baseline: PositiveInt = 50

    @model_validator(mode="after")
    def _baseline_fits(self) -> Volatility:
        if self.min_baseline > self.baseline_window:
            raise ValueError("min_baseline must be <= baseline_window")
        if self.window < 2 or self.min_baseline < 2:
            raise ValueError("window and min_baseline must be >= 2")
        return self


class FeedStale(Trigger):
    """Seconds since a price symbol's last update."""

    portfolio_scope = True
    limit: Positive = 30.0
    action: LaxAction = Action.SOFT_HALT


class EquityStale(Trigger):
    """Seconds since portfolio equity was last reported, once it has been: a silent equity
    feed hides every loss limit."""

    portfolio_scope = True
    limit: Positive = 120.0
    action: LaxAction = Action.SOFT_HALT


class Triggers(Frozen):
    strategy_drawdown: StrategyDrawdown = StrategyDrawdown()
    consecutive_losses: ConsecutiveLosses = ConsecutiveLosses()
    win_rate: WinRate = WinRate()
    position_size: PositionSize = PositionSize()
    agent_capital: AgentCapital = AgentCapital()
    stuck_agent: StuckAgent = StuckAgent()
    portfolio_daily_loss: PortfolioDailyLoss = PortfolioDailyLoss()
    portfolio_drawdown: PortfolioDrawdown = PortfolioDrawdown()
    correlation_spike: CorrelationSpike = CorrelationSpike()
    margin_utilization: MarginUtilization = MarginUtilization()
    pnl_velocity: PnlVelocity = PnlVelocity()
    volatility: Volatility = Volatility()
    feed_stale: FeedStale = FeedStale()
    equity_stale: EquityStale = EquityStale()


STRATEGY_TRIGGERS = (
    "strategy_drawdown",
    "consecutive_losses",
    "win_rate",
    "position_size",
    "agent_capital",
    "stuck_agent",
)


class StrategyTriggerOverrides(Frozen):
    """Per-strategy replacements for strategy-level triggers; absent keys keep the global one."""

    strategy_drawdown: StrategyDrawdown | None = None
    consecutive_losses: ConsecutiveLosses | None = None
    win_rate: WinRate | None = None
    position_size: PositionSize | None = None
    agent_capital: AgentCapital | None = None
    stuck_agent: StuckAgent | None = None
