"""Guard core figures: trigger -> halt effective, trigger -> halt durable, updates per second.

Effective is measured at the moment the store's commit begins: by then the in-memory state has
flipped (checked on every sample), so the next pre-trade check already rejects. Durable is when
the call returns, after SQLite committed with synchronous=FULL on a real file.
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tradeguard import Guard, StrategyState
from tradeguard.audit import AuditEntry, AuditRecord
from tradeguard.config import Triggers, parse_config
from tradeguard.ledger import Journal, Ledger, NoJournal
from tradeguard.store import Approval, Rung, SqliteStore, StateWrite
from tradeguard.store.journal import BaselineJournal, Snapshot


class TimedStore(SqliteStore):
    """A real SQLite store that notes when a commit begins."""

    guard: Guard | None = None
    watched: str = ""
    commit_started: float = 0.0
    flipped_before_commit: bool = True

    def commit(
        self,
        *,
        states: Sequence[StateWrite] = (),
        audit: Sequence[AuditEntry] = (),
        approvals: Sequence[Approval] = (),
        rungs: Sequence[Rung] = (),
    ) -> list[AuditRecord]:
        self.commit_started = time.perf_counter()
        if self.guard is not None and self.watched:
            halted = self.guard.strategy_state(self.watched) is StrategyState.HALTED
            self.flipped_before_commit &= halted
        return super().commit(states=states, audit=audit, approvals=approvals, rungs=rungs)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def halt_latency(samples: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        store = TimedStore(Path(tmp) / "bench.db")
        config = parse_config({"state": {"path": str(Path(tmp) / "bench.db")}})
        guard = Guard(config, store=store)
        store.guard = guard
        effective, durable = [], []
        for i in range(samples):
            sid = f"s{i}"
            guard.update_strategy_metrics(sid, max_drawdown=0.01)
            store.watched = sid
            start = time.perf_counter()
            guard.update_strategy_metrics(sid, max_drawdown=0.06)
            end = time.perf_counter()
            effective.append(store.commit_started - start)
            durable.append(end - start)
        ok = store.flipped_before_commit
        if guard.portfolio_state != "normal":  # a failing store: the figures would be noise
            raise RuntimeError(f"the bench's guard locked down: {guard.status()['portfolio']}")
        guard.close()
    return {
        "effective_p50_ms": percentile(effective, 0.5) * 1e3,
        "effective_p99_ms": percentile(effective, 0.99) * 1e3,
        "durable_p50_ms": percentile(durable, 0.5) * 1e3,
        "durable_p99_ms": percentile(durable, 0.99) * 1e3,
        "samples": samples,
        "halt_in_memory_before_commit": ok,
    }


def price_rate(updates: int) -> float:
    """Price snapshots per second when no strategy holds the symbols (correlation, volatility)."""
    with tempfile.TemporaryDirectory() as tmp:
        guard = Guard(parse_config({"state": {"path": str(Path(tmp) / "bench.db")}}))
        guard.update_portfolio(equity=10_000_000)
        start = time.perf_counter()
        for i in range(updates):
            guard.update_prices({"BTC": 60_000.0 + (i % 7), "ETH": 3_000.0 + (i % 5)})
        rate = updates / (time.perf_counter() - start)
        guard.close()
    return rate


def update_rate(updates: int, strategies: int = 100) -> dict[str, float]:
    """Updates per second through the full path (validate, ledger, rules), none breaching."""
    with tempfile.TemporaryDirectory() as tmp:
        guard = Guard(parse_config({"state": {"path": str(Path(tmp) / "bench.db")}}))
        ids = [f"s{i}" for i in range(strategies)]
        guard.update_portfolio(equity=10_000_000)
        for sid in ids:
            guard.update_position(sid, "BTC", 0.1, 60_000.0)
        rates: dict[str, float] = {}

        def measure(name: str, call: Any) -> None:
            start = time.perf_counter()
            for i in range(updates):
                call(i)
            rates[name] = updates / (time.perf_counter() - start)

        measure(
            "update_strategy_metrics",
            lambda i: guard.update_strategy_metrics(
                ids[i % strategies], max_drawdown=0.01, consecutive_losses=1
            ),
        )
        measure(
            "record_trade",
            lambda i: guard.record_trade(ids[i % strategies], 1.0 if i % 3 else -1.0),
        )
        measure(
            "update_position",
            lambda i: guard.update_position(ids[i % strategies], "ETH", 1 + i % 5, 3_000.0),
        )
        measure(
            f"update_prices (2 symbols, {strategies} strategies hold them)",
            lambda i: guard.update_prices({"BTC": 60_000.0 + (i % 7), "ETH": 3_000.0 + (i % 5)}),
        )
        assert guard.status()["portfolio"]["state"] == "normal", "the bench must not breach"
        guard.close()
    return rates


def journal_cost(updates: int, repeats: int = 5) -> dict[str, float]:
    """What the baselines journal adds to the ledger's hot path: ``record_trade`` on 100
    strategies without a journal and with one, in turns, best CPU time of ``repeats``."""
    ledger = Ledger(Triggers())
    ids = [f"s{i}" for i in range(100)]
    with tempfile.TemporaryDirectory() as tmp:
        journal = BaselineJournal(
            Path(tmp) / "bench.db",
            lambda: Snapshot(ledger.baselines(), ledger.velocity_samples()),
            threading.RLock(),
        )
        best: dict[str, float] = {"without": math.inf, "with": math.inf}
        ways: dict[str, Journal] = {"without": NoJournal(), "with": journal}
        for _ in range(repeats):
            for name, way in ways.items():
                ledger.journal = way
                start = time.process_time()
                for i in range(updates):
                    ledger.record_trade(ids[i % 100], 1.0 if i % 3 else -1.0)
                best[name] = min(best[name], (time.process_time() - start) / updates)
            journal.sync()
        journal.close()
    return {
        "without_us": best["without"] * 1e6,
        "with_us": best["with"] * 1e6,
        "added_us": (best["with"] - best["without"]) * 1e6,
    }
