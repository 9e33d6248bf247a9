"""SQLite store: the embedded default, one file shared by every process that guards one book.

:class:`SqliteStore` is one connection (WAL, ``synchronous=FULL``, a lock) with one class per
aggregate of :mod:`tradeguard.store.protocols` on top, each in the module for its tables, so a
second backend can follow the same split. Every write is ``BEGIN IMMEDIATE``, carries its audit
entries in the same transaction, and any SQLite failure is :class:`StoreUnavailable`.
"""

from tradeguard.store.sqlite.incidents import SqliteGenomes, SqliteIncidents, SqliteValues
from tradeguard.store.sqlite.operations import (
    SqliteFlattenRuns,
    SqliteMetrics,
    SqliteOutbox,
    SqliteUsers,
)
from tradeguard.store.sqlite.schema import SCHEMA_VERSION
from tradeguard.store.sqlite.states import SqliteScopeStates


class SqliteStore(
    SqliteScopeStates,
    SqliteIncidents,
    SqliteGenomes,
    SqliteValues,
    SqliteOutbox,
    SqliteUsers,
    SqliteMetrics,
    SqliteFlattenRuns,
):
    """The whole :class:`~tradeguard.store.protocols.StateStore` on one SQLite file."""


__all__ = ["SCHEMA_VERSION", "SqliteStore"]
