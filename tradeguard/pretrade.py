"""The 8-point pre-trade pipeline: small checks in a fixed order, the first refusal wins.

kill_switch, bounds, limits, cap, drawdown, rate, dedup, allocation. Each refusal names its
check and says why in a trader's words. The pipeline is the hot path: no I/O, no allocation
beyond the refusal it returns, one small lock around the state it keeps (rate buckets and the
dedup memory), which is only committed when an order is accepted: a refused order consumes
no rate and leaves no dedup trace.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from typing import NamedTuple

from tradeguard.config import OrderLimits, PretradeConfig
from tradeguard.inputs import IDENTIFIER, MAX_MAGNITUDE
from tradeguard.model import ACCEPTED, Decision, Order, PortfolioState, Side, StrategyState

_BLOCKING_PORTFOLIO = {PortfolioState.HARD_HALT, PortfolioState.EMERGENCY}
_BLOCKING_STRATEGY = {StrategyState.HALTED, StrategyState.DISABLED}
_FIELDS = tuple(OrderLimits.model_fields)
Fingerprint = tuple[str, str, str, float, float]  # strategy, symbol, side, quantity, price


_VALID_IDS: set[str] = set()  # ids already seen to be valid: the regex runs once per id


def _valid_id(value: object) -> bool:
    if type(value) is str and value in _VALID_IDS:
        return True
    if isinstance(value, str) and IDENTIFIER.match(value):
        if len(_VALID_IDS) < 100_000:
            _VALID_IDS.add(value)
        return True
    return False


def _positive(v: object) -> bool:
    t = type(v)
    return (t is float or t is int) and 0 < v <= MAX_MAGNITUDE  # type: ignore[operator]


def malformed(order: Order) -> Decision | None:
    """What every check needs: whose it is, a side, and a finite positive quantity and price.
    An order that cannot be judged is refused, never waved through."""
    if not _valid_id(order.strategy_id):
        return Decision(False, "bounds", f"strategy_id is not a valid id: {order.strategy_id!r}")
    if not _valid_id(order.symbol):
        return Decision(False, "bounds", f"symbol is not a valid id: {order.symbol!r}")
    if order.side not in (Side.BUY, Side.SELL):
        return Decision(False, "bounds", f"side must be 'buy' or 'sell', got {order.side!r}")
    for name, v in (("quantity", order.quantity), ("price", order.price)):
        if not _positive(v) and not (
            isinstance(v, float | int) and not isinstance(v, bool) and 0 < v < math.inf
        ):
            return Decision(False, "bounds", f"{name} must be a finite number > 0, got {v!r}")
    return None


def kill_switch(order: Order, portfolio: str, strategy: str, position: float) -> Decision | None:
    """The most restrictive scope wins; soft halt is reduce-only against ``position``."""
    if portfolio in _BLOCKING_PORTFOLIO:
        return Decision(False, "kill_switch", f"portfolio is in {portfolio}: no orders")
    if strategy in _BLOCKING_STRATEGY:
        return Decision(False, "kill_switch", f"strategy {order.strategy_id} is {strategy}")
    if portfolio == PortfolioState.SOFT_HALT and not _reduces(order, position):
        return Decision(
            False,
            "kill_switch",
            f"portfolio is in soft_halt (reduce-only): this {order.side} of "
            f"{order.quantity:g} {order.symbol} would add exposure (position {position:g})",
        )
    return None


def _reduces(order: Order, position: float) -> bool:
    """Closes or shrinks the position without crossing zero."""
    if order.side == Side.SELL:
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
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now  # a clock stepped back restarts from here instead of starving the bucket
        return self.tokens >= 1.0


class Pipeline:
    def __init__(self, config: PretradeConfig, now: float) -> None:
        self._config = config
        self._resolved: dict[tuple[str, str], OrderLimits] = {}
        self._lock = threading.Lock()
        self._buckets: dict[str, TokenBucket] = {}
        self._total = TokenBucket(config.rate.total, config.rate.total_burst, now)
        self._client_ids: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._recent: dict[Fingerprint, float] = {}
        self._recent_order: deque[tuple[float, Fingerprint]] = deque()
        # accepted, not yet closed: signed quantity per (strategy, symbol), by order
        self._reserved: dict[tuple[str, str], list[float]] = {}  # [pending buys, sells]
        self._open: dict[tuple[str, str], tuple[tuple[str, str], float]] = {}  # (sid, cid)
        self._expiry: deque[tuple[float, tuple[str, str], float, tuple[str, str] | None]] = deque()

    def limits(self, strategy: str, symbol: str) -> OrderLimits:
        """The global limits; a strategy's or a symbol's setting replaces the global one, and
        where both set a limit the stricter applies (a symbol's looser setting must not undo a
        strategy's tighter one). ``null`` means no limit."""
        key = (strategy, symbol)
        found = self._resolved.get(key)
        if found is None:
            c = self._config
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
        caller already ran ``malformed``."""
        refused = None if well_formed else malformed(order)
        if refused is not None:
            return refused
        with self._lock:  # one lock for the whole judgement: two threads cannot both pass
            return self._judge(order, ctx, now)  # on the same pending total

    def _judge(self, order: Order, ctx: Context, now: float) -> Decision:
        self._expire(now)
        pending = self._reserved.get((order.strategy_id, order.symbol))
        if pending is not None:
            # Judge against the worst case in the order's own direction: a buy as if every
            # pending buy filled, a sell as if every pending sell did. (A pending order on the
            # other side may never fill, so it never makes the book look smaller.)
            if order.side == Side.BUY:
                worst = ctx.position + pending[0]
            else:
                worst = ctx.position - pending[1]
            grown = max(0.0, abs(worst) - abs(ctx.position)) * order.price
            ctx = ctx._replace(position=worst, gross=ctx.gross + grown)
        refused = kill_switch(order, ctx.portfolio, ctx.strategy, ctx.position)
        if refused is not None:
            return refused
        lim = self.limits(order.strategy_id, order.symbol)
        refused = self._bounds(order, lim, ctx)
        if refused is None:
            refused = self._limits(order, lim)
        if refused is None:
            refused = self._cap(order, lim, ctx)
        if refused is None:
            refused = self._drawdown(order, lim, ctx)
        if refused is None:
            refused = self._rate(order, now)
        fingerprint = (order.strategy_id, order.symbol, order.side, order.quantity, order.price)
        if refused is None:
            refused = self._dedup(order, fingerprint, now)
        if refused is None:
            refused = self._allocation(order, lim, ctx)
        if refused is None:
            self._commit(order, fingerprint, now)
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
    def _cap(order: Order, lim: OrderLimits, ctx: Context) -> Decision | None:
        signed = order.quantity if order.side == Side.BUY else -order.quantity
        after = ctx.position + signed
        growth = (abs(after) - abs(ctx.position)) * order.price
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
        gross = ctx.gross + growth
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
    def _drawdown(order: Order, lim: OrderLimits, ctx: Context) -> Decision | None:
        soft = lim.soft_drawdown
        if soft is None or ctx.drawdown is None or ctx.drawdown <= soft:
            return None
        if _reduces(order, ctx.position):
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

    def _dedup(self, order: Order, fingerprint: Fingerprint, now: float) -> Decision | None:
        cid = order.client_order_id
        if cid is not None and (order.strategy_id, cid) in self._client_ids:
            return Decision(
                False, "dedup", f"client order id {cid!r} was already used by {order.strategy_id}"
            )
        window = self._config.dedup_window_seconds
        while self._recent_order and self._recent_order[0][0] < now - window:
            _, old = self._recent_order.popleft()
            if self._recent.get(old, now) < now - window:
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
    def _allocation(order: Order, lim: OrderLimits, ctx: Context) -> Decision | None:
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
        if _reduces(order, ctx.position):
            return None
        after = ctx.position + (order.quantity if order.side == Side.BUY else -order.quantity)
        gross = ctx.gross + (abs(after) - abs(ctx.position)) * order.price
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
            found = self._open.pop((strategy_id, client_order_id), None)
            if found is None:
                return False
            self._release(*found)
            return True

    def _release(self, key: tuple[str, str], signed: float) -> None:
        pending = self._reserved.get(key)
        if pending is None:
            return
        side = 0 if signed > 0 else 1
        pending[side] = max(0.0, pending[side] - abs(signed))
        if pending[0] < 1e-12 and pending[1] < 1e-12:
            del self._reserved[key]

    def _expire(self, now: float) -> None:
        ttl = self._config.reservation_seconds
        while self._expiry and self._expiry[0][0] <= now - ttl:
            _, key, signed, open_key = self._expiry.popleft()
            if open_key is None or self._open.pop(open_key, None) is not None:
                self._release(key, signed)

    def _commit(self, order: Order, fingerprint: Fingerprint, now: float) -> None:
        self._buckets[order.strategy_id].tokens -= 1.0
        self._total.tokens -= 1.0
        key = (order.strategy_id, order.symbol)
        signed = float(order.quantity) if order.side == Side.BUY else -float(order.quantity)
        pending = self._reserved.get(key)
        if pending is None:
            pending = self._reserved[key] = [0.0, 0.0]
        pending[0 if signed > 0 else 1] += abs(signed)
        cid = order.client_order_id
        open_key = None if cid is None else (order.strategy_id, cid)
        if open_key is not None:
            self._open[open_key] = (key, signed)
        self._expiry.append((now, key, signed, open_key))
        if cid is not None:
            self._client_ids[(order.strategy_id, cid)] = None
            if len(self._client_ids) > self._config.client_ids_remembered:
                self._client_ids.popitem(last=False)
        self._recent[fingerprint] = now
        self._recent_order.append((now, fingerprint))


__all__ = ["Context", "Pipeline", "kill_switch", "malformed"]
