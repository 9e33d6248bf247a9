"""Durable state behind one protocol; SQLite is the embedded default."""

from tradeguard.store.base import (
    Approval,
    FlattenRun,
    OutboxRow,
    Rung,
    StateConflict,
    StateStore,
    StateWrite,
    UserRecord,
)
from tradeguard.store.sqlite import SqliteStore

__all__ = [
    "Approval",
    "FlattenRun",
    "OutboxRow",
    "Rung",
    "SqliteStore",
    "StateConflict",
    "StateStore",
    "StateWrite",
    "UserRecord",
]
