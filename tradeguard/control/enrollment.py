"""User administration: creating users, enrollment codes, role changes and removals, one
person or two.

A credential is known only to its owner. Creating a user, or re-issuing for someone else,
yields a one-time **enrollment code** that expires (``auth.enrollment_ttl_seconds``); the
person redeems it (:meth:`Administration.enroll`) for a token nobody else saw. The owner
renews their own token with their current one. The store keeps hashes only.

Before two-person administration is established (:meth:`Users.established`) whoever
administers is the trust root: they could write the store's file anyway, and the codes they
issue have no named sponsor. From then on any change to who can lift (creating a user with a
lifting role, promoting into one, re-enrolling, demoting or removing a lifting user) is a
two-person act: an admin requests it, a different lifting user approves it (``approve``). An
act that ends in a lifting credential ends in a **split** code: one share shown to the
requester, the other to the approver, and the new credential's sponsors are both. So no one
person ever holds a lifting credential other than their own, whatever they do in whatever
order; the README's "Why one person cannot lift an emergency alone" gives the argument.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from typing import Any

from tradeguard import inputs
from tradeguard.audit import AuditEntry
from tradeguard.auth import hash_token, new_token, token_matches
from tradeguard.clock import to_iso
from tradeguard.config import USER_NAME
from tradeguard.control.users import ESTABLISHED, LIFTING, Users
from tradeguard.engine.core import Core
from tradeguard.errors import BadRequest, PermissionDenied, UnknownRequest
from tradeguard.model import PORTFOLIO, Operator, Role, User, user_key
from tradeguard.store import Approval, UserEvent, UserRecord

_SHARE_CHARS = 32  # one share: 128 random bits, in hex


@dataclass(frozen=True, slots=True)
class UserChange:
    """What a user administration act hands back to the person who did it. ``code`` is the
    enrollment code to pass to the new user, or this person's share of a split one (the new
    user needs both shares). ``request`` is set when the act waits for a second person."""

    user: str
    code: str | None = None
    expires_at: float | None = None
    request: Approval | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "code": self.code,
            "split": self.request is not None and self.code is not None,
            "expires_at": None if self.expires_at is None else to_iso(self.expires_at),
            "request": None if self.request is None else self.request.to_dict(),
        }


class Administration:
    def __init__(self, core: Core, *, users: Users) -> None:
        self._book = core.book
        self._storage = core.storage
        self._transitions = core.transitions
        self._clock = core.clock
        self._users = users

    # -- the acts ---------------------------------------------------------------------------

    def add(self, name: str, role: str, *, by: User) -> UserChange:
        """Create a user; its enrollment code (or the requester's share) is returned once."""
        name, parsed = _valid_user_name(name), _valid_role(role)
        if self._users.record(name) or self._users.configured(name):
            raise BadRequest(f"user {name!r} exists: use `set-role` or `token`")
        if name in self._book.config.autonomy.principals:
            raise BadRequest(f"{name} is an automated principal: it cannot be a user too")
        if self._two_person(parsed):
            return self._request(by, "user:add", name, parsed)
        return self._issue(_new(name, parsed, self._clock.time()), by, "added")

    def issue_token(self, name: str, *, by: User) -> UserChange:
        """Re-enroll someone: their token stops working now, and a new code is returned."""
        record, role = self._existing(name)
        self._keep_two_lifting(record, role if record.enrolled else None)
        if self._two_person(role):
            return self._request(by, "user:enroll", record.name, role)
        return self._issue(record, by, "code")

    def renew(self, owner: Operator) -> str:
        """A new token for an authenticated owner, who alone sees it; its sponsors stay those
        of the token it replaces (renewing never launders who else saw the first code)."""
        record = self._users.record(owner.name)
        if record is None or not record.enrolled:
            raise UnknownRequest(f"{owner.name} has no token to renew")
        token, now = new_token(), self._clock.time()
        salt, digest = hash_token(token)
        renewed = replace(record, salt=salt, token_hash=digest, updated_at=now)
        self._write(renewed, record.name, "renewed", {})
        return token

    def set_role(self, name: str, role: str, *, by: User) -> UserChange:
        """Change a role. Promotion into a lifting role re-enrolls the user with a split code
        once administration is two-person: a credential one admin may have seen never lifts."""
        record, old = self._existing(name)
        new = _valid_role(role)
        if new < LIFTING or new >= LIFTING > old:  # a demotion, or a promotion (re-enrolls)
            self._keep_two_lifting(record, old if record.enrolled else None)
        if self._two_person(old, new):
            return self._request(by, "user:role", record.name, new)
        changed = replace(record, role=new.label, updated_at=self._clock.time())
        self._write(changed, by, "role", {"role": new.label, "was": old.label})
        self._establish_if_due()
        return UserChange(record.name)

    def remove(self, name: str, *, by: User) -> UserChange:
        """Remove a user's record (role and token); its history stays. One listed in the
        config keeps its config role, without a token, until it is removed there too."""
        record = self._users.record(name)
        if record is None:
            raise UnknownRequest(f"no user {name!r} in the store")
        self._keep_two_lifting(record, Role.parse(record.role) if record.enrolled else None)
        if self._two_person(Role.parse(record.role)):
            return self._request(by, "user:remove", record.name, Role.parse(record.role))
        self._remove(record, by)
        return UserChange(record.name)

    def enroll(self, name: str, code: str) -> str:
        """Redeem an enrollment code (both shares of a split one, in either order, spaces
        ignored) for a token only the caller sees. Refusals are audited."""
        record = self._users.record(name)
        now = self._clock.time()
        given = "".join(str(code).split())
        why = ""
        if record is None or not record.code:
            why = f"no enrollment waiting for {name!r}"
        elif record.code_expires_at is None or now > record.code_expires_at:
            why = f"the enrollment code for {record.name} expired: ask an admin for a new one"
        elif not _redeems(given, record.code):
            why = f"wrong enrollment code for {record.name}"
        if record is None or why:
            self._transitions.refuse(name, "enroll", PORTFOLIO, why)
            raise PermissionDenied(why)
        token = new_token()
        salt, digest = hash_token(token)
        enrolled = replace(
            record,
            salt=salt,
            token_hash=digest,
            updated_at=now,
            sponsors=record.code_sponsors,
            code=(),
            code_expires_at=None,
            code_sponsors=(),
        )
        self._write(enrolled, record.name, "enrolled", {"sponsors": list(enrolled.sponsors)})
        self._establish_if_due()
        return token

    # -- two-person acts --------------------------------------------------------------------

    def stale(self, request: Approval) -> str:
        """Why an approved administration request no longer applies, or ""."""
        name = request.scope.removeprefix("user:")
        exists = self._users.record(name) or self._users.configured(name)
        if request.action == "user:add" and exists:
            return f"user {name} was created since the request: open a new one"
        if request.action != "user:add" and not exists:
            return f"user {name} was removed since the request: open a new one"
        asked = self._asked(request)
        if asked is None:
            return f"request {request.id} has no record in the user history"
        if asked.details.get("target") != _fingerprint(self._users.record(name)):
            return f"user {name} changed since the request (role, credential): open a new one"
        role = str(asked.details.get("role"))
        if request.reason != _asking(request.action, name, role) or (
            "share" in asked.details
        ) != self._splits(request.action, name, Role.parse(role)):
            # the history has no seal: what is done is what the approver saw (sealed), ending
            # in a split code exactly when such an act does (a promotion into lifting too)
            return f"request {request.id}'s record in the user history is not what was asked"
        return ""

    def execute(self, request: Approval, approver: str) -> Approval:
        """Carry out an approved request (already checked): the approval is stored as executed
        first, so a crash in between leaves the act undone, never done twice."""
        asked = self._asked(request)
        assert asked is not None  # stale() said so
        name, role = request.scope.removeprefix("user:"), Role.parse(asked.details["role"])
        if request.action != "user:add":  # the team may have shrunk since the request
            target, held = self._existing(name)
            if request.action == "user:remove" or role < LIFTING or "share" in asked.details:
                self._keep_two_lifting(target, held if target.enrolled else None)
        self._storage.require().commit(approvals=[request])
        if request.action == "user:remove":
            record, _role = self._existing(name)
            self._remove(record, request.requested_by, request.id)
            return request
        record = self._users.record(name) or _new(name, role, self._clock.time())
        if "share" not in asked.details:  # a role change that keeps the credential
            changed = replace(record, role=role.label, updated_at=self._clock.time())
            self._write(changed, request.requested_by, "role", {"role": role.label}, request.id)
            return request
        share = secrets.token_hex(_SHARE_CHARS // 2)
        sponsors = (user_key(request.requested_by), user_key(approver))
        code = (asked.details["share"], ":".join(hash_token(share)))
        pending = self._pending(replace(record, role=role.label), code, sponsors)
        self._write(pending, request.requested_by, "code", {"split": True}, request.id)
        return replace(request, share=share)

    def _request(self, by: User, action: str, name: str, role: Role) -> UserChange:
        """Open a two-person request: the requester must be an admin now; the requester's
        share (when the act ends in a code) is shown now and only its hash is kept."""
        requester = str(by)
        if self._users.role_of(requester) != Role.ADMIN:
            why = f"{requester} is not an admin: only an admin requests a change of who can lift"
            self._transitions.refuse(requester, action, PORTFOLIO, why)
            raise PermissionDenied(why)
        now = self._clock.time()
        request = Approval(
            id=secrets.token_hex(6),
            action=action,
            scope=f"user:{name}",
            requested_by=requester,
            requested_at=now,
            expires_at=now + self._book.config.guard.approval_ttl_seconds,
            target_version=0,
            status="pending",
            reason=_asking(action, name, role.label),
        )
        details: dict[str, Any] = {
            "request": request.id,
            "role": role.label,
            "target": _fingerprint(self._users.record(name)),  # any change makes it stale
        }
        code = secrets.token_hex(_SHARE_CHARS // 2) if self._splits(action, name, role) else None
        if code is not None:
            details["share"] = ":".join(hash_token(code))
        event = UserEvent(now, requester, "requested", name, details)
        store = self._storage.require()
        store.append_user_history([event], self._audit(requester, "user:requested", name, details))
        store.commit(approvals=[request])
        expires = now + self._book.config.auth.enrollment_ttl_seconds if code else None
        return UserChange(name, code, expires, request)

    def _splits(self, action: str, name: str, role: Role) -> bool:
        """Whether a two-person act ends in a split code: adding or re-enrolling a lifting
        user, and promoting one into lifting (a credential one admin may have seen never
        lifts); a role change within lifting, or a removal, keeps or ends the credential."""
        if action in ("user:add", "user:enroll"):
            return True
        return action == "user:role" and role >= LIFTING > self._existing(name)[1]

    def _asked(self, request: Approval) -> UserEvent | None:
        history = self._storage.require().user_history()
        asked = (e for e in history if e.action == "requested")
        return next((e for e in asked if e.details.get("request") == request.id), None)

    # -- one-person acts and the writes -----------------------------------------------------

    def _two_person(self, *roles: Role) -> bool:
        return any(r >= LIFTING for r in roles) and self._users.established()

    def _existing(self, name: str) -> tuple[UserRecord, Role]:
        record = self._users.record(name)
        if record is not None:
            return record, Role.parse(record.role)
        configured = self._users.configured(name)
        if configured is None:
            raise UnknownRequest(f"no user {name!r}")
        return _new(configured[0], configured[1], self._clock.time()), configured[1]

    def _issue(self, record: UserRecord, by: User, action: str) -> UserChange:
        """A fresh one-time code for ``record``; any token it had stops working. Its sponsor is
        ``by``, or nobody during the bootstrap (the trust root)."""
        code = secrets.token_hex(_SHARE_CHARS // 2)
        sponsors = (user_key(str(by)),) if self._users.established() else ()
        pending = self._pending(record, (":".join(hash_token(code)),), sponsors)
        self._write(pending, by, action, {"role": record.role, "sponsors": list(sponsors)})
        return UserChange(record.name, code, pending.code_expires_at)

    def _pending(
        self, record: UserRecord, code: tuple[str, ...], sponsors: tuple[str, ...]
    ) -> UserRecord:
        now = self._clock.time()
        return replace(
            record,
            salt=None,
            token_hash=None,
            updated_at=now,
            sponsors=(),
            code=code,
            code_expires_at=now + self._book.config.auth.enrollment_ttl_seconds,
            code_sponsors=sponsors,
        )

    def _write(
        self,
        record: UserRecord,
        by: User,
        action: str,
        details: dict[str, Any],
        request: str | None = None,
    ) -> None:
        details = details | ({"request": request} if request else {})
        event = UserEvent(self._clock.time(), str(by), action, record.name, details)
        audit = self._audit(str(by), f"user:{action}", record.name, details)
        self._storage.require().put_user(record, audit, [event])

    def _remove(self, record: UserRecord, by: User, request: str | None = None) -> None:
        details = {"role": record.role} | ({"request": request} if request else {})
        event = UserEvent(self._clock.time(), str(by), "removed", record.name, details)
        audit = self._audit(str(by), "user:removed", record.name, details)
        self._storage.require().remove_user(record.name, audit, [event])

    def _establish_if_due(self) -> None:
        """Record, once, that two enrolled users hold lifting roles: from here on changing
        who can lift takes two people, for good."""
        lifting = self._users.lifting_enrolled()
        if len(lifting) < 2 or self._users.established():
            return
        details: dict[str, Any] = {"lifting": sorted(lifting)}
        event = UserEvent(self._clock.time(), "system:guard", "established", "", details)
        audit = self._audit("system:guard", ESTABLISHED, "", details)
        store = self._storage.require()
        store.append_user_history([event], audit)
        for record in store.users().values():  # no bootstrap code may mint a lifting token now
            if record.code and not record.code_sponsors and Role.parse(record.role) >= LIFTING:
                voided = replace(record, code=(), code_expires_at=None)
                self._write(voided, "system:guard", "code voided", {"why": "established"})

    def _keep_two_lifting(self, record: UserRecord, role: Role | None) -> None:
        """Refuse an act that would leave fewer than two enrolled people who can lift, once
        two-person administration is established: it could never be undone (a removal, a
        demotion, or a re-enrollment whose code might expire unredeemed). ``role``: what
        ``record`` holds as an enrolled user now (None: it holds no token)."""
        if role is None or role < LIFTING or not self._users.established():
            return
        others = [n for n in self._users.lifting_enrolled() if user_key(n) != user_key(record.name)]
        if len(others) < 2:
            why = (
                f"that would leave {len(others)} enrolled person who can lift: add and enroll "
                "another risk_manager or admin first (two people must always be able to lift)"
            )
            raise BadRequest(why)

    def _audit(self, by: str, action: str, name: str, details: dict[str, Any]) -> AuditEntry:
        shown = {k: v for k, v in details.items() if k != "share"}
        scope = f"user:{name}" if name else "users"
        return AuditEntry(self._clock.time(), by, action, scope, None, None, action, shown)


def _asking(action: str, name: str, role: str) -> str:
    """What a request asks, as its (sealed) approval row says it to the approver."""
    return inputs.text(f"{action.removeprefix('user:')} {name} ({role})")


def _fingerprint(record: UserRecord | None) -> str:
    """What a request about a user was opened on: its role, credential and pending code."""
    if record is None:
        return "none"
    parts = (record.role, record.token_hash or "", *record.code, *record.sponsors)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _new(name: str, role: Role, now: float) -> UserRecord:
    return UserRecord(name, role.label, None, None, now)


def _redeems(given: str, hashes: tuple[str, ...]) -> bool:
    """Whether ``given`` is every share, in some order (a share holder need not know which
    half theirs is)."""
    shares = [given[i : i + _SHARE_CHARS] for i in range(0, len(given), _SHARE_CHARS)]
    if len(given) != _SHARE_CHARS * len(hashes) or len(shares) != len(hashes):
        return False
    left = list(hashes)
    for share in shares:
        match = next((h for h in left if token_matches(share, *h.split(":"))), None)
        if match is None:
            return False
        left.remove(match)
    return True


def _valid_user_name(name: str) -> str:
    """Letters, digits and _.@- only: a user named "system:guard" or "local:x" would read
    in the audit log like the guard itself or a bootstrap administrator."""
    if not isinstance(name, str) or not USER_NAME.match(name):
        raise BadRequest(f"invalid user name {name!r}: 1-64 letters, digits and _.@-")
    return name


def _valid_role(role: str) -> Role:
    try:
        return Role.parse(role)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
