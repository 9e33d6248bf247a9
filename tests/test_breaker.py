"""The circuit-breaker thread and its tick: the backstop that re-applies every rule."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from tests.conftest import MakeGuard, MakeParts
from tradeguard import Guard, PortfolioState, StrategyState, TickResult
from tradeguard.periodic import Periodic
from tradeguard.testing import FakeClock


class TestTick:
    def test_tick_when_feed_goes_quiet_then_soft_halt_only_past_limit(
        self, guard: Guard, clock: FakeClock
    ) -> None:
        """No event arrives for a silent feed: only the tick can see it, at the limit's edge."""
        guard.update_prices({"BTC": 100.0, "ETH": 10.0})
        clock.advance(30)
        guard.tick()
        assert guard.portfolio_state is PortfolioState.NORMAL
        clock.advance(0.5)
        result = guard.tick()
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        assert [b.rule for b in result.breaches] == ["feed_stale"]

    def test_tick_when_agent_stops_beating_then_that_agent_halted(
        self, guard: Guard, clock: FakeClock
    ) -> None:
        """A stuck agent is halted; its neighbours are not."""
        guard.heartbeat("a1")
        guard.heartbeat("a2")
        clock.advance(200)
        guard.heartbeat("a2")
        clock.advance(101)
        guard.tick()
        assert guard.strategy_state("a1") is StrategyState.HALTED
        assert guard.strategy_state("a2") is StrategyState.ACTIVE
        assert "stuck" in guard.status()["strategies"]["a1"]["reason"]

    def test_tick_when_source_reports_breach_then_acted_on(self, guard: Guard) -> None:
        """A metrics source is re-read on every tick, like the seed's engines."""
        readings: list[Mapping[str, Any]] = [
            {"portfolio": {"drawdown": 0.01}},
            {"portfolio": {"drawdown": 0.25}, "strategies": {"s1": {"consecutive_losses": 9}}},
        ]
        guard.register_metrics_source("engine", lambda: readings.pop(0))
        guard.tick()
        assert guard.portfolio_state is PortfolioState.NORMAL
        guard.tick()
        assert guard.portfolio_state is PortfolioState.HARD_HALT
        assert guard.strategy_state("s1") is StrategyState.HALTED

    def test_tick_when_source_raises_then_fails_closed(self, guard: Guard) -> None:
        """A source that cannot be read is a blind spot: the portfolio soft-halts."""

        def broken() -> Mapping[str, Any]:
            raise ConnectionError("engine unreachable")

        guard.register_metrics_source("engine", broken)
        result = guard.tick()
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        assert "engine unreachable" in guard.status()["portfolio"]["reason"]
        assert result.errors and "engine" in result.errors[0]

    @pytest.mark.parametrize(
        "reading", [None, [], {"portfolio": {"drawdown": float("nan")}}, {"portfolios": {}}]
    )
    def test_tick_when_source_returns_garbage_then_fails_closed(
        self, guard: Guard, reading: Any
    ) -> None:
        """A malformed or NaN reading halts instead of being ignored."""
        guard.register_metrics_source("engine", lambda: reading)
        guard.tick()
        assert guard.portfolio_state is PortfolioState.SOFT_HALT

    def test_tick_when_run_then_published_and_recorded(self, guard: Guard) -> None:
        """Each tick's result goes to breaker_tick callbacks and into status."""
        seen: list[TickResult] = []
        guard.register_callback("breaker_tick", seen.append)
        result = guard.tick()
        guard.flush()
        assert seen == [result]
        assert guard.status()["breaker"]["last_tick"] is not None

    def test_rules_when_evaluated_by_tick_then_same_as_event_path(
        self, make_parts: MakeParts, clock: FakeClock, tmp_path: Any
    ) -> None:
        """The tick holds no logic of its own: a breach missed by no event is the same breach."""
        parts = make_parts()
        parts.intake.update_strategy_metrics("s1", max_drawdown=0.051)
        event_reason = parts.status.snapshot()["strategies"]["s1"]["reason"]
        parts.commands.resume_strategy("s1", "senior1", "manual resume")
        assert parts.status.snapshot()["strategies"]["s1"]["state"] == "active"
        with parts.core.book.lock:  # the ledger as the event left it, but never evaluated
            parts.intake.ledger.strategy("s1").drawdown = 0.051  # as if the event had been lost
        parts.backstop.tick()
        assert parts.status.snapshot()["strategies"]["s1"]["reason"] == event_reason


class TestThread:
    def test_thread_when_started_then_ticks_until_stopped(self, make_guard: MakeGuard) -> None:
        """start_monitoring runs ticks on a daemon thread; stop ends it."""
        guard = make_guard(breaker={"interval_seconds": 0.01})
        ticked = threading.Event()
        guard.register_callback("breaker_tick", lambda _: ticked.set())
        asyncio.run(guard.start_monitoring())
        assert ticked.wait(timeout=10)
        assert guard.status()["breaker"]["running"] is True
        guard.stop()
        assert guard.status()["breaker"]["running"] is False

    def test_thread_when_tick_raises_then_keeps_running(self) -> None:
        """One failing tick does not kill the backstop."""
        calls: list[int] = []
        second = threading.Event()

        def tick() -> None:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("boom")
            second.set()

        breaker = Periodic(tick, interval=0.01)
        breaker.start()
        try:
            assert second.wait(timeout=10)
            assert breaker.running
        finally:
            breaker.stop()

    def test_thread_when_started_then_is_daemon(self, make_guard: MakeGuard) -> None:
        """A daemon thread never keeps a finished trading process alive."""
        guard = make_guard()
        guard.start()
        threads = [t for t in threading.enumerate() if t.name == "tradeguard-breaker"]
        guard.stop()
        assert threads and all(t.daemon for t in threads)
