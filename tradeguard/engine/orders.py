"""The pre-trade gate: the 8-point verdict on every order, read without the guard's lock.

The kill switch (every scope the order belongs to), bounds, limits, the reduce-only cap,
drawdown, rate, dedup and allocation, the last scaled by a recovering strategy's stage. The
pipeline itself is ``tradeguard.pretrade``; this module builds its context from the book.
Everything here is on the hot path: reads are direct, nothing allocates that need not.
"""

from __future__ import annotations

import collections
import logging
import math

from tradeguard import pretrade
from tradeguard.engine.core import Core
from tradeguard.engine.rungs import Rungs
from tradeguard.ledger import Ledger, StrategyMetrics
from tradeguard.model import Decision, Order, StrategyState

log = logging.getLogger("tradeguard")

# bound once: an enum member read through its class costs about 0.1 us
_ACTIVE, _RECOVERING = StrategyState.ACTIVE, StrategyState.RECOVERING


class OrderGate:
    def __init__(self, core: Core, *, ledger: Ledger, rungs: Rungs) -> None:
        self._book = core.book
        self._states = core.book.states  # never replaced: read directly on the hot path
        self._registered = core.book.registered
        self._ledger = ledger
        self._rungs = rungs
        self._clock = core.clock
        self._pipeline = pretrade.Pipeline(core.book.config.pretrade, core.clock.time())
        self._capital_factor: dict[str, float] = {}
        self.refusals: collections.Counter[str] = collections.Counter()  # by check

    def check(self, order: Order) -> Decision:
        """The 8-point pre-trade verdict, called before every order: kill_switch, bounds,
        limits, cap, drawdown, rate, dedup, allocation. Reads state without the guard's lock."""
        if (
            type(order.quantity) is not float
            or type(order.price) is not float
            or type(order.strategy_id) is not str
            or type(order.symbol) is not str
        ):
            order = pretrade.plain(order)  # judged by the values it holds, not its operators
        refused = pretrade.malformed(order)
        if refused is None and order.strategy_id not in self._registered:
            refused = Decision(
                False,
                "kill_switch",
                f"unknown strategy {order.strategy_id!r}: "
                "register it or report its state before it trades",
            )
        if refused is None and order.strategy_id in self._book.blocked:
            refused = Decision(
                False, "kill_switch", f"{order.strategy_id}'s genome is blacklisted by an incident"
            )
        if refused is None:
            sid, symbol = order.strategy_id, order.symbol
            held = self._ledger.strategies.get(sid)
            entry = None if held is None else held.positions.get(symbol)
            strategy = self._states.get("strategy:" + sid)
            try:  # an order that breaks a check is refused, not let through
                stage: float | None = None
                position_limit: float | None = None
                if strategy is not None and strategy.state == _RECOVERING:
                    stage = self._rungs.stage_of(sid, strategy)
                    position_limit = self._position_limit(sid)
                # tuple.__new__: the NamedTuple's own constructor is a Python-level function
                # that costs three times as much, on every order
                context = tuple.__new__(
                    pretrade.Context,
                    (
                        self._states["portfolio"].state,
                        _ACTIVE if strategy is None else strategy.state,
                        0.0 if entry is None else entry[0],
                        0.0 if held is None else held.gross_notional,
                        None if held is None else held.drawdown,
                        # the market's last price, else the position's own mark (an exit must
                        # not be refused because only the position, not the feed, named it)
                        self._ledger.portfolio.prices.get(
                            symbol, None if entry is None else entry[1]
                        ),
                        self._capital_cap(sid, held),
                        stage,
                        position_limit,
                    ),
                )
                decision = self._pipeline.check(
                    order, context, self._clock.time(), well_formed=True
                )
            except Exception as exc:
                log.exception("pre-trade check failed on %r", order)
                decision = Decision(False, "bounds", f"could not check the order: {exc!r}")
            if decision.accepted:
                return decision
            refused = decision
        self.refusals[refused.check or "unknown"] += 1  # plain counter: no lock on the hot path
        return refused

    def closed(self, strategy_id: str, client_order_id: str) -> bool:
        """An accepted order is done: it stops counting against caps and reduce-only."""
        return self._pipeline.closed(strategy_id, client_order_id)

    def limits_changed(self) -> None:
        """The pre-trade cap follows a new agent_capital trigger."""
        self._capital_factor.clear()

    def _position_limit(self, sid: str) -> float | None:
        """The largest position the position_size trigger lets the strategy hold now."""
        trigger = self._book.config.triggers_for(sid).position_size
        equity = self._ledger.portfolio.equity
        if not trigger.enabled or equity is None or equity <= 0:
            return None
        return trigger.limit * equity

    def _capital_cap(self, sid: str, held: StrategyMetrics | None) -> float | None:
        if held is None or held.allocated_capital is None:
            return None
        factor = self._capital_factor.get(sid)
        if factor is None:
            trigger = self._book.config.triggers_for(sid).agent_capital
            factor = self._capital_factor[sid] = trigger.limit if trigger.enabled else math.inf
        return held.allocated_capital * factor
