"""SqliteStore against real files: states, atomic commits, approvals, audit, metrics, opening."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tradeguard.audit import GENESIS, AuditEntry
from tradeguard.errors import StoreUnavailable
from tradeguard.state import ScopeStatus
from tradeguard.store import Approval, Rung, SqliteStore, StateConflict, StateWrite

T0 = 1_767_225_600.0


def _entry(ts: float = T0, reason: str = "because", scope: str = "portfolio") -> AuditEntry:
    return AuditEntry(ts, "risk1", "state_change", scope, "normal", "soft_halt", reason, {"k": 1})


def _status(state: str = "soft_halt", version: int = 1, reason: str = "manual") -> ScopeStatus:
    return ScopeStatus(state, reason, T0 + version, "risk1", version)


def _approval(
    request_id: str = "req1", status: str = "pending", requested_at: float = T0
) -> Approval:
    return Approval(
        id=request_id,
        action="reset",
        scope="portfolio",
        requested_by="risk1",
        requested_at=requested_at,
        expires_at=requested_at + 900.0,
        target_version=3,
        status=status,
        approved_by="risk2" if status == "executed" else None,
        decided_at=requested_at + 10.0 if status == "executed" else None,
        reason="lift it",
    )


def _raw(path: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(sql, params)


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(db_path)
    yield opened
    opened.close()


class TestLoadStates:
    def test_load_states_when_empty_then_returns_nothing(self, store: SqliteStore) -> None:
        """A fresh store holds no scope states."""
        assert store.load_states() == {}

    def test_load_states_when_written_then_round_trips_every_field(
        self, store: SqliteStore
    ) -> None:
        """Each committed status comes back exactly as written, keyed by scope."""
        portfolio = _status("hard_halt", 1, "drawdown")
        alpha = ScopeStatus("halted", "manual", T0 + 5.5, "trader1", 1)
        store.commit(
            states=[StateWrite("portfolio", portfolio, 0), StateWrite("strategy:alpha", alpha, 0)]
        )
        assert store.load_states() == {"portfolio": portfolio, "strategy:alpha": alpha}

    def test_load_states_when_reopened_then_data_is_still_there(self, db_path: Path) -> None:
        """Committed states survive closing and reopening the file."""
        first = SqliteStore(db_path)
        first.commit(states=[StateWrite("portfolio", _status("emergency", 1), 0)])
        first.close()
        second = SqliteStore(db_path)
        try:
            assert second.load_states()["portfolio"] == _status("emergency", 1)
        finally:
            second.close()


class TestCommit:
    def test_commit_when_expected_version_matches_then_replaces_state(
        self, store: SqliteStore
    ) -> None:
        """A write expecting the stored version replaces the row."""
        store.commit(states=[StateWrite("portfolio", _status("soft_halt", 1), 0)])
        store.commit(states=[StateWrite("portfolio", _status("hard_halt", 2), 1)])
        assert store.load_states()["portfolio"] == _status("hard_halt", 2)

    @pytest.mark.parametrize("expected", [0, 2, 7])
    def test_commit_when_expected_version_is_wrong_then_raises_state_conflict(
        self, store: SqliteStore, expected: int
    ) -> None:
        """A write expecting any version but the stored one is refused and changes nothing."""
        store.commit(states=[StateWrite("portfolio", _status("soft_halt", 1), 0)])
        with pytest.raises(StateConflict, match="version 1"):
            store.commit(
                states=[StateWrite("portfolio", _status("normal", expected + 1), expected)]
            )
        assert store.load_states()["portfolio"] == _status("soft_halt", 1)

    def test_commit_when_never_stored_scope_expects_nonzero_then_raises_state_conflict(
        self, store: SqliteStore
    ) -> None:
        """A scope that was never stored is at version 0, not whatever the writer assumed."""
        with pytest.raises(StateConflict):
            store.commit(states=[StateWrite("strategy:alpha", _status("halted", 4), 3)])
        assert store.load_states() == {}

    def test_commit_when_a_state_write_conflicts_then_whole_transaction_rolls_back(
        self, store: SqliteStore
    ) -> None:
        """An earlier state write, the audit entry and the approval in the same call vanish."""
        store.commit(states=[StateWrite("portfolio", _status("soft_halt", 1), 0)], audit=[_entry()])
        with pytest.raises(StateConflict):
            store.commit(
                states=[
                    StateWrite("strategy:alpha", _status("halted", 1), 0),
                    StateWrite("portfolio", _status("normal", 2), 0),  # stale: stored is 1
                ],
                audit=[_entry(T0 + 1, "should not land")],
                approvals=[_approval()],
            )
        assert store.load_states() == {"portfolio": _status("soft_halt", 1)}
        assert [r.entry.reason for r in store.audit_records()] == ["because"]
        assert store.approvals(pending_only=False) == []
        assert store.verify_audit().ok

    def test_commit_when_audit_entries_given_then_chains_them_from_genesis(
        self, store: SqliteStore
    ) -> None:
        """Returned records are numbered from 1 and each links to the previous hash."""
        first = store.commit(audit=[_entry(T0, "one"), _entry(T0 + 1, "two")])
        second = store.commit(audit=[_entry(T0 + 2, "three")])
        records = first + second
        assert [r.seq for r in records] == [1, 2, 3]
        assert records[0].prev_hash == GENESIS
        assert records[1].prev_hash == records[0].hash
        assert records[2].prev_hash == records[1].hash
        assert store.audit_records() == records

    def test_commit_when_store_closed_then_raises_store_unavailable(self, db_path: Path) -> None:
        """A write on a closed connection surfaces as StoreUnavailable, not a raw sqlite error."""
        closed = SqliteStore(db_path)
        closed.close()
        with pytest.raises(StoreUnavailable):
            closed.commit(audit=[_entry()])


class TestApprovals:
    def test_approval_when_committed_then_round_trips_every_field(self, store: SqliteStore) -> None:
        """A stored request reads back equal to what was written, decided fields included."""
        pending, executed = _approval("a1"), _approval("a2", "executed", T0 + 1)
        store.commit(approvals=[pending, executed])
        assert store.approval("a1") == pending
        assert store.approval("a2") == executed

    def test_approval_when_id_unknown_then_returns_none(self, store: SqliteStore) -> None:
        """Looking up a request that was never stored gives None."""
        store.commit(approvals=[_approval("a1")])
        assert store.approval("nope") is None

    def test_approvals_when_pending_only_then_omits_decided_requests(
        self, store: SqliteStore
    ) -> None:
        """The default listing holds only pending requests."""
        store.commit(
            approvals=[
                _approval("a1", "pending", T0),
                _approval("a2", "executed", T0 + 1),
                _approval("a3", "expired", T0 + 2),
                _approval("a4", "pending", T0 + 3),
            ]
        )
        assert [a.id for a in store.approvals()] == ["a1", "a4"]

    def test_approvals_when_not_pending_only_then_lists_all_oldest_first(
        self, store: SqliteStore
    ) -> None:
        """Every request comes back, ordered by when it was requested."""
        store.commit(
            approvals=[
                _approval("late", "superseded", T0 + 9),
                _approval("early", "pending", T0),
                _approval("mid", "executed", T0 + 4),
            ]
        )
        assert [a.id for a in store.approvals(pending_only=False)] == ["early", "mid", "late"]

    def test_approval_when_rewritten_then_latest_status_wins(self, store: SqliteStore) -> None:
        """Committing a request again with a new status replaces it (pending -> executed)."""
        store.commit(approvals=[_approval("a1")])
        store.commit(approvals=[_approval("a1", "executed")])
        assert store.approvals() == []
        assert store.approval("a1") == _approval("a1", "executed")


class TestAuditRecords:
    def test_audit_records_when_since_given_then_returns_records_at_or_after_it(
        self, store: SqliteStore
    ) -> None:
        """``since`` is inclusive and filters on the entry time."""
        store.commit(audit=[_entry(T0, "a"), _entry(T0 + 100, "b"), _entry(T0 + 200, "c")])
        assert [r.entry.reason for r in store.audit_records(since=T0 + 100)] == ["b", "c"]
        assert [r.seq for r in store.audit_records(since=T0 + 100)] == [2, 3]
        assert store.audit_records(since=T0 + 201) == []
        assert len(store.audit_records()) == 3

    def test_audit_records_when_read_then_entry_round_trips(self, store: SqliteStore) -> None:
        """The stored entry, details included, reads back equal to the one committed."""
        entry = _entry(T0 + 0.25, "with details")
        store.commit(audit=[entry])
        assert store.audit_records()[0].entry == entry

    def test_verify_audit_when_empty_then_ok_with_no_records(self, store: SqliteStore) -> None:
        """An empty log is intact and counts zero records."""
        result = store.verify_audit()
        assert (result.ok, result.checked, result.first_bad_seq) == (True, 0, None)


class TestMetrics:
    def test_load_metrics_when_saved_then_round_trips(self, store: SqliteStore) -> None:
        """Saved baselines come back per scope, None values included."""
        snapshot = {
            "portfolio": {"equity": 100.0, "peak_equity": 120.5, "day": 20454},
            "strategy:alpha": {"equity": None, "consecutive_losses": 3},
        }
        store.save_metrics(snapshot, T0)
        assert store.load_metrics() == snapshot

    def test_save_metrics_when_scope_saved_again_then_latest_wins(self, store: SqliteStore) -> None:
        """A later snapshot replaces a scope's baseline and keeps scopes it does not mention."""
        store.save_metrics({"portfolio": {"peak_equity": 1.0}, "strategy:a": {"x": 1}}, T0)
        store.save_metrics({"portfolio": {"peak_equity": 2.0}}, T0 + 1)
        assert store.load_metrics() == {
            "portfolio": {"peak_equity": 2.0},
            "strategy:a": {"x": 1},
        }

    def test_load_metrics_when_nothing_saved_then_empty(self, store: SqliteStore) -> None:
        """A fresh store has no baselines."""
        assert store.load_metrics() == {}


def _rung(stage: int = 0, version: int = 4) -> Rung:
    return Rung("strategy:s1", version, stage, T0 + stage, 3, -12.5, "senior1")


def _recovering(store: SqliteStore, version: int = 4) -> None:
    """The state a rung belongs to: strategy s1 recovering at ``version``."""
    stored = store.load_states().get("strategy:s1")
    expected = 0 if stored is None else stored.version
    status = ScopeStatus("recovering", "resumed", T0, "senior1", version)
    store.commit(states=[StateWrite("strategy:s1", status, expected)])


class TestRungs:
    @pytest.fixture(autouse=True)
    def _state(self, store: SqliteStore) -> None:
        _recovering(store)

    def test_rungs_when_committed_then_round_trip_every_field(self, store: SqliteStore) -> None:
        """A rung written with a commit reads back exactly."""
        store.commit(rungs=[_rung(1)])
        assert store.rungs() == {"strategy:s1": _rung(1)}

    def test_commit_when_rung_not_above_stored_one_then_conflict_and_rollback(
        self, store: SqliteStore
    ) -> None:
        """Two guards climbing the same ladder: the second write of a stage is refused, with
        the rest of its transaction."""
        store.commit(rungs=[_rung(1)])
        with pytest.raises(StateConflict, match="already at recovery stage 1"):
            store.commit(rungs=[_rung(1)], audit=[_entry()])
        assert store.audit_records() == []
        assert store.rungs()["strategy:s1"].stage == 1

    def test_commit_when_rung_belongs_to_a_newer_resume_then_replaces_a_higher_stage(
        self, store: SqliteStore
    ) -> None:
        """A new resume (a newer state version) starts from the bottom again."""
        store.commit(rungs=[_rung(2, version=4)])
        _recovering(store, version=7)
        store.commit(rungs=[_rung(0, version=7)])
        assert store.rungs()["strategy:s1"] == _rung(0, version=7)

    def test_commit_when_rung_is_from_an_older_resume_then_conflict(
        self, store: SqliteStore
    ) -> None:
        """A slow guard climbing a ladder that a newer resume replaced changes nothing."""
        _recovering(store, version=7)
        store.commit(rungs=[_rung(0, version=7)])
        with pytest.raises(StateConflict, match="not recovering at version 4"):
            store.commit(rungs=[_rung(1, version=4)])
        assert store.rungs()["strategy:s1"] == _rung(0, version=7)

    def test_commit_when_scope_not_recovering_then_conflict(self, store: SqliteStore) -> None:
        """A rung never lands for a strategy that was halted meanwhile."""
        halted = ScopeStatus("halted", "breach", T0, "rule:x", 5)
        store.commit(states=[StateWrite("strategy:s1", halted, 4)])
        with pytest.raises(StateConflict, match="not recovering"):
            store.commit(rungs=[_rung(1, version=4)])

    @pytest.mark.parametrize(
        ("column", "value"),
        [
            ("stage", -1),
            ("version", "x"),
            ("since", "later"),
            ("authorized_by", ""),
            ("scope", "nope"),
        ],
    )
    def test_rungs_when_row_is_corrupt_then_store_unavailable(
        self, store: SqliteStore, db_path: Path, column: str, value: object
    ) -> None:
        """A rung row that is not what this code writes is corruption, never a guess."""
        store.commit(rungs=[_rung(1)])
        _raw(db_path, f"UPDATE recovery SET {column}=?", (value,))
        with pytest.raises(StoreUnavailable, match="corrupt recovery row"):
            store.rungs()


class TestOpen:
    def test_open_when_new_file_then_uses_wal_and_synchronous_full(
        self, store: SqliteStore, db_path: Path
    ) -> None:
        """The store's connection runs WAL with synchronous=FULL, and WAL sticks to the file."""
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        with closing(sqlite3.connect(db_path)) as other:
            assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    def test_open_when_file_is_not_a_database_then_raises_store_unavailable(
        self, db_path: Path
    ) -> None:
        """Garbage bytes where the database should be are reported as StoreUnavailable."""
        db_path.write_bytes(b"this is not an sqlite database " * 200)
        with pytest.raises(StoreUnavailable, match="not a database"):
            SqliteStore(db_path)

    def test_open_when_schema_version_differs_then_raises_store_unavailable(
        self, db_path: Path
    ) -> None:
        """A file written by another schema version is refused, naming both versions."""
        SqliteStore(db_path).close()
        _raw(db_path, "UPDATE meta SET value='2' WHERE key='schema'")
        with pytest.raises(StoreUnavailable, match="schema 2, expected 1"):
            SqliteStore(db_path)

    def test_open_when_schema_version_matches_then_opens(self, db_path: Path) -> None:
        """Reopening a file of the current schema works and records schema 1 once."""
        SqliteStore(db_path).close()
        SqliteStore(db_path).close()
        with closing(sqlite3.connect(db_path)) as db:
            assert db.execute("SELECT key, value FROM meta WHERE key='schema'").fetchall() == [
                ("schema", "1")
            ]

    def test_open_when_directory_missing_then_raises_store_unavailable(
        self, tmp_path: Path
    ) -> None:
        """A path whose directory does not exist cannot be opened and says so."""
        with pytest.raises(StoreUnavailable):
            SqliteStore(tmp_path / "missing" / "state.db")
