"""Fail-closed behaviour found by review: each test is a way trading could have gone on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeConfig, MakeGuard
from tradeguard import (
    ApprovalRefused,
    Guard,
    InvalidInput,
    PortfolioState,
    StoreUnavailable,
    StrategyState,
)
from tradeguard.audit import AuditEntry, AuditRecord
from tradeguard.errors import BadRequest
from tradeguard.store import Approval, SqliteStore, StateConflict, StateWrite
from tradeguard.testing import FakeClock


class TestLiftsAcrossProcesses:
    def test_reset_when_memory_stale_and_store_in_emergency_then_not_lifted_by_one_person(
        self, make_guard: MakeGuard
    ) -> None:
        """A guard that still believes soft_halt cannot lift another process's emergency alone."""
        a, b = make_guard(), make_guard()
        b.portfolio_halt("trader1")
        a.emergency("trader1")  # a's write conflicts, re-reads, escalates the stored soft halt
        request = b.reset("risk1")
        assert request.status == "pending"
        assert b.portfolio_state is PortfolioState.EMERGENCY
        assert a.verify_audit().ok

    def test_approve_when_request_older_than_a_newer_emergency_then_refused(
        self, make_guard: MakeGuard
    ) -> None:
        """An approval opened against one emergency cannot lift the next one, via any process."""
        a = make_guard()
        a.emergency("trader1")
        old = a.reset("risk1")
        b = make_guard()  # loads emergency at the version the old request targets
        newer = a.reset("risk2")
        a.approve(newer.id, "admin1")
        a.emergency("trader1", reason="again")
        with pytest.raises(ApprovalRefused):
            b.approve(old.id, "admin1")
        assert b.portfolio_state is PortfolioState.EMERGENCY

    def test_resume_when_store_moved_on_then_decided_on_the_store(
        self, make_guard: MakeGuard
    ) -> None:
        """A resume re-reads the scope first: it never lifts a halt its caller has not seen."""
        a, b = make_guard(), make_guard()
        a.halt_strategy("s1", user="trader1", reason="first")
        a.resume_strategy("s1", user="senior1")
        a.halt_strategy("s1", user="trader1", reason="second")
        change = b.resume_strategy("s1", user="senior1")
        assert change.before == "halted" and change.version == 4


class ConflictingStore(SqliteStore):
    """A store where every state write loses a race."""

    def commit(
        self,
        *,
        states: Sequence[StateWrite] = (),
        audit: Sequence[AuditEntry] = (),
        approvals: Sequence[Approval] = (),
    ) -> list[AuditRecord]:
        if states:
            raise StateConflict("someone else wrote first")
        return super().commit(states=states, audit=audit, approvals=approvals)


class TestHaltsThatCannotBeRecorded:
    def test_rule_halt_when_every_write_conflicts_then_emergency_not_lost(
        self, make_config: MakeConfig, db_path: Path, clock: FakeClock
    ) -> None:
        """A halt that cannot be committed after retries locks everything down in memory."""
        guard = Guard(make_config(), clock=clock, store=ConflictingStore(db_path))
        try:
            guard.update_portfolio(equity=100.0)
            guard.update_portfolio(equity=80.0)
            assert guard.portfolio_state is PortfolioState.EMERGENCY
            assert guard.status()["store"]["ok"] is False
        finally:
            guard.close()

    def test_halt_when_state_row_vanished_then_store_failure(
        self, guard: Guard, db_path: Path
    ) -> None:
        """A row deleted under a running guard is corruption: fail closed."""
        import sqlite3

        guard.halt_strategy("s1", user="trader1")
        guard.resume_strategy("s1", user="senior1")
        with sqlite3.connect(db_path) as db:
            db.execute("DELETE FROM states WHERE scope='strategy:s1'")
        db.close()
        with pytest.raises(StoreUnavailable, match="disappeared"):
            guard.halt_strategy("s1", user="trader1")
        assert guard.strategy_state("s1") is StrategyState.HALTED
        assert guard.portfolio_state is PortfolioState.EMERGENCY

    def test_emergency_when_store_failed_then_survives_restart_through_marker(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """Halts made while the store was failing come back as a durable emergency on restart."""
        store = SqliteStore(db_path)
        first = make_guard(store=store)
        first.update_portfolio(equity=100.0)
        store.close()
        first.update_portfolio(equity=80.0)  # the halt's write fails: emergency in memory
        assert first.portfolio_state is PortfolioState.EMERGENCY
        marker = db_path.with_name(db_path.name + ".emergency")
        assert marker.exists()
        second = make_guard()
        assert second.portfolio_state is PortfolioState.EMERGENCY
        assert "store_unavailable earlier" in second.status()["portfolio"]["reason"]
        assert not marker.exists()
        changes = [r.entry for r in second.audit_records() if r.entry.action == "state_change"]
        assert [e.after for e in changes] == ["emergency"]


class TestInputsThatUsedToEscape:
    def test_prices_when_timestamp_in_milliseconds_then_refused_and_halted(
        self, guard: Guard, clock: FakeClock
    ) -> None:
        """Milliseconds passed as seconds are named as such, and fail closed."""
        with pytest.raises(InvalidInput, match="milliseconds"):
            guard.update_prices({"BTC": 1.0}, ts=clock.time() * 1000)
        assert guard.portfolio_state is PortfolioState.SOFT_HALT

    def test_number_when_beyond_any_real_magnitude_then_refused(self, guard: Guard) -> None:
        """A value that could overflow the ledger's sums is refused."""
        with pytest.raises(InvalidInput, match="within"):
            guard.record_trade("s1", 1e300)
        assert guard.strategy_state("s1") is StrategyState.HALTED

    def test_ledger_when_it_fails_applying_an_input_then_scope_halted(self, guard: Guard) -> None:
        """An error deep in the ledger (log of 0 here) halts instead of escaping."""
        guard.update_prices({"BTC": 1e14})
        with pytest.raises(InvalidInput, match="could not apply input"):
            guard.update_prices({"BTC": 5e-324})
        assert guard.portfolio_state is PortfolioState.SOFT_HALT

    def test_manual_halt_when_strategy_id_malformed_then_bad_request_audited(
        self, guard: Guard
    ) -> None:
        """A console typo is refused and recorded, without halting the book."""
        with pytest.raises(BadRequest):
            guard.halt_strategy("has space", user="trader1")
        assert guard.portfolio_state is PortfolioState.NORMAL
        assert [r.entry.action for r in guard.audit_records()] == ["refused:halt"]


class TestBackstop:
    def test_tick_when_source_hangs_then_fails_closed_and_returns(
        self, make_guard: MakeGuard
    ) -> None:
        """A metrics source that never answers halts instead of freezing the breaker."""
        guard = make_guard(breaker={"source_timeout_seconds": 0.05})
        release = threading.Event()

        def hung() -> Mapping[str, Any]:
            release.wait(timeout=30)
            return {}

        guard.register_metrics_source("engine", hung)
        try:
            result = guard.tick()
        finally:
            release.set()
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        assert "no answer within" in guard.status()["portfolio"]["reason"]
        assert result.errors

    def test_tick_when_source_hangs_every_tick_then_threads_bounded(
        self, make_guard: MakeGuard
    ) -> None:
        """A source that never answers, ticked again and again, ties up a few threads and
        then fails at once: it used to leak one thread per tick."""
        guard = make_guard(breaker={"source_timeout_seconds": 0.01})
        release = threading.Event()
        guard.register_metrics_source("engine", lambda: release.wait(timeout=30) and {})
        before = set(threading.enumerate())
        try:
            for _ in range(20):
                assert guard.tick().errors
            hung = [
                t
                for t in set(threading.enumerate()) - before
                if t.name == "tradeguard-source-engine"
            ]
        finally:
            release.set()
        assert 1 <= len(hung) <= 4
        assert guard.portfolio_state is PortfolioState.SOFT_HALT

    def test_tick_when_one_source_hangs_then_another_sources_breach_still_applied(
        self, make_guard: MakeGuard
    ) -> None:
        """A hung source uses up only its own readers: a healthy source's hard halt still
        lands (a shared pool left the book at the hung source's soft halt)."""
        guard = make_guard(breaker={"source_timeout_seconds": 0.05})
        release = threading.Event()
        drawdown = {"value": 0.0}
        guard.register_metrics_source("hung", lambda: release.wait(timeout=30) and {})
        guard.register_metrics_source(
            "healthy", lambda: {"portfolio": {"drawdown": drawdown["value"]}}
        )
        try:
            for _ in range(6):  # more ticks than the hung source has readers
                guard.tick()
            assert guard.portfolio_state is PortfolioState.SOFT_HALT
            drawdown["value"] = 0.5  # portfolio_drawdown (limit 0.10): hard_halt
            result = guard.tick()
        finally:
            release.set()
        assert guard.portfolio_state is PortfolioState.HARD_HALT, result.errors

    def test_breaker_health_when_never_ticked_then_unhealthy(self, guard: Guard) -> None:
        """Health comes from the last tick's age, not from a thread merely existing."""
        assert guard.status()["breaker"]["healthy"] is False

    def test_reset_when_cause_persists_then_halted_again_at_once(self, guard: Guard) -> None:
        """A lifted halt whose cause is still there comes back in the same call."""
        guard.update_portfolio(margin_used=95.0, margin_available=5.0)
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        guard.reset("risk1", reason="try")
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        afters = [r.entry.after for r in guard.audit_records() if r.entry.action == "state_change"]
        assert afters == ["soft_halt", "normal", "soft_halt"]


UNLOGGED_START = """
import json, sys
from tradeguard import Guard, load_config
guard = Guard(load_config(sys.argv[1]))
print(json.dumps({"state": guard.portfolio_state, "store": guard.status()["store"]}))
guard.close()
"""


class TestStoreThatCannotBeOpened:
    @pytest.mark.parametrize(
        ("place", "why"),
        [("missing/sub/tg.db", "does not exist"), ("a-file/tg.db", "is not a directory")],
        ids=["missing-directory", "parent-is-a-file"],
    )
    def test_start_when_state_path_unusable_then_emergency_said_loudly_and_in_status(
        self, tmp_path: Path, place: str, why: str
    ) -> None:
        """A host that configured no logging still hears why the guard starts in emergency
        (on stderr), and its status names the cause, not just SQLite's "unable to open"."""
        (tmp_path / "a-file").write_text("not a directory")
        config = tmp_path / "c.yaml"
        config.write_text(f"users: {{ops: admin}}\nstate: {{path: {tmp_path / place}}}\n")
        done = subprocess.run(
            [sys.executable, "-c", UNLOGGED_START, str(config)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )
        assert done.returncode == 0, done.stderr
        shown = json.loads(done.stdout)
        assert shown["state"] == "emergency" and shown["store"]["ok"] is False
        assert why in shown["store"]["error"]
        assert "entering emergency" in done.stderr and why in done.stderr
