"""Commands: halts and resumes by people, authorized, validated and audited.

Stopping is never refused: a halt of any kind is carried out for any initiator, known or not,
authenticated or not, and its audit record says which (``initiator``). A halt pressed again is
still on record (it supersedes a reset waiting for approval). A resume needs senior_trader,
the halt's cool-down served and the strategy fit to trade; it re-enters on the recovery
ladder. Every refusal is audited.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

from tradeguard import inputs
from tradeguard.audit import AuditEntry
from tradeguard.auth import Authorizer
from tradeguard.config import USER_NAME, Remedy
from tradeguard.effects.ladder import Readiness
from tradeguard.engine.core import Core
from tradeguard.engine.intake import Intake
from tradeguard.engine.rungs import Rungs
from tradeguard.errors import (
    BadRequest,
    InvalidTransition,
    PermissionDenied,
    ResumeRefused,
    StoreUnavailable,
)
from tradeguard.incidents.killchain import Incident
from tradeguard.incidents.registry import GenomeRegistry
from tradeguard.incidents.response import IncidentResponse
from tradeguard.model import (
    PORTFOLIO,
    Actor,
    ActorKind,
    Operator,
    PortfolioState,
    Scope,
    ScopeKind,
    StateChange,
    User,
)
from tradeguard.model import StrategyState as S
from tradeguard.state import TIGHTENING, Command
from tradeguard.store import Approval, Rung

log = logging.getLogger("tradeguard")


class Commands:
    def __init__(
        self,
        core: Core,
        *,
        auth: Authorizer,
        intake: Intake,
        rungs: Rungs,
        readiness: Readiness,
        save_baseline: Callable[[str], None],
        genomes: GenomeRegistry,
        incidents: IncidentResponse,
    ) -> None:
        self._book = core.book
        self._storage = core.storage
        self._transitions = core.transitions
        self._auth = auth
        self._intake = intake
        self._rungs = rungs
        self._readiness = readiness
        self._save_baseline = save_baseline
        self._genomes = genomes
        self._incidents = incidents
        self._clock = core.clock

    def authorize(self, user: object, command: Command, scope: Scope) -> Actor:
        try:
            return self._auth.authorize(user.name if isinstance(user, Operator) else user, command)
        except PermissionDenied as exc:
            self._transitions.refuse(user, command, scope, str(exc))
            raise

    def initiator(self, user: object, command: Command) -> tuple[Actor, dict[str, Any]]:
        """Who asks to stop, as the audit will name them; never refused. A name that is not
        a valid user name (it could read like the guard or a rule) is recorded as given, under
        ``unidentified``."""
        authenticated = isinstance(user, Operator)
        name = user.name if isinstance(user, Operator) else user
        try:
            actor = self._auth.authorize(name, command)
        except Exception as exc:  # PermissionDenied, or a name whose __eq__ or __hash__ raises
            try:
                claimed = inputs.text(name, 64)
            except Exception:  # a name that cannot even be printed
                claimed = "(unprintable)"
            known = type(name) is str and USER_NAME.match(name) is not None
            log.warning("%s by an unknown initiator %r: carried out (%s)", command, claimed, exc)
            actor = Actor(ActorKind.USER, claimed if known else "unidentified")
            details = {"authenticated": authenticated, "known": False, "claimed": claimed}
            return actor, details
        return actor, {"authenticated": authenticated}

    def manual(
        self,
        user: object,
        command: Command,
        scope: Scope,
        reason: str,
        *,
        rungs: Sequence[Rung] = (),
    ) -> StateChange | None:
        if command in TIGHTENING:
            actor, initiator = self.initiator(user, command)
        else:
            actor = self.authorize(user, command, scope)
            initiator = {"authenticated": isinstance(user, Operator)}
        try:
            change = self._transitions.apply(
                scope, command, actor, reason, rungs=rungs, details={"initiator": initiator}
            )
        except InvalidTransition as exc:
            self._transitions.refuse(user, command, scope, str(exc))
            raise
        if change is None:  # pressed while already at least as strict: still on record
            self._pressed_again(actor, command, scope, reason)
        return change

    def strategy_id(self, strategy_id: object, user: object, command: Command) -> str:
        try:
            return inputs.identifier("strategy_id", strategy_id)
        except ValueError as exc:
            self._transitions.refuse(user, command, PORTFOLIO, str(exc))
            raise BadRequest(str(exc)) from None

    def register_strategy(
        self, strategy_id: str, allocated_capital: float | None, genome: object
    ) -> None:
        sid = inputs.identifier("strategy_id", strategy_id)
        capital = None
        if allocated_capital is not None:
            capital = inputs.positive("allocated_capital", allocated_capital)
        if genome is not None:
            self._genomes.register(sid, genome)
        with self._book.lock:
            self._book.registered.add(sid)
            m = self._intake.ledger.strategy(sid)
            if capital is not None:
                m.allocated_capital = capital

    def start_incident(
        self, reason: str, user: User, strategies: Sequence[str] | None, disable: bool = False
    ) -> Incident:
        """``disable``: the person names the one strategy the incident is about, and their
        word is the evidence: remediation disables it and blacklists its genome, whatever the
        policy for a person's incident says (two people undo the blacklisting)."""
        actor = self.authorize(user, Command.INCIDENT, PORTFOLIO)
        if isinstance(strategies, str | bytes):
            raise BadRequest("strategies must be a list of ids, not one string")
        if disable and (strategies is None or len(strategies) != 1):
            raise BadRequest("disable names one strategy: strategies=[its id]")
        try:
            affected = (
                None
                if strategies is None
                else [inputs.identifier("strategy", s) for s in strategies]
            )
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        remedy = Remedy.DISABLE if disable else None
        incident = self._incidents.open(
            "manual", reason, str(actor), strategies=affected, remedy=remedy
        )
        if incident is None:
            raise StoreUnavailable(self._storage.error or "the incident could not be recorded")
        return incident

    def halt_strategy(self, strategy_id: str, user: User, reason: str) -> StateChange | None:
        sid = self.strategy_id(strategy_id, user, Command.HALT)
        with self._book.lock:
            change = self.manual(user, Command.HALT, Scope.strategy(sid), reason)
            self._book.registered.add(sid)
            self._intake.ledger.strategy(sid)
        return change

    def resume_strategy(self, strategy_id: str, user: User, reason: str) -> StateChange:
        sid = self.strategy_id(strategy_id, user, Command.RESUME)
        scope, key = Scope.strategy(sid), f"strategy:{sid}"
        book = self._book
        command = Command.RESUME if book.config.recovery.enabled else Command.RESUME_FULL
        self.authorize(user, Command.RESUME, scope)
        held = self._readiness.held(sid)  # venue I/O: never under the guard's lock
        episode = self._readiness.episode_rules(key)  # audit I/O, likewise
        with book.lock:
            self._transitions.refresh("portfolio")
            if book.portfolio_state is PortfolioState.EMERGENCY:
                why = (
                    "lockdown: nothing is resumed during an emergency; "
                    "the two-person reset comes first"
                )
                self._transitions.refuse(user, Command.RESUME, scope, why)
                raise PermissionDenied(why)
            self._transitions.refresh(key)
            status = book.status_of(scope)
            if status.state != S.HALTED:
                why = f"cannot resume strategy {sid} in state {status.state}: only a halt lifts"
                self._transitions.refuse(user, Command.RESUME, scope, why)
                raise InvalidTransition(why)
            problems = self._readiness.unfit_to_resume(sid, status, held, episode)
            if problems:
                why = f"cannot resume {sid} yet: " + "; ".join(problems)
                self._transitions.refuse(user, Command.RESUME, scope, why)
                raise ResumeRefused(why, problems=problems)
            ledger = self._intake.ledger
            rungs = []
            if command is Command.RESUME:  # the ladder's first rung, written with the resume
                rebased, now = ledger.rebased(sid), self._clock.time()
                rungs = [self._rungs.ladder.first(key, status.version + 1, now, rebased, str(user))]
            change = self.manual(user, command, scope, reason, rungs=rungs)
            assert change is not None  # a resume is never a no-op
            ledger.rebase_strategy(sid)
            self._save_baseline(key)
            book.active.pop(key, None)
            if rungs:
                self._rungs.set(sid, rungs[0])
            self._intake.recheck(key)
        return change

    def _pressed_again(self, actor: Actor, command: Command, scope: Scope, why: str) -> None:
        """A person asked to stop: any reset waiting for approval no longer reflects the
        situation, so it is superseded and cannot lift this scope past the new request."""
        state = self._book.status_of(scope).state
        superseded: list[Approval] = []
        store = self._storage.healthy()
        if scope.kind is ScopeKind.PORTFOLIO and store is not None:
            now = self._clock.time()
            try:
                superseded = [
                    decided(a, "superseded", None, now)
                    for a in store.approvals()
                    if a.scope == str(scope)
                ]
            except StoreUnavailable as exc:
                self._transitions.fail_store(str(exc))
        entry = AuditEntry(
            self._clock.time(),
            str(actor),
            f"repeated:{command}",
            str(scope),
            str(state),
            str(state),
            why,
            {"superseded": [a.id for a in superseded]},
        )
        self._storage.record([entry], f"a repeated {command} by {actor}", superseded)


def decided(request: Approval, status: str, by: str | None, at: float) -> Approval:
    """The request, decided: executed, expired or superseded."""
    return dataclasses.replace(request, status=status, approved_by=by, decided_at=at)
