"""Durable state behind one protocol; SQLite is the embedded default."""

from tradeguard.store.base import Approval, StateConflict, StateStore, StateWrite
from tradeguard.store.sqlite import SqliteStore

__all__ = ["Approval", "SqliteStore", "StateConflict", "StateStore", "StateWrite"]
