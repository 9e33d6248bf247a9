"""The 8-point pre-trade check, per call, on a realistic mix: about 80% accepted, the rest
refused by bounds (fat finger), limits, the kill switch (a halted strategy) or dedup. Each
accepted order is then reported closed (filled), as an integration does; that call is not
timed.

Two arrival patterns. Flat out (``rate=None``): the wall clock, orders back to back (about
100,000 a second) with the rate limits lifted, so the dedup and client-id memories hold tens
of thousands of entries. At a rate: an injected clock steps a Poisson gap before each order
(not timed), under the default rate limits (500 orders/s across all strategies): the state a
deployment can reach, since the rate check caps what is accepted."""

from __future__ import annotations

import random
import tempfile
import time
from typing import Any

from tradeguard import Guard, Order
from tradeguard.config import parse_config
from tradeguard.testing import FakeClock

_LIFTED = {
    "per_strategy": 1e6,
    "per_strategy_burst": 1_000_000,
    "total": 1e7,
    "total_burst": 10_000_000,
}


def latency(calls: int, rate: float | None = None) -> dict[str, Any]:
    """``rate``: mean orders per second on an injected clock; None: flat out, wall clock."""
    clock = None if rate is None else FakeClock()
    pretrade: dict[str, Any] = {"limits": {"max_position_notional": 5_000_000}}
    if rate is None:
        pretrade["rate"] = _LIFTED
    with tempfile.TemporaryDirectory() as tmp:
        guard = Guard(
            parse_config(
                {"users": {"ops": "trader"}, "state": {"path": f"{tmp}/b.db"}, "pretrade": pretrade}
            ),
            clock=clock,
        )
        guard.update_portfolio(equity=100_000_000)
        symbols = [f"S{i}" for i in range(50)]
        guard.update_prices({s: 100.0 + i for i, s in enumerate(symbols)})
        strategies = [f"st{i}" for i in range(100)]
        for i, sid in enumerate(strategies):
            guard.update_position(sid, symbols[i % 50], 100.0, 100.0 + i % 50)
        guard.halt_strategy("st99", "ops", "bench: some orders meet a halted strategy")
        rng = random.Random(1)
        orders = []
        reused = calls - calls // 10  # the last tenth reuses ids: refused where one strategy did
        for n in range(calls):
            sid, index = strategies[rng.randrange(100)], rng.randrange(50)
            price, quantity = 100.0 + index, 1.0 + n % 97
            kind = rng.random()
            if kind < 0.10:
                price *= 1.5  # outside the 10% collar: bounds
            elif kind < 0.15:
                quantity = 20_000.0  # past the 1,000,000 max order notional: limits
            orders.append(
                Order(
                    sid,
                    symbols[index],
                    "buy" if n % 2 else "sell",
                    quantity,
                    price,
                    client_order_id=f"c{n % reused}",
                )
            )
        samples = []
        accepted = 0
        for o in orders:
            if clock is not None and rate is not None:
                clock.advance(rng.expovariate(rate))
            start = time.perf_counter_ns()
            decision = guard.check_order(o)
            samples.append(time.perf_counter_ns() - start)
            accepted += decision.accepted
            if decision.accepted and o.client_order_id is not None:
                guard.order_closed(o.strategy_id, o.client_order_id)  # filled (not timed)
        guard.close()
    samples.sort()
    return {
        "p50_us": samples[len(samples) // 2] / 1e3,
        "p99_us": samples[int(0.99 * (len(samples) - 1))] / 1e3,
        "accepted_share": accepted / calls,
        "calls": calls,
        "rate": rate,
        "refused_by": dict(guard.refusals),
    }
