"""SQLite's kill-chain aggregates: incidents under a lease, genomes, and named values.

Each write is one ``BEGIN IMMEDIATE`` transaction with its audit entries. Genomes and values
are changed read-modify-write inside that transaction, so a registration racing a blacklisting
can never write the blacklist away; an incident is run only by the process holding its lease.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from tradeguard.audit import AuditEntry
from tradeguard.store import codec
from tradeguard.store.base import StateConflict
from tradeguard.store.sqlite.connection import SqliteConnection


class SqliteIncidents(SqliteConnection):
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
        query, args = "SELECT data FROM incidents", tuple[str, ...]()
        if status is not None:
            query, args = query + " WHERE status=?", (status,)
        with self._read() as db:
            found = db.execute(query + " ORDER BY opened_at", args).fetchall()
        return [codec.from_json(row[0], str(self.path), "incident") for row in found]

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        with self._read() as db:
            row = db.execute("SELECT data FROM incidents WHERE id=?", (incident_id,)).fetchone()
        return None if row is None else codec.from_json(row[0], str(self.path), "incident")


class SqliteGenomes(SqliteConnection):
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
            current = None if found is None else codec.from_json(found[0], str(self.path), "genome")
            updated = change(current)
            if updated is None:
                return current
            db.execute(
                "INSERT OR REPLACE INTO genomes VALUES (?, ?)",
                (fingerprint, codec.to_json(updated)),
            )
            for entry in audit(updated):
                self._append(db, entry)
            return updated

    def genomes(self) -> dict[str, dict[str, Any]]:
        with self._read() as db:
            found = db.execute("SELECT fingerprint, data FROM genomes").fetchall()
        return {row[0]: codec.from_json(row[1], str(self.path), "genome") for row in found}


class SqliteValues(SqliteConnection):
    def value(self, key: str) -> Any:
        with self._read() as db:
            row = db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return None if row is None else codec.from_json(row[0], str(self.path), key)

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
            current = None if found is None else codec.from_json(found[0], str(self.path), key)
            updated = change(current)
            if updated is None:
                return current, False
            db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, codec.to_json(updated)))
            for entry in audit(updated):
                self._append(db, entry)
            return updated, True
