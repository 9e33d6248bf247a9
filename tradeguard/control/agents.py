"""Automated principals: what an AI or agent layer may ask for, gated by its trust level.

1 halts a strategy; 2 also soft-halts; 3 also hard-halts, declares emergencies and opens
incidents. Resuming, resetting, approving, unblocking or changing a limit is refused at every
level: loosening is a human act. Every refusal is audited.
"""

from __future__ import annotations

from collections.abc import Callable

from tradeguard import inputs
from tradeguard.engine.core import Core
from tradeguard.errors import BadRequest, PermissionDenied
from tradeguard.incidents.killchain import Incident
from tradeguard.model import PORTFOLIO, Actor, ActorKind, Scope, StateChange
from tradeguard.state import Command

# What an automated principal may ask for, by the least trust level; nothing else, ever.
AGENT_ACTIONS: dict[str, int] = {
    "halt_strategy": 1,
    "soft_halt": 2,
    "hard_halt": 3,
    "start_incident": 3,  # containment halts every strategy; remediation per policy
    "emergency": 3,
}
NEVER_AUTOMATED = ("resume", "reset", "approve", "unblock_genome", "set_limit")

OpenIncident = Callable[[str, str, str], Incident | None]  # (trigger, reason, by)


class Agents:
    def __init__(self, core: Core, *, open_incident: OpenIncident) -> None:
        self._book = core.book
        self._transitions = core.transitions
        self._open_incident = open_incident

    def request(
        self, principal: str, action: str, target: str | None, reason: str
    ) -> StateChange | Incident | None:
        name = inputs.text(principal, 64)
        agent = self._book.config.autonomy.principals.get(name)
        actor = Actor(ActorKind.AGENT, name)
        why = ""
        if not isinstance(action, str):
            why, action = f"action must be text, got {action!r}", inputs.text(action, 64)
        elif agent is None:
            why = f"{name} is not a known automated principal"
        elif action in NEVER_AUTOMATED:
            why = f"automated principals may never {action}: that needs a person"
        elif action not in AGENT_ACTIONS:
            why = f"unknown action {action!r}; known: {sorted(AGENT_ACTIONS)}"
        elif agent.trust < AGENT_ACTIONS[action]:
            why = f"{name} has trust {agent.trust}; {action} needs {AGENT_ACTIONS[action]}"
        if why:
            self._transitions.refuse(str(actor), action, PORTFOLIO, why)
            raise PermissionDenied(why)
        text = reason or f"requested by {actor}"
        if action == "start_incident":
            return self._open_incident("manual", text, str(actor))
        if action == "halt_strategy":
            try:
                sid = inputs.identifier("strategy", target)
            except ValueError as exc:
                self._transitions.refuse(str(actor), action, PORTFOLIO, str(exc))
                raise BadRequest(str(exc)) from None
            with self._book.lock:
                self._book.registered.add(sid)
            return self._transitions.apply(Scope.strategy(sid), Command.HALT, actor, text)
        command = {"soft_halt": Command.SOFT_HALT, "hard_halt": Command.HARD_HALT}.get(
            action, Command.EMERGENCY
        )
        return self._transitions.apply(PORTFOLIO, command, actor, text)
