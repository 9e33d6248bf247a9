"""A toy trading desk: strategies that trade on simulated venues and feed the guard.

It does what a real integration does: ask ``check_order`` before every order, send it to the
venue, book the fill, and report positions, closed trades, equity and heartbeats. Its book is
reconciled with the venues every step, so a flatten done by the guard shows up as realized P&L.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections import deque
from dataclasses import dataclass, field

from tradeguard.guard import Guard
from tradeguard.model import Order, Side, StrategyState
from tradeguard.venues import SimulatedVenue, VenueError


@dataclass(frozen=True)
class Spec:
    """A strategy: where it trades, how big, and how it picks its target position."""

    name: str
    venue: str
    symbols: tuple[str, ...]
    capital: float
    leverage: float  # target notional per symbol, as a multiple of capital / len(symbols)
    style: str  # "momentum" | "mean_reversion" | "churn" (pays fees on every flip)
    fee: float = 0.0  # per unit notional traded


@dataclass
class Holding:
    quantity: float = 0.0
    entry: float = 0.0


@dataclass
class Desk:
    guard: Guard
    venues: dict[str, SimulatedVenue]
    specs: list[Spec]
    book: dict[tuple[str, str], Holding] = field(default_factory=dict)
    realized: dict[str, float] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    venue_errors: int = 0
    halt_latency: dict[str, float] = field(default_factory=dict)  # transition -> seconds
    _history: dict[str, deque[float]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def capital(self) -> float:
        return sum(s.capital for s in self.specs)

    async def step(self, prices: dict[str, float], *, trade: bool = True) -> None:
        """New prices: mark, report, and (unless ``trade`` is off) let active strategies trade.
        A desk waiting on the guard's stop still marks and reports; it only does not trade."""
        self.guard.flush()  # a stop in progress owns the venues (see _trade)
        for venue in self.venues.values():
            venue.mark(prices)
        for symbol, price in prices.items():
            self._history.setdefault(symbol, deque(maxlen=12)).append(price)
        self.guard.update_prices(prices)
        for spec in self.specs:
            self._reconcile(spec, prices)
        self._report_portfolio(prices)  # equity before positions: a position needs sizing
        for spec in self.specs:
            self.guard.heartbeat(spec.name)  # the agent is alive, halted or not
            if self.guard.strategy_state(spec.name) is StrategyState.ACTIVE:
                for symbol in spec.symbols if trade else ():
                    await self._trade(spec, symbol, prices[symbol])
            self.guard.update_equity(self.strategy_equity(spec, prices), strategy_id=spec.name)
        self._report_portfolio(prices)

    def _report_portfolio(self, prices: dict[str, float]) -> None:
        """Report equity and margin; a call that moves the portfolio state is timed: that is
        trigger -> halt, in process, including the durable commit."""
        gross = sum(abs(h.quantity) * prices[sym] for (_, sym), h in self.book.items())
        equity = self.equity(prices)
        before = self.guard.portfolio_state
        started = time.perf_counter()
        self.guard.update_portfolio(
            equity=equity, margin_used=gross * 0.2, margin_available=max(equity - gross * 0.2, 0.0)
        )
        after = self.guard.portfolio_state
        if after is not before:
            self.halt_latency[f"{before} -> {after}"] = time.perf_counter() - started

    def strategy_equity(self, spec: Spec, prices: dict[str, float]) -> float:
        unrealized = sum(
            h.quantity * (prices[sym] - h.entry)
            for (sid, sym), h in self.book.items()
            if sid == spec.name
        )
        return spec.capital + self.realized.get(spec.name, 0.0) + unrealized

    def equity(self, prices: dict[str, float]) -> float:
        return sum(self.strategy_equity(s, prices) for s in self.specs)

    def gross(self, spec: Spec, prices: dict[str, float]) -> float:
        return sum(
            abs(h.quantity) * prices[sym] for (sid, sym), h in self.book.items() if sid == spec.name
        )

    def _target(self, spec: Spec, symbol: str, price: float) -> float:
        history = self._history[symbol]
        trend = 0.0 if len(history) < 2 else math.copysign(1.0, history[-1] - history[0])
        notional = spec.capital * spec.leverage / len(spec.symbols)
        if spec.style == "churn":  # flips every step: all fees, no edge
            held = self.book.get((spec.name, symbol), Holding()).quantity
            return -math.copysign(notional / price, held or 1.0)
        tilt = 0.25 * (trend if spec.style == "momentum" else -trend)
        return notional * (1.0 + tilt) / price

    async def _trade(self, spec: Spec, symbol: str, price: float) -> None:
        # The simulated venues are shared with the guard's stop, which runs on its own thread:
        # wait for any stop before touching them. (A real desk gives the guard its own venue
        # connection and needs no such wait.)
        self.guard.flush()
        held = self.book.get((spec.name, symbol), Holding()).quantity
        delta = self._target(spec, symbol, price) - held
        if abs(delta) * price < spec.capital * 0.01:
            return
        side = Side.BUY if delta > 0 else Side.SELL
        cid = f"{spec.name}-{next(self._ids)}"
        order = Order(spec.name, symbol, side, abs(delta), price, client_order_id=cid)
        decision = self.guard.check_order(order)
        if not decision.accepted:
            self.refused[spec.name] = self.refused.get(spec.name, 0) + 1
            return
        try:
            fill = await self.venues[spec.venue].submit_order(
                symbol=symbol,
                side=side,
                quantity=abs(delta),
                strategy_id=spec.name,
                client_order_id=cid,
            )
        except VenueError:
            self.venue_errors += 1
            return
        finally:  # a market order is done either way: it no longer counts as pending
            self.guard.order_closed(spec.name, cid)
        signed = fill.filled if side is Side.BUY else -fill.filled
        self._book_fill(spec, symbol, signed, price)
        self.realized[spec.name] = (
            self.realized.get(spec.name, 0.0) - spec.fee * fill.filled * price
        )
        self.guard.update_position(spec.name, symbol, held + signed, price)
        await self._take_profit(spec, symbol, held + signed, price)

    async def _take_profit(self, spec: Spec, symbol: str, held: float, price: float) -> None:
        """Longs keep a resting take-profit ask: open orders for a stop to cancel."""
        if held <= 0 or spec.style == "churn":
            return
        self.guard.flush()  # as in _trade: a stop in progress owns the venues
        venue = self.venues[spec.venue]
        if any(o.symbol == symbol for o in await venue.open_orders(spec.name)):
            return
        cid = f"{spec.name}-tp-{next(self._ids)}"
        order = Order(spec.name, symbol, Side.SELL, held * 0.25, price * 1.05, client_order_id=cid)
        if not self.guard.check_order(order).accepted:
            return
        with contextlib.suppress(VenueError):  # it rests; the guard counts it until it expires
            await venue.submit_order(
                symbol=symbol,
                side=Side.SELL,
                quantity=order.quantity,
                price=order.price,
                strategy_id=spec.name,
                client_order_id=cid,
            )

    def _reconcile(self, spec: Spec, prices: dict[str, float]) -> None:
        """The venue is the truth: what the guard closed is booked as closed here."""
        venue = self.venues[spec.venue]
        for symbol in spec.symbols:
            held = self.book.get((spec.name, symbol), Holding()).quantity
            actual = venue.net_position(symbol, spec.name)
            if abs(actual - held) > 1e-12:
                self._book_fill(spec, symbol, actual - held, prices[symbol])
                self.guard.update_position(spec.name, symbol, actual, prices[symbol])

    def _book_fill(self, spec: Spec, symbol: str, signed: float, price: float) -> None:
        h = self.book.setdefault((spec.name, symbol), Holding())
        if h.quantity and (h.quantity > 0) != (signed > 0):  # reduces: realize P&L
            closed = min(abs(signed), abs(h.quantity))
            pnl = closed * (price - h.entry) * (1 if h.quantity > 0 else -1)
            self.realized[spec.name] = self.realized.get(spec.name, 0.0) + pnl
            self.guard.record_trade(spec.name, pnl)
            remaining = h.quantity + signed
            if abs(remaining) < 1e-12:
                h.quantity, h.entry = 0.0, 0.0
            elif (remaining > 0) != (h.quantity > 0):  # flipped through zero
                h.quantity, h.entry = remaining, price
            else:
                h.quantity = remaining
        else:
            total = h.quantity + signed
            h.entry = (h.entry * h.quantity + price * signed) / total if total else 0.0
            h.quantity = total
