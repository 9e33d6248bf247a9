"""The store knows itself (issue 15): a guard SIGKILLed after declaring an emergency, then its
database damaged in the ways a disk, an operator or an attacker damages it, must restart in
emergency and say why; the anchor beside the file is what tells."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tradeguard import Guard, PortfolioState
from tradeguard.config import parse_config
from tradeguard.store import SqliteStore
from tradeguard.testing import FakeClock

ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT = 60.0

EMERGENCY_THEN_KILLED = """
import os, signal, sys
from tradeguard import Guard
from tradeguard.config import parse_config
from tradeguard.testing import FakeClock
config = parse_config({"users": {"t": "risk_manager"}, "state": {"path": sys.argv[1]}})
guard = Guard(config, clock=FakeClock())
guard.register_strategy("alpha")
guard.emergency("t", "declared before the crash")
os.kill(os.getpid(), signal.SIGKILL)
"""


def run_child(script: str, db: Path) -> None:
    """Run ``script`` on ``db`` in a real child process that SIGKILLs itself."""
    child = subprocess.run(
        [sys.executable, "-c", script, str(db)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.returncode == -9, child.stderr


def restart(db: Path) -> Guard:
    config = parse_config({"users": {"t": "risk_manager"}, "state": {"path": str(db)}})
    return Guard(config, clock=FakeClock())


def lose_wal(db: Path) -> None:
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)


def empty_and_lose_wal(db: Path) -> None:
    db.write_bytes(b"")
    lose_wal(db)


def empty_keep_wal(db: Path) -> None:
    db.write_bytes(b"")


DAMAGE: dict[str, Callable[[Path], None]] = {
    "wal_lost": lose_wal,
    "truncated": empty_and_lose_wal,
    "truncated_wal_kept": empty_keep_wal,
}


def portfolio_reason(guard: Guard) -> str:
    return str(guard.status()["portfolio"]["reason"])


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_restart_when_store_damaged_after_kill_then_starts_in_emergency_saying_why(
    tmp_path: Path, damage: str
) -> None:
    """A lost WAL, a 0-byte file (with or without its WAL) after a SIGKILL starts emergency."""
    db = tmp_path / "state.db"
    run_child(EMERGENCY_THEN_KILLED, db)
    DAMAGE[damage](db)
    assert_untrusted(db)


def assert_untrusted(db: Path) -> None:
    """A guard started on ``db`` is in emergency because it does not trust the store."""
    guard = restart(db)
    try:
        assert guard.portfolio_state == PortfolioState.EMERGENCY
        assert "store_untrusted" in portfolio_reason(guard)
    finally:
        guard.close()


def test_restart_when_untrusted_store_was_recorded_then_emergency_survives_a_second_restart(
    tmp_path: Path,
) -> None:
    """The emergency a damaged store caused is written into it: it outlives the next restart."""
    db = tmp_path / "state.db"
    run_child(EMERGENCY_THEN_KILLED, db)
    empty_and_lose_wal(db)
    restart(db).close()
    assert_untrusted(db)


def test_open_when_neither_store_nor_anchor_exists_then_both_created_and_trusted(
    tmp_path: Path,
) -> None:
    """A first start needs nothing else: the store and its anchor are made, and agree."""
    db = tmp_path / "state.db"
    guard = restart(db)
    guard.close()
    assert db.with_name("state.db.anchor").exists()
    again = restart(db)
    try:
        assert again.portfolio_state == PortfolioState.NORMAL
    finally:
        again.close()


def commit_one(db: Path, reason: str) -> None:
    guard = restart(db)
    try:
        guard.halt_strategy("alpha", "t", reason)
    finally:
        guard.close()


def test_open_when_file_rolled_back_to_an_older_copy_then_problem_names_the_rollback(
    tmp_path: Path,
) -> None:
    """A copy taken before the last commit, put back, is behind the anchor: not trusted."""
    db = tmp_path / "state.db"
    restart(db).close()
    older = db.read_bytes()
    commit_one(db, "after the copy")
    lose_wal(db)
    db.write_bytes(older)
    store = SqliteStore(db)
    try:
        assert "rolled back" in (store.trust_problem() or "")
    finally:
        store.close()


def test_open_when_another_store_put_in_place_then_problem_names_both_stores(
    tmp_path: Path,
) -> None:
    """Another store's file (with its own identity) is not the anchored store."""
    db, other = tmp_path / "state.db", tmp_path / "other" / "state.db"
    other.parent.mkdir()
    restart(db).close()
    restart(other).close()
    db.write_bytes(other.read_bytes())
    store = SqliteStore(db)
    try:
        assert "the anchor names store" in (store.trust_problem() or "")
    finally:
        store.close()


def test_open_when_anchor_removed_then_problem_says_the_anchor_is_missing(
    tmp_path: Path,
) -> None:
    """A store that was anchored and lost its anchor is not trusted either."""
    db = tmp_path / "state.db"
    restart(db).close()
    db.with_name("state.db.anchor").unlink()
    store = SqliteStore(db)
    try:
        assert "is missing" in (store.trust_problem() or "")
    finally:
        store.close()


def test_cli_when_store_is_an_empty_file_without_anchor_then_refused(tmp_path: Path) -> None:
    """The CLI's "store must exist" check no longer passes a 0-byte file nobody anchored."""
    db = tmp_path / "state.db"
    db.write_bytes(b"")
    config = tmp_path / "tradeguard.yaml"
    config.write_text(f"users:\n  t: risk_manager\nstate:\n  path: {db}\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tradeguard.cli import app; app()",
            "status",
            "-c",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode != 0
    assert "no state database" in result.stdout + result.stderr
