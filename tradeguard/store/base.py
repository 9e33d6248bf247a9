"""The records a store holds, and the conflict it raises; the protocols are in ``protocols``.

A store holds the durable truth: scope states, two-person requests, the audit chain and the
metric baselines. Writes are transactions: a state change and its audit record land together
or not at all, and a write carries the version it expects so two processes cannot silently
overwrite each other's halts. These records are what every backend reads and writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tradeguard.clock import to_iso
from tradeguard.errors import TradeguardError
from tradeguard.state import ScopeStatus


class StateConflict(TradeguardError):
    """Another process changed the scope first; reload it and decide again."""


@dataclass(frozen=True, slots=True)
class StateWrite:
    scope: str
    status: ScopeStatus
    expected_version: int  # 0 when the scope has never been stored


@dataclass(frozen=True, slots=True)
class Approval:
    """A two-person request: opened by one user, completed by a different one before expiry."""

    id: str
    action: str
    scope: str
    requested_by: str
    requested_at: float
    expires_at: float
    target_version: int  # the scope version it was opened against; a newer halt supersedes it
    status: str  # pending | executed | expired | superseded
    approved_by: str | None = None
    decided_at: float | None = None
    reason: str = ""
    # The approver's share of a split enrollment code, handed back once by the approval that
    # made it; never stored (the store keeps only its hash), so never read back.
    share: str | None = field(default=None, compare=False, repr=False, metadata={"stored": False})

    def to_dict(self) -> dict[str, Any]:
        shown = {"share": self.share} if self.share else {}
        return shown | {
            "id": self.id,
            "action": self.action,
            "scope": self.scope,
            "requested_by": self.requested_by,
            "requested_at": to_iso(self.requested_at),
            "expires_at": to_iso(self.expires_at),
            "status": self.status,
            "approved_by": self.approved_by,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One alert for one channel: written before it is sent, marked when delivered."""

    id: str  # the alert's id: also its idempotency key at the receiver
    channel: str
    priority: str
    payload: dict[str, Any]
    status: str  # pending | delivered | failed
    attempts: int
    next_attempt: float
    created_at: float
    last_error: str | None = None
    delivered_at: float | None = None
    latency_ms: float | None = None


@dataclass(frozen=True, slots=True)
class UserRecord:
    """An operator: a role, the scrypt hash of a token (never the token itself), and the hash
    of a one-time enrollment code waiting to be redeemed for the next token.

    ``sponsors`` are the people (by :func:`~tradeguard.model.user_key`) who saw the code the
    current token was redeemed with: none for the bootstrap (the trust root), one for a code
    one admin issued, two for a split code. ``code`` holds one ``salt:hash`` per share.
    """

    name: str  # as created; identity is ``user_key(name)``
    role: str
    salt: str | None
    token_hash: str | None
    updated_at: float
    sponsors: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    code_expires_at: float | None = None
    code_sponsors: tuple[str, ...] = ()

    @property
    def enrolled(self) -> bool:
        return self.token_hash is not None


@dataclass(frozen=True, slots=True)
class UserEvent:
    """One line of the append-only history of user administration: who enrolled whom, every
    request and change, and the moment two-person administration was established. It
    outlives the users it names: removing a user removes none of it."""

    at: float
    actor: str
    action: str  # added | code | enrolled | renewed | role | removed | requested | established
    user: str  # the user it concerns, as created ("" for ``established``)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FlattenRun:
    """An emergency stop's intent, written before it acts; ``running`` after a crash means
    the stop must resume."""

    id: str
    scope: str
    reason: str
    status: str  # running | flat | positions_kept (cancel only) | incomplete | interrupted
    started_at: float
    report: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Rung:
    """Where a recovering strategy stands on the re-entry ladder. ``version`` is the version
    of the ``recovering`` state it belongs to: a rung left over from an earlier resume never
    applies to a later one. Within one version the stage only rises."""

    scope: str
    version: int
    stage: int
    since: float
    trades_at_start: int
    pnl_at_start: float
    authorized_by: str
