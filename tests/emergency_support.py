"""Builders shared by the emergency-stop tests: venues with positions and resting orders."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tradeguard.testing import FakeClock
from tradeguard.venues import Faults, Side, SimulatedVenue

PRICES = {"BTC": 60_000.0, "ETH": 3_000.0, "SOL": 150.0}


def fake_sleep(clock: FakeClock) -> Callable[[float], Awaitable[None]]:
    """Backoff that moves simulated time instead of waiting for it."""

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await asyncio.sleep(0)

    return sleep


def venue(
    name: str, clock: FakeClock, faults: Faults | None = None, **kw: object
) -> SimulatedVenue:
    v = SimulatedVenue(
        name, prices=PRICES, clock=clock, faults=faults, sleep=fake_sleep(clock), **kw
    )  # type: ignore[arg-type]
    return v


def book(
    v: SimulatedVenue, positions: dict[tuple[str | None, str], float], resting: int = 2
) -> None:
    """Seed positions and some resting limit orders far from the market."""
    for (sid, symbol), qty in positions.items():
        v.set_position(symbol, qty, strategy_id=sid)
    for i in range(resting):
        asyncio.run(
            v.submit_order(
                symbol="BTC",
                side=Side.BUY,
                quantity=1.0,
                price=1.0,
                client_order_id=f"rest-{v.name}-{i}",
                strategy_id="mom" if i % 2 else "arb",
            )
        )


def never_flipped(v: SimulatedVenue, initial: dict[tuple[str | None, str], float]) -> bool:
    """Every fill left the position on its original side or at zero."""
    for sid, symbol, _qty, after in v.fills:
        start = initial.get((sid, symbol), 0.0)
        if (start > 0 and after < -1e-9) or (start < 0 and after > 1e-9):
            return False
    return True
