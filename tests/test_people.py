"""Two persons are two persons (issue 14): enrollment, two-person administration, names.

Every act here goes through authenticated operators holding only the tokens and codes the
API handed them, as a person at the CLI or the HTTP API would.
"""

from __future__ import annotations

import itertools

import pytest

from tests.conftest import MakeGuard
from tradeguard import ApprovalRefused, ConfigError, Guard, PermissionDenied, PortfolioState
from tradeguard.config import parse_config
from tradeguard.errors import BadRequest
from tradeguard.model import Operator
from tradeguard.testing import FakeClock, enroll_team

TEAM = {"alice": "admin", "h1": "risk_manager", "h2": "admin"}


@pytest.fixture
def team(make_guard: MakeGuard) -> tuple[Guard, dict[str, Operator]]:
    """An honestly bootstrapped team: file access issued each code, each redeemed their own."""
    guard = make_guard(users=TEAM)
    tokens = enroll_team(guard, TEAM)
    assert guard.two_person_administration
    who = {n: guard.authenticate(n, t) for n, t in tokens.items()}
    return guard, {n: o for n, o in who.items() if o is not None}


def lifted(guard: Guard, requester: Operator, approver: Operator) -> bool:
    """Whether ``requester`` and ``approver`` together lift a fresh emergency."""
    guard.emergency(requester)
    request = guard.reset(requester)
    try:
        guard.approve(request.id, approver)
    except (ApprovalRefused, PermissionDenied):
        return False
    return guard.portfolio_state is PortfolioState.NORMAL


class TestEnrollment:
    def test_enroll_when_code_redeemed_then_token_works_and_code_is_spent(
        self, make_guard: MakeGuard
    ) -> None:
        """A code is redeemed once for a token only its owner sees."""
        guard = make_guard()
        code = guard.add_user("ann", "trader", by="root").code
        assert code is not None
        token = guard.enroll("ann", code)
        assert guard.authenticate("ann", token) == Operator("ann")
        with pytest.raises(PermissionDenied, match="no enrollment waiting"):
            guard.enroll("ann", code)

    def test_enroll_when_code_expired_then_refused_and_audited(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A code lapses after ``auth.enrollment_ttl_seconds``."""
        guard = make_guard(auth={"enrollment_ttl_seconds": 60})
        code = guard.add_user("ann", "trader", by="root").code or ""
        clock.advance(61)
        with pytest.raises(PermissionDenied, match="expired"):
            guard.enroll("ann", code)
        assert guard.audit_records()[-1].entry.action == "refused:enroll"

    def test_enrollment_ttl_when_not_positive_then_config_error(self) -> None:
        """The new threshold is validated like every other."""
        with pytest.raises(ConfigError, match="enrollment_ttl_seconds"):
            parse_config({"auth": {"enrollment_ttl_seconds": 0}})

    def test_renew_when_owner_renews_then_sponsors_kept(
        self, team: tuple[Guard, dict[str, Operator]]
    ) -> None:
        """Renewing one's own token never changes who else saw the code it came from, so it
        cannot launder a credential (the first historical bypass re-issued bob as bob)."""
        guard, who = team
        change = guard.add_user("tom", "trader", by=who["alice"])
        tom = guard.authenticate("tom", guard.enroll("tom", change.code or ""))
        assert tom is not None
        guard.authenticate("tom", guard.renew_token(tom))
        (event,) = [e for e in guard.user_history() if e.action == "renewed"]
        assert event.user == "tom"
        assert next(u for u in guard.users() if u["name"] == "tom")["has_token"]


class TestTwoPersonAdministration:
    def test_add_user_when_lifting_role_after_establishment_then_one_share_cannot_enroll(
        self, team: tuple[Guard, dict[str, Operator]]
    ) -> None:
        """An admin creating an admin gets a request and one share: alone it enrolls nobody,
        so the admin cannot become a second lifting person (bypass 1)."""
        guard, who = team
        asked = guard.add_user("bob", "admin", by=who["alice"])
        assert asked.request is not None and asked.code is not None
        with pytest.raises(ApprovalRefused, match="different person"):
            guard.approve(asked.request.id, who["alice"])
        done = guard.approve(asked.request.id, who["h1"])
        share = getattr(done, "share", None)
        assert share is not None
        with pytest.raises(PermissionDenied, match="wrong enrollment code"):
            guard.enroll("bob", asked.code)
        bob = guard.authenticate("bob", guard.enroll("bob", share + " " + asked.code))
        assert bob is not None and lifted(guard, who["alice"], bob)

    def test_approve_when_middle_of_chain_removed_then_requester_still_needs_another_person(
        self, team: tuple[Guard, dict[str, Operator]]
    ) -> None:
        """Creating carol and then removing her leaves alice with nothing she can approve
        with (bypass 2): a user alice made alone never holds a lifting role with her code."""
        guard, who = team
        carol = guard.add_user("carol", "trader", by=who["alice"])
        puppet = guard.authenticate("carol", guard.enroll("carol", carol.code or ""))
        assert puppet is not None
        promotion = guard.set_role("carol", "admin", by=who["alice"])
        assert promotion.request is not None
        guard.approve(promotion.request.id, who["h1"])  # a gullible second person
        with pytest.raises(PermissionDenied, match="has no token"):
            guard.authenticate("carol", "anything")
        bob = guard.add_user("bob", "trader", by=who["alice"])
        guard.enroll("bob", bob.code or "")
        removal = guard.remove_user("carol", by=who["alice"])
        assert removal.request is not None
        guard.approve(removal.request.id, who["h2"])
        assert not lifted(guard, who["alice"], puppet)

    def test_promote_when_admin_holds_two_puppets_then_neither_keeps_its_token(
        self, team: tuple[Guard, dict[str, Operator]]
    ) -> None:
        """Two traders whose codes one admin redeemed, both promoted with a second person's
        approval, are re-enrolled with split codes: the admin holds no lifting pair."""
        guard, who = team
        puppets = []
        for name in ("p1", "p2"):
            code = guard.add_user(name, "trader", by=who["alice"]).code or ""
            token = guard.enroll(name, code)
            request = guard.set_role(name, "risk_manager", by=who["alice"]).request
            assert request is not None
            guard.approve(request.id, who["h1"])
            with pytest.raises(PermissionDenied):
                guard.authenticate(name, token)
            puppets.append(name)
        assert not any(u["has_token"] for u in guard.users() if u["name"] in puppets)

    def test_establishment_when_lifting_users_removed_then_never_reverts(
        self, team: tuple[Guard, dict[str, Operator]]
    ) -> None:
        """Removing lifting users never brings back one-person administration, and the
        last two who can lift cannot be removed (nobody could lift an emergency again)."""
        guard, who = team
        request = guard.remove_user("h2", by=who["alice"]).request
        assert request is not None
        guard.approve(request.id, who["h1"])
        with pytest.raises(BadRequest, match="leave 1 enrolled person who can lift"):
            guard.remove_user("h1", by=who["alice"])
        assert guard.two_person_administration
        asked = guard.add_user("mallory2", "admin", by=who["alice"])
        assert asked.request is not None

    def test_request_when_requester_is_not_admin_then_refused(
        self, team: tuple[Guard, dict[str, Operator]]
    ) -> None:
        """Only an admin asks for a change of who can lift."""
        guard, who = team
        with pytest.raises(PermissionDenied, match="not an admin"):
            guard.add_user("x", "admin", by=who["h1"])

    def test_history_when_users_administered_then_append_only_record_of_who_enrolled_whom(
        self, team: tuple[Guard, dict[str, Operator]]
    ) -> None:
        """The history names the bootstrap codes, each enrollment and the establishment."""
        guard, _who = team
        acts = [(e.action, e.user) for e in guard.user_history()]
        assert acts[:3] == [("code", "alice"), ("enrolled", "alice"), ("code", "h2")]
        assert ("established", "") in acts and ("enrolled", "h1") in acts
        assert acts.index(("established", "")) < acts.index(("enrolled", "h1"))


class TestBootstrap:
    def test_readme_bootstrap_when_team_built_then_every_lifting_pair_lifts(
        self, make_guard: MakeGuard
    ) -> None:
        """File access enrolls cto and cfo; cfo asks for the rest, cto approves; then any two
        different lifting people complete a reset (no deadlock)."""
        guard = make_guard(users={"ops": "viewer"})
        tokens = {}
        for name in ("cto", "cfo"):
            tokens[name] = guard.enroll(
                name, guard.add_user(name, "admin", by="local:root").code or ""
            )
        who = {n: guard.authenticate(n, t) for n, t in tokens.items()}
        for name, role in (("risk", "risk_manager"), ("admin2", "admin")):
            asked = guard.add_user(name, role, by=who["cfo"])  # type: ignore[arg-type]
            assert asked.request is not None
            done = guard.approve(asked.request.id, who["cto"])  # type: ignore[arg-type]
            code = f"{asked.code}{getattr(done, 'share', '')}"
            who[name] = guard.authenticate(name, guard.enroll(name, code))
        for a, b in itertools.permutations(who.values(), 2):
            assert a is not None and b is not None and lifted(guard, a, b), (a, b)


class TestNames:
    def test_config_when_two_names_are_one_person_then_config_error_names_both(self) -> None:
        """``alice`` and ``Alice`` in ``users:`` are one person: refused, naming both."""
        with pytest.raises(ConfigError, match="'alice' and 'Alice' are one person"):
            parse_config({"users": {"alice": "admin", "Alice": "risk_manager"}})

    def test_add_user_when_name_differs_only_in_case_then_refused(self, guard: Guard) -> None:
        """Creating ``RISK1`` when ``risk1`` exists is refused."""
        with pytest.raises(BadRequest, match="exists"):
            guard.add_user("RISK1", "admin", by="root")

    def test_authenticate_when_other_case_then_same_person_shown_as_created(
        self, team: tuple[Guard, dict[str, Operator]]
    ) -> None:
        """``tom`` authenticates as ``Tom``, the name as created (what the audit shows)."""
        guard, _who = team
        code = guard.add_user("Tom", "trader", by="root").code or ""
        token = guard.enroll("TOM", code)
        assert guard.authenticate("tom", token) == Operator("Tom")

    def test_approve_when_same_person_in_another_case_then_refused(self, guard: Guard) -> None:
        """The two-person check compares normalized names: ``RISK1`` is risk1."""
        guard.emergency("trader1")
        request = guard.reset("risk1")
        with pytest.raises(ApprovalRefused, match="different person"):
            guard.approve(request.id, "RISK1")
        assert guard.portfolio_state is PortfolioState.EMERGENCY
