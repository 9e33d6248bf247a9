"""The storage protocol every backend implements (SQLite now; Redis and PostgreSQL later).

A store holds the durable truth: scope states, two-person requests, the audit chain and the
metric baselines. Writes are transactions: a state change and its audit record land together
or not at all, and a write carries the version it expects so two processes cannot silently
overwrite each other's halts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tradeguard.audit import AuditEntry, AuditRecord, Verification
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

    def to_dict(self) -> dict[str, Any]:
        return {
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
    """An operator: a role, and the scrypt hash of a token (never the token itself)."""

    name: str
    role: str
    salt: str | None
    token_hash: str | None
    updated_at: float
    issued_by: str | None = None  # who issued the current token: the two-person rule checks it


@dataclass(frozen=True, slots=True)
class FlattenRun:
    """An emergency stop's intent, written before it acts; ``running`` after a crash means
    the stop must resume."""

    id: str
    scope: str
    reason: str
    status: str  # running | flat | incomplete
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


class StateStore(Protocol):
    def load_states(self) -> dict[str, ScopeStatus]: ...

    def commit(
        self,
        *,
        states: Sequence[StateWrite] = (),
        audit: Sequence[AuditEntry] = (),
        approvals: Sequence[Approval] = (),
        rungs: Sequence[Rung] = (),
    ) -> list[AuditRecord]:
        """Write everything in one transaction; raises StateConflict on a version mismatch,
        or on a rung whose scope is not recovering at the rung's version or that is not above
        the stored rung."""
        ...

    def rungs(self) -> dict[str, Rung]: ...

    def open_incident(self, data: dict[str, Any], audit: Sequence[AuditEntry] = ()) -> bool: ...

    def claim_incident(self, incident_id: str, owner: str, now: float, lease: float) -> bool: ...

    def save_incident(
        self, data: dict[str, Any], owner: str, lease_until: float, audit: Sequence[AuditEntry]
    ) -> None: ...

    def incidents(self, *, status: str | None = None) -> list[dict[str, Any]]: ...

    def incident(self, incident_id: str) -> dict[str, Any] | None: ...

    def update_genome(
        self,
        fingerprint: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        audit: Callable[[dict[str, Any]], Sequence[AuditEntry]] = ...,
    ) -> dict[str, Any] | None: ...

    def genomes(self) -> dict[str, dict[str, Any]]: ...

    def value(self, key: str) -> Any: ...

    def update_value(
        self,
        key: str,
        change: Callable[[Any], Any],
        audit: Callable[[Any], Sequence[AuditEntry]] = ...,
    ) -> tuple[Any, bool]: ...

    def approvals(self, *, pending_only: bool = True) -> list[Approval]: ...

    def approval(self, request_id: str) -> Approval | None: ...

    def audit_records(
        self, *, since: float | None = None, limit: int | None = None
    ) -> list[AuditRecord]: ...

    def verify_audit(self) -> Verification: ...

    def record_flatten(self, run: FlattenRun) -> None: ...

    def users(self) -> dict[str, UserRecord]: ...

    def put_user(self, user: UserRecord, audit: AuditEntry) -> None: ...

    def remove_user(self, name: str, audit: AuditEntry) -> bool: ...

    def data_version(self) -> int: ...

    def enqueue_alerts(self, rows: Sequence[OutboxRow]) -> None: ...

    def update_alert(self, row: OutboxRow) -> None: ...

    def due_alerts(self, now: float, limit: int = 100) -> list[OutboxRow]: ...

    def outbox(self, *, status: str | None = None) -> list[OutboxRow]: ...

    def flatten_runs(self, *, status: str | None = None) -> list[FlattenRun]: ...

    def save_metrics(self, snapshot: dict[str, dict[str, Any]], at: float) -> None: ...

    def load_metrics(self) -> dict[str, dict[str, Any]]: ...

    def close(self) -> None: ...
