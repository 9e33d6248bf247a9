"""SQLite's scope-state aggregate: states, approvals, recovery rungs and the audit chain.

``commit`` writes them in one ``BEGIN IMMEDIATE`` transaction: every state write is checked
against the version it expects, every rung against its scope's state and the stored rung, and
the audit entries are chained in the same transaction, so a conflict anywhere leaves nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradeguard import audit
from tradeguard.audit import AuditEntry, AuditRecord, Verification
from tradeguard.state import ScopeStatus
from tradeguard.store import codec, replay
from tradeguard.store.base import Approval, Rung, StateWrite
from tradeguard.store.sqlite.connection import SqliteConnection


class SqliteScopeStates(SqliteConnection):
    def load_states(self) -> dict[str, ScopeStatus]:
        """Every row, checked: a row that is not exactly what this code writes is corruption."""
        with self._read() as db:
            found = db.execute("SELECT scope, state, reason, since, actor, version FROM states")
            fetched = found.fetchall()
        return codec.load_states(fetched, str(self.path))

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
                codec.check_version(write, 0 if found is None else found[0])
                db.execute(
                    "INSERT OR REPLACE INTO states VALUES (?, ?, ?, ?, ?, ?)",
                    codec.state_values(write),
                )
            for a in approvals:
                db.execute(
                    "INSERT OR REPLACE INTO approvals VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    codec.sealed(self._seal_key(db), "approvals", codec.values(a)),
                )
            for r in rungs:
                state = db.execute(
                    "SELECT state, version FROM states WHERE scope=?", (r.scope,)
                ).fetchone()
                stored = db.execute(
                    "SELECT version, stage FROM recovery WHERE scope=?", (r.scope,)
                ).fetchone()
                codec.check_rung(r, state, stored)
                db.execute(
                    "INSERT OR REPLACE INTO recovery VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    codec.sealed(self._seal_key(db), "recovery", codec.values(r)),
                )
            return [self._append(db, entry) for entry in audit]

    def rungs(self) -> dict[str, Rung]:
        """Every stored rung, checked like the state rows: anything else is corruption."""
        with self._read() as db:
            fetched = db.execute("SELECT * FROM recovery").fetchall()
            key = self._seal_key(db)
        where = str(self.path)
        return codec.load_rungs(codec.unsealed(key, "recovery", fetched, where), where)

    def approvals(self, *, pending_only: bool = True) -> list[Approval]:
        query = "SELECT * FROM approvals"
        if pending_only:
            query += " WHERE status='pending'"
        with self._read() as db:
            fetched = db.execute(query + " ORDER BY requested_at").fetchall()
            key = self._seal_key(db)
        where = str(self.path)
        return [Approval(*row) for row in codec.unsealed(key, "approvals", fetched, where)]

    def approval(self, request_id: str) -> Approval | None:
        with self._read() as db:
            row = db.execute("SELECT * FROM approvals WHERE id=?", (request_id,)).fetchone()
            key = self._seal_key(db)
        found = [] if row is None else [row]
        kept = list(codec.unsealed(key, "approvals", found, str(self.path)))
        return Approval(*kept[0]) if kept else None

    def audit_records(
        self, *, since: float | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        """Oldest first; ``limit``: only the most recent (read from the end, not the whole
        table). ``since`` filters on the hashed time in each entry, not the unhashed column."""
        with self._read() as db:
            if limit is None:
                found = db.execute("SELECT seq, entry, prev_hash, hash FROM audit ORDER BY seq")
                fetched = found.fetchall()
            else:
                found = db.execute(
                    "SELECT seq, entry, prev_hash, hash FROM audit ORDER BY seq DESC LIMIT ?",
                    (limit,),
                )
                fetched = found.fetchall()[::-1]
        return codec.load_audit(fetched, since, str(self.path))

    def verify_audit(self) -> Verification:
        """The chain, then the states table against its replay, then the file against its
        anchor (a cut tail with a rewound head passes the first two), then the seals of the
        rows that grant authority (users, approvals, rungs)."""
        with self._read() as db:
            db.execute("BEGIN")  # one snapshot: the chain and the table another writer moves
            try:
                found = db.execute("SELECT seq, entry, prev_hash, hash, ts FROM audit ORDER BY seq")
                rows = found.fetchall()
                head = db.execute("SELECT seq, hash FROM audit_head WHERE id=1").fetchone()
                table = db.execute("SELECT scope, state, reason, since, actor, version FROM states")
                stored = table.fetchall()
                anchored = self._problem or self._anchor_problem(db)
                problem = f"anchor: {anchored}" if anchored else self.unsealed_row(db)
            finally:
                db.execute("COMMIT")
        chain = audit.verify(rows, None if head is None else (head[0], head[1]), self._key)
        states = codec.load_states(stored, str(self.path))
        result = replay.check(chain, (row[1] for row in rows), states)
        if result.ok and problem is not None:
            return Verification(False, result.checked, None, problem)
        return result
