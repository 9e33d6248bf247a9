"""The venue protocol: the small async surface the emergency stop needs from an exchange.

Small on purpose, so a ccxt, FIX or broker adapter can implement it: list and cancel orders,
list positions, submit an order (reduce-only for closing). Quantities are signed floats for
positions (short < 0) and positive floats for orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tradeguard.errors import TradeguardError
from tradeguard.model import Side


class VenueError(TradeguardError):
    """A venue call failed; the emergency stop retries it with backoff."""


class VenueTimeout(VenueError):
    """No answer in time: the request may or may not have been applied."""


class OrderRejected(VenueError):
    """The venue refused the order; nothing was applied."""


class VenueDown(VenueError):
    """Disconnected or unavailable; nothing was applied."""


@dataclass(frozen=True, slots=True)
class VenueOrder:
    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    quantity: float
    filled: float
    price: float | None  # None: market order
    reduce_only: bool
    strategy_id: str | None
    status: str  # open | filled | cancelled | rejected

    @property
    def remaining(self) -> float:
        return self.quantity - self.filled


@dataclass(frozen=True, slots=True)
class VenuePosition:
    symbol: str
    quantity: float  # signed: long > 0, short < 0
    strategy_id: str | None = None  # set where the venue keeps sub-accounts per strategy


class Venue(Protocol):
    name: str
    rate_limit: float  # requests per second the venue accepts

    async def open_orders(self, strategy_id: str | None = None) -> list[VenueOrder]: ...

    async def cancel_order(self, order_id: str) -> None: ...

    async def cancel_all(self, strategy_id: str | None = None) -> int:
        """Cancel every open order (of one strategy); returns how many were cancelled."""
        ...

    async def positions(self, strategy_id: str | None = None) -> list[VenuePosition]: ...

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
        """Place an order; a repeated client_order_id is rejected (idempotent retries)."""
        ...


__all__ = [
    "OrderRejected",
    "Side",
    "Venue",
    "VenueDown",
    "VenueError",
    "VenueOrder",
    "VenuePosition",
    "VenueTimeout",
]
