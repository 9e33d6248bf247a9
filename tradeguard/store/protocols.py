"""The storage protocol, one Protocol per aggregate, so a backend is written and tested in parts.

A store holds the durable truth. Its data falls into aggregates: groups of rows that change
together and are checked together. Every aggregate gives the same guarantees:

* **Durable before acknowledged.** A write method returns only once its transaction is
  committed; a crash after the return loses nothing, a crash before it leaves nothing half done.
* **Audit in the same transaction.** A write that takes ``AuditEntry`` values appends them to the
  one hash chain (:mod:`tradeguard.audit`) in the transaction that makes the change: the change
  and its record land together or not at all, and two writers never fork the chain.
* **Optimistic versions.** A write that depends on what is stored says what it expects; when the
  store holds something else it raises :class:`StateConflict` and changes nothing. The caller
  reloads and decides again.
* **Fail closed.** Any failure to read or write (I/O, a lost connection, a row that is not what
  this code writes, a closed store) raises :class:`StoreUnavailable`; an unreadable value is
  never guessed as empty, flat or normal.

The aggregates:

* :class:`ScopeStateStore`: scope states with their versions, the two-person approvals, the
  recovery rungs, and the audit chain they are written with. ``commit`` is one transaction
  over all of them, because a rung is checked against its scope's state and a state change is
  recorded with its approval; the chain is read and verified here as well.
* :class:`IncidentStore`: kill-chain incidents, run by one process at a time under a lease.
* :class:`GenomeStore`: strategy genomes (fingerprints, blacklisting), changed read-modify-write.
* :class:`ValueStore`: small named JSON values (criticality reading, avalanche reserve),
  changed read-modify-write.
* :class:`OutboxStore`: alerts, one row per channel, written before they are sent.
* :class:`UserStore`: operators, their token and enrollment-code hashes, and the append-only
  history of their administration; every change is audited.
* :class:`MetricStore`: the metric baselines a restarted guard resumes from.
* :class:`FlattenRunStore`: emergency stops' intents, so a crash mid-stop resumes it.
* :class:`StoreLifecycle`: what spans the store: a version that moves when data changes,
  whether it is the store its anchor names, and closing (after which every call raises
  :class:`StoreUnavailable`).

:class:`StateStore` is all of them: what the guard is given.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol

from tradeguard.audit import AuditEntry, AuditRecord, Verification
from tradeguard.state import ScopeStatus
from tradeguard.store.base import (
    Approval,
    FlattenRun,
    OutboxRow,
    Rung,
    StateWrite,
    UserEvent,
    UserRecord,
)


class ScopeStateStore(Protocol):
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

    def approvals(self, *, pending_only: bool = True) -> list[Approval]: ...

    def approval(self, request_id: str) -> Approval | None: ...

    def audit_records(
        self, *, since: float | None = None, limit: int | None = None
    ) -> list[AuditRecord]: ...

    def verify_audit(self) -> Verification: ...


class IncidentStore(Protocol):
    def open_incident(self, data: dict[str, Any], audit: Sequence[AuditEntry] = ()) -> bool: ...

    def claim_incident(self, incident_id: str, owner: str, now: float, lease: float) -> bool: ...

    def save_incident(
        self, data: dict[str, Any], owner: str, lease_until: float, audit: Sequence[AuditEntry]
    ) -> None: ...

    def incidents(self, *, status: str | None = None) -> list[dict[str, Any]]: ...

    def incident(self, incident_id: str) -> dict[str, Any] | None: ...


class GenomeStore(Protocol):
    def update_genome(
        self,
        fingerprint: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        audit: Callable[[dict[str, Any]], Sequence[AuditEntry]] = ...,
    ) -> dict[str, Any] | None: ...

    def genomes(self) -> dict[str, dict[str, Any]]: ...


class ValueStore(Protocol):
    def value(self, key: str) -> Any: ...

    def update_value(
        self,
        key: str,
        change: Callable[[Any], Any],
        audit: Callable[[Any], Sequence[AuditEntry]] = ...,
    ) -> tuple[Any, bool]: ...


class OutboxStore(Protocol):
    def enqueue_alerts(self, rows: Sequence[OutboxRow]) -> None: ...

    def update_alert(self, row: OutboxRow) -> None: ...

    def due_alerts(self, now: float, limit: int = 100) -> list[OutboxRow]: ...

    def outbox(self, *, status: str | None = None) -> list[OutboxRow]: ...


class UserStore(Protocol):
    """Users are one per person: a name is identified by ``user_key`` (NFKC, casefold), so
    ``Alice`` and ``alice`` are one record, kept under the name as first created."""

    def users(self) -> dict[str, UserRecord]:
        """Every user, by name as created."""
        ...

    def put_user(
        self, user: UserRecord, audit: AuditEntry, history: Sequence[UserEvent] = ()
    ) -> None:
        """Create or replace the user with this name; raises StateConflict when the name
        normalizes to another user's. ``history`` is appended in the same transaction."""
        ...

    def remove_user(self, name: str, audit: AuditEntry, history: Sequence[UserEvent] = ()) -> bool:
        """Remove the user whose name normalizes to ``name``; False (and nothing written) when
        there is none. Its history stays."""
        ...

    def append_user_history(self, events: Sequence[UserEvent], audit: AuditEntry) -> None:
        """Append to the history alone (a request, the establishment of two-person
        administration); nothing in it is ever changed or removed."""
        ...

    def user_history(self) -> list[UserEvent]:
        """The whole history, oldest first."""
        ...


class MetricStore(Protocol):
    def save_metrics(self, snapshot: dict[str, dict[str, Any]], at: float) -> None: ...

    def load_metrics(self) -> dict[str, dict[str, Any]]: ...


class FlattenRunStore(Protocol):
    def record_flatten(self, run: FlattenRun) -> None: ...

    def flatten_runs(self, *, status: str | None = None) -> list[FlattenRun]: ...

    def latest_flatten(self, statuses: Collection[str]) -> FlattenRun | None:
        """The most recently started run in one of ``statuses``: a status read without
        loading every run ever recorded."""
        ...


class StoreLifecycle(Protocol):
    def data_version(self) -> int:
        """Moves when the stored data changes: how a guard notices, cheaply, that another
        writer committed something."""
        ...

    def trust_problem(self) -> str | None:
        """Why the store is not the one its anchor (:mod:`tradeguard.store.anchor`) names, or
        is behind it (lost, emptied, rolled back, replaced); None when it is."""
        ...

    def accept(self) -> None:
        """Trust the store as it is from now on: once the problem is recorded in it."""
        ...

    def close(self) -> None: ...


class StateStore(
    ScopeStateStore,
    IncidentStore,
    GenomeStore,
    ValueStore,
    OutboxStore,
    UserStore,
    MetricStore,
    FlattenRunStore,
    StoreLifecycle,
    Protocol,
):
    """The whole store: every aggregate behind one object."""
