"""SQLite's operational aggregates: the alert outbox, users, metric baselines, flatten runs.

Each write is its own ``BEGIN IMMEDIATE`` transaction; a user change is audited in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tradeguard.audit import AuditEntry
from tradeguard.store import codec
from tradeguard.store.base import FlattenRun, OutboxRow, UserRecord
from tradeguard.store.sqlite.connection import SqliteConnection


class SqliteOutbox(SqliteConnection):
    def enqueue_alerts(self, rows: Sequence[OutboxRow]) -> None:
        with self._write() as db:
            db.executemany(
                "INSERT OR IGNORE INTO outbox VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [codec.outbox_values(r) for r in rows],
            )

    def update_alert(self, row: OutboxRow) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO outbox VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                codec.outbox_values(row),
            )

    def due_alerts(self, now: float, limit: int = 100) -> list[OutboxRow]:
        with self._read() as db:
            found = db.execute(
                "SELECT * FROM outbox WHERE status='pending' AND next_attempt <= ? "
                "ORDER BY created_at LIMIT ?",
                (now, limit),
            ).fetchall()
        return [codec.outbox_row(r) for r in found]

    def outbox(self, *, status: str | None = None) -> list[OutboxRow]:
        query, args = "SELECT * FROM outbox", tuple[str, ...]()
        if status is not None:
            query, args = query + " WHERE status=?", (status,)
        with self._read() as db:
            found = db.execute(query + " ORDER BY created_at, channel", args).fetchall()
        return [codec.outbox_row(r) for r in found]


class SqliteUsers(SqliteConnection):
    def users(self) -> dict[str, UserRecord]:
        with self._read() as db:
            found = db.execute(
                "SELECT name, role, salt, token_hash, updated_at, issued_by FROM users"
            )
            fetched = found.fetchall()
        return {r[0]: UserRecord(*r) for r in fetched}

    def put_user(self, user: UserRecord, audit: AuditEntry) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?, ?, ?)", codec.values(user))
            self._append(db, audit)

    def remove_user(self, name: str, audit: AuditEntry) -> bool:
        with self._write() as db:
            removed = db.execute("DELETE FROM users WHERE name=?", (name,)).rowcount > 0
            if removed:
                self._append(db, audit)
        return removed


class SqliteMetrics(SqliteConnection):
    def save_metrics(self, snapshot: dict[str, dict[str, Any]], at: float) -> None:
        with self._write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?)",
                [(scope, codec.to_json(data), at) for scope, data in snapshot.items()],
            )

    def load_metrics(self) -> dict[str, dict[str, Any]]:
        with self._read() as db:
            found = db.execute("SELECT scope, data FROM metrics").fetchall()
        return codec.load_metrics(found, str(self.path))


class SqliteFlattenRuns(SqliteConnection):
    def record_flatten(self, run: FlattenRun) -> None:
        row = codec.flatten_values(run)
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO flatten_runs VALUES (?, ?, ?, ?, ?, ?)", row)

    def flatten_runs(self, *, status: str | None = None) -> list[FlattenRun]:
        query, args = "SELECT * FROM flatten_runs", tuple[str, ...]()
        if status is not None:
            query, args = query + " WHERE status=?", (status,)
        with self._read() as db:
            found = db.execute(query + " ORDER BY started_at", args).fetchall()
        return codec.load_flatten_runs(found, str(self.path))
