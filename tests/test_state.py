"""The state machine: its transition table and the rule that automated actors only tighten."""

from __future__ import annotations

import pytest

from tests.conftest import MakeParts
from tradeguard import Guard, InvalidTransition, PermissionDenied, PortfolioState, StrategyState
from tradeguard.model import PORTFOLIO, Actor, ActorKind, ScopeKind
from tradeguard.state import TIGHTENING, Command, next_state

P, S = PortfolioState, StrategyState


class TestPortfolioTable:
    @pytest.mark.parametrize(
        ("current", "command", "expected"),
        [
            (P.NORMAL, Command.SOFT_HALT, P.SOFT_HALT),
            (P.NORMAL, Command.HARD_HALT, P.HARD_HALT),
            (P.NORMAL, Command.EMERGENCY, P.EMERGENCY),
            (P.SOFT_HALT, Command.HARD_HALT, P.HARD_HALT),
            (P.SOFT_HALT, Command.EMERGENCY, P.EMERGENCY),
            (P.HARD_HALT, Command.EMERGENCY, P.EMERGENCY),
            (P.SOFT_HALT, Command.RESET, P.NORMAL),
            (P.HARD_HALT, Command.RESET, P.NORMAL),
            (P.EMERGENCY, Command.RESET, P.NORMAL),
        ],
    )
    def test_move_when_in_table_then_next_state(
        self, current: P, command: Command, expected: P
    ) -> None:
        """Each listed move leads where the table says."""
        assert next_state(ScopeKind.PORTFOLIO, current, command) == expected

    @pytest.mark.parametrize(
        ("current", "command"),
        [
            (P.SOFT_HALT, Command.SOFT_HALT),
            (P.HARD_HALT, Command.SOFT_HALT),
            (P.EMERGENCY, Command.HARD_HALT),
            (P.EMERGENCY, Command.EMERGENCY),
        ],
    )
    def test_halt_when_already_as_strict_then_no_op(self, current: P, command: Command) -> None:
        """A halt that is already in force (or weaker than the current one) changes nothing."""
        assert next_state(ScopeKind.PORTFOLIO, current, command) is None

    @pytest.mark.parametrize("command", [Command.RESET, Command.HALT, Command.RESUME])
    def test_move_when_not_in_table_then_invalid_transition(self, command: Command) -> None:
        """Moves that do not exist from normal raise."""
        with pytest.raises(InvalidTransition):
            next_state(ScopeKind.PORTFOLIO, P.NORMAL, command)


class TestStrategyTable:
    @pytest.mark.parametrize(
        ("current", "command", "expected"),
        [
            (S.ACTIVE, Command.HALT, S.HALTED),
            (S.RECOVERING, Command.HALT, S.HALTED),
            (S.HALTED, Command.RESUME, S.RECOVERING),
            (S.HALTED, Command.RESUME_FULL, S.ACTIVE),
            (S.RECOVERING, Command.PROMOTE, S.ACTIVE),
            (S.ACTIVE, Command.DISABLE, S.DISABLED),
            (S.HALTED, Command.DISABLE, S.DISABLED),
        ],
    )
    def test_move_when_in_table_then_next_state(
        self, current: S, command: Command, expected: S
    ) -> None:
        """Each listed move leads where the table says."""
        assert next_state(ScopeKind.STRATEGY, current, command) == expected

    @pytest.mark.parametrize("command", [Command.RESUME, Command.SOFT_HALT, Command.RESET])
    def test_disabled_when_any_loosening_then_invalid(self, command: Command) -> None:
        """Disabled is terminal: nothing brings it back."""
        with pytest.raises(InvalidTransition):
            next_state(ScopeKind.STRATEGY, S.DISABLED, command)

    def test_disabled_when_halted_again_then_no_op(self) -> None:
        """Halting a disabled strategy is not an error; it stays disabled."""
        assert next_state(ScopeKind.STRATEGY, S.DISABLED, Command.HALT) is None


class TestAutomatedActors:
    @pytest.mark.parametrize("kind", [ActorKind.RULE, ActorKind.SYSTEM])
    def test_reset_when_automated_actor_then_denied(
        self, make_parts: MakeParts, kind: ActorKind
    ) -> None:
        """Rules and the guard itself may only tighten: a reset by them is refused."""
        parts = make_parts()
        parts.commands.manual("trader1", Command.HARD_HALT, PORTFOLIO, "manual hard halt")
        with pytest.raises(PermissionDenied, match="automated"):
            parts.core.transitions.apply(PORTFOLIO, Command.RESET, Actor(kind, "x"), "sneaky")
        assert parts.core.book.portfolio_state is PortfolioState.HARD_HALT

    def test_tightening_set_when_listed_then_only_halts(self) -> None:
        """The commands automated actors may issue are exactly the halts."""
        assert {Command.RESUME, Command.RESET}.isdisjoint(TIGHTENING)
        assert {
            Command.HALT,
            Command.SOFT_HALT,
            Command.HARD_HALT,
            Command.EMERGENCY,
            Command.DISABLE,
        } == TIGHTENING


class TestEveryChangeIsAudited:
    def test_state_change_when_made_then_exactly_one_audit_record(self, guard: Guard) -> None:
        """Each transition writes one record with who, what, why, before and after."""
        guard.update_portfolio(equity=100.0)
        guard.update_portfolio(equity=95.0)  # daily loss 5% > 3%: soft halt
        guard.portfolio_close("trader1", reason="manual")
        records = [r.entry for r in guard.audit_records()]
        assert [(e.actor, e.scope, e.before, e.after) for e in records] == [
            ("rule:portfolio_daily_loss", "portfolio", "normal", "soft_halt"),
            ("trader1", "portfolio", "soft_halt", "hard_halt"),
        ]
        assert records[0].details["breach"]["rule"] == "portfolio_daily_loss"

    def test_simultaneous_breaches_when_one_update_then_strictest_applied_once(
        self, guard: Guard
    ) -> None:
        """Daily loss (soft) and drawdown (hard) crossing together make one hard halt."""
        guard.update_portfolio(equity=100.0)
        guard.update_portfolio(equity=85.0)
        records = guard.audit_records()
        assert [(r.entry.before, r.entry.after) for r in records] == [("normal", "hard_halt")]
        assert guard.status()["portfolio"]["breaching"] == [
            "pnl_velocity",
            "portfolio_daily_loss",
            "portfolio_drawdown",
        ]
