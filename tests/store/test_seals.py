"""The rows that grant authority (users, approvals, recovery rungs) carry the audit key's seal:
a row written into the file without the key grants nothing, and the store says it was
tampered with. Real SQLite files; the attacker writes with sqlite3 directly."""

from __future__ import annotations

import dataclasses
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import MakeGuard
from tradeguard import PortfolioState
from tradeguard.errors import UnknownRequest
from tradeguard.model import PORTFOLIO
from tradeguard.store import anchor, keyfile
from tradeguard.testing import FakeClock, enroll_team

TEAM = {"risk1": "risk_manager", "risk2": "risk_manager", "trader1": "trader"}


def forge(db_path: Path, sql: str, *args: object) -> None:
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute(sql, args)


@pytest.fixture
def team(make_guard: MakeGuard) -> dict[str, str]:
    guard = make_guard(users=TEAM, auth={"enabled": True}, recovery={"cooldown_seconds": 0})
    tokens = enroll_team(guard, ("risk1", "risk2"))
    guard.emergency("trader1", "drill")
    guard.close()
    return tokens


def test_request_when_forged_while_a_guard_runs_then_it_does_not_exist(
    make_guard: MakeGuard, db_path: Path, clock: FakeClock, team: dict[str, str]
) -> None:
    """No restart needed: the running guard reads the forged request as no request at all,
    and its verify names the row."""
    guard = make_guard(users=TEAM, auth={"enabled": True}, recovery={"cooldown_seconds": 0})
    version = guard.status_of(PORTFOLIO).version
    forge(
        db_path,
        "INSERT INTO approvals (id, action, scope, requested_by, requested_at, expires_at, "
        "target_version, status, approved_by, decided_at, reason, seal) "
        "VALUES ('forged', 'reset', 'portfolio', 'risk1', ?, ?, ?, 'pending', NULL, NULL, "
        "'forged', 'deadbeef')",
        clock.time(),
        clock.time() + 600,
        version,
    )
    risk2 = guard.authenticate("risk2", team["risk2"])
    assert risk2 is not None
    with pytest.raises(UnknownRequest):
        guard.approve("forged", risk2)
    assert guard.portfolio_state is PortfolioState.EMERGENCY
    assert all(a["id"] != "forged" for a in guard.status()["pending_approvals"])
    verification = guard.verify_audit()
    assert not verification.ok and "approvals row ('forged')" in (verification.problem or "")


def test_user_when_row_copied_under_another_name_then_unknown_and_the_store_untrusted(
    make_guard: MakeGuard, db_path: Path, team: dict[str, str]
) -> None:
    """risk1's sealed row copied as 'mallory' (same token hash): the seal covers the name, so
    mallory is nobody, and verify names the row (the emergency stands)."""
    forge(
        db_path,
        "INSERT INTO users SELECT 'mallory', 'mallory', role, salt, token_hash, updated_at, "
        "sponsors, code, code_expires_at, code_sponsors, seal FROM users WHERE key='risk1'",
    )
    guard = make_guard(users=TEAM, auth={"enabled": True})
    assert "mallory" not in {u["name"] for u in guard.users()}
    assert guard.authenticate("risk1", team["risk1"]) is not None  # the real one still works
    assert guard.portfolio_state is PortfolioState.EMERGENCY
    verification = guard.verify_audit()
    assert not verification.ok and "users row ('mallory')" in (verification.problem or "")


def test_halt_when_initiators_row_is_forged_then_still_carried_out(
    make_guard: MakeGuard, db_path: Path, team: dict[str, str]
) -> None:
    """A stop is never refused, even by a user whose row cannot be trusted: it goes through
    as not authenticated."""
    forge(db_path, "UPDATE users SET role='admin' WHERE key='risk2'")
    guard = make_guard(users=TEAM, auth={"enabled": True})
    guard.register_strategy("s1")
    guard.halt_strategy("s1", "risk2", "stop it")
    assert guard.strategy_state("s1") == "halted"


def test_store_when_from_schema_2_then_its_rows_are_sealed_once_and_keep_working(
    make_guard: MakeGuard, db_path: Path, team: dict[str, str]
) -> None:
    """A store from before seals: the guard that migrates it seals the rows it finds, in the
    migration's transaction; the team's tokens still work and verify passes."""
    with closing(sqlite3.connect(db_path)) as db, db:
        for table in ("users", "approvals", "recovery"):
            db.execute(f"ALTER TABLE {table} DROP COLUMN seal")
        db.execute("UPDATE meta SET value='2' WHERE key='schema'")
    # and its anchor as a guard from before seals wrote it (no schema; that guard had the key)
    key = keyfile.load(keyfile.key_path(db_path))
    found = anchor.read(anchor.anchor_path(db_path), key)
    assert found is not None
    before = dataclasses.replace(found, schema=anchor.BEFORE_SEALS)
    anchor.advance(anchor.anchor_path(db_path), before, key, force=True)
    guard = make_guard(users=TEAM, auth={"enabled": True})
    assert guard.verify_audit().ok
    assert guard.authenticate("risk1", team["risk1"]) is not None
    with closing(sqlite3.connect(db_path)) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == ("3",)
        assert db.execute("SELECT count(*) FROM users WHERE seal IS NULL").fetchone() == (0,)


def test_store_when_a_role_is_raised_in_the_file_then_the_next_guard_starts_in_emergency(
    make_guard: MakeGuard, db_path: Path
) -> None:
    """A trader made risk manager in the file, on a book that is normal: the next guard finds
    the store tampered with and starts in emergency, naming the row; the trader is a trader."""
    guard = make_guard(users=TEAM, auth={"enabled": True})
    enroll_team(guard, ("risk1", "risk2", "trader1"))
    guard.close()
    forge(db_path, "UPDATE users SET role='risk_manager' WHERE key='trader1'")
    guard = make_guard(users=TEAM, auth={"enabled": True})
    assert guard.portfolio_state is PortfolioState.EMERGENCY
    assert "users row ('trader1')" in guard.status_of(PORTFOLIO).reason
    assert {u["name"]: u["role"] for u in guard.users()}["trader1"] == "trader"
