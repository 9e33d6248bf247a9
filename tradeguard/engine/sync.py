"""Store sync: adopt what other processes sharing the store wrote (a CLI halt, another guard).

An adopted change fires the same subscribers and callbacks as one made here. A resume or reset
made elsewhere acknowledged the losses: the loss counters restart here too. Blacklisted
genomes are adopted on every change, so a blacklisting elsewhere stops orders here.
"""

from __future__ import annotations

from tradeguard.engine.book import SYSTEM
from tradeguard.engine.core import Core
from tradeguard.engine.rungs import Rungs
from tradeguard.errors import StoreUnavailable
from tradeguard.ledger import Ledger
from tradeguard.model import (
    PORTFOLIO,
    Actor,
    ActorKind,
    PortfolioState,
    Scope,
    ScopeKind,
    StateChange,
)
from tradeguard.model import StrategyState as S
from tradeguard.state import Command
from tradeguard.store import StateStore


class StoreSync:
    def __init__(self, core: Core, *, ledger: Ledger, rungs: Rungs) -> None:
        self._book = core.book
        self._storage = core.storage
        self._transitions = core.transitions
        self._ledger = ledger
        self._rungs = rungs
        self._seen_version = -1

    def load(self) -> None:
        """At start: every stored state, the emergency a lost store left behind, the loss
        baselines, the rungs and the blacklist. Anything unreadable raises (fail closed)."""
        store = self._storage.require()
        book = self._book
        for key, status in store.load_states().items():
            scope = Scope.parse(key)
            if scope.kind is ScopeKind.PORTFOLIO:
                PortfolioState(status.state)
            else:
                S(status.state)
                book.registered.add(scope.id)
                self._ledger.strategy(scope.id)
            book.states[key] = status
        self._transitions.adopt_marker()
        self._distrust(store)
        saved = store.load_metrics()
        self._ledger.restore(saved)
        book.registered.update(Scope.parse(k).id for k in saved if k != "portfolio")
        self._rungs.adopt()
        self.adopt_genomes()
        portfolio = book.states["portfolio"]
        if portfolio.state == PortfolioState.NORMAL:
            book.normal_version = portfolio.version

    def _distrust(self, store: StateStore) -> None:
        """A store that is not the one its anchor names (emptied, cut, rolled back, replaced),
        whose chain is broken or whose states table is not what its chain says holds no truth
        to start from: record an emergency in it, then anchor it as it is, so the emergency
        outlives this process and only a two-person reset lifts it."""
        verification = store.verify_audit()
        if verification.ok:
            return
        self._transitions.apply(
            PORTFOLIO, Command.EMERGENCY, SYSTEM, f"store_untrusted: {verification.problem}"
        )
        store.accept()

    def watch(self) -> None:
        """The out-of-band path: when the store changed, adopt it now, not at the next tick."""
        store = self._storage.healthy()
        if store is None:
            return
        version = store.data_version()
        if version != self._seen_version:
            self._seen_version = version
            self.adopt([])

    def adopt_genomes(self) -> None:
        """Which strategies belong to a blacklisted genome: at start, and whenever the store
        changed. A strategy listed by any blacklisted genome is blocked."""
        if self._storage.store is None:
            return
        self._book.blocked = frozenset(  # one assignment: the order gate reads it unlocked
            sid
            for data in self._storage.store.genomes().values()
            if data["blacklisted"]
            for sid in data["strategies"]
        )

    def adopt(self, errors: list[str]) -> None:
        """Adopt every scope the store has at a newer version than this guard; ``errors``
        collects what failed (the store is then failed: emergency)."""
        store = self._storage.healthy()
        if store is None:
            return
        try:
            stored = store.load_states()
            self.adopt_genomes()
        except StoreUnavailable as exc:
            errors.append(f"store: {exc}")
            self._transitions.fail_store(str(exc))
            return
        book = self._book
        adopted = []
        with book.lock:
            for key, status in stored.items():
                mine = book.states.get(key)
                if mine is not None and status.version <= mine.version:
                    continue
                scope = Scope.parse(key)
                before = mine.state if mine is not None else str(book.status_of(scope).state)
                book.states[key] = status
                if scope.kind is ScopeKind.STRATEGY:
                    book.registered.add(scope.id)
                    promoted = (
                        mine is not None
                        and mine.state == S.RECOVERING
                        and status.version == mine.version + 1
                    )
                    resumed = status.state in (S.ACTIVE, S.RECOVERING)
                    if resumed and not promoted:  # a resume elsewhere acknowledged the losses
                        self._ledger.rebase_strategy(scope.id)
                        book.active.pop(key, None)
                elif status.state == PortfolioState.NORMAL:
                    self._ledger.rebase_portfolio()
                    book.active.pop(key, None)
                adopted.append(
                    StateChange(
                        scope,
                        before,
                        status.state,
                        actor_of(status.actor),
                        status.reason,
                        status.since,
                        status.version,
                    )
                )
            if any(c.after == S.RECOVERING for c in adopted):
                try:
                    self._rungs.adopt()
                except StoreUnavailable as exc:
                    errors.append(f"store: {exc}")
                    self._transitions.fail_store(str(exc))
        for change in adopted:
            if change.before != change.after:
                self._transitions.publish(change)


def actor_of(text: str) -> Actor:
    """The actor a stored state names (``rule:x``, ``system:x``, ``agent:x``, else a user)."""
    kind, sep, name = text.partition(":")
    if sep and kind in (ActorKind.RULE, ActorKind.SYSTEM, ActorKind.AGENT):
        return Actor(ActorKind(kind), name)
    return Actor(ActorKind.USER, text)
