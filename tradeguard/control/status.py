"""The read model: one JSON-serializable view of every state, metric and pending request.

The Python API, the CLI, the HTTP API, the dashboard and the metrics all read this; cheap
questions (is this strategy known?) have their own answers so a front end never builds the
whole status to ask them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tradeguard.audit import AuditRecord, Verification
from tradeguard.clock import to_iso
from tradeguard.effects.backstop import Backstop
from tradeguard.effects.ladder import Climber
from tradeguard.effects.stops import Stops
from tradeguard.engine.core import Core
from tradeguard.engine.intake import Intake
from tradeguard.engine.rungs import Rungs
from tradeguard.errors import StoreUnavailable
from tradeguard.model import PORTFOLIO, Scope, StrategyState
from tradeguard.state import ScopeStatus
from tradeguard.store import Approval


class StatusView:
    def __init__(
        self,
        core: Core,
        *,
        intake: Intake,
        rungs: Rungs,
        climber: Climber,
        stops: Stops,
        backstop: Backstop,
        open_requests: Callable[[], list[Approval]],
    ) -> None:
        self._book = core.book
        self._storage = core.storage
        self._transitions = core.transitions
        self._intake = intake
        self._rungs = rungs
        self._climber = climber
        self._stops = stops
        self._backstop = backstop
        self._open_requests = open_requests
        self._clock = core.clock

    def has_strategy(self, strategy_id: str) -> bool:
        """Known here, or to any process on the store: registered, reported on, halted, or
        with loss baselines or a genome in the store (a trading process saves its baselines
        every breaker tick, so a separate API server knows its strategies within one tick)."""
        key = f"strategy:{strategy_id}"
        if strategy_id in self._book.registered or key in self._book.states:
            return True
        store = self._storage.healthy()
        if store is None:
            return False
        try:
            return (
                key in store.load_states()
                or key in store.load_metrics()
                or any(strategy_id in g["strategies"] for g in store.genomes().values())
            )
        except StoreUnavailable:
            return False

    def health(self) -> dict[str, Any]:
        """For probes: whether the store is trusted, and the portfolio's state; no I/O."""
        return {"ok": self._storage.error is None, "portfolio": str(self._book.portfolio_state)}

    def snapshot(self) -> dict[str, Any]:
        book, ledger = self._book, self._intake.ledger
        with book.lock:
            portfolio = book.status_of(PORTFOLIO)
            strategies = {}
            halted_unknown = {k[9:] for k in book.strategy_keys()}
            now = self._clock.time()
            for sid in sorted(book.registered | halted_unknown):
                st = book.status_of(Scope.strategy(sid))
                m = ledger.strategy(sid)
                climbing = st.state == StrategyState.RECOVERING
                strategies[sid] = {
                    **status_dict(st),
                    "metrics": m.to_dict(),
                    "recovery": self._rungs.ladder.describe(
                        self._rungs.of(sid, st), m, now, self._climber.holds.get(sid)
                    )
                    if climbing
                    else None,
                    "breaching": sorted(book.active.get(f"strategy:{sid}", ())),
                }
            pending: list[dict[str, Any]] = []
            if self._storage.healthy() is not None:
                try:
                    pending = [a.to_dict() for a in self._open_requests()]
                except StoreUnavailable as exc:
                    self._transitions.fail_store(str(exc))
            return {
                "portfolio": {
                    **status_dict(portfolio),
                    "metrics": ledger.portfolio.to_dict(),
                    "breaching": sorted(book.active.get("portfolio", ())),
                },
                "strategies": strategies,
                "pending_approvals": pending,
                "trading_day": {
                    "timezone": book.config.guard.trading_day.timezone,
                    "rollover": book.config.guard.trading_day.rollover.strftime("%H:%M"),
                },
                "store": {
                    "path": str(book.config.state.path),
                    "ok": self._storage.error is None,
                    "error": self._storage.error,
                },
                "breaker": self._backstop.health(),
                "rules": self._intake.rules.describe(),
                "criticality": self._criticality(),
                "emergency_stop": self._stops.describe(),
            }

    def incidents(self, *, snapshots: bool) -> list[dict[str, Any]]:
        """Every incident; without their snapshots for a listing (they are large)."""
        found = self._storage.require().incidents()
        if snapshots:
            return found
        return [{k: v for k, v in i.items() if k != "snapshot"} for i in found]

    def audit_records(
        self, since: float | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        """Readable even after the store failed: the record is what an operator needs then."""
        return self._storage.opened().audit_records(since=since, limit=limit)

    def verify_audit(self) -> Verification:
        return self._storage.opened().verify_audit()

    def _criticality(self) -> dict[str, Any] | None:
        """This process's last reading, else the one the running guard stored."""
        last = self._backstop.last_criticality
        if last is not None:
            return last.to_dict()
        store = self._storage.healthy()
        if store is None:
            return None
        try:
            stored = store.value("criticality")
        except StoreUnavailable:
            return None
        return stored if isinstance(stored, dict) else None


def status_dict(status: ScopeStatus) -> dict[str, Any]:
    return {
        "state": str(status.state),
        "reason": status.reason,
        "since": to_iso(status.since) if status.since else None,
        "actor": status.actor,
        "version": status.version,
    }
