"""SQLite's operational aggregates: the alert outbox, users, metric baselines, flatten runs.

Each write is its own ``BEGIN IMMEDIATE`` transaction; a user change is audited in it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from typing import Any

from tradeguard.audit import AuditEntry
from tradeguard.model import user_key
from tradeguard.store import codec
from tradeguard.store.base import FlattenRun, OutboxRow, UserEvent, UserRecord
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
            fetched = db.execute("SELECT * FROM users").fetchall()
        return codec.load_users(fetched, str(self.path))

    def put_user(
        self, user: UserRecord, audit: AuditEntry, history: Sequence[UserEvent] = ()
    ) -> None:
        row = codec.user_values(user)
        with self._write() as db:
            stored = db.execute("SELECT name FROM users WHERE key=?", (row[0],)).fetchone()
            codec.check_user_name(user.name, None if stored is None else stored[0])
            db.execute("INSERT OR REPLACE INTO users VALUES (?,?,?,?,?,?,?,?,?,?)", row)
            self._history(db, history)
            self._append(db, audit)

    def remove_user(self, name: str, audit: AuditEntry, history: Sequence[UserEvent] = ()) -> bool:
        with self._write() as db:
            removed = db.execute("DELETE FROM users WHERE key=?", (user_key(name),)).rowcount > 0
            if removed:
                self._history(db, history)
                self._append(db, audit)
        return removed

    def append_user_history(self, events: Sequence[UserEvent], audit: AuditEntry) -> None:
        with self._write() as db:
            self._history(db, events)
            self._append(db, audit)

    def user_history(self) -> list[UserEvent]:
        with self._read() as db:
            found = db.execute(
                "SELECT at, actor, action, user, details FROM user_history ORDER BY seq"
            ).fetchall()
        return codec.load_events(found, str(self.path))

    @staticmethod
    def _history(db: sqlite3.Connection, events: Sequence[UserEvent]) -> None:
        db.executemany(
            "INSERT INTO user_history (at, actor, action, user, details) VALUES (?,?,?,?,?)",
            [codec.event_values(e) for e in events],
        )


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

    def latest_flatten(self, statuses: Collection[str]) -> FlattenRun | None:
        marks = ", ".join("?" * len(statuses))
        query = f"SELECT * FROM flatten_runs WHERE status IN ({marks}) ORDER BY started_at DESC"
        with self._read() as db:
            found = db.execute(query + " LIMIT 1", tuple(statuses)).fetchall()
        return next(iter(codec.load_flatten_runs(found, str(self.path))), None)
