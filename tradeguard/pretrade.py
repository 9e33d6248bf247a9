"""Pre-trade checks: small pure functions that return a refusal or None.

This holds the first of the eight checks, the kill switch: every scope an order belongs to
must allow it, and a soft halt allows only orders that reduce an existing position. The other
seven (bounds, limits, cap, drawdown, rate, dedup, allocation) join it in the pre-trade issue.
"""

from __future__ import annotations

import math

from tradeguard.inputs import IDENTIFIER
from tradeguard.model import Decision, Order, PortfolioState, Side, StrategyState

_BLOCKING_PORTFOLIO = {PortfolioState.HARD_HALT, PortfolioState.EMERGENCY}
_BLOCKING_STRATEGY = {StrategyState.HALTED, StrategyState.DISABLED}


def malformed(order: Order) -> Decision | None:
    """What the kill switch needs to judge an order: whose it is, a side, and a finite
    positive quantity and price. An order it cannot judge is refused, never waved through."""
    sid = order.strategy_id
    if not isinstance(sid, str) or not IDENTIFIER.match(sid):
        return Decision(False, "bounds", f"strategy_id is not a valid id: {sid!r}")
    if order.side not in (Side.BUY, Side.SELL):
        return Decision(False, "bounds", f"side must be 'buy' or 'sell', got {order.side!r}")
    for name in ("quantity", "price"):
        v = getattr(order, name)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            return Decision(False, "bounds", f"{name} must be a finite number > 0, got {v!r}")
    return None


def kill_switch(
    order: Order, portfolio: PortfolioState, strategy: StrategyState, position: float
) -> Decision | None:
    """The most restrictive scope wins; soft halt is reduce-only against ``position``."""
    if portfolio in _BLOCKING_PORTFOLIO:
        return Decision(False, "kill_switch", f"portfolio is in {portfolio}: no orders")
    if strategy in _BLOCKING_STRATEGY:
        return Decision(False, "kill_switch", f"strategy {order.strategy_id} is {strategy}")
    if portfolio is PortfolioState.SOFT_HALT:
        reduces = (order.side == Side.SELL and 0 < order.quantity <= position) or (
            order.side == Side.BUY and 0 < order.quantity <= -position
        )
        if not reduces:
            return Decision(
                False,
                "kill_switch",
                f"portfolio is in soft_halt (reduce-only): this {order.side} of "
                f"{order.quantity:g} {order.symbol} would add exposure (position {position:g})",
            )
    return None
