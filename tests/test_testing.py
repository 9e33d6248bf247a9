"""tradeguard.testing: what a user tests an integration with, with no disk, network or real time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeConfig
from tests.emergency_support import fake_sleep
from tradeguard import Guard, PortfolioState
from tradeguard.alerts.channels import DeliveryFailed
from tradeguard.alerts.message import Alert
from tradeguard.audit import AuditEntry
from tradeguard.config import AlertPriority
from tradeguard.emergency import EmergencyStop, FlattenReport, StopPolicy
from tradeguard.errors import StoreUnavailable
from tradeguard.store import StateStore
from tradeguard.testing import (
    HANG,
    Applied,
    CapturingChannel,
    FakeClock,
    MemoryStore,
    ScriptedVenue,
    capture_alerts,
)
from tradeguard.venues import OrderRejected, Side, VenueDown, VenuePosition, VenueTimeout

ENTRY = AuditEntry(1.0, "risk1", "value", "portfolio", None, None, "test")
ALERT = Alert("a1", "k", AlertPriority.INFO, "test", "portfolio", "title", "text", 1.0)
NO_CLIENT: Any = None  # the capturing channel never touches the HTTP client


@pytest.fixture
def memory_store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def memory_guard(
    make_config: MakeConfig, clock: FakeClock, memory_store: MemoryStore
) -> Iterator[Guard]:
    """A guard on a MemoryStore: nothing written to disk."""
    guard = Guard(make_config(), clock=clock, store=memory_store, sleep=fake_sleep(clock))
    yield guard
    guard.close()


def stop(venue: ScriptedVenue, clock: FakeClock, **policy: Any) -> FlattenReport:
    coordinator = EmergencyStop(
        [venue], clock=clock, policy=StopPolicy(**policy), sleep=fake_sleep(clock)
    )
    return asyncio.run(coordinator.run(run_id="r", reason="test"))


class TestMemoryStore:
    def test_guard_when_given_a_memory_store_then_halts_are_stored_and_audited_in_it(
        self, memory_guard: Guard, db_path: Path
    ) -> None:
        """A guard runs on a MemoryStore like on SQLite: halts land, the chain verifies, no file."""
        memory_guard.portfolio_halt("trader1", reason="drill")
        assert memory_guard.portfolio_state is PortfolioState.SOFT_HALT
        assert memory_guard.verify_audit().ok
        assert [r.entry.action for r in memory_guard.audit_records()] == ["state_change"]
        assert not db_path.exists()

    def test_memory_store_when_shared_by_two_guards_then_one_adopts_the_others_halt(
        self, make_config: MakeConfig, clock: FakeClock
    ) -> None:
        """Two guards on one MemoryStore share state as two processes share a file."""
        store = MemoryStore()
        trading = Guard(make_config(), clock=clock, store=store)
        operator = Guard(make_config(), clock=clock, store=store)
        try:
            operator.emergency("trader1")
            trading.tick()
            assert trading.portfolio_state is PortfolioState.EMERGENCY
        finally:
            trading.close()  # closes the shared store too: operator's close then finds it closed
            operator.close()

    def test_memory_store_when_keyed_then_chain_is_hmac_and_verifies(self) -> None:
        """With an audit key the hashes differ from an unkeyed chain's, and still verify."""
        keyed, plain = MemoryStore(audit_key=b"secret"), MemoryStore()
        store: StateStore
        for store in (keyed, plain):
            store.update_value("k", lambda _old: 1, lambda _v: [ENTRY])
            assert store.verify_audit().ok
        assert keyed.audit_records()[0].hash != plain.audit_records()[0].hash

    def test_memory_store_when_closed_then_every_call_is_store_unavailable(self) -> None:
        """A closed MemoryStore fails closed, as a closed SQLite connection does."""
        store = MemoryStore()
        store.close()
        with pytest.raises(StoreUnavailable, match="closed"):
            store.load_states()


class TestCapturingChannel:
    def test_capture_alerts_when_guard_halts_then_the_alert_is_captured_and_delivered(
        self, memory_guard: Guard, memory_store: MemoryStore
    ) -> None:
        """An emergency's critical alert reaches the capturing channel and its outbox row is
        marked delivered."""
        channel = capture_alerts(memory_guard)
        memory_guard.emergency("trader1", reason="venue acting strangely")
        assert memory_guard.flush(timeout=30)
        assert [str(a.priority) for a in channel.sent] == ["critical"]
        assert "venue acting strangely" in channel.sent[0].text
        assert [r.status for r in memory_store.outbox()] == ["delivered"]

    def test_send_when_failures_scripted_then_they_are_raised_first(self) -> None:
        """Scripted failures are raised by the next sends in order; then alerts are kept."""
        channel = CapturingChannel("webhook")
        channel.fail(DeliveryFailed("HTTP 503"))
        with pytest.raises(DeliveryFailed, match="503"):
            asyncio.run(channel.send(ALERT, NO_CLIENT))
        asyncio.run(channel.send(ALERT, NO_CLIENT))
        assert (channel.name, channel.attempts, channel.sent) == ("webhook", 2, [ALERT])

    def test_capture_alerts_when_delivery_fails_then_the_row_waits_for_a_retry(
        self, memory_guard: Guard, memory_store: MemoryStore
    ) -> None:
        """A failed delivery stays pending in the outbox with its error, nothing captured."""
        channel = capture_alerts(memory_guard)
        channel.fail(DeliveryFailed("HTTP 503"))
        memory_guard.emergency("trader1")
        assert memory_guard.flush(timeout=30)
        (row,) = memory_store.outbox()
        assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 503")
        assert channel.sent == []


class TestScriptedVenue:
    def test_book_when_stopped_then_orders_cancelled_and_positions_closed(
        self, clock: FakeClock
    ) -> None:
        """With no script the book answers: a stop cancels the resting order and goes flat."""
        venue = ScriptedVenue(prices={"BTC": 100.0, "ETH": 10.0}, clock=clock)
        venue.set_position("BTC", 2.0, strategy_id="mom")
        venue.set_position("ETH", -3.0)
        venue.rest_order("BTC", Side.BUY, 1.0, price=1.0, strategy_id="mom")
        report = stop(venue, clock)
        assert report.flat and report.venues[0].cancelled == 1
        assert asyncio.run(venue.positions()) == []
        assert [m for m, _args in venue.log][:2] == ["cancel_all", "positions"]

    def test_script_when_failures_queued_then_raised_in_order_and_retried(
        self, clock: FakeClock
    ) -> None:
        """Scripted exceptions are what the next calls raise; the stop retries through them."""
        venue = ScriptedVenue(prices={"BTC": 100.0}, clock=clock)
        venue.set_position("BTC", 1.0)
        venue.script("positions", VenueDown("link down"), ConnectionResetError("reset"))
        report = stop(venue, clock)
        errors = report.venues[0].errors
        assert report.flat and len(errors) == 2
        assert "link down" in errors[0] and "ConnectionResetError" in errors[1]

    def test_script_when_answer_queued_then_returned_instead_of_the_book(self) -> None:
        """A scripted answer (here a stale position) is returned once, then the book again."""
        venue = ScriptedVenue()
        stale = [VenuePosition("BTC", 5.0)]
        venue.script("positions", stale)
        assert asyncio.run(venue.positions()) == stale
        assert asyncio.run(venue.positions()) == []

    def test_script_when_hang_queued_then_the_call_never_answers(self, clock: FakeClock) -> None:
        """HANG makes a call wait forever: the stop's call timeout turns it into a retry."""
        venue = ScriptedVenue(prices={"BTC": 100.0}, clock=clock)
        venue.set_position("BTC", 1.0)
        venue.script("cancel_all", HANG)
        report = stop(venue, clock, call_timeout=0.01)
        assert report.flat and "no answer" in report.venues[0].errors[0]

    def test_script_when_applied_queued_then_the_book_changes_and_the_call_raises(
        self, clock: FakeClock
    ) -> None:
        """Applied: the close goes through but times out; the stop then finds it flat and
        never closes twice."""
        venue = ScriptedVenue(prices={"BTC": 100.0}, clock=clock)
        venue.set_position("BTC", 2.0)
        venue.script("submit_order", Applied(VenueTimeout("timed out after sending")))
        report = stop(venue, clock)
        assert report.flat and report.venues[0].orders_sent == 0
        assert [signed for _sid, _sym, signed, _after in venue.fills] == [-2.0]

    def test_submit_order_when_reduce_only_or_repeated_then_book_rules_apply(self) -> None:
        """Reduce-only never flips a position and a repeated client order id is rejected."""
        venue = ScriptedVenue(prices={"BTC": 100.0})
        venue.set_position("BTC", 1.0)
        order = asyncio.run(
            venue.submit_order(
                symbol="BTC", side=Side.SELL, quantity=5.0, client_order_id="c1", reduce_only=True
            )
        )
        assert (order.quantity, order.status, venue.net_position("BTC")) == (1.0, "filled", 0.0)
        with pytest.raises(OrderRejected, match="duplicate"):
            asyncio.run(
                venue.submit_order(symbol="BTC", side=Side.BUY, quantity=1.0, client_order_id="c1")
            )
        assert venue.log[1] == (
            "submit_order",
            {
                "symbol": "BTC",
                "side": Side.BUY,
                "quantity": 1.0,
                "client_order_id": "c1",
                "reduce_only": False,
                "price": None,
                "strategy_id": None,
            },
        )
