"""The store under test: every contract test runs against SQLite (a real file) and memory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tradeguard.store import SqliteStore, StateStore
from tradeguard.store.memory import MemoryStore

OpenStore = Callable[[], StateStore]


@pytest.fixture(params=["sqlite", "memory"])
def open_store(request: pytest.FixtureRequest, db_path: Path) -> Iterator[OpenStore]:
    """Opens the backend under test; for SQLite each call is another connection to the same
    file, for memory the same store again (what a second process would see). All are closed
    after the test."""
    opened: list[StateStore] = []
    memory = MemoryStore()

    def build() -> StateStore:
        store: StateStore = SqliteStore(db_path) if request.param == "sqlite" else memory
        opened.append(store)
        return store

    yield build
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: OpenStore) -> StateStore:
    return open_store()
