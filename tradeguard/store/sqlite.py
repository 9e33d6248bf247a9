"""SQLite store: WAL, ``synchronous=FULL``, one connection guarded by a lock.

Every write is ``BEGIN IMMEDIATE`` so two processes sharing the file serialize their writes and
never fork the audit chain. Any SQLite failure surfaces as :class:`StoreUnavailable`; the guard
decides what that means (fail closed), never this module.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tradeguard import audit
from tradeguard.audit import AuditEntry, AuditRecord, Verification
from tradeguard.errors import StoreUnavailable
from tradeguard.model import PortfolioState, Scope, ScopeKind, StrategyState
from tradeguard.state import ScopeStatus
from tradeguard.store.base import (
    Approval,
    FlattenRun,
    OutboxRow,
    Rung,
    StateConflict,
    StateWrite,
    UserRecord,
)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS states (
    scope TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT NOT NULL,
    since REAL NOT NULL, actor TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, ts REAL NOT NULL, entry TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY, action TEXT NOT NULL, scope TEXT NOT NULL, requested_by TEXT NOT NULL,
    requested_at REAL NOT NULL, expires_at REAL NOT NULL, target_version INTEGER NOT NULL,
    status TEXT NOT NULL, approved_by TEXT, decided_at REAL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS flatten_runs (
    id TEXT PRIMARY KEY, scope TEXT NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL,
    started_at REAL NOT NULL, report TEXT);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, salt TEXT, token_hash TEXT,
    updated_at REAL NOT NULL, issued_by TEXT);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT NOT NULL, channel TEXT NOT NULL, priority TEXT NOT NULL, payload TEXT NOT NULL,
    status TEXT NOT NULL, attempts INTEGER NOT NULL, next_attempt REAL NOT NULL,
    created_at REAL NOT NULL, last_error TEXT, delivered_at REAL, latency_ms REAL,
    PRIMARY KEY (id, channel));
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt);
CREATE TABLE IF NOT EXISTS metrics (scope TEXT PRIMARY KEY, data TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY, opened_at REAL NOT NULL, status TEXT NOT NULL, owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS genomes (fingerprint TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recovery (
    scope TEXT PRIMARY KEY, version INTEGER NOT NULL, stage INTEGER NOT NULL, since REAL NOT NULL,
    trades_at_start INTEGER NOT NULL, pnl_at_start REAL NOT NULL, authorized_by TEXT NOT NULL);
"""


class SqliteStore:
    def __init__(
        self, path: str | Path, *, timeout: float = 5.0, audit_key: bytes | None = None
    ) -> None:
        self.path = Path(path)
        self._key = audit_key
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.path}: {exc}") from exc
        try:
            self._open()
        except BaseException:
            self._db.close()
            raise

    def _open(self) -> None:
        try:
            if self._db.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise StoreUnavailable(f"{self.path}: integrity check failed")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self._db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,)
                )
            elif int(row[0]) != SCHEMA_VERSION:
                raise StoreUnavailable(f"{self.path}: schema {row[0]}, expected {SCHEMA_VERSION}")
            self._check_audit_key()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.path}: {exc}") from exc

    def _check_audit_key(self) -> None:
        """A chain is keyed or not from its first record on; the key must match that."""
        row = self._db.execute("SELECT value FROM meta WHERE key='audit_keyed'").fetchone()
        if row is None:
            empty = self._db.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 0
            keyed = self._key is not None and empty
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('audit_keyed', ?)", ("1" if keyed else "0",)
            )
            row = ("1" if keyed else "0",)
        if row[0] == "1" and self._key is None:
            raise StoreUnavailable(
                f"{self.path}: its audit chain is keyed: set state.audit_key "
                "(e.g. ${TRADEGUARD_AUDIT_KEY})"
            )
        if row[0] == "0" and self._key is not None:
            raise StoreUnavailable(
                f"{self.path}: its audit chain was started without a key; a "
                "key cannot be added later: remove state.audit_key or start "
                "a new store"
            )

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"{self.path}: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"{self.path}: {exc}") from exc
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                with suppress(sqlite3.Error):  # SQLite may have rolled back already (disk full)
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreUnavailable(f"{self.path}: {exc}") from exc
                raise

    # -- states ---------------------------------------------------------------------------

    def load_states(self) -> dict[str, ScopeStatus]:
        """Every row, checked: a row that is not exactly what this code writes is corruption."""
        with self._read() as db:
            rows = db.execute("SELECT scope, state, reason, since, actor, version FROM states")
            fetched = rows.fetchall()
        try:
            return dict(_state_row(row) for row in fetched)
        except (ValueError, TypeError) as exc:
            raise StoreUnavailable(f"{self.path}: corrupt state row: {exc}") from exc

    def commit(
        self,
        *,
        states: Sequence[StateWrite] = (),
        audit: Sequence[AuditEntry] = (),
        approvals: Sequence[Approval] = (),
        rungs: Sequence[Rung] = (),
    ) -> list[AuditRecord]:
        with self._write() as db:
            for write in states:
                row = db.execute("SELECT version FROM states WHERE scope=?", (write.scope,))
                found = row.fetchone()
                stored = 0 if found is None else found[0]
                if stored != write.expected_version:
                    raise StateConflict(
                        f"{write.scope} is at version {stored}, expected {write.expected_version}"
                    )
                s = write.status
                db.execute(
                    "INSERT OR REPLACE INTO states VALUES (?, ?, ?, ?, ?, ?)",
                    (write.scope, s.state, s.reason, s.since, s.actor, s.version),
                )
            for a in approvals:
                db.execute(
                    "INSERT OR REPLACE INTO approvals VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        a.id,
                        a.action,
                        a.scope,
                        a.requested_by,
                        a.requested_at,
                        a.expires_at,
                        a.target_version,
                        a.status,
                        a.approved_by,
                        a.decided_at,
                        a.reason,
                    ),
                )
            for r in rungs:
                state = db.execute(
                    "SELECT state, version FROM states WHERE scope=?", (r.scope,)
                ).fetchone()
                if state is None or tuple(state) != ("recovering", r.version):
                    raise StateConflict(f"{r.scope} is not recovering at version {r.version}")
                found = db.execute(
                    "SELECT version, stage FROM recovery WHERE scope=?", (r.scope,)
                ).fetchone()
                if found is not None and (found[0], found[1]) >= (r.version, r.stage):
                    raise StateConflict(
                        f"{r.scope} is already at recovery stage {found[1]} (version {found[0]})"
                    )
                db.execute(
                    "INSERT OR REPLACE INTO recovery VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        r.scope,
                        r.version,
                        r.stage,
                        r.since,
                        r.trades_at_start,
                        r.pnl_at_start,
                        r.authorized_by,
                    ),
                )
            return [self._append(db, entry) for entry in audit]

    def rungs(self) -> dict[str, Rung]:
        """Every stored rung, checked like the state rows: anything else is corruption."""
        with self._read() as db:
            fetched = db.execute("SELECT * FROM recovery").fetchall()
        try:
            return {row[0]: _rung_row(row) for row in fetched}
        except (ValueError, TypeError) as exc:
            raise StoreUnavailable(f"{self.path}: corrupt recovery row: {exc}") from exc

    # -- incidents, genomes, values -------------------------------------------------------

    def open_incident(self, data: dict[str, Any], audit: Sequence[AuditEntry] = ()) -> bool:
        """Record a new incident; False (and nothing written) when its id exists already."""
        with self._write() as db:
            found = db.execute("SELECT 1 FROM incidents WHERE id=?", (data["id"],)).fetchone()
            if found is not None:
                return False
            db.execute(
                "INSERT INTO incidents (id, opened_at, status, data) VALUES (?, ?, ?, ?)",
                (data["id"], data["opened_at"], data["status"], json.dumps(data)),
            )
            for entry in audit:
                self._append(db, entry)
            return True

    def claim_incident(self, incident_id: str, owner: str, now: float, lease: float) -> bool:
        """Take (or keep) the right to run an incident: free, ours, or its owner's lease ran
        out (a crashed process). Two processes never run one incident at once."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE incidents SET owner=?, lease_until=? WHERE id=? AND status='running' "
                "AND (owner IS NULL OR owner=? OR lease_until < ?)",
                (owner, now + lease, incident_id, owner, now),
            )
            return cursor.rowcount == 1

    def save_incident(
        self, data: dict[str, Any], owner: str, lease_until: float, audit: Sequence[AuditEntry]
    ) -> None:
        """Write the incident's progress, only while ``owner`` holds it."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE incidents SET status=?, data=?, lease_until=? WHERE id=? AND owner=?",
                (data["status"], json.dumps(data), lease_until, data["id"], owner),
            )
            if cursor.rowcount != 1:
                raise StateConflict(f"incident {data['id']} is not held by this process")
            for entry in audit:
                self._append(db, entry)

    def incidents(self, *, status: str | None = None) -> list[dict[str, Any]]:
        query, args = "SELECT data FROM incidents", ()
        if status is not None:
            query, args = query + " WHERE status=?", (status,)  # type: ignore[assignment]
        with self._read() as db:
            rows = db.execute(query + " ORDER BY opened_at", args).fetchall()
        return [self._json(row[0], "incident") for row in rows]

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        with self._read() as db:
            row = db.execute("SELECT data FROM incidents WHERE id=?", (incident_id,)).fetchone()
        return None if row is None else self._json(row[0], "incident")

    def update_genome(
        self,
        fingerprint: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        audit: Callable[[dict[str, Any]], Sequence[AuditEntry]] = lambda _row: (),
    ) -> dict[str, Any] | None:
        """Read, change and write one genome row in one transaction (a registration racing a
        blacklisting can then never write the blacklist away). ``change`` returns the new row,
        or None to leave it; the row as it stands afterwards is returned."""
        with self._write() as db:
            found = db.execute(
                "SELECT data FROM genomes WHERE fingerprint=?", (fingerprint,)
            ).fetchone()
            current = None if found is None else self._json(found[0], "genome")
            updated = change(current)
            if updated is None:
                return current
            db.execute(
                "INSERT OR REPLACE INTO genomes VALUES (?, ?)",
                (fingerprint, json.dumps(updated, allow_nan=False)),
            )
            for entry in audit(updated):
                self._append(db, entry)
            return updated

    def genomes(self) -> dict[str, dict[str, Any]]:
        with self._read() as db:
            rows = db.execute("SELECT fingerprint, data FROM genomes").fetchall()
        return {row[0]: self._json(row[1], "genome") for row in rows}

    def value(self, key: str) -> Any:
        with self._read() as db:
            row = db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return None if row is None else self._json(row[0], key)

    def update_value(
        self,
        key: str,
        change: Callable[[Any], Any],
        audit: Callable[[Any], Sequence[AuditEntry]] = lambda _value: (),
    ) -> tuple[Any, bool]:
        """Read, change and write one value in one transaction; ``change`` returns the new
        value, or None to leave it. Returns the value afterwards, and whether it changed."""
        with self._write() as db:
            found = db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
            current = None if found is None else self._json(found[0], key)
            updated = change(current)
            if updated is None:
                return current, False
            db.execute(
                "INSERT OR REPLACE INTO kv VALUES (?, ?)",
                (key, json.dumps(updated, allow_nan=False)),
            )
            for entry in audit(updated):
                self._append(db, entry)
            return updated, True

    def _json(self, text: str, what: str) -> Any:
        try:
            return json.loads(text)
        except ValueError as exc:
            raise StoreUnavailable(f"{self.path}: corrupt {what} row: {exc}") from exc

    def _append(self, db: sqlite3.Connection, entry: AuditEntry) -> AuditRecord:
        head = db.execute("SELECT seq, hash FROM audit_head WHERE id=1").fetchone()
        seq, prev = (1, audit.GENESIS) if head is None else (head[0] + 1, head[1])
        entry_json = audit.canonical(entry)
        digest = audit.chain_hash(prev, seq, entry_json, self._key)
        db.execute(
            "INSERT INTO audit VALUES (?, ?, ?, ?, ?)", (seq, entry.ts, entry_json, prev, digest)
        )
        db.execute("INSERT OR REPLACE INTO audit_head VALUES (1, ?, ?)", (seq, digest))
        return AuditRecord(seq, entry, prev, digest)

    # -- approvals ------------------------------------------------------------------------

    def approvals(self, *, pending_only: bool = True) -> list[Approval]:
        query = "SELECT * FROM approvals"
        if pending_only:
            query += " WHERE status='pending'"
        with self._read() as db:
            return [Approval(*row) for row in db.execute(query + " ORDER BY requested_at")]

    def approval(self, request_id: str) -> Approval | None:
        with self._read() as db:
            row = db.execute("SELECT * FROM approvals WHERE id=?", (request_id,)).fetchone()
        return None if row is None else Approval(*row)

    # -- audit ----------------------------------------------------------------------------

    def audit_records(
        self, *, since: float | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        """Oldest first; ``limit``: only the most recent (read from the end, not the whole
        table). ``since`` filters on the hashed time in each entry, not the unhashed column."""
        with self._read() as db:
            if limit is None:
                rows = db.execute("SELECT seq, entry, prev_hash, hash FROM audit ORDER BY seq")
                fetched = rows.fetchall()
            else:
                rows = db.execute(
                    "SELECT seq, entry, prev_hash, hash FROM audit ORDER BY seq DESC LIMIT ?",
                    (limit,),
                )
                fetched = rows.fetchall()[::-1]
        try:
            records = [
                AuditRecord(r[0], AuditEntry(**json.loads(r[1])), r[2], r[3]) for r in fetched
            ]
        except (ValueError, TypeError) as exc:
            raise StoreUnavailable(f"{self.path}: corrupt audit record: {exc}") from exc
        return records if since is None else [r for r in records if r.entry.ts >= since]

    def verify_audit(self) -> Verification:
        with self._read() as db:
            rows = db.execute("SELECT seq, entry, prev_hash, hash, ts FROM audit ORDER BY seq")
            head = db.execute("SELECT seq, hash FROM audit_head WHERE id=1").fetchone()
            return audit.verify(
                rows.fetchall(), None if head is None else (head[0], head[1]), self._key
            )

    # -- users ----------------------------------------------------------------------------

    def users(self) -> dict[str, UserRecord]:
        with self._read() as db:
            rows = db.execute(
                "SELECT name, role, salt, token_hash, updated_at, issued_by FROM users"
            )
            fetched = rows.fetchall()
        return {r[0]: UserRecord(*r) for r in fetched}

    def put_user(self, user: UserRecord, audit: AuditEntry) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?, ?, ?)",
                (user.name, user.role, user.salt, user.token_hash, user.updated_at, user.issued_by),
            )
            self._append(db, audit)

    def remove_user(self, name: str, audit: AuditEntry) -> bool:
        with self._write() as db:
            removed = db.execute("DELETE FROM users WHERE name=?", (name,)).rowcount > 0
            if removed:
                self._append(db, audit)
        return removed

    def data_version(self) -> int:
        """Changes whenever another connection commits: how a guard notices, cheaply, that a
        CLI or another process wrote to the store."""
        with self._read() as db:
            row = db.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    # -- the alert outbox ------------------------------------------------------------------

    def enqueue_alerts(self, rows: Sequence[OutboxRow]) -> None:
        with self._write() as db:
            db.executemany(
                "INSERT OR IGNORE INTO outbox VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [_outbox_values(r) for r in rows],
            )

    def update_alert(self, row: OutboxRow) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO outbox VALUES (?,?,?,?,?,?,?,?,?,?,?)", _outbox_values(row)
            )

    def due_alerts(self, now: float, limit: int = 100) -> list[OutboxRow]:
        with self._read() as db:
            rows = db.execute(
                "SELECT * FROM outbox WHERE status='pending' AND next_attempt <= ? "
                "ORDER BY created_at LIMIT ?",
                (now, limit),
            ).fetchall()
        return [_outbox_row(r) for r in rows]

    def outbox(self, *, status: str | None = None) -> list[OutboxRow]:
        query, args = "SELECT * FROM outbox", tuple[str, ...]()
        if status is not None:
            query, args = query + " WHERE status=?", (status,)
        with self._read() as db:
            rows = db.execute(query + " ORDER BY created_at, channel", args).fetchall()
        return [_outbox_row(r) for r in rows]

    # -- emergency stop runs --------------------------------------------------------------

    def record_flatten(self, run: FlattenRun) -> None:
        report = None if run.report is None else json.dumps(run.report, allow_nan=False)
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO flatten_runs VALUES (?, ?, ?, ?, ?, ?)",
                (run.id, run.scope, run.reason, run.status, run.started_at, report),
            )

    def flatten_runs(self, *, status: str | None = None) -> list[FlattenRun]:
        query, args = "SELECT * FROM flatten_runs", tuple[str, ...]()
        if status is not None:
            query, args = query + " WHERE status=?", (status,)
        with self._read() as db:
            rows = db.execute(query + " ORDER BY started_at", args).fetchall()
        try:
            return [
                FlattenRun(r[0], r[1], r[2], r[3], r[4], None if r[5] is None else json.loads(r[5]))
                for r in rows
            ]
        except ValueError as exc:
            raise StoreUnavailable(f"{self.path}: corrupt flatten run: {exc}") from exc

    # -- metric baselines -----------------------------------------------------------------

    def save_metrics(self, snapshot: dict[str, dict[str, Any]], at: float) -> None:
        with self._write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?)",
                [
                    (scope, json.dumps(data, allow_nan=False), at)
                    for scope, data in snapshot.items()
                ],
            )

    def load_metrics(self) -> dict[str, dict[str, Any]]:
        with self._read() as db:
            rows = db.execute("SELECT scope, data FROM metrics").fetchall()
        try:
            loaded = {scope: json.loads(data) for scope, data in rows}
        except (ValueError, TypeError) as exc:
            raise StoreUnavailable(f"{self.path}: corrupt metric baseline: {exc}") from exc
        if not all(isinstance(v, dict) for v in loaded.values()):
            raise StoreUnavailable(f"{self.path}: corrupt metric baseline: not an object")
        return loaded

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _state_row(row: tuple[Any, ...]) -> tuple[str, ScopeStatus]:
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


def _rung_row(row: tuple[Any, ...]) -> Rung:
    scope, version, stage, since, trades, pnl, by = row
    Scope.parse(scope)
    ints, floats = (version, stage, trades), (since, pnl)
    if any(type(v) is not int or v < 0 for v in ints):
        raise ValueError(f"{scope}: version, stage and trade count must be integers >= 0")
    if any(type(v) is not float or not math.isfinite(v) for v in floats):
        raise ValueError(f"{scope}: since and P&L must be finite numbers")
    if not isinstance(by, str) or not by:
        raise ValueError(f"{scope}: authorized_by must be a name")
    return Rung(scope, version, stage, since, trades, pnl, by)


def _outbox_values(r: OutboxRow) -> tuple[Any, ...]:
    return (
        r.id,
        r.channel,
        r.priority,
        json.dumps(r.payload, allow_nan=False),
        r.status,
        r.attempts,
        r.next_attempt,
        r.created_at,
        r.last_error,
        r.delivered_at,
        r.latency_ms,
    )


def _outbox_row(r: tuple[Any, ...]) -> OutboxRow:
    try:
        payload = json.loads(r[3])
    except ValueError as exc:
        raise StoreUnavailable(f"corrupt outbox row {r[0]}: {exc}") from exc
    return OutboxRow(r[0], r[1], r[2], payload, r[4], r[5], r[6], r[7], r[8], r[9], r[10])
