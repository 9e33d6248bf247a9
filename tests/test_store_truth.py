"""The audit log cannot be cut or bypassed unseen (issue 15): a tail cut with its head rewound
is behind the anchor, and a states table edited without an audit record is not what the
chain replays to; either fails ``verify`` and starts the guard in emergency."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from tests.conftest import MakeGuard
from tradeguard import PortfolioState
from tradeguard.store import SqliteStore


def _execute(db: Path, *statements: str) -> None:
    """Tamper with the file directly, as an attacker with the file (not the key) would."""
    with closing(sqlite3.connect(db)) as conn, conn:
        for sql in statements:
            conn.execute(sql)


def _halted_book(make_guard: MakeGuard) -> None:
    guard = make_guard()
    guard.halt_strategy("alpha", "trader1", "first")
    guard.halt_strategy("beta", "trader1", "second")
    guard.portfolio_halt("trader1", "third")
    guard.close()


def test_verify_when_tail_cut_and_head_rewound_then_fails_and_guard_starts_in_emergency(
    make_guard: MakeGuard, db_path: Path
) -> None:
    """Deleting the last records and pointing the head at the new last one is caught."""
    _halted_book(make_guard)
    _execute(
        db_path,
        "DELETE FROM audit WHERE seq > (SELECT MAX(seq) - 2 FROM audit)",
        "UPDATE audit_head SET seq=(SELECT MAX(seq) FROM audit), "
        "hash=(SELECT hash FROM audit ORDER BY seq DESC LIMIT 1)",
    )
    store = SqliteStore(db_path)
    try:
        assert "rolled back or cut" in (store.trust_problem() or "")
        assert not store.verify_audit().ok
    finally:
        store.close()
    guard = make_guard()
    assert guard.portfolio_state == PortfolioState.EMERGENCY
    assert "store_untrusted" in guard.status()["portfolio"]["reason"]


def test_verify_when_state_set_normal_without_audit_then_names_scope_and_emergency(
    make_guard: MakeGuard, db_path: Path
) -> None:
    """``UPDATE states SET state='normal'`` leaves no record: verify names the scope."""
    _halted_book(make_guard)
    _execute(db_path, "UPDATE states SET state='normal' WHERE scope='portfolio'")
    store = SqliteStore(db_path)
    try:
        result = store.verify_audit()
    finally:
        store.close()
    assert not result.ok
    assert "for portfolio" in result.problem
    guard = make_guard()
    assert guard.portfolio_state == PortfolioState.EMERGENCY
    assert "for portfolio" in guard.status()["portfolio"]["reason"]
