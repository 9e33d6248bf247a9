"""Shared fixtures: a fake clock, a real SQLite file per test, and a guard wired to both."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tradeguard import Guard
from tradeguard.assembly import Parts, assemble
from tradeguard.config import Config, parse_config
from tradeguard.store import SqliteStore, StateStore
from tradeguard.testing import FakeClock

USERS = {
    "viewer1": "viewer",
    "trader1": "trader",
    "senior1": "senior_trader",
    "risk1": "risk_manager",
    "risk2": "risk_manager",
    "admin1": "admin",
}

MakeConfig = Callable[..., Config]
MakeGuard = Callable[..., Guard]
MakeParts = Callable[..., Parts]


@contextmanager
def reading(path: Path) -> Iterator[SqliteStore]:
    """The store file as another process sees it: a second connection, closed afterwards."""
    store = SqliteStore(path)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def make_config(db_path: Path) -> MakeConfig:
    """A config with the standard users and a real SQLite file; sections override the rest."""

    def build(**sections: Any) -> Config:
        # Most tests resume straight to full size; tests/test_recovery.py covers the ladder
        # and the cool-down with the defaults.
        data: dict[str, Any] = {
            "users": USERS,
            "state": {"path": str(db_path)},
            "recovery": {"enabled": False, "cooldown_seconds": 0},
            # every guard watches the store from birth; tests adopt when they say so (tick)
            "guard": {"watch_interval_seconds": 3600},
        }
        data.update(sections)
        return parse_config(data)

    return build


@pytest.fixture
def make_guard(make_config: MakeConfig, clock: FakeClock) -> Iterator[MakeGuard]:
    """Build guards on the shared DB file and clock; every one is closed after the test.
    ``store=`` hands the guard a store the test keeps (closing the guard closes it)."""
    made: list[Guard] = []

    def build(
        config: Config | None = None, *, store: StateStore | None = None, **sections: Any
    ) -> Guard:
        config = config if config is not None else make_config(**sections)
        guard = Guard(config, clock=clock, store=store)
        made.append(guard)
        return guard

    yield build
    for guard in made:
        guard.close()


@pytest.fixture
def guard(make_guard: MakeGuard) -> Guard:
    return make_guard()


@pytest.fixture
def make_parts(make_config: MakeConfig, clock: FakeClock) -> Iterator[MakeParts]:
    """The guard's parts, assembled on their own store on the shared DB file and clock, for
    guarantees below the facade; each set is stopped and its store closed after the test."""
    made: list[tuple[Parts, SqliteStore]] = []

    def build(config: Config | None = None, **sections: Any) -> Parts:
        config = config if config is not None else make_config(**sections)
        store = SqliteStore(config.state.path)
        parts = assemble(config, clock, store, asyncio.sleep)
        made.append((parts, store))
        return parts

    yield build
    for parts, store in made:
        parts.backstop.close()
        parts.stops.cancel_all()
        parts.incidents.chain.close()
        parts.core.actuator.close()
        store.close()
