"""The emergency stop's hard cases, found by review: each one could have left a book open."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import pytest

from tests.conftest import MakeConfig, MakeGuard
from tests.emergency_support import fake_sleep
from tradeguard import Guard, Order, PermissionDenied, PortfolioState
from tradeguard.emergency import EmergencyStop, StopPolicy
from tradeguard.testing import FakeClock
from tradeguard.venues import Faults, SimulatedVenue, VenuePosition


class Hanging(SimulatedVenue):
    """positions() never answers the first ``hangs`` times."""

    hangs = 2

    async def positions(self, strategy_id: str | None = None) -> list[VenuePosition]:
        if self.hangs:
            self.hangs -= 1
            await asyncio.Event().wait()
        return await super().positions(strategy_id)


class Broken(SimulatedVenue):
    """Raises something that is not a VenueError, twice."""

    fails = 2

    async def positions(self, strategy_id: str | None = None) -> list[VenuePosition]:
        if self.fails:
            self.fails -= 1
            raise ConnectionResetError("socket closed under us")
        return await super().positions(strategy_id)


def coordinator(venues: list[Any], clock: FakeClock, **kw: Any) -> EmergencyStop:
    wanted = kw.pop("still_wanted", None)
    return EmergencyStop(
        venues, clock=clock, policy=StopPolicy(**kw), sleep=fake_sleep(clock), still_wanted=wanted
    )


def run(stop: EmergencyStop) -> Any:
    return asyncio.run(stop.run(run_id="r", reason="test"))


class TestCoordinator:
    def test_call_when_venue_hangs_then_timed_out_and_retried_until_flat(
        self, clock: FakeClock
    ) -> None:
        """A call that never answers is a timeout, not a stop that hangs forever."""
        v = Hanging("h", prices={"BTC": 1.0}, clock=clock)
        v.set_position("BTC", 2.0)
        report = run(coordinator([v], clock, call_timeout=0.05))
        assert report.flat
        assert sum("no answer" in e for e in report.venues[0].errors) == 2

    def test_round_when_unexpected_exception_then_retried_not_fatal(self, clock: FakeClock) -> None:
        """Any exception is retried: the stop's job is to get flat, not to be right about why."""
        v = Broken("b", prices={"BTC": 1.0}, clock=clock)
        v.set_position("BTC", 2.0)
        report = run(coordinator([v], clock))
        assert report.flat and "ConnectionResetError" in report.venues[0].errors[0]

    def test_run_when_halt_lifted_mid_stop_then_abandoned_without_escalation(
        self, clock: FakeClock
    ) -> None:
        """Once a person lifts the halt, the old stop closes nothing more and escalates nothing."""
        v = SimulatedVenue(
            "v", prices={"BTC": 1.0}, clock=clock, faults=Faults(down_until=float("inf"))
        )
        v.set_position("BTC", 2.0)
        rounds = {"n": 0}

        def wanted(scope: str) -> bool:
            rounds["n"] += 1
            return rounds["n"] <= 3

        steps: list[str] = []
        stop = EmergencyStop(
            [v],
            clock=clock,
            policy=StopPolicy(deadline_seconds=30),
            sleep=fake_sleep(clock),
            on_step=lambda k, _d: steps.append(k),
            still_wanted=wanted,
        )
        report = asyncio.run(stop.run(run_id="r", reason="t"))
        assert not report.flat and "abandoned" in steps and "escalated" not in steps
        assert report.venues[0].errors[-1] == "abandoned: the halt was lifted"

    def test_backoff_when_every_close_rejected_then_it_grows(self, clock: FakeClock) -> None:
        """Sending and failing is not progress: retries slow down instead of hammering."""
        v = SimulatedVenue("v", prices={"BTC": 1.0}, clock=clock)
        v.set_position("BTC", 2.0)
        v.faults = Faults(scripted=deque(["reject"] * 10_000))
        report = run(coordinator([v], clock, deadline_seconds=60, give_up_seconds=60))
        assert not report.flat and report.venues[0].rounds < 50

    def test_venues_when_attached_later_then_share_locks_and_are_included(
        self, clock: FakeClock
    ) -> None:
        """The coordinator reads the guard's venue list: one attached later is stopped too."""
        venues: list[SimulatedVenue] = [SimulatedVenue("a", prices={"BTC": 1.0}, clock=clock)]
        stop = coordinator(venues, clock)  # type: ignore[arg-type]
        late = SimulatedVenue("b", prices={"BTC": 1.0}, clock=clock)
        late.set_position("BTC", 1.0)
        venues.append(late)
        report = run(stop)
        assert [r.venue for r in report.venues] == ["a", "b"] and report.flat


class TestGuardKeepsStopping:
    def test_venue_when_attached_during_hard_halt_then_next_tick_flattens_it(
        self, make_config: MakeConfig, clock: FakeClock
    ) -> None:
        """A venue that joins a halted book is taken flat by the breaker's next tick."""
        guard = Guard(make_config(), clock=clock, sleep=fake_sleep(clock))
        try:
            first = SimulatedVenue("a", prices={"BTC": 1.0}, clock=clock)
            guard.add_venue(first)
            guard.portfolio_close("trader1")
            guard.flush()
            late = SimulatedVenue("b", prices={"BTC": 1.0}, clock=clock)
            late.set_position("BTC", 4.0)
            guard.add_venue(late)
            guard.tick()
            assert guard.flush(timeout=30)
            assert asyncio.run(late.positions()) == []
        finally:
            guard.close()

    def test_stop_when_it_gave_up_then_tick_tries_again_until_flat(
        self, make_config: MakeConfig, clock: FakeClock
    ) -> None:
        """Giving up is not final: while the book is halted, the tick starts another stop."""
        guard = Guard(
            make_config(emergency={"deadline_seconds": 5, "give_up_seconds": 10}),
            clock=clock,
            sleep=fake_sleep(clock),
        )
        try:
            v = SimulatedVenue(
                "v", prices={"BTC": 1.0}, clock=clock, faults=Faults(down_until=clock.time() + 60)
            )
            v.set_position("BTC", 2.0)
            guard.add_venue(v)
            guard.portfolio_close("trader1")
            guard.flush()
            assert guard.status()["emergency_stop"]["last"]["flat"] is False
            clock.advance(60)
            guard.tick()
            assert guard.flush(timeout=30)
            assert guard.status()["emergency_stop"]["last"]["flat"] is True
        finally:
            guard.close()

    def test_emergency_stop_when_no_venue_then_not_claimed_flat(self, guard: Guard) -> None:
        """With nothing attached nothing was verified, and the report does not say flat."""
        report = asyncio.run(guard.emergency_stop(initiator="trader1"))
        assert report.flat is False and report.reason == "no venues attached"


class TestOrdersAndLimits:
    @pytest.mark.parametrize(
        "order",
        [
            Order(None, "BTC", "buy", 1.0, 1.0),
            Order("s1 ", "BTC", "buy", 1.0, 1.0),
            Order(["s1"], "BTC", "buy", 1.0, 1.0),
            Order("s1", "BTC", "buy", 1.0, float("nan")),
        ],
    )  # type: ignore[arg-type]
    def test_check_order_when_unjudgeable_then_refused(self, guard: Guard, order: Order) -> None:
        """A strategy id that is not an id, or a price that is not a price, is refused."""
        decision = guard.check_order(order)
        assert (decision.accepted, decision.check) == (False, "bounds")

    def test_set_limit_when_other_process_declared_emergency_then_frozen(
        self, make_guard: MakeGuard
    ) -> None:
        """The freeze follows the store, not only this process's memory."""
        here, there = make_guard(), make_guard()
        there.emergency("trader1")
        with pytest.raises(PermissionDenied, match="lockdown"):
            here.set_limit("portfolio_drawdown", "risk1", limit=0.5)
        assert here.portfolio_state is PortfolioState.EMERGENCY
