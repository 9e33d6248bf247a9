"""Today's changes, attacked: the seals on the rows that grant authority, the read-only guard,
the HTTP halt path and incident episodes. Each test reproduces one way the guard came out less
restrictive than it should be; real guards on real SQLite files, the attacker writing the file
with sqlite3 directly and holding no key."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import MakeGuard
from tradeguard import PortfolioState
from tradeguard.auth import hash_token, new_token
from tradeguard.errors import PermissionDenied
from tradeguard.model import PORTFOLIO
from tradeguard.testing import enroll_team

TEAM = {"risk1": "risk_manager", "risk2": "risk_manager", "trader1": "trader"}


def forge(db_path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Write the file as someone with file access and no key does."""
    with closing(sqlite3.connect(db_path)) as db, db:
        for sql, args in statements:
            db.execute(sql, args)


@pytest.fixture
def team(make_guard: MakeGuard) -> dict[str, str]:
    guard = make_guard(users=TEAM, auth={"enabled": True})
    tokens = enroll_team(guard, ("risk1", "risk2"))
    guard.close()
    return tokens


def test_schema_rolled_back_to_2_when_a_forged_admin_is_added_then_the_migration_does_not_seal_it(
    make_guard: MakeGuard, db_path: Path, team: dict[str, str]
) -> None:
    """The schema number is a plain meta row: set back to 2, the next guard migrates and seals
    every row it finds, a forged admin with the attacker's token among them. The seal must not
    be handed to a row the key's holder never wrote: mallory stays nobody."""
    token = new_token()
    salt, digest = hash_token(token)
    forge(
        db_path,
        (
            "INSERT INTO users VALUES ('mallory', 'mallory', 'admin', ?, ?, 0.0, '[]', '[]', "
            "NULL, '[]', 'forged')",
            (salt, digest),
        ),
        ("UPDATE meta SET value='2' WHERE key='schema'", ()),
    )
    guard = make_guard(users=TEAM, auth={"enabled": True})
    with pytest.raises(PermissionDenied, match="unknown user"):
        guard.authenticate("mallory", token)
    assert "mallory" not in {u["name"] for u in guard.users()}
    assert guard.portfolio_state is PortfolioState.EMERGENCY
    assert not guard.verify_audit().ok
    assert "the anchor has schema 3, the database says 2" in guard.status_of(PORTFOLIO).reason
