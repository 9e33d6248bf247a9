"""Scaling with the book: a one-symbol price tick and a portfolio equity update against a
strategy metric update, measured side by side in one guard, at 100 / 1,000 / 10,000 strategies.

The book always has ``SYMBOLS`` priced symbols; strategy ``i`` holds symbol ``i // HOLDERS``,
so every ticked symbol has ``HOLDERS`` holders whatever the size of the book. A tick that costs
O(holders of the ticked symbol) is then flat across the sizes; one that costs O(strategies)
or O(symbols^2) is not. Time is a FakeClock that never moves: the figures are the guard's
work, not the feed-staleness rules the passing of time would trip. Each batch is timed in
CPU time of the calling thread: on a shared machine wall time also counts other processes'
turns, and the ratios compare calls made side by side in one thread.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.table import Table

from tradeguard import Guard
from tradeguard.config import parse_config
from tradeguard.testing import FakeClock

SYMBOLS = 1_000
HOLDERS = 10  # strategies holding each ticked symbol
SIZES = (100, 1_000, 10_000)
EQUITY = 10_000_000.0
BATCH = 50  # calls timed together: short, so a pause of the machine spoils few


def book(strategies: int, directory: Path) -> Guard:
    """A guard on a real SQLite file with ``strategies`` strategies over ``SYMBOLS`` symbols."""
    guard = Guard(
        parse_config({"state": {"path": str(directory / "scaling.db")}}),
        clock=FakeClock(1_700_000_000.0),
    )
    guard.update_portfolio(equity=EQUITY)
    guard.update_prices({f"X{n}": 100.0 for n in range(SYMBOLS)})
    for n in range(SYMBOLS):  # a feed of one-symbol ticks: every symbol has had a return
        guard.update_prices({f"X{n}": 100.01})
    for i in range(strategies):
        guard.update_position(f"s{i}", f"X{(i // HOLDERS) % SYMBOLS}", 1.0, 100.0)
    return guard


def rates(strategies: int, updates: int) -> dict[str, float]:
    """Calls per second of each kind: the median over short batches that take turns, so a
    busy machine's pauses fall on every kind alike and on few batches."""
    with tempfile.TemporaryDirectory() as tmp:
        guard = book(strategies, Path(tmp))
        held = max(1, min(SYMBOLS, strategies // HOLDERS))
        calls: dict[str, Callable[[int], None]] = {
            "metric": lambda i: guard.update_strategy_metrics(
                f"s{i % strategies}", max_drawdown=0.01, consecutive_losses=1
            ),
            "tick": lambda i: guard.update_prices({f"X{i % held}": 100.0 + (i % 7) * 0.01}),
            "equity": lambda i: guard.update_portfolio(equity=EQUITY + (i % 5)),
        }
        batches: dict[str, list[float]] = {name: [] for name in calls}
        done = 0
        while done < updates:
            for name, call in calls.items():
                start = time.thread_time()
                for i in range(done, done + BATCH):
                    call(i)
                batches[name].append(BATCH / (time.thread_time() - start))
            done += BATCH
        halted = [s for s, v in guard.status()["strategies"].items() if v["state"] != "active"]
        if guard.portfolio_state != "normal" or halted:
            raise RuntimeError("the scaling bench breached: its figures would be halts")
        guard.close()
    return {name: statistics.median(found) for name, found in batches.items()}


def table(updates: int = 20_000) -> dict[int, dict[str, float]]:
    """Each size's rates and the ratios the issue bounds (tick <= 2x, equity <= 10x a metric
    update's cost)."""
    out: dict[int, dict[str, float]] = {}
    for strategies in SIZES:
        found = rates(strategies, updates)
        found["tick_cost_ratio"] = found["metric"] / found["tick"]
        found["equity_cost_ratio"] = found["metric"] / found["equity"]
        out[strategies] = found
    return out


def render(found: dict[int, dict[str, float]]) -> Table:
    """The table `make bench` prints: rates per size, and each cost as a multiple of a
    strategy metric update's in the same run (targets: tick <= 2x, equity update <= 10x)."""
    table = Table(
        "strategies",
        "metric/s",
        "tick/s",
        "equity/s",
        "tick cost (<= 2x)",
        "equity cost (<= 10x)",
        title=f"scaling: {SYMBOLS:,} symbols, {HOLDERS} holders per ticked symbol, CPU time",
    )
    for strategies, f in found.items():
        table.add_row(
            f"{strategies:,}",
            f"{f['metric']:,.0f}",
            f"{f['tick']:,.0f}",
            f"{f['equity']:,.0f}",
            f"{f['tick_cost_ratio']:.1f}x metric",
            f"{f['equity_cost_ratio']:.1f}x metric",
        )
    return table
