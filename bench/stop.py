"""Emergency stop figures: flatten 1,000 positions over 5 venues with 20 ms per call, and a full
emergency stop (halt + cancel + flatten + verify) through the guard, with and without faults.

Real time, real asyncio: the simulated venues sleep their latency on every call.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from typing import Any

from tradeguard import Guard
from tradeguard.config import parse_config
from tradeguard.emergency import EmergencyStop
from tradeguard.venues import Faults, Side, SimulatedVenue

VENUES, POSITIONS, LATENCY = 5, 1_000, 0.020


def _venues(faulty: bool, seed: int) -> list[SimulatedVenue]:
    venues = []
    per_venue = POSITIONS // VENUES
    for n in range(VENUES):
        v = SimulatedVenue(
            f"venue{n}",
            prices={f"S{i}": 100.0 + i for i in range(per_venue)},
            rate_limit=2_000,
            seed=seed + n,
        )
        for i in range(per_venue):
            v.set_position(f"S{i}", (i % 7 + 1) * (1 if i % 2 else -1), strategy_id=f"st{i % 10}")
        for i in range(20):  # resting orders to cancel
            asyncio.run(
                v.submit_order(
                    symbol=f"S{i}",
                    side=Side.BUY,
                    quantity=1,
                    price=1.0,
                    client_order_id=f"rest{i}",
                    strategy_id="st0",
                )
            )
        v.latency = LATENCY  # set-up done: every call from here on costs 20 ms
        if faulty:
            v.faults = Faults(
                timeout_rate=0.05, reject_rate=0.05, partial_fill_rate=0.1, disconnect_rate=0.02
            )
        venues.append(v)
    return venues


def flatten_once(faulty: bool, seed: int) -> float:
    venues = _venues(faulty, seed)
    coordinator = EmergencyStop(venues, clock=_WallClock())
    start = time.perf_counter()
    report = asyncio.run(coordinator.run(run_id=f"b{seed}", reason="bench"))
    elapsed = time.perf_counter() - start
    assert report.flat, "the bench must end flat"
    return elapsed


def full_stop_once(faulty: bool, seed: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config({"users": {"ops": "admin"}, "state": {"path": f"{tmp}/b.db"}})
        guard = Guard(config)
        for v in _venues(faulty, seed):
            guard.add_venue(v)
        start = time.perf_counter()
        report = asyncio.run(guard.emergency_stop(initiator="ops", reason="bench"))
        elapsed = time.perf_counter() - start
        guard.close()
    assert report.flat, "the bench must end flat"
    return elapsed


class _WallClock:
    def time(self) -> float:
        return time.time()


def run(repeats: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, fn in (("flatten", flatten_once), ("full_stop", full_stop_once)):
        for faulty in (False, True):
            samples = [fn(faulty, seed) for seed in range(repeats)]
            samples.sort()
            results[f"{name}{'_faults' if faulty else ''}"] = {
                "p50_s": samples[len(samples) // 2],
                "p99_s": samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))],
                "runs": repeats,
            }
    return results
