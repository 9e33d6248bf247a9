"""The state machine: one explicit transition table per scope kind, and who may make each move.

Tightening commands (halts) may come from anyone identified, rules included; loosening commands
(resume, reset) only from a human with the role the table names. A tightening command aimed at
a state that is already at least as strict is a no-op, not an error: two rules firing at once
must not fail the second.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tradeguard.errors import InvalidTransition
from tradeguard.model import Action, PortfolioState, Role, ScopeKind, StrategyState


class Command(StrEnum):
    HALT = "halt"  # strategy
    RESUME = "resume"  # strategy
    DISABLE = "disable"  # strategy, permanent (KillChain)
    SOFT_HALT = "soft_halt"  # portfolio
    HARD_HALT = "hard_halt"  # portfolio
    EMERGENCY = "emergency"  # portfolio
    RESET = "reset"  # portfolio
    CONFIGURE = "configure"  # change a limit at run time (not a state move)
    RESUME_FULL = "resume_full"  # strategy: straight back to full size (recovery ladder off)
    PROMOTE = "promote"  # strategy: the ladder's last gate passed, back to full size
    INCIDENT = "incident"  # open an incident by hand (not a state move)
    UNBLOCK = "unblock"  # lift a genome's blacklist (two people; not a state move)


TIGHTENING = frozenset(
    {Command.HALT, Command.DISABLE, Command.SOFT_HALT, Command.HARD_HALT, Command.EMERGENCY}
)

P, S = PortfolioState, StrategyState

PORTFOLIO_TRANSITIONS: dict[tuple[PortfolioState, Command], PortfolioState] = {
    (P.NORMAL, Command.SOFT_HALT): P.SOFT_HALT,
    (P.NORMAL, Command.HARD_HALT): P.HARD_HALT,
    (P.NORMAL, Command.EMERGENCY): P.EMERGENCY,
    (P.SOFT_HALT, Command.HARD_HALT): P.HARD_HALT,
    (P.SOFT_HALT, Command.EMERGENCY): P.EMERGENCY,
    (P.HARD_HALT, Command.EMERGENCY): P.EMERGENCY,
    (P.SOFT_HALT, Command.RESET): P.NORMAL,
    (P.HARD_HALT, Command.RESET): P.NORMAL,
    (P.EMERGENCY, Command.RESET): P.NORMAL,  # two people: see RESET_APPROVERS
}

STRATEGY_TRANSITIONS: dict[tuple[StrategyState, Command], StrategyState] = {
    (S.ACTIVE, Command.HALT): S.HALTED,
    (S.RECOVERING, Command.HALT): S.HALTED,
    (S.HALTED, Command.RESUME): S.RECOVERING,  # the ladder: paper -> 25% -> 50% -> full
    (S.HALTED, Command.RESUME_FULL): S.ACTIVE,
    (S.RECOVERING, Command.PROMOTE): S.ACTIVE,
    (S.ACTIVE, Command.DISABLE): S.DISABLED,
    (S.RECOVERING, Command.DISABLE): S.DISABLED,
    (S.HALTED, Command.DISABLE): S.DISABLED,
    # DISABLED is terminal: nothing leaves it.
}

# The least role that may issue each command. Stopping is cheap: any known user may halt.
REQUIRED_ROLE: dict[Command, Role] = {
    Command.HALT: Role.VIEWER,
    Command.SOFT_HALT: Role.VIEWER,
    Command.HARD_HALT: Role.VIEWER,
    Command.EMERGENCY: Role.VIEWER,
    Command.RESUME: Role.SENIOR_TRADER,
    Command.RESUME_FULL: Role.SENIOR_TRADER,
    Command.PROMOTE: Role.SENIOR_TRADER,
    Command.RESET: Role.RISK_MANAGER,
    Command.DISABLE: Role.RISK_MANAGER,
    Command.CONFIGURE: Role.RISK_MANAGER,
    Command.INCIDENT: Role.RISK_MANAGER,  # it halts everything; it may disable for good
    Command.UNBLOCK: Role.RISK_MANAGER,
}

PORTFOLIO_HALTS = {
    Command.SOFT_HALT: P.SOFT_HALT,
    Command.HARD_HALT: P.HARD_HALT,
    Command.EMERGENCY: P.EMERGENCY,
}

# Lifting these portfolio states takes two different people.
TWO_PERSON_RESET = frozenset({P.EMERGENCY})

ACTION_COMMAND: dict[Action, Command] = {
    Action.HALT_STRATEGY: Command.HALT,
    Action.SOFT_HALT: Command.SOFT_HALT,
    Action.HARD_HALT: Command.HARD_HALT,
    Action.EMERGENCY: Command.EMERGENCY,
}


@dataclass(frozen=True, slots=True)
class ScopeStatus:
    """The current state of one scope, as held in memory and in the store."""

    state: str
    reason: str
    since: float
    actor: str
    version: int


def next_state(kind: ScopeKind, current: str, command: Command) -> str | None:
    """The state ``command`` leads to; None when a tightening command is already in force."""
    if kind is ScopeKind.PORTFOLIO:
        p_state = PortfolioState(current)
        p_next = PORTFOLIO_TRANSITIONS.get((p_state, command))
        if p_next is not None:
            return p_next.value
        target = PORTFOLIO_HALTS.get(command)
        if target is not None and target.severity <= p_state.severity:
            return None
    else:
        s_state = StrategyState(current)
        s_next = STRATEGY_TRANSITIONS.get((s_state, command))
        if s_next is not None:
            return s_next.value
        already = s_state is S.DISABLED or (s_state is S.HALTED and command is Command.HALT)
        if command in (Command.HALT, Command.DISABLE) and already:
            return None
    raise InvalidTransition(f"cannot {command} {kind.value} in state {current}")
