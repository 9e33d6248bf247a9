"""The 8-point pre-trade pipeline: small checks in a fixed order, the first refusal wins.

kill_switch, bounds, limits, cap, drawdown, rate, dedup, allocation. Each refusal names its
check and says why in a trader's words. The pipeline is the hot path: no I/O, no allocation
beyond the refusal it returns, one small lock around the state it keeps (rate buckets and the
dedup memory), which is only committed when an order is accepted: a refused order consumes
no rate and leaves no dedup trace.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict, deque
from typing import NamedTuple

from tradeguard.config import OrderLimits, PretradeConfig
from tradeguard.inputs import MAX_MAGNITUDE, is_identifier, plain_value
from tradeguard.model import ACCEPTED, Decision, Order, PortfolioState, Side, StrategyState

_BLOCKING_PORTFOLIO = {PortfolioState.HARD_HALT, PortfolioState.EMERGENCY}
_BLOCKING_STRATEGY = {StrategyState.HALTED, StrategyState.DISABLED}
# Enum members bound once: reading ``Side.BUY`` goes through the enum's metaclass (about
# 0.1 us a time), and the hot path would pay that at every comparison.
_BUY, _SELL, _SOFT_HALT = Side.BUY, Side.SELL, PortfolioState.SOFT_HALT
_SIDES = (_BUY, _SELL)
_FIELDS = tuple(OrderLimits.model_fields)
# hash((strategy, symbol, side, quantity, price)): an int, which the garbage collector does
# not track, where the tuple would be one more tracked object per order. Two different orders
# with one 64-bit hash in the same window (odds about 1e-9 at 100,000 orders in it) would make
# the second a false duplicate: a refusal, never an acceptance.
Fingerprint = int
OpenKey = str  # strategy + NUL + client order id (an id never holds NUL), untracked like ints


def _open_key(strategy_id: str, client_order_id: str) -> OpenKey:
    return f"{strategy_id}\0{client_order_id}"


class Reservation(NamedTuple):
    """An accepted order still counted against caps and reduce-only."""

    at: float
    strategy_id: str
    symbol: str
    signed: float  # + bought, - sold
    open_key: OpenKey | None  # None: no client order id, so only expiry releases it


def _positive(v: object) -> bool:
    t = type(v)
    return (t is float or t is int) and 0 < v <= MAX_MAGNITUDE  # type: ignore[operator]


def plain(order: Order) -> Order:
    """``order`` as the plain values it holds: a subclass of float, int or str (numpy's
    float64, or one whose operators lie: a quantity of 1e300 that says it is below every
    limit and a reduction of every position, an id that equals a registered one) is judged by
    the value it holds, never by its own operators. Other types (bool among them) are kept,
    for ``malformed`` to refuse."""
    return dataclasses.replace(
        order,
        strategy_id=plain_value(order.strategy_id),
        symbol=plain_value(order.symbol),
        quantity=plain_value(order.quantity),
        price=plain_value(order.price),
    )


def malformed(order: Order) -> Decision | None:
    """What every check needs: whose it is, a side, and a finite positive quantity and price.
    An order that cannot be judged is refused, never waved through."""
    if not is_identifier(order.strategy_id):
        return Decision(False, "bounds", f"strategy_id is not a valid id: {order.strategy_id!r}")
    if not is_identifier(order.symbol):
        return Decision(False, "bounds", f"symbol is not a valid id: {order.symbol!r}")
    if order.side not in _SIDES:
        return Decision(False, "bounds", f"side must be 'buy' or 'sell', got {order.side!r}")
    cid = order.client_order_id
    if cid is not None and type(cid) is not str:
        return Decision(False, "bounds", f"client_order_id must be a string, got {cid!r}")
    if _positive(order.quantity) and _positive(order.price):
        return None  # the common case, without the loop below
    for name, v in (("quantity", order.quantity), ("price", order.price)):
        # plain floats and ints only (see ``plain``): a subclass could lie about the bound
        if not _positive(v):
            return Decision(
                False,
                "bounds",
                f"{name} must be a finite number > 0 and <= {MAX_MAGNITUDE:g}, got {v!r}",
            )
    return None


def kill_switch(order: Order, portfolio: str, strategy: str, position: float) -> Decision | None:
    """The most restrictive scope wins; soft halt is reduce-only against ``position``."""
    if portfolio in _BLOCKING_PORTFOLIO:
        return Decision(False, "kill_switch", f"portfolio is in {portfolio}: no orders")
    if strategy in _BLOCKING_STRATEGY:
        return Decision(False, "kill_switch", f"strategy {order.strategy_id} is {strategy}")
    if portfolio == _SOFT_HALT and not _reduces(order, position):
        return Decision(
            False,
            "kill_switch",
            f"portfolio is in soft_halt (reduce-only): this {order.side} of "
            f"{order.quantity:g} {order.symbol} would add exposure (position {position:g}, "
            "counting open orders as filled)",
        )
    return None


def _reduces(order: Order, position: float) -> bool:
    """Closes or shrinks the position without crossing zero."""
    if order.side == _SELL:
        return 0 < order.quantity <= position
    return 0 < order.quantity <= -position


class Context(NamedTuple):
    """What the guard knows about the order's strategy and symbol, read without its lock
    (a NamedTuple: built on every order, and cheaper than a frozen dataclass)."""

    portfolio: str  # a PortfolioState value
    strategy: str  # a StrategyState value
    position: float  # the strategy's signed position in the symbol
    gross: float  # the strategy's gross notional
    drawdown: float | None
    reference: float | None  # the symbol's last price
    capital_cap: float | None  # allocated capital x the agent-capital limit
    stage: float | None  # recovery stage: 0 paper, 0.25, 0.5; None at full size
    # the largest position the position_size trigger allows (its limit x portfolio equity):
    # what a recovering strategy's stage scales when no position cap is configured
    position_limit: float | None = None


class TokenBucket:
    __slots__ = ("at", "burst", "rate", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst, self.tokens, self.at = rate, float(burst), float(burst), now

    def ready(self, now: float) -> bool:
        if now > self.at:
            tokens = self.tokens + (now - self.at) * self.rate
            self.tokens = tokens if tokens < self.burst else self.burst
        self.at = now  # a clock stepped back restarts from here instead of starving the bucket
        return self.tokens >= 1.0


class Pipeline:
    def __init__(self, config: PretradeConfig, now: float) -> None:
        self._config = config
        self._resolved: dict[tuple[str | None, str | None], OrderLimits] = {}
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}
        self._total = TokenBucket(config.rate.total, config.rate.total_burst, now)
        # What an accepted order leaves behind is kept to a few objects the garbage collector
        # tracks (the reservation; keys are ints and strings): every survivor counts toward
        # the next collection, and a collection lands in some order's check as latency.
        self._client_ids: OrderedDict[OpenKey, None] = OrderedDict()
        self._recent: dict[Fingerprint, float] = {}  # fingerprint -> last accepted
        self._recent_at: deque[float] = deque()  # accepted fingerprints, oldest first ...
        self._recent_fingerprints: deque[Fingerprint] = deque()  # ... and their times
        # accepted, not yet closed: [pending buys, pending sells] per strategy, per symbol
        self._reserved: dict[str, dict[str, list[float]]] = {}
        self._open: dict[OpenKey, Reservation] = {}
        self._expiry: deque[Reservation] = deque()  # oldest first

    def limits(self, strategy: str, symbol: str) -> OrderLimits:
        """The global limits; a strategy's or a symbol's setting replaces the global one, and
        where both set a limit the stricter applies (a symbol's looser setting must not undo a
        strategy's tighter one). ``null`` means no limit. Resolved once per pair of override
        layers, not per (strategy, symbol): a book of thousands of pairs with no overrides
        never leaves the global limits, and never pays a cold resolution on the hot path."""
        c = self._config
        by_strategy, by_symbol = strategy in c.strategies, symbol in c.symbols
        if not by_strategy and not by_symbol:
            return c.limits
        key = (strategy if by_strategy else None, symbol if by_symbol else None)
        found = self._resolved.get(key)
        if found is None:
            merged = c.limits.model_dump()
            layers = [x for x in (c.strategies.get(strategy), c.symbols.get(symbol)) if x]
            for name in _FIELDS:
                chosen = [getattr(x, name) for x in layers if name in x.model_fields_set]
                if chosen:
                    limits = [v for v in chosen if v is not None]
                    merged[name] = min(limits) if limits else None
            found = self._resolved[key] = OrderLimits.model_validate(merged)
        return found

    def check(
        self, order: Order, ctx: Context, now: float, *, well_formed: bool = False
    ) -> Decision:
        """The first refusal, in the fixed order, or ACCEPTED. (Never chain checks with `or`:
        a Decision is an object, and the first one found is the answer.) ``well_formed``: the
        caller already made the order ``plain`` and ran ``malformed``."""
        if not well_formed:
            order = plain(order)
            refused = malformed(order)
            if refused is not None:
                return refused
        # One lock for the whole judgement: two threads cannot both pass on the same pending
        # total. (acquire/release, not `with`: a third of the cost on the hot path.)
        self._lock.acquire()
        try:
            return self._judge(order, ctx, now)
        finally:
            self._lock.release()

    def _judge(self, order: Order, ctx: Context, now: float) -> Decision:
        expiry = self._expiry
        if expiry and expiry[0].at <= now - self._config.reservation_seconds:
            self._expire(now)
        position, gross = ctx.position, ctx.gross
        held = self._reserved.get(order.strategy_id)
        pending = None if held is None else held.get(order.symbol)
        if pending is not None:
            # Judge against the worst case in the order's own direction: a buy as if every
            # pending buy filled, a sell as if every pending sell did. (A pending order on the
            # other side may never fill, so it never makes the book look smaller.)
            if order.side == _BUY:
                position += pending[0]
            else:
                position -= pending[1]
            grown = abs(position) - abs(ctx.position)
            if grown > 0:
                gross += grown * order.price
        refused = kill_switch(order, ctx.portfolio, ctx.strategy, position)
        if refused is not None:
            return refused
        lim = self.limits(order.strategy_id, order.symbol)
        refused = self._bounds(order, lim, ctx)
        if refused is None:
            refused = self._limits(order, lim)
        if refused is None:
            refused = self._cap(order, lim, ctx, position, gross)
        if refused is None:
            refused = self._drawdown(order, lim, ctx, position)
        if refused is None:
            refused = self._rate(order, now)
        if refused is not None:
            return refused
        fingerprint = hash(
            (order.strategy_id, order.symbol, order.side, order.quantity, order.price)
        )
        cid = order.client_order_id
        open_key = None if cid is None else _open_key(order.strategy_id, cid)
        refused = self._dedup(order, open_key, fingerprint, now)
        if refused is None:
            refused = self._allocation(order, lim, ctx, position, gross)
        if refused is None:
            self._commit(order, open_key, fingerprint, now)
            return ACCEPTED
        return refused

    def _bounds(self, order: Order, lim: OrderLimits, ctx: Context) -> Decision | None:
        if ctx.reference is None:
            if self._config.require_known_symbol:
                return Decision(
                    False,
                    "bounds",
                    f"no price for {order.symbol} yet: unknown symbol (require_known_symbol)",
                )
            return None
        collar = lim.price_collar
        off = (order.price - ctx.reference) / ctx.reference  # not price/ref - 1: exact at edges
        if collar is not None and abs(off) > collar:
            return Decision(
                False,
                "bounds",
                f"price {order.price:g} is {off:+.2%} from the last "
                f"price {ctx.reference:g}: outside the {collar:.2%} collar "
                "(fat finger?)",
            )
        return None

    @staticmethod
    def _limits(order: Order, lim: OrderLimits) -> Decision | None:
        if lim.max_order_quantity is not None and order.quantity > lim.max_order_quantity:
            return Decision(
                False,
                "limits",
                f"quantity {order.quantity:g} > max order quantity {lim.max_order_quantity:g}",
            )
        notional = order.quantity * order.price
        if lim.max_order_notional is not None and notional > lim.max_order_notional:
            return Decision(
                False,
                "limits",
                f"notional {notional:,.2f} > max order notional {lim.max_order_notional:,.2f}",
            )
        return None

    @staticmethod
    def _cap(
        order: Order, lim: OrderLimits, ctx: Context, held: float, gross: float
    ) -> Decision | None:
        """``held`` and ``gross``: the position and gross exposure with pending orders."""
        signed = order.quantity if order.side == _BUY else -order.quantity
        after = held + signed
        growth = (abs(after) - abs(held)) * order.price
        if growth <= 0:  # reduces exposure: caps do not stand in the way of getting smaller
            return None
        position = abs(after) * order.price
        if lim.max_position_notional is not None and position > lim.max_position_notional:
            return Decision(
                False,
                "cap",
                f"{order.symbol} position would be {position:,.2f} > "
                f"cap {lim.max_position_notional:,.2f}",
            )
        gross += growth
        if lim.max_gross_exposure is not None and gross > lim.max_gross_exposure:
            return Decision(
                False,
                "cap",
                f"gross exposure would be {gross:,.2f} > cap {lim.max_gross_exposure:,.2f}",
            )
        if ctx.capital_cap is not None and gross > ctx.capital_cap:
            return Decision(
                False,
                "cap",
                f"notional would be {gross:,.2f} > allocated capital limit {ctx.capital_cap:,.2f}",
            )
        return None

    @staticmethod
    def _drawdown(order: Order, lim: OrderLimits, ctx: Context, held: float) -> Decision | None:
        soft = lim.soft_drawdown
        if soft is None or ctx.drawdown is None or ctx.drawdown <= soft:
            return None
        if _reduces(order, held):
            return None
        return Decision(
            False,
            "drawdown",
            f"strategy drawdown {ctx.drawdown:.2%} is past its "
            f"soft limit {soft:.2%}: reducing orders only",
        )

    def _rate(self, order: Order, now: float) -> Decision | None:
        r = self._config.rate
        bucket = self._buckets.get(order.strategy_id)
        if bucket is None:
            bucket = self._buckets[order.strategy_id] = TokenBucket(
                r.per_strategy, r.per_strategy_burst, now
            )
        if not bucket.ready(now):
            return Decision(
                False,
                "rate",
                f"{order.strategy_id} is over {r.per_strategy:g} "
                f"orders/s (burst {r.per_strategy_burst})",
            )
        if not self._total.ready(now):
            return Decision(
                False,
                "rate",
                f"all strategies together are over {r.total:g} orders/s (burst {r.total_burst})",
            )
        return None

    def _dedup(
        self, order: Order, open_key: OpenKey | None, fingerprint: Fingerprint, now: float
    ) -> Decision | None:
        # remembered, or forgotten (client_ids_remembered) but still open: never two open
        # orders under one id, or order_closed would release one and strand the other
        if open_key is not None and (open_key in self._client_ids or open_key in self._open):
            return Decision(
                False,
                "dedup",
                f"client order id {order.client_order_id!r} was already used by "
                f"{order.strategy_id}",
            )
        window = self._config.dedup_window_seconds
        horizon, at = now - window, self._recent_at
        while at and at[0] < horizon:
            at.popleft()
            old = self._recent_fingerprints.popleft()
            if self._recent.get(old, now) < horizon:
                del self._recent[old]
        seen = self._recent.get(fingerprint)
        if window > 0 and seen is not None and abs(now - seen) <= window:
            return Decision(
                False,
                "dedup",
                f"an identical order was accepted {now - seen:.3f}s "
                f"ago (within {window:g}s): a duplicate?",
            )
        return None

    @staticmethod
    def _allocation(
        order: Order, lim: OrderLimits, ctx: Context, held: float, gross: float
    ) -> Decision | None:
        """A recovering strategy trades at its stage's share of every size limit it has: order
        quantity and notional, position (the cap, and the position_size trigger's), gross
        exposure, allocated capital. Paper sends nothing; reducing orders always pass (getting
        smaller is never refused on the way back)."""
        stage = ctx.stage
        if stage is None:
            return None
        if stage <= 0:
            return Decision(
                False,
                "allocation",
                f"{order.strategy_id} is in its paper stage: orders are not sent",
            )
        if _reduces(order, held):
            return None
        after = held + (order.quantity if order.side == _BUY else -order.quantity)
        gross += (abs(after) - abs(held)) * order.price
        position = abs(after) * order.price
        for what, value, limit in (
            ("order quantity", order.quantity, lim.max_order_quantity),
            ("order notional", order.quantity * order.price, lim.max_order_notional),
            (f"{order.symbol} position", position, lim.max_position_notional),
            (f"{order.symbol} position against position_size", position, ctx.position_limit),
            ("gross exposure", gross, lim.max_gross_exposure),
            ("notional against allocated capital", gross, ctx.capital_cap),
        ):
            if limit is not None and value > stage * limit:
                return Decision(
                    False,
                    "allocation",
                    f"recovery stage {stage:.0%}: {what} {value:,.2f} > {stage:.0%} of its "
                    f"limit {limit:,.2f}",
                )
        return None

    def closed(self, strategy_id: str, client_order_id: str) -> bool:
        """An order is done (filled, cancelled, rejected): its fill is in the positions now."""
        with self._lock:
            found = self._open.pop(_open_key(strategy_id, client_order_id), None)
            if found is None:
                return False
            self._release(found)
            return True

    def _release(self, reservation: Reservation) -> None:
        held = self._reserved.get(reservation.strategy_id)
        pending = None if held is None else held.get(reservation.symbol)
        if held is None or pending is None:
            return
        signed = reservation.signed
        side = 0 if signed > 0 else 1
        pending[side] = max(0.0, pending[side] - abs(signed))
        if pending[0] < 1e-12 and pending[1] < 1e-12:
            del held[reservation.symbol]
            if not held:
                del self._reserved[reservation.strategy_id]

    def _expire(self, now: float) -> None:
        ttl = self._config.reservation_seconds
        while self._expiry and self._expiry[0].at <= now - ttl:
            reservation = self._expiry.popleft()
            key = reservation.open_key
            if key is None:
                self._release(reservation)
            elif self._open.get(key) is reservation:  # still open: it expires now
                del self._open[key]
                self._release(reservation)
            # else closed, and released then: the id may belong to a later order by now

    def _commit(
        self, order: Order, open_key: OpenKey | None, fingerprint: Fingerprint, now: float
    ) -> None:
        sid = order.strategy_id
        self._buckets[sid].tokens -= 1.0
        self._total.tokens -= 1.0
        quantity = float(order.quantity)
        buy = order.side == _BUY
        held = self._reserved.get(sid)
        if held is None:
            held = self._reserved[sid] = {}
        pending = held.get(order.symbol)
        if pending is None:
            pending = held[order.symbol] = [0.0, 0.0]
        pending[0 if buy else 1] += quantity
        reservation = tuple.__new__(  # not Reservation(...): see Guard.check_order's Context
            Reservation, (now, sid, order.symbol, quantity if buy else -quantity, open_key)
        )
        self._expiry.append(reservation)
        if open_key is not None:
            self._open[open_key] = reservation
            self._client_ids[open_key] = None
            if len(self._client_ids) > self._config.client_ids_remembered:
                self._client_ids.popitem(last=False)
        self._recent[fingerprint] = now
        self._recent_at.append(now)
        self._recent_fingerprints.append(fingerprint)


__all__ = ["Context", "Pipeline", "kill_switch", "malformed", "plain"]
