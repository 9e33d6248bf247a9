"""The guard's handle on its store: the store itself and, once it failed, why.

A store that failed once is not trusted again in this process: every caller that needs it
gets ``StoreUnavailable`` with the first failure's reason (``require``), and best-effort
records (refusals, stop steps) are logged instead of written (``record``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tradeguard.audit import AuditEntry
from tradeguard.errors import StoreUnavailable
from tradeguard.store import Approval, StateStore

log = logging.getLogger("tradeguard")


class Storage:
    def __init__(self) -> None:
        self.store: StateStore | None = None
        self.error: str | None = None  # set once, by Transitions.fail_store
        self.closed = False  # by this guard's close: what fails from now on is the shutdown

    def close(self) -> None:
        """Close the store for good: a thread that outlived its stop (a watcher that missed
        its join under load) then finds no store, rather than a closed one it would report
        as failed (an emergency marker for a guard that merely closed)."""
        self.closed = True
        store, self.store = self.store, None
        if store is not None:
            store.close()

    def healthy(self) -> StateStore | None:
        """The store, unless it failed."""
        return None if self.error else self.store

    def require(self) -> StateStore:
        """The store, or ``StoreUnavailable`` saying why there is none to trust."""
        if self.store is None or self.error:
            raise StoreUnavailable(self.error or "no state store")
        return self.store

    def opened(self) -> StateStore:
        """The store even after it failed: its audit is what an operator needs then, and a
        refusal or a halt is still worth writing if it can be. Only no store at all raises."""
        if self.store is None:
            raise StoreUnavailable(self.error or "no state store")
        return self.store

    def record(
        self, entries: Sequence[AuditEntry], what: str, approvals: Sequence[Approval] = ()
    ) -> bool:
        """Write audit entries that accompany something already done; a failure is logged,
        not raised (what they record has happened either way)."""
        try:
            self.require().commit(audit=entries, approvals=approvals)
        except StoreUnavailable as exc:
            log.error("could not record %s: %s", what, exc)
            return False
        return True
