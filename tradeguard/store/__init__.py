"""Durable state behind one protocol; SQLite is the embedded default."""

from tradeguard.store.base import (
    Approval,
    FlattenRun,
    OutboxRow,
    Rung,
    StateConflict,
    StateWrite,
    UserEvent,
    UserRecord,
)
from tradeguard.store.protocols import (
    FlattenRunStore,
    GenomeStore,
    IncidentStore,
    MetricStore,
    OutboxStore,
    ScopeStateStore,
    StateStore,
    StoreLifecycle,
    UserStore,
    ValueStore,
)
from tradeguard.store.sqlite import SqliteStore

__all__ = [
    "Approval",
    "FlattenRun",
    "FlattenRunStore",
    "GenomeStore",
    "IncidentStore",
    "MetricStore",
    "OutboxRow",
    "OutboxStore",
    "Rung",
    "ScopeStateStore",
    "SqliteStore",
    "StateConflict",
    "StateStore",
    "StateWrite",
    "StoreLifecycle",
    "UserEvent",
    "UserRecord",
    "UserStore",
    "ValueStore",
]
