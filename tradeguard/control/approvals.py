"""Approvals: lifting a portfolio halt, and two-person requests.

A soft or hard halt is lifted at once by a risk_manager; an emergency (and a genome's
blacklist, and, once established, any change to who can lift: :mod:`.enrollment`) needs a
request by one person and its approval by a second, different person (by normalized name)
who holds credentials of their own. A request is tied to the state it was opened on: anything
that changed since (a newer halt, a newer blacklisting, the requester demoted, the user it
names created or removed) supersedes it.
"""

from __future__ import annotations

import secrets

from tradeguard import inputs
from tradeguard.audit import AuditEntry
from tradeguard.clock import to_iso
from tradeguard.control.commands import Commands, decided
from tradeguard.control.enrollment import Administration
from tradeguard.control.users import Users
from tradeguard.effects.ladder import Readiness
from tradeguard.engine.core import Core
from tradeguard.engine.intake import Intake
from tradeguard.errors import (
    ApprovalRefused,
    InvalidTransition,
    ResumeRefused,
    UnknownRequest,
)
from tradeguard.incidents.registry import GenomeRegistry, unblock_target
from tradeguard.model import PORTFOLIO, Actor, PortfolioState, Role, Scope, StateChange, User
from tradeguard.recovery import cooldown_left
from tradeguard.state import REQUIRED_ROLE, TWO_PERSON_RESET, Command
from tradeguard.store import Approval


class Approvals:
    def __init__(
        self,
        core: Core,
        *,
        commands: Commands,
        users: Users,
        admin: Administration,
        genomes: GenomeRegistry,
        intake: Intake,
        readiness: Readiness,
    ) -> None:
        self._book = core.book
        self._storage = core.storage
        self._transitions = core.transitions
        self._commands = commands
        self._users = users
        self._admin = admin
        self._genomes = genomes
        self._intake = intake
        self._readiness = readiness
        self._clock = core.clock

    def reset(self, user: User, reason: str) -> Approval:
        episode = self._readiness.episode_rules("portfolio")  # audit I/O: not under the lock
        with self._book.lock:
            actor = self._commands.authorize(user, Command.RESET, PORTFOLIO)
            self._transitions.refresh("portfolio")
            current = self._book.status_of(PORTFOLIO)
            if current.state == PortfolioState.NORMAL:
                why = "the portfolio is not halted: nothing to reset"
                self._transitions.refuse(user, Command.RESET, PORTFOLIO, why)
                raise InvalidTransition(why)
            now = self._clock.time()
            breaching = self._book.active.get("portfolio", ())
            triggers = self._book.config.triggers
            seconds = self._readiness.cooldown(current, breaching, triggers, episode)
            wait = cooldown_left(current, seconds, now)
            if wait:
                self._transitions.refuse(
                    user, Command.RESET, PORTFOLIO, f"cannot reset yet: {wait}"
                )
                raise ResumeRefused(f"cannot reset yet: {wait}", problems=[wait])
            request = self._request(
                actor, str(Command.RESET), str(PORTFOLIO), current.version, reason
            )
            if current.state in TWO_PERSON_RESET:
                self._commit(
                    request, f"reset of {current.state} requested; needs a second approver"
                )
                return request
            done = decided(request, "executed", str(actor), now)
            self._lift(actor, reason, done)
            return done

    def unblock_genome(self, genome_fingerprint: str, user: User, reason: str) -> Approval:
        actor = self._commands.authorize(user, Command.UNBLOCK, PORTFOLIO)
        fp = str(genome_fingerprint)
        record = self._genomes.record(fp)
        if record is None or not record.blacklisted:
            why = f"genome {fp[:12]} is not blacklisted: nothing to unblock"
            self._transitions.refuse(user, Command.UNBLOCK, PORTFOLIO, why)
            raise InvalidTransition(why)
        request = self._request(
            actor, "unblock_genome", f"genome:{fp}:{record.incident}", 0, reason
        )
        self._commit(request, f"unblock of genome {fp[:12]} requested; needs a second approver")
        return request

    def approve(self, request_id: str, user: User) -> StateChange | Approval:
        with self._book.lock:
            actor = self._commands.authorize(user, Command.RESET, PORTFOLIO)
            request = self._storage.require().approval(str(request_id))
            if request is None:
                self._transitions.refuse(user, "approve", PORTFOLIO, f"no request {request_id!r}")
                raise UnknownRequest(f"no two-person request {request_id!r}; see pending_approvals")
            now = self._clock.time()
            self._transitions.refresh("portfolio")
            problem, status = self._problem(request, str(actor), now)
            if problem:
                self._transitions.refuse(user, "approve", PORTFOLIO, f"{request.id}: {problem}")
                if status:
                    self._commit(decided(request, status, None, now), problem)
                raise ApprovalRefused(problem)
            done = decided(request, "executed", str(actor), now)
            if request.action.startswith("user:"):
                return self._admin.execute(done, str(actor))
            if request.action == "unblock_genome":
                self._genomes.unblock(actor, done)
                return done
            return self._lift(actor, request.reason, done)

    def _request(
        self, actor: Actor, action: str, scope: str, version: int, reason: str
    ) -> Approval:
        """A pending request, open for ``guard.approval_ttl_seconds``."""
        now = self._clock.time()
        return Approval(
            id=secrets.token_hex(6),
            action=action,
            scope=scope,
            requested_by=str(actor),
            requested_at=now,
            expires_at=now + self._book.config.guard.approval_ttl_seconds,
            target_version=version,
            status="pending",
            reason=inputs.text(reason),
        )

    def open_requests(self) -> list[Approval]:
        """The requests a second person could still approve: pending, not expired, and not
        overtaken by a change to what they name (every view lists these, and only these)."""
        now = self._clock.time()
        with self._book.lock:
            return [
                a
                for a in self._storage.require().approvals()
                if now <= a.expires_at and not self._overtaken(a)[0]
            ]

    def _problem(self, request: Approval, approver: str, now: float) -> tuple[str, str]:
        """Why the request cannot be approved, and the status it moves to (if it changes)."""
        if request.status != "pending":
            return f"request {request.id} is {request.status}; it cannot be used again", ""
        if now > request.expires_at:
            return f"request {request.id} expired at {to_iso(request.expires_at)}", "expired"
        dependence = self._users.dependence(approver, request.requested_by)
        if dependence:
            return dependence, ""
        return self._overtaken(request)

    def _overtaken(self, request: Approval) -> tuple[str, str]:
        """Whether what the request was opened on has changed since (then it is superseded)."""
        administering = request.action.startswith("user:")
        needed = Role.ADMIN if administering else REQUIRED_ROLE[Command.RESET]
        requester_role = self._users.role_of(request.requested_by)
        if requester_role is None or requester_role < needed:
            may = "administer users" if administering else "reset"
            return (
                f"the requester {request.requested_by} may no longer {may}: open a new request"
            ), "superseded"
        if administering:
            stale = self._admin.stale(request)
            return stale, "superseded" if stale else ""
        if request.scope.startswith("genome:"):
            fp, incident = unblock_target(request)
            record = self._genomes.record(fp)
            if record is None or not record.blacklisted or record.incident != incident:
                return "the genome's blacklisting changed since the request: open a new one", (
                    "superseded"
                )
        elif self._book.status_of(Scope.parse(request.scope)).version != request.target_version:
            return (
                "the portfolio changed since the request was opened: open a new one",
                "superseded",
            )
        return "", ""

    def _lift(self, actor: Actor, reason: str, request: Approval) -> StateChange:
        approvers = {
            "request": request.id,
            "requested_by": request.requested_by,
            "approved_by": request.approved_by,
        }
        change = self._transitions.apply(
            PORTFOLIO, Command.RESET, actor, reason, approvals=[request], details=approvers
        )
        assert change is not None  # RESET is never a no-op
        self._intake.ledger.rebase_portfolio()
        self._book.active.pop("portfolio", None)
        self._intake.recheck("portfolio")
        return change

    def _commit(self, request: Approval, why: str) -> None:
        entry = AuditEntry(
            self._clock.time(),
            request.requested_by,
            f"request:{request.status}",
            request.scope,
            None,
            None,
            why,
            {"request": request.id},
        )
        self._storage.require().commit(audit=[entry], approvals=[request])
