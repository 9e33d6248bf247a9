"""Durability: halts survive restarts and crashes, a broken store fails closed, baselines come
back, and two guards sharing one file never weaken each other's halts."""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing, suppress
from pathlib import Path

import pytest

from tests.conftest import MakeGuard
from tradeguard import Guard, PortfolioState, StrategyState
from tradeguard.errors import StoreUnavailable
from tradeguard.model import PORTFOLIO, Scope
from tradeguard.state import ScopeStatus
from tradeguard.store import SqliteStore
from tradeguard.testing import FakeClock

P, S = PortfolioState, StrategyState
CHILD_TIMEOUT = 60.0

CHILD = """
import sys
from tradeguard import Guard
from tradeguard.config import parse_config
from tradeguard.testing import FakeClock

config = parse_config({"users": {"trader1": "trader"}, "state": {"path": sys.argv[1]}})
guard = Guard(config, clock=FakeClock())
guard.halt_strategy("alpha", "trader1", "halted before the crash")
guard.update_portfolio(equity=100_000.0)
guard.update_portfolio(equity=85_000.0)  # 15% drawdown: the drawdown rule hard-halts
if guard.portfolio_state != "hard_halt":
    sys.exit(f"child expected hard_halt, got {guard.portfolio_state}")
print("ready", flush=True)
sys.stdin.read()  # block until killed (or until the parent goes away)
"""


def _stored(db_path: Path) -> dict[str, ScopeStatus]:
    store = SqliteStore(db_path)
    try:
        return store.load_states()
    finally:
        store.close()


def _execute(db_path: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute(sql, params)


def _assert_fails_closed(guard: Guard) -> None:
    """Emergency with a store_unavailable reason; nothing can be lifted; halts still bite."""
    assert guard.portfolio_state is P.EMERGENCY
    assert guard.status_of(PORTFOLIO).reason.startswith("store_unavailable")
    assert guard.status()["store"]["ok"] is False
    with pytest.raises(StoreUnavailable):
        guard.reset("risk1", "try to lift")
    with pytest.raises(StoreUnavailable):
        guard.approve("0123456789ab", "risk2")
    assert guard.portfolio_state is P.EMERGENCY
    # StoreUnavailable on a halt means "in force in memory, maybe not written".
    with suppress(StoreUnavailable):
        guard.halt_strategy("gamma", "trader1", "halt while the store is broken")
    assert guard.strategy_state("gamma") is S.HALTED


class TestRestart:
    def test_portfolio_halt_when_guard_restarts_then_state_reason_and_version_survive(
        self, make_guard: MakeGuard
    ) -> None:
        """A hard halt written by one guard is exactly what the next guard on the file loads."""
        first = make_guard()
        first.portfolio_close("risk1", "flatten before the close")
        before = first.status_of(PORTFOLIO)
        first.close()
        second = make_guard()
        after = second.status_of(PORTFOLIO)
        assert after == before
        assert (after.state, after.reason, after.version) == (P.HARD_HALT, before.reason, 1)

    def test_strategy_halt_when_guard_restarts_then_strategy_stays_halted(
        self, make_guard: MakeGuard
    ) -> None:
        """A halted strategy is still halted, with its reason, after a restart."""
        first = make_guard()
        first.halt_strategy("alpha", "trader1", "runaway orders")
        first.close()
        second = make_guard()
        assert second.strategy_state("alpha") is S.HALTED
        assert second.status_of(Scope.strategy("alpha")).reason == "runaway orders"
        assert "alpha" in second.status()["strategies"]

    def test_emergency_when_guard_restarts_then_still_needs_two_people(
        self, make_guard: MakeGuard
    ) -> None:
        """An emergency survives a restart and a single reset still only opens a request."""
        first = make_guard()
        first.portfolio_halt("risk1", "soft first")
        first.emergency("risk1", "fat finger")
        first.close()
        second = make_guard()
        status = second.status_of(PORTFOLIO)
        assert (status.state, status.reason, status.version) == (P.EMERGENCY, "fat finger", 2)
        request = second.reset("risk1", "cleared")
        assert request.status == "pending"
        assert second.portfolio_state is P.EMERGENCY

    def test_approve_when_request_opened_before_restart_then_lifts_emergency(
        self, make_guard: MakeGuard
    ) -> None:
        """A pending two-person request is durable: a second person approves it after a restart."""
        first = make_guard()
        first.emergency("risk1", "fat finger")
        request = first.reset("risk1", "cleared")
        first.close()
        second = make_guard()
        assert [a["id"] for a in second.status()["pending_approvals"]] == [request.id]
        second.approve(request.id, "risk2")
        assert second.portfolio_state is P.NORMAL
        assert _stored(second.config.state.path)["portfolio"].state == P.NORMAL
        assert second.verify_audit().ok


class TestCrash:
    def test_halts_when_process_killed_then_new_guard_sees_them_and_chain_verifies(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """Halts committed by a process that is then SIGKILLed are all there afterwards."""
        env = {k: v for k, v in os.environ.items() if k != "TRADEGUARD_CONFIG"}
        with subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        ) as child:
            assert child.stdout is not None
            readable, _, _ = select.select([child.stdout], [], [], CHILD_TIMEOUT)
            line = child.stdout.readline() if readable else ""
            child.kill()
            _out, err = child.communicate(timeout=CHILD_TIMEOUT)
        assert line.strip() == "ready", f"child did not get ready: {err}"
        assert child.returncode == -signal.SIGKILL

        guard = make_guard()
        assert guard.strategy_state("alpha") is S.HALTED
        assert guard.status_of(Scope.strategy("alpha")).reason == "halted before the crash"
        portfolio = guard.status_of(PORTFOLIO)
        assert portfolio.state == P.HARD_HALT
        assert portfolio.reason.startswith("portfolio_drawdown")
        assert guard.status()["store"]["ok"] is True
        result = guard.verify_audit()
        assert (result.ok, result.checked) == (True, 2)


class TestCorruptStore:
    def test_guard_when_file_is_garbage_then_starts_in_emergency(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """Bytes that are not a database make the guard fail closed at start-up."""
        db_path.write_bytes(b"definitely not sqlite " * 500)
        _assert_fails_closed(make_guard())

    @pytest.mark.parametrize(
        ("sql", "params"),
        [
            ("UPDATE states SET state=? WHERE scope='portfolio'", ("paused",)),
            ("UPDATE states SET state=? WHERE scope='strategy:alpha'", ("sleeping",)),
            ("INSERT INTO states VALUES (?, 'halted', 'x', 0, 'y', 1)", ("strategy",)),
            ("INSERT INTO states VALUES (?, 'halted', 'x', 0, 'y', 1)", ("desk:rates",)),
            ("INSERT INTO states VALUES (?, 'halted', 'x', 0, 'y', 1)", ("strategy:",)),
            ("UPDATE metrics SET data=? WHERE scope='portfolio'", ("{not json",)),
            ("UPDATE metrics SET data=? WHERE scope='portfolio'", ('{"peak_equity": "big"}',)),
            ("UPDATE metrics SET data=? WHERE scope='strategy:alpha'", ('{"equity": 1.0}',)),
            ("INSERT INTO metrics VALUES (?, '{}', 0)", ("nonsense",)),
        ],
        ids=[
            "unknown-portfolio-state",
            "unknown-strategy-state",
            "scope-without-id",
            "scope-of-unknown-kind",
            "scope-with-empty-id",
            "metrics-not-json",
            "metrics-wrong-type",
            "metrics-missing-field",
            "metrics-bad-scope",
        ],
    )
    def test_guard_when_store_content_is_malformed_then_starts_in_emergency(
        self, make_guard: MakeGuard, db_path: Path, sql: str, params: tuple[object, ...]
    ) -> None:
        """A row the guard cannot make sense of makes it fail closed, not guess."""
        first = make_guard()
        first.update_portfolio(equity=100_000.0)  # so there are baselines to save and corrupt
        first.record_trade("alpha", 1.0)
        first.portfolio_halt("risk1", "soft")
        first.halt_strategy("alpha", "trader1", "halted")
        first.tick()
        first.close()
        _execute(db_path, sql, params)
        _assert_fails_closed(make_guard())

    def test_guard_when_metric_baseline_is_not_an_object_then_starts_in_emergency(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """A baseline row holding JSON null (not an object) must fail closed, not crash."""
        first = make_guard()
        first.update_portfolio(equity=100_000.0)
        first.tick()
        first.close()
        _execute(db_path, "UPDATE metrics SET data='null' WHERE scope='portfolio'")
        _assert_fails_closed(make_guard())

    def test_guard_when_state_version_is_not_an_integer_then_starts_in_emergency(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """A state row whose version is text is corrupt: fail closed rather than load it."""
        first = make_guard()
        first.portfolio_halt("risk1", "soft")
        first.close()
        _execute(db_path, "UPDATE states SET version='seven' WHERE scope='portfolio'")
        _assert_fails_closed(make_guard())

    def test_drawdown_rule_when_state_version_is_not_an_integer_then_hard_halt_still_applies(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """Whatever the guard makes of a corrupt version, a drawdown breach must still stop it."""
        first = make_guard()
        first.portfolio_halt("risk1", "soft")
        first.close()
        _execute(db_path, "UPDATE states SET version='seven' WHERE scope='portfolio'")
        second = make_guard()
        second.update_portfolio(equity=100_000.0)
        with suppress(StoreUnavailable):
            second.update_portfolio(equity=85_000.0)
        assert second.portfolio_state.severity >= P.HARD_HALT.severity


class TestMetricBaselines:
    def test_drawdown_when_guard_restarts_then_measured_from_saved_peak(
        self, make_guard: MakeGuard
    ) -> None:
        """The peak saved by tick() survives, so an 11% drop after restart hard-halts
        (the default portfolio drawdown limit is 10%, exclusive)."""
        first = make_guard()
        first.update_portfolio(equity=100_000.0)
        first.tick()
        first.close()
        second = make_guard()
        assert second.status()["portfolio"]["metrics"]["peak_equity"] == 100_000.0
        second.update_portfolio(equity=89_000.0)
        status = second.status_of(PORTFOLIO)
        assert status.state == P.HARD_HALT
        assert status.reason.startswith("portfolio_drawdown")

    def test_loss_streak_when_guard_restarts_then_counts_on_from_saved_value(
        self, make_guard: MakeGuard
    ) -> None:
        """Four losses saved by tick() plus one after restart reach the limit of five."""
        first = make_guard()
        for _ in range(4):
            first.record_trade("alpha", -10.0)
        assert first.strategy_state("alpha") is S.ACTIVE
        first.tick()
        first.close()
        second = make_guard()
        second.record_trade("alpha", -10.0)
        assert second.strategy_state("alpha") is S.HALTED
        assert second.status_of(Scope.strategy("alpha")).reason.startswith("consecutive_losses")

    def test_tick_when_called_then_saves_current_peak(self, guard: Guard, db_path: Path) -> None:
        """tick() writes the ledger's baselines: the highest equity seen, not the last one."""
        guard.update_portfolio(equity=100_000.0)
        guard.update_portfolio(equity=99_000.0)
        guard.tick()
        store = SqliteStore(db_path)
        try:
            saved = store.load_metrics()["portfolio"]
        finally:
            store.close()
        assert (saved["peak_equity"], saved["equity"]) == (100_000.0, 99_000.0)


def _margin_guard(make_guard: MakeGuard, action: str, store: SqliteStore | None = None) -> Guard:
    return make_guard(
        store=store, triggers={"margin_utilization": {"limit": 0.9, "action": action}}
    )


def _fire_margin(guard: Guard) -> None:
    guard.update_portfolio(margin_used=95.0, margin_available=5.0)


class TestSharedStore:
    @pytest.mark.parametrize(
        ("a_halt", "b_action", "expected"),
        [
            # an emergency's records: its state change and its incident's opening
            ("emergency", "soft_halt", (P.EMERGENCY, 1, "risk1", 2)),
            ("emergency", "hard_halt", (P.EMERGENCY, 1, "risk1", 2)),
            ("portfolio_close", "soft_halt", (P.HARD_HALT, 1, "risk1", 1)),
            ("portfolio_halt", "soft_halt", (P.SOFT_HALT, 1, "risk1", 1)),
            ("portfolio_halt", "hard_halt", (P.HARD_HALT, 2, "rule:margin_utilization", 2)),
        ],
    )
    def test_rule_when_other_guard_halted_first_then_never_weakens_stored_state(
        self,
        make_guard: MakeGuard,
        db_path: Path,
        a_halt: str,
        b_action: str,
        expected: tuple[P, int, str, int],
    ) -> None:
        """B's stale memory says normal; its rule may tighten the store but never loosen it."""
        state, version, actor, records = expected
        a = make_guard()
        b = _margin_guard(make_guard, b_action)
        assert b.portfolio_state is P.NORMAL
        getattr(a, a_halt)("risk1", "halted by A")
        _fire_margin(b)
        stored = _stored(db_path)["portfolio"]
        assert (stored.state, stored.version, stored.actor) == (state, version, actor)
        assert b.status_of(PORTFOLIO) == stored
        result = a.verify_audit()
        assert (result.ok, result.checked) == (True, records)

    def test_strategy_halt_when_other_guard_halted_first_then_no_second_write(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """B halting a strategy A already halted is a no-op that adopts A's record."""
        a, b = make_guard(), make_guard()
        a.halt_strategy("alpha", "trader1", "A saw it first")
        assert b.halt_strategy("alpha", "trader1", "B saw it too") is None
        stored = _stored(db_path)["strategy:alpha"]
        assert (stored.state, stored.reason, stored.version) == (S.HALTED, "A saw it first", 1)
        assert b.status_of(Scope.strategy("alpha")) == stored
        changes = [r.entry for r in a.audit_records() if r.entry.action == "state_change"]
        assert len(changes) == 1
        assert a.verify_audit().ok

    def test_guards_when_interleaving_writes_then_chain_stays_intact(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """Alternating writers extend one chain; every change by either guard is in it."""
        a, b = make_guard(), make_guard()
        a.halt_strategy("alpha", "trader1")
        b.halt_strategy("beta", "trader1")
        b.portfolio_halt("risk1", "B soft")
        a.portfolio_close("risk1", "A hard")
        b.emergency("risk1", "B emergency")
        a.halt_strategy("gamma", "trader1")
        result = b.verify_audit()
        assert (result.ok, result.checked) == (True, 7)  # six changes, and the incident opened
        stored = _stored(db_path)
        assert (stored["portfolio"].state, stored["portfolio"].version) == (P.EMERGENCY, 3)
        assert {k for k, v in stored.items() if v.state == S.HALTED} == {
            "strategy:alpha",
            "strategy:beta",
            "strategy:gamma",
        }


class TestRuntimeStoreFailure:
    def test_manual_halt_when_store_fails_then_halt_holds_and_portfolio_enters_emergency(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """A halt whose write fails stays in force; the guard locks down and says why."""
        store = SqliteStore(db_path)
        guard = make_guard(store=store)
        store.close()
        with pytest.raises(StoreUnavailable):
            guard.halt_strategy("alpha", "trader1", "stop alpha")
        assert guard.strategy_state("alpha") is S.HALTED
        assert guard.portfolio_state is P.EMERGENCY
        assert guard.status_of(PORTFOLIO).reason.startswith("store_unavailable")

    def test_rule_halt_when_store_fails_then_no_exception_and_emergency(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """A rule's soft halt that cannot be written escalates to emergency without raising."""
        store = SqliteStore(db_path)
        guard = _margin_guard(make_guard, "soft_halt", store=store)
        store.close()
        _fire_margin(guard)
        assert guard.portfolio_state is P.EMERGENCY
        assert guard.status_of(PORTFOLIO).reason.startswith("store_unavailable")

    def test_reset_when_store_failed_then_refused_and_emergency_holds(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """Nothing can be lifted once the store failed: reset and approve both raise."""
        store = SqliteStore(db_path)
        guard = make_guard(store=store)
        guard.portfolio_close("risk1", "flatten")
        store.close()
        with suppress(StoreUnavailable):
            guard.halt_strategy("alpha", "trader1")
        _assert_fails_closed(guard)

    def test_tick_when_store_fails_then_error_reported_and_emergency(
        self, make_guard: MakeGuard, db_path: Path, clock: FakeClock
    ) -> None:
        """A baseline save that fails in the breaker's tick also locks the guard down."""
        store = SqliteStore(db_path)
        guard = make_guard(store=store)
        guard.update_portfolio(equity=100_000.0)
        store.close()
        clock.advance(1.0)
        result = guard.tick()
        assert any(e.startswith("store") for e in result.errors)
        assert guard.portfolio_state is P.EMERGENCY
        assert guard.status_of(PORTFOLIO).reason.startswith("store_unavailable")
