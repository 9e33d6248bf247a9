"""An in-memory store: the whole StateStore with SQLite's semantics, and nothing on disk.

For tests of an integration, demos and a second backend to check the contract against. It
holds the rows SQLite would (column tuples, JSON text), builds and reads them with the same
code (:mod:`tradeguard.store.codec`) and chains audit records with the same
:mod:`tradeguard.audit`, so versions, :class:`StateConflict`, rungs, incident leases and
``verify_audit`` behave as they do on a file. A write works on a copy of the tables and puts it
in place only when it completes: a conflict or an exception halfway leaves nothing, like a
rolled-back transaction. One lock serializes calls, as SQLite's connection lock does. Nothing
survives the process: never use it where a halt must outlive a crash.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from tradeguard import audit as audit_chain
from tradeguard.audit import AuditEntry, AuditRecord, Verification
from tradeguard.errors import StoreUnavailable
from tradeguard.model import user_key
from tradeguard.state import ScopeStatus
from tradeguard.store import codec, replay
from tradeguard.store.base import (
    Approval,
    FlattenRun,
    OutboxRow,
    Rung,
    StateConflict,
    StateWrite,
    UserEvent,
    UserRecord,
)

WHERE = "memory store"


class _Incident(NamedTuple):
    opened_at: float
    status: str
    owner: str | None
    lease_until: float
    data: str


Row = tuple[Any, ...]


@dataclass
class _Tables:
    """What SQLite keeps in its tables, keyed by each table's primary key."""

    states: dict[str, Row] = field(default_factory=dict)
    audit: list[codec.AuditRow] = field(default_factory=list)
    head: tuple[int, str] | None = None
    approvals: dict[str, Row] = field(default_factory=dict)
    rungs: dict[str, Row] = field(default_factory=dict)
    incidents: dict[str, _Incident] = field(default_factory=dict)
    genomes: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)
    outbox: dict[tuple[str, str], Row] = field(default_factory=dict)
    users: dict[str, Row] = field(default_factory=dict)  # by user_key
    user_history: list[Row] = field(default_factory=list)
    metrics: dict[str, tuple[str, float]] = field(default_factory=dict)
    flatten_runs: dict[str, Row] = field(default_factory=dict)

    def copy(self) -> _Tables:
        """A copy a write can change freely: rows are immutable, so copying the containers
        is enough."""
        return replace(
            self,
            states=dict(self.states),
            audit=list(self.audit),
            approvals=dict(self.approvals),
            rungs=dict(self.rungs),
            incidents=dict(self.incidents),
            genomes=dict(self.genomes),
            values=dict(self.values),
            outbox=dict(self.outbox),
            users=dict(self.users),
            user_history=list(self.user_history),
            metrics=dict(self.metrics),
            flatten_runs=dict(self.flatten_runs),
        )


class MemoryStore:
    def __init__(self, *, audit_key: bytes | None = None) -> None:
        self._key = audit_key
        self._lock = threading.Lock()
        self._tables = _Tables()
        self._version = 0
        self._closed = False

    @contextmanager
    def _read(self) -> Iterator[_Tables]:
        with self._lock:
            if self._closed:
                raise StoreUnavailable(f"{WHERE}: closed")
            yield self._tables

    @contextmanager
    def _write(self) -> Iterator[_Tables]:
        with self._read() as committed:
            staged = committed.copy()
            yield staged
            self._tables = staged
            self._version += 1

    def _append(self, tables: _Tables, entry: AuditEntry) -> AuditRecord:
        row = codec.chain(tables.head, entry, self._key)
        tables.audit.append(row)
        tables.head = (row.seq, row.hash)
        return row.record(entry)

    # -- scope states, approvals, rungs, audit ----------------------------------------------

    def load_states(self) -> dict[str, ScopeStatus]:
        with self._read() as t:
            return codec.load_states(t.states.values(), WHERE)

    def commit(
        self,
        *,
        states: Sequence[StateWrite] = (),
        audit: Sequence[AuditEntry] = (),
        approvals: Sequence[Approval] = (),
        rungs: Sequence[Rung] = (),
    ) -> list[AuditRecord]:
        with self._write() as t:
            for write in states:
                found = t.states.get(write.scope)
                codec.check_version(write, 0 if found is None else found[5])
                t.states[write.scope] = codec.state_values(write)
            for a in approvals:
                t.approvals[a.id] = codec.values(a)
            for r in rungs:
                state, stored = t.states.get(r.scope), t.rungs.get(r.scope)
                codec.check_rung(
                    r,
                    None if state is None else (state[1], state[5]),
                    None if stored is None else (stored[1], stored[2]),
                )
                t.rungs[r.scope] = codec.values(r)
            return [self._append(t, entry) for entry in audit]

    def rungs(self) -> dict[str, Rung]:
        with self._read() as t:
            return codec.load_rungs(t.rungs.values(), WHERE)

    def approvals(self, *, pending_only: bool = True) -> list[Approval]:
        with self._read() as t:
            found = [Approval(*row) for row in t.approvals.values()]
        found.sort(key=lambda a: a.requested_at)
        return [a for a in found if a.status == "pending"] if pending_only else found

    def approval(self, request_id: str) -> Approval | None:
        with self._read() as t:
            row = t.approvals.get(request_id)
        return None if row is None else Approval(*row)

    def audit_records(
        self, *, since: float | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        with self._read() as t:
            chosen = t.audit if limit is None else t.audit[max(len(t.audit) - limit, 0) :]
        return codec.load_audit(
            ((r.seq, r.entry, r.prev_hash, r.hash) for r in chosen), since, WHERE
        )

    def verify_audit(self) -> Verification:
        with self._read() as t:
            found = [(r.seq, r.entry, r.prev_hash, r.hash, r.ts) for r in t.audit]
            chain = audit_chain.verify(found, t.head, self._key)
            states = codec.load_states(list(t.states.values()), WHERE)
            return replay.check(chain, (r.entry for r in t.audit), states)

    # -- incidents, genomes, values ---------------------------------------------------------

    def open_incident(self, data: dict[str, Any], audit: Sequence[AuditEntry] = ()) -> bool:
        with self._write() as t:
            if data["id"] in t.incidents:
                return False
            t.incidents[data["id"]] = _Incident(
                data["opened_at"], data["status"], None, 0.0, json.dumps(data)
            )
            for entry in audit:
                self._append(t, entry)
            return True

    def claim_incident(self, incident_id: str, owner: str, now: float, lease: float) -> bool:
        with self._write() as t:
            found = t.incidents.get(incident_id)
            if found is None or found.status != "running":
                return False
            if found.owner not in (None, owner) and found.lease_until >= now:
                return False
            t.incidents[incident_id] = found._replace(owner=owner, lease_until=now + lease)
            return True

    def save_incident(
        self, data: dict[str, Any], owner: str, lease_until: float, audit: Sequence[AuditEntry]
    ) -> None:
        text = json.dumps(data)
        with self._write() as t:
            found = t.incidents.get(data["id"])
            if found is None or found.owner != owner:
                raise StateConflict(f"incident {data['id']} is not held by this process")
            t.incidents[data["id"]] = found._replace(
                status=data["status"], data=text, lease_until=lease_until
            )
            for entry in audit:
                self._append(t, entry)

    def incidents(self, *, status: str | None = None) -> list[dict[str, Any]]:
        with self._read() as t:
            found = sorted(t.incidents.values(), key=lambda i: i.opened_at)
        return [
            codec.from_json(i.data, WHERE, "incident")
            for i in found
            if status is None or i.status == status
        ]

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        with self._read() as t:
            found = t.incidents.get(incident_id)
        return None if found is None else codec.from_json(found.data, WHERE, "incident")

    def update_genome(
        self,
        fingerprint: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        audit: Callable[[dict[str, Any]], Sequence[AuditEntry]] = lambda _row: (),
    ) -> dict[str, Any] | None:
        with self._write() as t:
            found = t.genomes.get(fingerprint)
            current = None if found is None else codec.from_json(found, WHERE, "genome")
            updated = change(current)
            if updated is None:
                return current
            t.genomes[fingerprint] = codec.to_json(updated)
            for entry in audit(updated):
                self._append(t, entry)
            return updated

    def genomes(self) -> dict[str, dict[str, Any]]:
        with self._read() as t:
            return {fp: codec.from_json(data, WHERE, "genome") for fp, data in t.genomes.items()}

    def value(self, key: str) -> Any:
        with self._read() as t:
            found = t.values.get(key)
        return None if found is None else codec.from_json(found, WHERE, key)

    def update_value(
        self,
        key: str,
        change: Callable[[Any], Any],
        audit: Callable[[Any], Sequence[AuditEntry]] = lambda _value: (),
    ) -> tuple[Any, bool]:
        with self._write() as t:
            found = t.values.get(key)
            current = None if found is None else codec.from_json(found, WHERE, key)
            updated = change(current)
            if updated is None:
                return current, False
            t.values[key] = codec.to_json(updated)
            for entry in audit(updated):
                self._append(t, entry)
            return updated, True

    # -- outbox, users, metric baselines, flatten runs --------------------------------------

    def enqueue_alerts(self, rows: Sequence[OutboxRow]) -> None:
        encoded = [codec.outbox_values(r) for r in rows]
        with self._write() as t:
            for row in encoded:
                t.outbox.setdefault((row[0], row[1]), row)

    def update_alert(self, row: OutboxRow) -> None:
        encoded = codec.outbox_values(row)
        with self._write() as t:
            t.outbox[(row.id, row.channel)] = encoded

    def due_alerts(self, now: float, limit: int = 100) -> list[OutboxRow]:
        with self._read() as t:
            due = [r for r in t.outbox.values() if r[4] == "pending" and r[6] <= now]
        due.sort(key=lambda r: r[7])
        return [codec.outbox_row(r) for r in due[:limit]]

    def outbox(self, *, status: str | None = None) -> list[OutboxRow]:
        with self._read() as t:
            found = [r for r in t.outbox.values() if status is None or r[4] == status]
        found.sort(key=lambda r: (r[7], r[1]))
        return [codec.outbox_row(r) for r in found]

    def users(self) -> dict[str, UserRecord]:
        with self._read() as t:
            found = list(t.users.values())
        return codec.load_users(found, WHERE)

    def put_user(
        self, user: UserRecord, audit: AuditEntry, history: Sequence[UserEvent] = ()
    ) -> None:
        row = codec.user_values(user)
        with self._write() as t:
            stored = t.users.get(row[0])
            codec.check_user_name(user.name, None if stored is None else stored[1])
            t.users[row[0]] = row
            t.user_history.extend(codec.event_values(e) for e in history)
            self._append(t, audit)

    def remove_user(self, name: str, audit: AuditEntry, history: Sequence[UserEvent] = ()) -> bool:
        with self._write() as t:
            removed = t.users.pop(user_key(name), None) is not None
            if removed:
                t.user_history.extend(codec.event_values(e) for e in history)
                self._append(t, audit)
        return removed

    def append_user_history(self, events: Sequence[UserEvent], audit: AuditEntry) -> None:
        with self._write() as t:
            t.user_history.extend(codec.event_values(e) for e in events)
            self._append(t, audit)

    def user_history(self) -> list[UserEvent]:
        with self._read() as t:
            found = list(t.user_history)
        return codec.load_events(found, WHERE)

    def save_metrics(self, snapshot: dict[str, dict[str, Any]], at: float) -> None:
        with self._write() as t:
            for scope, data in snapshot.items():
                t.metrics[scope] = (codec.to_json(data), at)

    def load_metrics(self) -> dict[str, dict[str, Any]]:
        with self._read() as t:
            found = [(scope, data) for scope, (data, _at) in t.metrics.items()]
        return codec.load_metrics(found, WHERE)

    def record_flatten(self, run: FlattenRun) -> None:
        row = codec.flatten_values(run)
        with self._write() as t:
            t.flatten_runs[run.id] = row

    def flatten_runs(self, *, status: str | None = None) -> list[FlattenRun]:
        with self._read() as t:
            found = [r for r in t.flatten_runs.values() if status is None or r[3] == status]
        found.sort(key=lambda r: r[4])
        return codec.load_flatten_runs(found, WHERE)

    def latest_flatten(self, statuses: Collection[str]) -> FlattenRun | None:
        with self._read() as t:
            found = [r for r in t.flatten_runs.values() if r[3] in statuses]
        found = sorted(found, key=lambda r: r[4], reverse=True)[:1]
        return next(iter(codec.load_flatten_runs(found, WHERE)), None)

    # -- the store as a whole ---------------------------------------------------------------

    def data_version(self) -> int:
        """Moves on every write (a shared MemoryStore has no other connection to tell apart)."""
        with self._read():
            return self._version

    def trust_problem(self) -> str | None:
        """Never one: there is no file to lose, cut or replace, so no anchor; the tables live
        and die with the process that holds them."""
        return None

    def accept(self) -> None:
        """Nothing to anchor."""

    def close(self) -> None:
        """Every later call raises StoreUnavailable, as on a closed SQLite connection."""
        with self._lock:
            self._closed = True
