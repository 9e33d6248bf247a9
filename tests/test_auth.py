"""Manual overrides: who may stop, who may start, and the two-person rule for emergencies."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeGuard
from tradeguard import (
    ApprovalRefused,
    Guard,
    InvalidTransition,
    PermissionDenied,
    PortfolioState,
    ResumeRefused,
    StrategyState,
    UnknownRequest,
)
from tradeguard.auth import hash_token
from tradeguard.testing import FakeClock

ALL_USERS = ["viewer1", "trader1", "senior1", "risk1", "admin1"]


def refusals(guard: Guard) -> list[tuple[str, str]]:
    return [
        (r.entry.actor, r.entry.action)
        for r in guard.audit_records()
        if r.entry.action.startswith("refused:")
    ]


class TestStopping:
    @pytest.mark.parametrize("user", ALL_USERS)
    def test_halt_strategy_when_any_known_user_then_halted(self, guard: Guard, user: str) -> None:
        """Stopping is cheap: every known user, viewer included, may halt a strategy."""
        change = guard.halt_strategy("s1", user=user, reason="looks wrong")
        assert change is not None and str(change.actor) == user
        assert guard.strategy_state("s1") is StrategyState.HALTED

    @pytest.mark.parametrize("user", ALL_USERS)
    def test_portfolio_halts_when_any_known_user_then_applied(
        self, guard: Guard, user: str
    ) -> None:
        """Soft halt, hard halt and emergency are each open to any known user."""
        guard.portfolio_halt(user)
        assert guard.portfolio_state is PortfolioState.SOFT_HALT
        guard.portfolio_close(user)
        assert guard.portfolio_state is PortfolioState.HARD_HALT
        asyncio.run(guard.emergency_stop(initiator=user))
        assert guard.portfolio_state is PortfolioState.EMERGENCY

    @pytest.mark.parametrize(
        ("user", "actor"),
        [("mallory", "mallory"), ("", "unidentified"), (None, "unidentified"), (7, "unidentified")],
    )
    def test_halt_when_unknown_user_then_carried_out_and_recorded_as_such(
        self, guard: Guard, user: object, actor: str
    ) -> None:
        """Stopping is never refused: an unknown initiator halts, and the audit says the
        initiator was neither known nor authenticated (a name that is no user name is not
        taken as the actor's)."""
        change = guard.halt_strategy("s1", user=user)  # type: ignore[arg-type]
        assert change is not None and guard.strategy_state("s1") is StrategyState.HALTED
        assert refusals(guard) == []
        (record,) = [r.entry for r in guard.audit_records() if r.entry.action == "state_change"]
        assert record.actor == actor
        assert record.details["initiator"] == {
            "authenticated": False,
            "known": False,
            "claimed": str(user),
        }

    def test_seed_emergency_stop_when_no_config_then_book_locked_down(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The seed's integration, with no config at all, locks the book down."""
        monkeypatch.chdir(tmp_path)
        guard = Guard()
        try:
            asyncio.run(guard.emergency_stop(initiator="trader1", reason="venue acting up"))
            assert guard.portfolio_state is PortfolioState.EMERGENCY
        finally:
            guard.close()

    def test_reset_when_rule_halt_escalated_by_anyone_then_rule_cooldown_still_holds(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """A halt never makes a lift easier: a rule's hour-long cool-down survives an
        escalation by an unknown initiator (it was taken from the latest halt only)."""
        guard = make_guard(
            recovery={"enabled": False, "cooldown_seconds": 300},
            triggers={"margin_utilization": {"limit": 0.9, "cooldown_seconds": 3600}},
        )
        guard.update_portfolio(equity=1_000_000.0, margin_used=95.0, margin_available=5.0)
        guard.update_portfolio(equity=1_000_000.0, margin_used=5.0, margin_available=95.0)
        clock.advance(5)
        guard.portfolio_close("someone-on-the-network", "escalate")
        assert guard.portfolio_state is PortfolioState.HARD_HALT
        clock.advance(400)
        with pytest.raises(ResumeRefused, match="cool-down"):
            guard.reset("risk1")
        clock.advance(3600)
        assert guard.reset("risk1").status == "executed"  # the rule's hour, then it lifts

    @pytest.mark.parametrize("name", ["trader1\n", "rule:drawdown", "system:guard"])
    def test_halt_when_name_reads_like_another_actor_then_recorded_as_unidentified(
        self, guard: Guard, name: str
    ) -> None:
        """A claimed name that is no valid user name never becomes the actor on record."""
        guard.emergency(name, "test")
        (record,) = [r.entry for r in guard.audit_records() if r.entry.action == "state_change"]
        assert record.actor == "unidentified" and guard.portfolio_state is PortfolioState.EMERGENCY

    def test_halt_when_name_cannot_be_printed_then_still_carried_out(self, guard: Guard) -> None:
        """Even a name object that raises when printed or compared stops the book."""

        class Hostile:
            def __str__(self) -> str:
                raise RuntimeError("no")

            def __eq__(self, other: object) -> bool:
                raise RuntimeError("no")

            __hash__ = None  # type: ignore[assignment]

        guard.emergency(Hostile(), "test")  # type: ignore[arg-type]
        assert guard.portfolio_state is PortfolioState.EMERGENCY

    def test_halt_when_known_user_then_recorded_as_not_authenticated(self, guard: Guard) -> None:
        """An in-process call has no token: its halt is on record as not authenticated."""
        guard.halt_strategy("s1", user="trader1")
        (record,) = [r.entry for r in guard.audit_records() if r.entry.action == "state_change"]
        assert record.actor == "trader1"
        assert record.details["initiator"] == {"authenticated": False}

    def test_halt_when_already_halted_then_no_second_change_but_on_record(
        self, guard: Guard
    ) -> None:
        """A second halt changes no state, and the operator's press is still on record."""
        guard.halt_strategy("s1", user="trader1")
        assert guard.halt_strategy("s1", user="senior1") is None
        actions = [(r.entry.actor, r.entry.action) for r in guard.audit_records()]
        assert actions == [("trader1", "state_change"), ("senior1", "repeated:halt")]

    def test_portfolio_halt_when_pressed_during_emergency_then_pending_reset_superseded(
        self, guard: Guard
    ) -> None:
        """A halt pressed after a reset was requested means the reset no longer applies."""
        guard.emergency("trader1")
        request = guard.reset("risk1")
        assert guard.portfolio_close("trader1", reason="still bleeding") is None
        with pytest.raises(ApprovalRefused, match="superseded"):
            guard.approve(request.id, "risk2")
        assert guard.portfolio_state is PortfolioState.EMERGENCY

    def test_soft_halt_when_hard_halted_then_no_op(self, guard: Guard) -> None:
        """A weaker halt never loosens a stricter one."""
        guard.portfolio_close("trader1")
        assert guard.portfolio_halt("trader1") is None
        assert guard.portfolio_state is PortfolioState.HARD_HALT


class TestResumingAStrategy:
    @pytest.mark.parametrize(
        ("user", "allowed"),
        [
            ("viewer1", False),
            ("trader1", False),
            ("senior1", True),
            ("risk1", True),
            ("admin1", True),
        ],
    )
    def test_resume_when_role_given_then_needs_senior_trader(
        self, guard: Guard, user: str, allowed: bool
    ) -> None:
        """Resuming needs senior_trader or higher; anyone lower is refused and audited."""
        guard.halt_strategy("s1", user="trader1")
        if allowed:
            guard.resume_strategy("s1", user=user)
            assert guard.strategy_state("s1") is StrategyState.ACTIVE
        else:
            with pytest.raises(PermissionDenied, match="needs senior_trader"):
                guard.resume_strategy("s1", user=user)
            assert guard.strategy_state("s1") is StrategyState.HALTED
            assert refusals(guard) == [(user, "refused:resume")]

    def test_resume_when_not_halted_then_invalid_transition_audited(self, guard: Guard) -> None:
        """Resuming an active strategy is an error, recorded as a refused attempt."""
        with pytest.raises(InvalidTransition):
            guard.resume_strategy("s1", user="senior1")
        assert refusals(guard) == [("senior1", "refused:resume")]

    def test_resume_when_loss_streak_caused_halt_then_counted_from_zero(self, guard: Guard) -> None:
        """A resume acknowledges the losses: the same streak does not halt again at once."""
        for _ in range(5):
            guard.record_trade("s1", -1.0)
        assert guard.strategy_state("s1") is StrategyState.HALTED
        guard.resume_strategy("s1", user="senior1")
        guard.record_trade("s1", -1.0)
        assert guard.strategy_state("s1") is StrategyState.ACTIVE
        for _ in range(4):
            guard.record_trade("s1", -1.0)
        assert guard.strategy_state("s1") is StrategyState.HALTED


class TestLiftingAPortfolioHalt:
    @pytest.mark.parametrize("user", ["viewer1", "trader1", "senior1"])
    def test_reset_when_role_below_risk_manager_then_denied(self, guard: Guard, user: str) -> None:
        """Lifting a portfolio halt needs risk_manager."""
        guard.portfolio_close("trader1")
        with pytest.raises(PermissionDenied, match="needs risk_manager"):
            guard.reset(user)
        assert guard.portfolio_state is PortfolioState.HARD_HALT

    @pytest.mark.parametrize("halt", ["portfolio_halt", "portfolio_close"])
    def test_reset_when_soft_or_hard_halt_then_one_risk_manager_lifts_it(
        self, guard: Guard, halt: str
    ) -> None:
        """A soft or hard halt is lifted at once by a single risk manager."""
        getattr(guard, halt)("trader1")
        request = guard.reset("risk1", reason="limits reviewed")
        assert request.status == "executed" and request.approved_by == "risk1"
        assert guard.portfolio_state is PortfolioState.NORMAL

    def test_reset_when_nothing_halted_then_refused(self, guard: Guard) -> None:
        """There is nothing to reset in normal state."""
        with pytest.raises(InvalidTransition, match="nothing to reset"):
            guard.reset("risk1")


class TestTwoPersonReset:
    @pytest.fixture
    def locked(self, guard: Guard) -> Guard:
        asyncio.run(guard.emergency_stop(initiator="trader1", reason="drill"))
        return guard

    def test_emergency_reset_when_second_person_approves_then_normal(self, locked: Guard) -> None:
        """Two different risk managers or admins lift an emergency; both are on record."""
        request = locked.reset("risk1", reason="venue healthy")
        assert request.status == "pending"
        assert locked.portfolio_state is PortfolioState.EMERGENCY
        assert [r["id"] for r in locked.status()["pending_approvals"]] == [request.id]
        change = locked.approve(request.id, "admin1")
        assert change.after == "normal"
        assert locked.portfolio_state is PortfolioState.NORMAL
        last = locked.audit_records()[-1].entry
        assert last.details == {
            "request": request.id,
            "requested_by": "risk1",
            "approved_by": "admin1",
        }
        assert locked.status()["pending_approvals"] == []

    def test_approve_when_same_person_then_refused(self, locked: Guard) -> None:
        """The requester cannot be the second approver."""
        request = locked.reset("risk1")
        with pytest.raises(ApprovalRefused, match="different person"):
            locked.approve(request.id, "risk1")
        assert locked.portfolio_state is PortfolioState.EMERGENCY
        assert refusals(locked)[-1] == ("risk1", "refused:approve")

    @pytest.mark.parametrize("user", ["viewer1", "trader1", "senior1"])
    def test_approve_when_role_too_low_then_denied(self, locked: Guard, user: str) -> None:
        """The second person must also be risk_manager or admin."""
        request = locked.reset("risk1")
        with pytest.raises(PermissionDenied):
            locked.approve(request.id, user)
        assert locked.portfolio_state is PortfolioState.EMERGENCY

    def test_approve_when_expired_then_refused(self, locked: Guard, clock: FakeClock) -> None:
        """A request is good for 15 minutes by default; after that it expires."""
        request = locked.reset("risk1")
        clock.advance(900)
        locked.approve(request.id, "risk2")  # exactly at expiry: still valid
        assert locked.portfolio_state is PortfolioState.NORMAL

    def test_approve_when_past_expiry_then_refused_and_marked(
        self, locked: Guard, clock: FakeClock
    ) -> None:
        """One second past expiry the approval is refused and the request is marked expired."""
        request = locked.reset("risk1")
        clock.advance(901)
        with pytest.raises(ApprovalRefused, match="expired"):
            locked.approve(request.id, "risk2")
        assert locked.portfolio_state is PortfolioState.EMERGENCY
        with pytest.raises(ApprovalRefused, match="is expired"):
            locked.approve(request.id, "admin1")

    def test_approve_when_replayed_then_refused(self, locked: Guard) -> None:
        """An approval cannot be used twice, even after a new emergency."""
        request = locked.reset("risk1")
        locked.approve(request.id, "risk2")
        asyncio.run(locked.emergency_stop(initiator="trader1"))
        with pytest.raises(ApprovalRefused, match="executed"):
            locked.approve(request.id, "admin1")
        assert locked.portfolio_state is PortfolioState.EMERGENCY

    def test_approve_when_other_scope_changed_then_still_valid(self, guard: Guard) -> None:
        """Only a change to the portfolio itself makes a pending reset stale."""
        guard.portfolio_close("trader1")
        asyncio.run(guard.emergency_stop(initiator="trader1"))
        request = guard.reset("risk1")
        guard.halt_strategy("s1", user="trader1")  # unrelated scope: request stays valid
        guard.approve(request.id, "risk2")
        assert guard.portfolio_state is PortfolioState.NORMAL

    def test_approve_when_newer_emergency_then_superseded(
        self, locked: Guard, make_guard: object
    ) -> None:
        """If the portfolio changed after the request (reset and locked again), it is stale."""
        first = locked.reset("risk1")
        second = locked.reset("risk2")
        locked.approve(second.id, "admin1")
        asyncio.run(locked.emergency_stop(initiator="trader1", reason="again"))
        with pytest.raises(ApprovalRefused, match="changed since"):
            locked.approve(first.id, "admin1")
        assert locked.portfolio_state is PortfolioState.EMERGENCY

    def test_approve_when_unknown_id_then_unknown_request(self, locked: Guard) -> None:
        """An id that was never issued is reported as unknown and audited."""
        with pytest.raises(UnknownRequest):
            locked.approve("deadbeef", "risk2")
        assert refusals(locked)[-1] == ("risk2", "refused:approve")


class TestTokenHashing:
    def test_hashes_when_asked_at_once_then_computed_one_at_a_time(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Four threads asking at once get their hashes one after another: scrypt is 16 MB
        of memory-hard work, and a burst of admitted bad tokens must not take every core."""
        inside, most, count = [0], [0], threading.Lock()
        real = hashlib.scrypt

        def watched(*args: Any, **kwargs: Any) -> bytes:
            with count:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            try:
                return real(*args, **kwargs)
            finally:
                with count:
                    inside[0] -= 1

        monkeypatch.setattr(hashlib, "scrypt", watched)
        together = threading.Barrier(4)

        def hashed(k: int) -> str:
            together.wait(30)
            return hash_token(f"token{k}")[1]

        with ThreadPoolExecutor(4) as pool:
            digests = list(pool.map(hashed, range(4)))
        assert most[0] == 1 and len(set(digests)) == 4
