"""A simulated venue: no order book, market orders fill at the current price, faults on demand.

It is the embedded default for the demo, the tests and the bench, so it behaves like the real
thing where the emergency stop cares: latency on every call, a rate limit it enforces, reduce-
only orders that can never flip a position, duplicate client order ids refused, and injected
faults (timeouts that may or may not have applied, rejects, partial fills, disconnects, a venue
that is down until a given time). With ``journal`` set, its state survives the process, so a
crash test can kill the guard mid-flatten and find the venue as it was.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tradeguard.clock import Clock, SystemClock
from tradeguard.venues.base import (
    OrderRejected,
    Side,
    VenueDown,
    VenueError,
    VenueOrder,
    VenuePosition,
    VenueTimeout,
)

EPSILON = 1e-9


@dataclass
class Faults:
    """What goes wrong, by probability (seeded) or scripted for the next submits, in order."""

    timeout_rate: float = 0.0
    timeout_applied_rate: float = 0.5  # share of submit timeouts where the order did go through
    reject_rate: float = 0.0
    partial_fill_rate: float = 0.0
    partial_fill_ratio: float = 0.5
    disconnect_rate: float = 0.0
    down_until: float | None = None  # clock time; every call fails with VenueDown before it
    scripted: deque[str] = field(default_factory=deque)  # "timeout", "timeout_applied",
    # "reject", "partial", "disconnect": consumed one per submit_order call


class SimulatedVenue:
    def __init__(
        self,
        name: str,
        *,
        prices: dict[str, float] | None = None,
        latency: float = 0.0,
        rate_limit: float = 1_000.0,
        faults: Faults | None = None,
        seed: int = 0,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        journal: Path | None = None,
    ) -> None:
        self.name = name
        self.rate_limit = rate_limit
        self.latency = latency
        self.faults = faults if faults is not None else Faults()
        self.prices: dict[str, float] = dict(prices or {})
        self._clock = clock if clock is not None else SystemClock()
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._calls: deque[float] = deque()
        self._ids = itertools.count(1)
        self._orders: dict[str, VenueOrder] = {}
        self._client_ids: set[str] = set()
        self._positions: dict[tuple[str | None, str], float] = {}
        self.fills: list[tuple[str | None, str, float, float]] = []  # strategy, symbol, qty, after
        self.calls = 0
        self._journal = journal
        if journal is not None and journal.exists():
            self._load(journal)

    # -- the protocol ---------------------------------------------------------------------

    async def open_orders(self, strategy_id: str | None = None) -> list[VenueOrder]:
        await self._enter()
        return [o for o in self._orders.values() if o.status == "open" and _mine(o, strategy_id)]

    async def cancel_order(self, order_id: str) -> None:
        await self._enter()
        self._roll_timeout()
        order = self._orders.get(order_id)
        if order is None or order.status != "open":
            raise OrderRejected(f"{self.name}: no open order {order_id}")
        self._orders[order_id] = replace(order, status="cancelled")
        self._save()

    async def cancel_all(self, strategy_id: str | None = None) -> int:
        await self._enter()
        self._roll_timeout()
        cancelled = 0
        for oid, order in self._orders.items():
            if order.status == "open" and _mine(order, strategy_id):
                self._orders[oid] = replace(order, status="cancelled")
                cancelled += 1
        self._save()
        return cancelled

    async def positions(self, strategy_id: str | None = None) -> list[VenuePosition]:
        await self._enter()
        return [
            VenuePosition(symbol, qty, sid)
            for (sid, symbol), qty in sorted(self._positions.items(), key=_key)
            if abs(qty) > EPSILON and (strategy_id is None or sid == strategy_id)
        ]

    async def submit_order(
        self,
        *,
        symbol: str,
        side: Side,
        quantity: float,
        client_order_id: str,
        reduce_only: bool = False,
        price: float | None = None,
        strategy_id: str | None = None,
    ) -> VenueOrder:
        await self._enter()
        fault = self._submit_fault()
        if fault == "disconnect":
            raise VenueDown(f"{self.name}: connection reset")
        if fault == "timeout":
            raise VenueTimeout(f"{self.name}: submit timed out")
        if fault == "reject":
            raise OrderRejected(f"{self.name}: rejected by venue risk check")
        if client_order_id in self._client_ids:
            raise OrderRejected(f"{self.name}: duplicate client order id {client_order_id}")
        if not quantity > 0:
            raise OrderRejected(f"{self.name}: quantity must be > 0")
        draft = VenueOrder(
            f"{self.name}-{next(self._ids)}",
            client_order_id,
            symbol,
            side,
            quantity,
            0.0,
            price,
            reduce_only,
            strategy_id,
            "open",
        )
        order = self._place(draft, partial=fault == "partial")
        if fault == "timeout_applied":
            raise VenueTimeout(f"{self.name}: submit timed out (the order went through)")
        return order

    # -- the simulation -------------------------------------------------------------------

    def set_position(self, symbol: str, quantity: float, strategy_id: str | None = None) -> None:
        """Seed a position directly (tests, bench, demo set-up)."""
        self._positions[(strategy_id, symbol)] = quantity
        self._save()

    def mark(self, prices: dict[str, float]) -> None:
        """New prices: resting limit orders that cross fill."""
        self.prices.update(prices)
        for oid, order in list(self._orders.items()):
            if order.status != "open" or order.price is None:
                continue
            last = self.prices.get(order.symbol)
            if last is None:
                continue
            crosses = last <= order.price if order.side is Side.BUY else last >= order.price
            if crosses:
                self._orders[oid] = self._fill(order, order.remaining, order.price)
        self._save()

    def net_position(self, symbol: str, strategy_id: str | None = None) -> float:
        return self._positions.get((strategy_id, symbol), 0.0)

    def _place(self, order: VenueOrder, *, partial: bool) -> VenueOrder:
        current = self._positions.get((order.strategy_id, order.symbol), 0.0)
        if order.reduce_only:
            closing = (order.side is Side.SELL and current > EPSILON) or (
                order.side is Side.BUY and current < -EPSILON
            )
            if not closing:
                raise OrderRejected(
                    f"{self.name}: reduce-only {order.side} would not reduce {order.symbol}"
                )
            order = replace(order, quantity=min(order.quantity, abs(current)))  # never flips
        self._client_ids.add(order.client_order_id)
        if order.price is None:
            mark = self.prices.get(order.symbol)
            if mark is None:
                raise OrderRejected(f"{self.name}: no price for {order.symbol}")
            fill = order.quantity * self.faults.partial_fill_ratio if partial else order.quantity
            order = self._fill(order, fill, mark)
            if order.remaining > EPSILON:  # a market order's unfilled rest is cancelled
                order = replace(order, status="cancelled")
        self._orders[order.order_id] = order
        self._save()
        return order

    def _fill(self, order: VenueOrder, quantity: float, price: float) -> VenueOrder:
        key = (order.strategy_id, order.symbol)
        signed = quantity if order.side is Side.BUY else -quantity
        after = self._positions.get(key, 0.0) + signed
        self._positions[key] = 0.0 if abs(after) <= EPSILON else after
        self.fills.append((order.strategy_id, order.symbol, signed, self._positions[key]))
        filled = order.filled + quantity
        status = "filled" if filled >= order.quantity - EPSILON else "open"
        return replace(order, filled=filled, status=status)

    async def _enter(self) -> None:
        """Latency, rate limit, outage and disconnects: what every call goes through."""
        self.calls += 1
        if self.latency:
            await self._sleep(self.latency)
        now = self._clock.time()  # its own clock, so a stop paced on simulated time is judged on it
        while self._calls and self._calls[0] <= now - 1.0:  # a call a second old is out
            self._calls.popleft()
        if len(self._calls) >= self.rate_limit:
            raise VenueError(f"{self.name}: 429 rate limit of {self.rate_limit:g}/s exceeded")
        self._calls.append(now)
        down = self.faults.down_until
        if down is not None and self._clock.time() < down:
            raise VenueDown(f"{self.name}: venue unavailable")
        if self.faults.disconnect_rate and self._rng.random() < self.faults.disconnect_rate:
            raise VenueDown(f"{self.name}: connection reset")

    def _roll_timeout(self) -> None:
        if self.faults.timeout_rate and self._rng.random() < self.faults.timeout_rate:
            raise VenueTimeout(f"{self.name}: request timed out")

    def _submit_fault(self) -> str | None:
        f = self.faults
        if f.scripted:
            return f.scripted.popleft()
        roll = self._rng.random
        if f.timeout_rate and roll() < f.timeout_rate:
            return "timeout_applied" if roll() < f.timeout_applied_rate else "timeout"
        if f.reject_rate and roll() < f.reject_rate:
            return "reject"
        if f.partial_fill_rate and roll() < f.partial_fill_rate:
            return "partial"
        return None

    # -- persistence (crash tests) --------------------------------------------------------

    def _save(self) -> None:
        if self._journal is None:
            return
        state = {
            "orders": [asdict(o) for o in self._orders.values()],
            "client_ids": sorted(self._client_ids),
            "positions": [[sid, sym, qty] for (sid, sym), qty in self._positions.items()],
            "fills": self.fills,
            "next_id": len(self._orders) + 1,
        }
        tmp = self._journal.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self._journal)

    def _load(self, path: Path) -> None:
        state = json.loads(path.read_text())
        for raw in state["orders"]:
            order = VenueOrder(**{**raw, "side": Side(raw["side"])})
            self._orders[order.order_id] = order
        self._client_ids = set(state["client_ids"])
        self._positions = {(sid, sym): qty for sid, sym, qty in state["positions"]}
        self.fills = [(f[0], f[1], f[2], f[3]) for f in state["fills"]]
        self._ids = itertools.count(state["next_id"])


def _mine(order: VenueOrder, strategy_id: str | None) -> bool:
    return strategy_id is None or order.strategy_id == strategy_id


def _key(item: tuple[tuple[str | None, str], float]) -> tuple[str, str]:
    (sid, symbol), _ = item
    return (sid or "", symbol)
