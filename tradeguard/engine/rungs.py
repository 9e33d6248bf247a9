"""The recovery ladder's rungs as the decision path sees them.

A recovering strategy trades at its rung's fraction of full size and may not lose past its
stage's P&L floor. The rungs are stored with the state version they belong to, so one left
over from an earlier resume never applies to a later one. Climbing is an effect (see
``effects.ladder``); reading and setting the rung is decided here.
"""

from __future__ import annotations

from tradeguard.engine.core import Core
from tradeguard.ledger import Ledger
from tradeguard.model import Scope, ScopeKind, StateChange, StrategyState
from tradeguard.recovery import Ladder
from tradeguard.state import ScopeStatus
from tradeguard.store import Rung


class Rungs:
    def __init__(self, core: Core, *, ledger: Ledger, ladder: Ladder) -> None:
        self._book = core.book
        self._storage = core.storage
        self._ledger = ledger
        self.ladder = ladder
        self.by_strategy: dict[str, Rung] = {}  # recovering strategies' rungs

    def set(self, sid: str, rung: Rung | None) -> None:
        """The one place a strategy's rung changes: the pre-trade allocation and the stage's
        P&L floor follow it."""
        with self._book.lock:
            if rung is None:
                self.by_strategy.pop(sid, None)
            else:
                self.by_strategy[sid] = rung
            m = self._ledger.strategies.get(sid)
            if m is not None:
                m.recovery_floor = None if rung is None else self.ladder.floor(rung)

    def of(self, sid: str, status: ScopeStatus) -> Rung:
        """The rung of a recovering strategy. One this guard has not got (a resume written
        before a crash cut off its rung) starts at the bottom, from the resume."""
        rung = self.by_strategy.get(sid)
        if rung is None or rung.version != status.version:
            m = self._ledger.strategy(sid)
            rung = self.ladder.first(
                f"strategy:{sid}", status.version, status.since, m, status.actor
            )
            self.set(sid, rung)
        return rung

    def adopt(self) -> None:
        """Load the stored rungs of recovering strategies: at start, and when another process
        resumed one."""
        if self._storage.store is None:
            return
        stored = self._storage.store.rungs()
        for key, status in list(self._book.states.items()):
            if key == "portfolio" or status.state != StrategyState.RECOVERING:
                continue
            rung = stored.get(key)
            if rung is not None and rung.version == status.version:
                self.set(Scope.parse(key).id, rung)

    def stage_of(self, sid: str, status: ScopeStatus) -> float:
        """The pre-trade allocation of a recovering strategy: its rung's fraction; paper while
        this guard does not know the rung (no I/O here: the hot path)."""
        rung = self.by_strategy.get(sid)
        if rung is None or rung.version != status.version:
            return 0.0
        return self.ladder.stage(rung).fraction

    def on_change(self, change: StateChange) -> None:
        """Off the ladder (full size, or halted): the rung goes."""
        if change.scope.kind is ScopeKind.STRATEGY and change.after != StrategyState.RECOVERING:
            self.set(change.scope.id, None)
