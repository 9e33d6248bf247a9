"""What an attacker found against "two persons are two persons", each kept as a test: one
admin (mallory) holding only her own credentials, with an honest colleague (h1) who approves
every user-administration request but never a reset."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from tests.conftest import MakeGuard
from tradeguard import ApprovalRefused, Guard, PermissionDenied, PortfolioState
from tradeguard.auth import hash_token
from tradeguard.errors import BadRequest
from tradeguard.model import Operator
from tradeguard.store import Approval


def login(guard: Guard, name: str, token: str) -> Operator:
    who = guard.authenticate(name, token)
    assert isinstance(who, Operator)
    return who


@pytest.fixture
def team(make_guard: MakeGuard) -> tuple[Guard, dict[str, Operator]]:
    """The README's bootstrap: two admins redeem their own codes; then a risk_manager (h2) by
    two people."""
    guard = make_guard(users={})
    who = {
        n: login(guard, n, guard.enroll(n, guard.add_user(n, "admin", by="local:root").code or ""))
        for n in ("h1", "mallory")
    }
    asked = guard.add_user("h2", "risk_manager", by=who["h1"])
    assert asked.request is not None
    approval = guard.approve(asked.request.id, who["mallory"])
    assert isinstance(approval, Approval) and approval.share is not None
    who["h2"] = login(guard, "h2", guard.enroll("h2", (asked.code or "") + approval.share))
    assert guard.two_person_administration
    return guard, who


def lifting_pair_lifts(guard: Guard, requester: Operator, approver: Operator) -> bool:
    guard.emergency(requester, "drill")
    request = guard.reset(requester, "lift")
    try:
        guard.approve(request.id, approver)
    except (ApprovalRefused, PermissionDenied):
        return False
    return guard.portfolio_state is PortfolioState.NORMAL


class TestStaleRequests:
    def test_promotion_when_user_demoted_and_reissued_since_then_refused(
        self, team: tuple[Guard, dict[str, Operator]]
    ) -> None:
        """A role request opened on one credential never promotes another: demoting the user
        and re-issuing its token alone makes the old promotion stale."""
        guard, who = team
        add = guard.add_user("p", "risk_manager", by=who["mallory"])
        assert add.request is not None
        guard.approve(add.request.id, who["h1"])
        promote = guard.set_role("p", "admin", by=who["mallory"])
        demote = guard.set_role("p", "trader", by=who["mallory"])
        assert promote.request is not None and demote.request is not None
        guard.approve(demote.request.id, who["h1"])
        guard.enroll("p", guard.issue_token("p", by=who["mallory"]).code or "")  # hers alone
        with pytest.raises(ApprovalRefused, match="changed since the request"):
            guard.approve(promote.request.id, who["h1"])
        assert [u["role"] for u in guard.users() if u["name"] == "p"] == ["trader"]

    def test_promotion_when_user_removed_and_recreated_since_then_refused(
        self, team: tuple[Guard, dict[str, Operator]]
    ) -> None:
        """A request about a user never applies to a new user under the same name."""
        guard, who = team
        add = guard.add_user("p", "risk_manager", by=who["mallory"])
        assert add.request is not None
        guard.approve(add.request.id, who["h1"])
        promote = guard.set_role("p", "admin", by=who["mallory"])
        removal = guard.remove_user("p", by=who["mallory"])
        assert promote.request is not None and removal.request is not None
        guard.approve(removal.request.id, who["h1"])
        guard.enroll("p", guard.add_user("p", "trader", by=who["mallory"]).code or "")
        with pytest.raises(ApprovalRefused, match="changed since the request"):
            guard.approve(promote.request.id, who["h1"])


class TestHolders:
    def test_pair_when_both_credentials_lead_back_to_one_person_then_refused(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """A schema-1 chain boss -> p -> q (each token printed to its issuer) is one person's
        to hold: boss and q are not two people, after the migration as before it."""
        tokens = {"boss": "boss-token-0123456789", "p": "p-token-012345678", "q": "q-tok-0123456"}
        issued = {"boss": None, "p": "boss", "q": "p"}
        rows = [
            (name, "admin", *hash_token(token), float(i + 1), issued[name])
            for i, (name, token) in enumerate(tokens.items())
        ]
        with closing(sqlite3.connect(db_path)) as db, db:
            db.executescript(
                """
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                INSERT INTO meta VALUES ('schema', '1'), ('audit_keyed', '0');
                CREATE TABLE users (
                    name TEXT PRIMARY KEY, role TEXT NOT NULL, salt TEXT, token_hash TEXT,
                    updated_at REAL NOT NULL, issued_by TEXT);
                """
            )
            db.executemany("INSERT INTO users VALUES (?,?,?,?,?,?)", rows)
        guard = make_guard(users={})
        boss, q = login(guard, "boss", tokens["boss"]), login(guard, "q", tokens["q"])
        assert not lifting_pair_lifts(guard, boss, q)


class TestBootstrapCodes:
    def test_bootstrap_code_when_redeemed_after_establishment_then_refused(
        self, make_guard: MakeGuard
    ) -> None:
        """A lifting code the bootstrap issued, still pending when two people can lift, dies
        then: whoever ran the bootstrap saw it."""
        guard = make_guard(users={})
        codes = {
            n: guard.add_user(n, r, by="local:cto").code or ""
            for n, r in {"cto": "admin", "cfo": "admin", "risk1": "risk_manager"}.items()
        }
        guard.enroll("cto", codes["cto"])
        guard.enroll("cfo", codes["cfo"])
        assert guard.two_person_administration
        with pytest.raises(PermissionDenied, match="no enrollment waiting"):
            guard.enroll("risk1", codes["risk1"])


class TestLockout:
    def test_remove_when_it_leaves_one_person_who_can_lift_then_refused(
        self, make_guard: MakeGuard
    ) -> None:
        """The last two people who can lift cannot be reduced to one: nobody could lift an
        emergency or add a lifting user again."""
        guard = make_guard(users={})
        who = {
            n: login(guard, n, guard.enroll(n, guard.add_user(n, "admin", by="local:r").code or ""))
            for n in ("cto", "cfo")
        }
        with pytest.raises(BadRequest, match="leave 1 enrolled person who can lift"):
            guard.remove_user("cfo", by=who["cto"])
        with pytest.raises(BadRequest, match="leave 1 enrolled person who can lift"):
            guard.issue_token("cfo", by=who["cto"])  # a code that might expire unredeemed
        with pytest.raises(BadRequest, match="leave 1 enrolled person who can lift"):
            guard.set_role("cfo", "trader", by=who["cto"])
        assert lifting_pair_lifts(guard, who["cto"], who["cfo"])
