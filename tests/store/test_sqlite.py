"""SqliteStore against real files: what only a file has. Reopening, rows tampered with on
disk, WAL and synchronous=FULL, schema versions. The behaviour every backend shares is in
test_contract.py, run against SQLite there too."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.store.support import entry, recovering, rung, status
from tradeguard.errors import StoreUnavailable
from tradeguard.store import SqliteStore, StateWrite, UserEvent, UserRecord

# The schema-1 tables this migration reads, as the previous release created them.
_SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema', '1'), ('audit_keyed', '0');
CREATE TABLE users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, salt TEXT, token_hash TEXT,
    updated_at REAL NOT NULL, issued_by TEXT);
INSERT INTO users VALUES ('Boss', 'admin', 's', 'h', 1.0, NULL);
INSERT INTO users VALUES ('risk1', 'risk_manager', 's2', 'h2', 2.0, 'Boss');
INSERT INTO users VALUES ('viewer1', 'viewer', NULL, NULL, 3.0, NULL);
"""


def _schema_1(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.executescript(_SCHEMA_1)


def _raw(path: Path, sql: str, params: tuple[object, ...] = ()) -> None:
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(sql, params)


@pytest.fixture
def store(db_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(db_path)
    yield opened
    opened.close()


class TestLoadStates:
    def test_load_states_when_reopened_then_data_is_still_there(self, db_path: Path) -> None:
        """Committed states survive closing and reopening the file."""
        first = SqliteStore(db_path)
        first.commit(states=[StateWrite("portfolio", status("emergency", 1), 0)])
        first.close()
        second = SqliteStore(db_path)
        try:
            assert second.load_states()["portfolio"] == status("emergency", 1)
        finally:
            second.close()


class TestRungs:
    @pytest.fixture(autouse=True)
    def _state(self, store: SqliteStore) -> None:
        recovering(store)

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
    def test_rungs_when_row_is_edited_then_left_out_and_verify_names_it(
        self, store: SqliteStore, db_path: Path, column: str, value: object
    ) -> None:
        """A rung row that is not what this code wrote no longer carries its seal: it is no
        rung (the climb starts again from the bottom), never a guess, and verify says so."""
        store.commit(rungs=[rung(1)])
        _raw(db_path, f"UPDATE recovery SET {column}=?", (value,))
        assert store.rungs() == {}
        assert not store.verify_audit().ok


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
        _raw(db_path, "UPDATE meta SET value='9' WHERE key='schema'")
        with pytest.raises(StoreUnavailable, match="schema 9, expected 3"):
            SqliteStore(db_path)

    def test_open_when_schema_version_matches_then_opens(self, db_path: Path) -> None:
        """Reopening a file of the current schema works and records schema 3 once."""
        SqliteStore(db_path).close()
        SqliteStore(db_path).close()
        with closing(sqlite3.connect(db_path)) as db:
            assert db.execute("SELECT key, value FROM meta WHERE key='schema'").fetchall() == [
                ("schema", "3")
            ]

    def test_open_when_file_has_schema_1_then_users_migrated_in_place(self, db_path: Path) -> None:
        """A store made by schema 1 opens as schema 3: users keep role and token, the issuer
        of a token becomes its one sponsor, and two lifting users with tokens mark two-person
        administration as established."""
        _schema_1(db_path)
        with closing(SqliteStore(db_path)) as store:
            users = store.users()
            history = store.user_history()
        assert users["Boss"] == UserRecord("Boss", "admin", "s", "h", 1.0, (), (), None, ())
        assert users["risk1"].sponsors == ("boss",) and users["risk1"].token_hash == "h2"
        assert users["viewer1"].enrolled is False
        assert [e.action for e in history] == ["established"]
        with closing(sqlite3.connect(db_path)) as db:
            assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == ("3",)

    def test_open_when_schema_1_names_collide_then_refused_and_left_as_it_was(
        self, db_path: Path
    ) -> None:
        """Two schema-1 users that are one person after normalization stop the migration: the
        file stays at schema 1 until one is removed, never half migrated."""
        _schema_1(db_path)
        _raw(db_path, "INSERT INTO users VALUES ('boss', 'viewer', NULL, NULL, 2.0, NULL)")
        with pytest.raises(StoreUnavailable, match="UNIQUE"):
            SqliteStore(db_path)
        with closing(sqlite3.connect(db_path)) as db:
            assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == ("1",)
            assert db.execute("SELECT count(*) FROM users").fetchone() == (4,)

    def test_user_history_when_edited_on_disk_then_refused(self, store: SqliteStore) -> None:
        """The history is append-only in the file itself: an UPDATE or DELETE aborts."""
        store.append_user_history([UserEvent(1.0, "root", "added", "ann")], entry())
        for sql in ("UPDATE user_history SET actor='x'", "DELETE FROM user_history"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                _raw(store.path, sql)
        assert len(store.user_history()) == 1

    def test_open_when_directory_missing_then_raises_store_unavailable(
        self, tmp_path: Path
    ) -> None:
        """A path whose directory does not exist cannot be opened and says so."""
        with pytest.raises(StoreUnavailable):
            SqliteStore(tmp_path / "missing" / "state.db")
