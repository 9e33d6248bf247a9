"""The emergency stop coordinator against simulated venues, fault by fault."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import pytest

from tests.emergency_support import book, fake_sleep, never_flipped, venue
from tradeguard.emergency import EmergencyStop, FlattenReport, StopPolicy
from tradeguard.testing import FakeClock, ScriptedVenue
from tradeguard.venues import Faults, Side, SimulatedVenue, VenueDown

POSITIONS: dict[tuple[str | None, str], float] = {
    ("mom", "BTC"): 2.5,
    ("mom", "ETH"): -40.0,
    ("arb", "SOL"): 300.0,
    (None, "ETH"): 7.0,
}


def stop(
    venues: list[SimulatedVenue],
    clock: FakeClock,
    steps: list[tuple[str, dict[str, Any]]] | None = None,
    **policy: float,
) -> EmergencyStop:
    record = (lambda k, d: steps.append((k, d))) if steps is not None else None
    return EmergencyStop(
        venues, clock=clock, policy=StopPolicy(**policy), sleep=fake_sleep(clock), on_step=record
    )  # type: ignore[arg-type]


def run(
    coordinator: EmergencyStop,
    strategy_id: str | None = None,
    close: bool = True,
    run_id: str = "r1",
) -> FlattenReport:
    return asyncio.run(
        coordinator.run(
            run_id=run_id, reason="test", strategy_id=strategy_id, close_positions=close
        )
    )


async def _all_positions(v: SimulatedVenue) -> list[Any]:
    return await v.positions()


def flat(v: SimulatedVenue) -> bool:
    return asyncio.run(v.positions()) == [] and asyncio.run(v.open_orders()) == []


class TestCleanStop:
    def test_stop_when_venues_healthy_then_cancelled_closed_and_verified_flat(
        self, clock: FakeClock
    ) -> None:
        """Every order is cancelled and every position closed on every venue, then verified."""
        venues = [venue("v1", clock), venue("v2", clock)]
        for v in venues:
            book(v, POSITIONS)
        steps: list[tuple[str, dict[str, Any]]] = []
        report = run(stop(venues, clock, steps))
        assert report.flat and all(flat(v) for v in venues)
        assert [(r.venue, r.cancelled, r.orders_sent) for r in report.venues] == [
            ("v1", 2, 4),
            ("v2", 2, 4),
        ]
        assert all(never_flipped(v, POSITIONS) for v in venues)
        kinds = [k for k, _ in steps]
        assert kinds[0] == "started" and kinds[-1] == "finished"
        assert kinds.count("venue_cancelled") == 2 and kinds.count("venue_flat") == 2

    def test_stop_when_run_twice_then_second_sends_nothing(self, clock: FakeClock) -> None:
        """Idempotent: a second run finds the book flat and sends no order."""
        v = venue("v1", clock)
        book(v, POSITIONS)
        coordinator = stop([v], clock)
        run(coordinator, run_id="a")
        again = run(coordinator, run_id="b")
        assert again.flat and again.venues[0].orders_sent == 0
        assert len(v.fills) == len(POSITIONS)

    def test_stop_when_strategy_scope_and_cancel_policy_then_only_its_orders(
        self, clock: FakeClock
    ) -> None:
        """A strategy stop that only cancels leaves other strategies and all positions alone."""
        v = venue("v1", clock)
        book(v, POSITIONS, resting=4)
        report = run(stop([v], clock), strategy_id="mom", close=False)
        assert report.done and report.venues[0].cancelled == 2
        assert (
            not report.flat
            and report.outcome == "orders cancelled; positions kept: 2 open (BTC, ETH)"
        )
        assert {o.strategy_id for o in asyncio.run(v.open_orders())} == {"arb"}
        assert len(asyncio.run(v.positions())) == len(POSITIONS)

    def test_stop_when_strategy_scope_and_flatten_policy_then_only_its_positions(
        self, clock: FakeClock
    ) -> None:
        """A strategy flatten closes that strategy's positions and nobody else's."""
        v = venue("v1", clock)
        book(v, POSITIONS)
        run(stop([v], clock), strategy_id="mom", close=True)
        left = {(p.strategy_id, p.symbol) for p in asyncio.run(v.positions())}
        assert left == {("arb", "SOL"), (None, "ETH")}


class TestFaults:
    @pytest.mark.parametrize(
        "faults",
        [
            Faults(scripted=deque(["timeout", "timeout", "timeout"])),
            Faults(scripted=deque(["timeout_applied", "timeout_applied", "timeout"])),
            Faults(scripted=deque(["reject", "reject", "reject", "reject"])),
            Faults(scripted=deque(["partial", "partial", "partial", "partial", "partial"])),
            Faults(scripted=deque(["disconnect", "disconnect"])),
            Faults(timeout_rate=0.3, reject_rate=0.2, partial_fill_rate=0.3, disconnect_rate=0.1),
        ],
        ids=[
            "timeouts",
            "timeouts-that-applied",
            "rejects",
            "partial-fills",
            "disconnects",
            "random-mix",
        ],
    )
    def test_stop_when_venue_misbehaves_then_still_flat_and_never_over_closed(
        self, clock: FakeClock, faults: Faults
    ) -> None:
        """Each fault is retried until flat; no retry closes more than what was open."""
        v = venue("v1", clock, seed=3)
        book(v, POSITIONS)
        v.faults = faults
        report = run(stop([v], clock))
        assert report.flat and flat(v)
        assert never_flipped(v, POSITIONS)
        closed: dict[tuple[str | None, str], float] = {}
        for sid, symbol, qty, _after in v.fills:
            closed[(sid, symbol)] = closed.get((sid, symbol), 0.0) + qty
        assert closed == pytest.approx({k: -q for k, q in POSITIONS.items()})

    def test_stop_when_venue_down_for_a_while_then_flat_once_back(self, clock: FakeClock) -> None:
        """An outage shorter than the deadline delays the stop but does not escalate it."""
        v = venue("v1", clock)
        book(v, POSITIONS)
        v.faults = Faults(down_until=clock.time() + 10)
        steps: list[tuple[str, dict[str, Any]]] = []
        report = run(stop([v], clock, steps))
        assert report.flat and not report.escalated
        assert report.venues[0].errors and "unavailable" in report.venues[0].errors[0]
        assert "escalated" not in [k for k, _ in steps]

    def test_stop_when_venue_down_past_deadline_then_escalated_and_finished_later(
        self, clock: FakeClock
    ) -> None:
        """Past the deadline the stop escalates once and keeps going until flat."""
        v = venue("v1", clock)
        book(v, POSITIONS)
        v.faults = Faults(down_until=clock.time() + 45)
        steps: list[tuple[str, dict[str, Any]]] = []
        report = run(stop([v], clock, steps, deadline_seconds=30))
        assert report.flat and report.escalated
        assert [k for k, _ in steps].count("escalated") == 1

    def test_stop_when_venue_never_returns_then_gives_up_reporting_what_is_open(
        self, clock: FakeClock
    ) -> None:
        """A venue that never comes back is reported with every position still open on it."""
        healthy, dead = venue("ok", clock), venue("dead", clock, Faults(down_until=float("inf")))
        book(healthy, POSITIONS)
        dead.set_position("BTC", 1.0, strategy_id="mom")
        report = run(stop([healthy, dead], clock, deadline_seconds=30, give_up_seconds=120))
        assert not report.flat and report.escalated
        by_name = {r.venue: r for r in report.venues}
        assert by_name["ok"].flat and not by_name["dead"].flat
        assert clock.time() - report.started_at >= 120
        assert report.to_dict()["venues"][1]["errors"]

    def test_stop_when_rate_limited_venue_then_no_429s(self, clock: FakeClock) -> None:
        """The coordinator paces itself to the venue's limit instead of tripping it."""
        v = SimulatedVenue("slow", prices={"BTC": 1.0}, rate_limit=10, clock=clock)
        for i in range(12):
            v.set_position("BTC", 1.0 + i, strategy_id=f"s{i}")
        report = run(stop([v], clock))
        assert report.flat
        assert not any("429" in e for e in report.venues[0].errors)


class TestWhatAStopClaims:
    """FLAT is a claim about the venues: every one read after the stop and holding nothing."""

    def test_stop_when_cancel_only_and_position_held_then_not_flat_and_kept_said(
        self, clock: FakeClock
    ) -> None:
        """`on_halt: cancel_orders` keeps the position: the stop says so, never FLAT."""
        v = venue("sim", clock)
        v.set_position("BTC", 2.0, strategy_id="carry")
        steps: list[tuple[str, dict[str, Any]]] = []
        report = run(stop([v], clock, steps), strategy_id="carry", close=False)
        assert report.done and not report.flat and not report.venues[0].flat
        assert report.outcome == "orders cancelled; positions kept: 1 open (BTC)"
        kinds = [k for k, _ in steps]
        assert "venue_kept" in kinds and "venue_flat" not in kinds
        finished = steps[-1][1]
        assert finished["flat"] is False and finished["outcome"] == report.outcome
        assert finished["venues"][0]["open_positions"] == [["carry", "BTC", 2.0]]

    def test_stop_when_cancel_only_and_nothing_held_then_flat(self, clock: FakeClock) -> None:
        """A cancel-only stop on a strategy that holds nothing is verified flat."""
        v = venue("sim", clock)
        v.set_position("BTC", 2.0, strategy_id="other")
        asyncio.run(
            v.submit_order(
                symbol="BTC",
                side=Side.BUY,
                quantity=1.0,
                price=1.0,
                client_order_id="r",
                strategy_id="carry",
            )
        )
        report = run(stop([v], clock), strategy_id="carry", close=False)
        assert report.flat and report.done and report.outcome == "FLAT"
        assert report.venues[0].cancelled == 1

    @pytest.mark.parametrize("close", [True, False], ids=["flatten", "cancel-only"])
    def test_stop_when_position_read_always_fails_then_unknown_never_flat(
        self, clock: FakeClock, close: bool
    ) -> None:
        """A venue whose positions cannot be read is unknown: retried, then reported so."""
        v = ScriptedVenue("blind", prices={"BTC": 100.0}, clock=clock)
        v.set_position("BTC", 2.0, strategy_id="carry")
        v.script("positions", *[VenueDown("positions feed down")] * 500)
        report = run(stop([v], clock, give_up_seconds=5), strategy_id="carry", close=close)
        assert not report.flat and not report.done
        assert report.venues[0].open_positions is None
        assert report.to_dict()["venues"][0]["open_positions"] is None
        assert report.outcome == "NOT FLAT: positions unknown on blind"
        assert report.venues[0].rounds > 1  # retried, not taken as an answer

    def test_stop_when_last_read_fails_then_an_earlier_empty_read_is_not_reused(
        self, clock: FakeClock
    ) -> None:
        """Only the last round's reads count: an earlier "nothing held" is stale once a later
        read fails."""
        v = ScriptedVenue("flaky", prices={"BTC": 100.0}, clock=clock)
        v.set_position("BTC", 2.0)
        v.script("positions", [], *[VenueDown("positions feed down")] * 500)
        v.script("open_orders", VenueDown("orders feed down"))
        report = run(stop([v], clock, give_up_seconds=5))
        assert not report.flat and report.venues[0].open_positions is None
        assert "positions unknown on flaky" in report.outcome

    def test_stop_when_one_venue_keeps_a_position_then_report_names_it(
        self, clock: FakeClock
    ) -> None:
        """The verdict sums every venue: one venue flat and one still open is NOT FLAT."""
        healthy, stuck = venue("ok", clock), venue("stuck", clock, Faults(reject_rate=1.0))
        healthy.set_position("ETH", 1.0)
        stuck.set_position("BTC", 1.0)
        stuck.set_position("SOL", -3.0, strategy_id="mom")
        report = run(stop([healthy, stuck], clock, deadline_seconds=1, give_up_seconds=3))
        assert [r.flat for r in report.venues] == [True, False]
        assert report.outcome == "NOT FLAT: 2 open (BTC, SOL)"
