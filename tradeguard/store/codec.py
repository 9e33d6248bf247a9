"""Rows as every backend keeps them, and the rules every backend applies to them.

SQLite and the in-memory store hold the same column tuples and JSON text, link the audit chain
the same way and read rows back through the same checks, so one backend cannot drift from
another in what it accepts, what counts as a conflict, or what counts as corruption. A row
that is not exactly what this code writes is never guessed at: it is :class:`StoreUnavailable`,
naming the store it came from.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from typing import Any, NamedTuple

from tradeguard import audit
from tradeguard.audit import AuditEntry, AuditRecord
from tradeguard.errors import StoreUnavailable
from tradeguard.model import PortfolioState, Scope, ScopeKind, StrategyState, user_key
from tradeguard.state import ScopeStatus
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

log = logging.getLogger("tradeguard")


@contextmanager
def reading(where: str, what: str) -> Iterator[None]:
    """A row that does not decode is corruption, reported as the store being unavailable:
    whatever it raises (a NULL where text belongs, an infinite count), since any other error
    escapes the handling of a failed store (a running guard's adoption, a halt's write)."""
    try:
        yield
    except (ValueError, TypeError, AttributeError, ArithmeticError, LookupError) as exc:
        raise StoreUnavailable(f"{where}: corrupt {what}: {exc}") from exc


def to_json(value: Any) -> str:
    """JSON text for a stored value: NaN and infinity are refused, not written as non-JSON."""
    return json.dumps(value, allow_nan=False)


def from_json(text: str, where: str, what: str) -> Any:
    with reading(where, f"{what} row"):
        return json.loads(text)


def values(record: Approval | Rung) -> tuple[Any, ...]:
    """The row of a record whose stored fields are its table's columns, in order
    (``approvals``, ``recovery``); ``Record(*row)`` reads it back."""
    return tuple(getattr(record, f.name) for f in fields(record) if f.metadata.get("stored", True))


# -- users and their history -----------------------------------------------------------------


def user_values(u: UserRecord) -> tuple[Any, ...]:
    """The ``users`` row: its key (the normalized name) first, then the record, the tuples of
    names and hashes as JSON."""
    return (
        user_key(u.name),
        u.name,
        u.role,
        u.salt,
        u.token_hash,
        u.updated_at,
        to_json(list(u.sponsors)),
        to_json(list(u.code)),
        u.code_expires_at,
        to_json(list(u.code_sponsors)),
    )


def user_record(row: tuple[Any, ...]) -> UserRecord:
    _key, name, role, salt, token_hash, at, sponsors, code, expires, code_sponsors = row
    return UserRecord(
        name,
        role,
        salt,
        token_hash,
        at,
        tuple(json.loads(sponsors)),
        tuple(json.loads(code)),
        expires,
        tuple(json.loads(code_sponsors)),
    )


def load_users(rows: Iterable[tuple[Any, ...]], where: str) -> dict[str, UserRecord]:
    """Every user, by name as created."""
    with reading(where, "user row"):
        return {r.name: r for r in map(user_record, rows)}


def check_user_name(name: str, stored: str | None) -> None:
    """One person, one record: a name that normalizes to another stored name is refused."""
    if stored is not None and stored != name:
        raise StateConflict(f"user name {name!r} is taken by {stored!r} (one person, one name)")


def event_values(e: UserEvent) -> tuple[Any, ...]:
    """A ``user_history`` row without its sequence number."""
    return (e.at, e.actor, e.action, e.user, to_json(e.details))


def load_events(rows: Iterable[tuple[Any, ...]], where: str) -> list[UserEvent]:
    with reading(where, "user history row"):
        return [UserEvent(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]


# -- scope states, rungs and the audit chain -------------------------------------------------


def state_values(write: StateWrite) -> tuple[Any, ...]:
    """The ``states`` row: scope, state, reason, since, actor, version."""
    s = write.status
    return (write.scope, s.state, s.reason, s.since, s.actor, s.version)


def check_version(write: StateWrite, stored: int) -> None:
    """The optimistic check: a write lands only on the version it was decided against."""
    if stored != write.expected_version:
        raise StateConflict(
            f"{write.scope} is at version {stored}, expected {write.expected_version}"
        )


def state_row(row: tuple[Any, ...]) -> tuple[str, ScopeStatus]:
    key, state, reason, since, actor, version = row
    scope = Scope.parse(key)
    allowed = PortfolioState if scope.kind is ScopeKind.PORTFOLIO else StrategyState
    if state not in allowed.__members__.values():
        raise ValueError(f"{key}: unknown state {state!r}")
    if not (isinstance(reason, str) and isinstance(actor, str)):
        raise ValueError(f"{key}: reason and actor must be text")
    if isinstance(since, bool) or not isinstance(since, int | float) or not math.isfinite(since):
        raise ValueError(f"{key}: since must be a time, got {since!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"{key}: version must be a whole number, got {version!r}")
    return key, ScopeStatus(allowed(state), reason, float(since), actor, version)


def load_states(rows: Iterable[tuple[Any, ...]], where: str) -> dict[str, ScopeStatus]:
    """Every state row, checked: a row that is not exactly what this code writes is corruption."""
    with reading(where, "state row"):
        return dict(state_row(row) for row in rows)


def check_rung(rung: Rung, state: tuple[Any, ...] | None, stored: tuple[Any, ...] | None) -> None:
    """A rung lands only on its scope recovering at the rung's version (``state`` is the stored
    ``(state, version)``), and only above the stored rung (``stored`` is its
    ``(version, stage)``): two guards climbing one ladder never both write a stage."""
    if state is None or tuple(state) != ("recovering", rung.version):
        raise StateConflict(f"{rung.scope} is not recovering at version {rung.version}")
    if stored is not None and (stored[0], stored[1]) >= (rung.version, rung.stage):
        raise StateConflict(
            f"{rung.scope} is already at recovery stage {stored[1]} (version {stored[0]})"
        )


def rung_row(row: tuple[Any, ...]) -> Rung:
    scope, version, stage, since, trades, pnl, by = row
    Scope.parse(scope)
    ints, floats = (version, stage, trades), (since, pnl)
    if any(type(v) is not int or v < 0 for v in ints):
        raise ValueError(f"{scope}: version, stage and trade count must be integers >= 0")
    # A REAL column hands back only floats; a memory row may hold the int it was given.
    if any(type(v) not in (int, float) or not math.isfinite(v) for v in floats):
        raise ValueError(f"{scope}: since and P&L must be finite numbers")
    if not isinstance(by, str) or not by:
        raise ValueError(f"{scope}: authorized_by must be a name")
    return Rung(scope, version, stage, float(since), trades, float(pnl), by)


def load_rungs(rows: Iterable[tuple[Any, ...]], where: str) -> dict[str, Rung]:
    """Every stored rung, checked like the state rows: anything else is corruption."""
    with reading(where, "recovery row"):
        return {row[0]: rung_row(row) for row in rows}


# -- seals: rows that grant authority carry the audit key's mark ------------------------------

SEALED = ("users", "approvals", "recovery")  # who may act, what was asked, how far back


def seal(key: bytes | None, table: str, values: tuple[Any, ...]) -> str:
    """The seal of a ``table`` row (its values in column order, the seal left out): an
    HMAC-SHA256 under the store's audit key, so a row written into the file by anyone without
    the key (a token hash of their own, a two-person request in another's name, a rung) is told
    from one tradeguard wrote. Numbers are sealed as floats: a REAL column hands back a float
    for the int it was given, and 0.0 for -0.0 (``+ 0.0`` makes -0.0 0.0 and leaves the rest).
    Unkeyed stores get a plain SHA-256: a checksum, no protection."""
    text = json.dumps(
        [table, *(float(v) + 0.0 if isinstance(v, int | float) else v for v in values)],
        separators=(",", ":"),
        allow_nan=False,
    ).encode()
    if key is None:
        return hashlib.sha256(text).hexdigest()
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def seal_key(key: bytes | None, store: str) -> bytes | None:
    """The key a store's seals are made with: its audit key bound to its identity (the
    anchored ``store_id``), so a row sealed in another store under the same key (staging and
    production given one ``state.audit_key``) carries no seal here. None: unkeyed."""
    if key is None:
        return None
    return hmac.new(key, b"tradeguard seals of store " + store.encode(), hashlib.sha256).digest()


def sealed(key: bytes | None, table: str, values: tuple[Any, ...]) -> tuple[Any, ...]:
    """The row to write: its values and their seal."""
    return (*values, seal(key, table, values))


def found_seal(key: bytes | None, table: str, values: tuple[Any, ...]) -> str | None:
    """The seal of a row read from the file; None when none can be computed over it (an
    infinite number, a BLOB: values tradeguard never writes). Never raises: a check of the
    file that raised would stop a running guard adopting anything, its halts included."""
    try:
        return seal(key, table, values)
    except (TypeError, ValueError):
        return None


def seal_problem(key: bytes | None, table: str, row: tuple[Any, ...], where: str) -> str | None:
    """Why the row (its values, then its seal) is not one this store wrote; None when it is."""
    *values, found = row
    expected = found_seal(key, table, tuple(values))
    if expected is not None and isinstance(found, str) and hmac.compare_digest(found, expected):
        return None
    return (
        f"{where}: a {table} row ({values[0]!r}) does not carry this store's seal: it was "
        "written outside tradeguard"
    )


def unsealed(
    key: bytes | None, table: str, rows: Iterable[tuple[Any, ...]], where: str
) -> Iterator[tuple[Any, ...]]:
    """The values of the rows that carry this store's seal. A row without it grants nothing:
    it is left out (a forged user is unknown, a forged request does not exist, a forged rung
    is no rung), logged, and ``verify`` reports it, which puts a guard in emergency."""
    for row in rows:
        problem = seal_problem(key, table, row, where)
        if problem is None:
            yield tuple(row[:-1])
        else:
            log.error("%s: left out", problem)


class AuditRow(NamedTuple):
    """The ``audit`` row, in column order."""

    seq: int
    ts: float
    entry: str
    prev_hash: str
    hash: str

    def record(self, entry: AuditEntry) -> AuditRecord:
        return AuditRecord(self.seq, entry, self.prev_hash, self.hash)


def chain(head: tuple[int, str] | None, entry: AuditEntry, key: bytes | None) -> AuditRow:
    """The record that follows ``head`` (its ``(seq, hash)``; None for an empty log)."""
    seq, prev = (1, audit.GENESIS) if head is None else (head[0] + 1, head[1])
    entry_json = audit.canonical(entry)
    return AuditRow(seq, entry.ts, entry_json, prev, audit.chain_hash(prev, seq, entry_json, key))


def load_audit(
    rows: Iterable[tuple[Any, ...]], since: float | None, where: str
) -> list[AuditRecord]:
    """``(seq, entry, prev_hash, hash)`` rows, oldest first; ``since`` filters on the hashed
    time in each entry, not the unhashed column."""
    with reading(where, "audit record"):
        records = [AuditRecord(r[0], AuditEntry(**json.loads(r[1])), r[2], r[3]) for r in rows]
    return records if since is None else [r for r in records if r.entry.ts >= since]


# -- outbox, flatten runs, metric baselines --------------------------------------------------


def outbox_values(r: OutboxRow) -> tuple[Any, ...]:
    return (
        r.id,
        r.channel,
        r.priority,
        to_json(r.payload),
        r.status,
        r.attempts,
        r.next_attempt,
        r.created_at,
        r.last_error,
        r.delivered_at,
        r.latency_ms,
    )


def outbox_row(r: tuple[Any, ...]) -> OutboxRow:
    try:
        payload = json.loads(r[3])
    except ValueError as exc:
        raise StoreUnavailable(f"corrupt outbox row {r[0]}: {exc}") from exc
    return OutboxRow(r[0], r[1], r[2], payload, r[4], r[5], r[6], r[7], r[8], r[9], r[10])


def flatten_values(run: FlattenRun) -> tuple[Any, ...]:
    report = None if run.report is None else to_json(run.report)
    return (run.id, run.scope, run.reason, run.status, run.started_at, report)


def load_flatten_runs(rows: Iterable[tuple[Any, ...]], where: str) -> list[FlattenRun]:
    with reading(where, "flatten run"):
        return [
            FlattenRun(r[0], r[1], r[2], r[3], r[4], None if r[5] is None else json.loads(r[5]))
            for r in rows
        ]


def load_metrics(rows: Iterable[tuple[str, str]], where: str) -> dict[str, dict[str, Any]]:
    """``(scope, json)`` rows; each baseline must be a JSON object."""
    with reading(where, "metric baseline"):
        loaded = {scope: json.loads(data) for scope, data in rows}
    if not all(isinstance(v, dict) for v in loaded.values()):
        raise StoreUnavailable(f"{where}: corrupt metric baseline: not an object")
    return loaded
