"""SqliteStore against real files: what only a file has. Reopening, rows tampered with on
disk, WAL and synchronous=FULL, schema versions. The behaviour every backend shares is in
test_contract.py, run against SQLite there too."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from tests.store.support import recovering, rung, status
from tradeguard.errors import StoreUnavailable
from tradeguard.store import SqliteStore, StateWrite


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
    def test_rungs_when_row_is_corrupt_then_store_unavailable(
        self, store: SqliteStore, db_path: Path, column: str, value: object
    ) -> None:
        """A rung row that is not what this code writes is corruption, never a guess."""
        store.commit(rungs=[rung(1)])
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
