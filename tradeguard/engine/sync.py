"""Store sync: adopt what other processes sharing the store wrote (a CLI halt, another guard).

An adopted change fires the same subscribers and callbacks as one made here. A resume or reset
made elsewhere acknowledged the losses: the loss counters restart here too, and every rule of
the lifted scope is judged on them before the lift is put in force: one still breaching halts
again at once (written against the lift's version), and the order gate, which reads states
without the lock, never sees the lift at all. Blacklisted genomes are adopted on every change,
so a blacklisting elsewhere stops orders here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tradeguard.baselines import stricter
from tradeguard.engine.book import SYSTEM, TIGHT_STATES
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
from tradeguard.state import Command, ScopeStatus
from tradeguard.store import StateStore
from tradeguard.store.journal_reader import replay


class StoreSync:
    def __init__(
        self,
        core: Core,
        *,
        ledger: Ledger,
        rungs: Rungs,
        recheck: Callable[[str], None],
        journal: Path | None = None,
    ) -> None:
        self._book = core.book
        self._storage = core.storage
        self._transitions = core.transitions
        self._ledger = ledger
        self._rungs = rungs
        self._recheck = recheck  # every rule of one scope, applied (Intake.recheck)
        self._journal = journal  # the baselines journal beside the store (a file store's)
        self._seen_version = -1
        self._adopting = False  # True only while a thread holding the book's lock adopts

    def load(self) -> None:
        """At start: every stored state, the emergency a lost store left behind, the loss
        baselines (the store's, then the journal's over them), the rungs and the blacklist.
        Anything unreadable raises (fail closed)."""
        store = self._storage.require()
        book = self._book
        seen = store.data_version()  # before reading: a write from now on is adopted later
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
        journaled = self._replay(saved)
        book.registered.update(Scope.parse(k).id for k in {*saved, *journaled} if k != "portfolio")
        self._rungs.adopt()
        self.adopt_genomes()
        portfolio = book.states["portfolio"]
        if portfolio.state == PortfolioState.NORMAL:
            book.normal_version = portfolio.version
        self._seen_version = seen

    def _replay(self, saved: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The journal holds every baseline change up to the crash, the store's only those of
        the last tick: the journal wins. A torn tail (a power cut) lost the journal's last
        records: then the stricter of the two, scope by scope (``ledger.stricter``)."""
        found = None if self._journal is None else replay(self._journal)
        if found is None:
            return {}
        if found.torn:
            stricter(saved, found.scopes)
        self._ledger.restore(found.scopes)
        if found.window is not None:
            self._ledger.restore_window(found.window)
        return found.scopes

    def _distrust(self, store: StateStore) -> bool:
        """A store that is not the one its anchor names (emptied, cut, rolled back, replaced),
        whose chain is broken or whose states table is not what its chain says holds no truth
        to start from (or to lift from): record an emergency in it, then anchor it as it is,
        so the emergency outlives this process and only a two-person reset lifts it. True
        when it did."""
        verification = store.verify_audit()
        if verification.ok:
            return False
        if self._book.read_only:
            self._transitions.lockdown(f"store_untrusted: {verification.problem}")
            return True
        if self._book.portfolio_state is not PortfolioState.EMERGENCY:  # (already: a halt
            # memory calls redundant would ask the store again, and be back here)
            self._transitions.apply(
                PORTFOLIO, Command.EMERGENCY, SYSTEM, f"store_untrusted: {verification.problem}"
            )
        store.accept()
        return True

    def _loosens(self, key: str, status: ScopeStatus) -> bool:
        """Would adopting this row make its scope less restrictive here?"""
        mine = self._book.states.get(key)
        newer = mine is None or status.version > mine.version
        return newer and status.state not in TIGHT_STATES

    def watch(self) -> bool:
        """The out-of-band path: when the store changed, adopt it now, not at the next tick;
        True when it had. The version is taken as seen only once adopted: a caller racing the
        watcher adopts again rather than deciding on memory. A store that cannot say fails."""
        store = self._storage.healthy()
        if store is None:
            return False
        try:
            version = store.data_version()
        except StoreUnavailable as exc:
            if self._storage.store is store:  # not closed meanwhile by the guard's close()
                self._transitions.fail_store(str(exc))
            return False
        if version == self._seen_version or self._adopting:  # (a re-check's halt: adopting)
            return False
        self.adopt([])
        self._seen_version = version
        return True

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
            # A lift is taken from the store only once the chain says it was made: a row
            # edited without the key (``UPDATE states SET state='active', version=version+1``)
            # would otherwise lift a person's halt in every running guard until a restart.
            if any(self._loosens(k, s) for k, s in stored.items()) and self._distrust(store):
                return
        except StoreUnavailable as exc:
            errors.append(f"store: {exc}")
            self._transitions.fail_store(str(exc))
            return
        book = self._book
        adopted = []
        with book.lock:
            self._adopting = True
            try:
                for key, status in stored.items():
                    change = self._adopt_one(key, status)
                    if change is not None:
                        adopted.append(change)
            finally:
                self._adopting = False
            if any(c.after == S.RECOVERING for c in adopted):
                try:
                    self._rungs.adopt()
                except StoreUnavailable as exc:
                    errors.append(f"store: {exc}")
                    self._transitions.fail_store(str(exc))
        for change in adopted:
            if change.before != change.after:
                self._transitions.publish(change)

    def _adopt_one(self, key: str, status: ScopeStatus) -> StateChange | None:
        """Put one stored scope in force here, under the lock; None when this guard already
        knew it, or when the rules halted it again before its lift took effect."""
        book = self._book
        mine = book.states.get(key)
        if mine is not None and status.version <= mine.version:
            return None
        scope = Scope.parse(key)
        before = mine.state if mine is not None else str(book.status_of(scope).state)
        change = StateChange(
            scope,
            before,
            status.state,
            actor_of(status.actor),
            status.reason,
            status.since,
            status.version,
        )
        if scope.kind is ScopeKind.STRATEGY:
            book.registered.add(scope.id)
            promoted = (
                mine is not None
                and mine.state == S.RECOVERING
                and status.version == mine.version + 1
            )
            lifted = status.state in (S.ACTIVE, S.RECOVERING) and not promoted
        else:
            lifted = status.state == PortfolioState.NORMAL
        if lifted and self._halted_again(change, status):
            return None
        book.states[key] = status
        return change

    def _halted_again(self, change: StateChange, status: ScopeStatus) -> bool:
        """A lift made elsewhere acknowledged the losses: rebase, then judge every rule of the
        scope on the rebased ledger while the lift is visible to transitions only. True when
        one still breaches: its halt is in force and written, and the lift never was here."""
        book, scope, key = self._book, change.scope, str(change.scope)
        book.deciding[key] = status
        try:
            if scope.kind is ScopeKind.STRATEGY:
                self._ledger.rebase_strategy(scope.id)
            else:
                self._ledger.rebase_portfolio()
            book.active.pop(key, None)
            book.on_change(change)  # the halt episode ended elsewhere, whatever comes next
            self._recheck(key)
        finally:
            book.deciding.pop(key, None)
        now = book.states.get(key)
        return now is not None and now.version > status.version


def actor_of(text: str) -> Actor:
    """The actor a stored state names (``rule:x``, ``system:x``, ``agent:x``, else a user)."""
    kind, sep, name = text.partition(":")
    if sep and kind in (ActorKind.RULE, ActorKind.SYSTEM, ActorKind.AGENT):
        return Actor(ActorKind(kind), name)
    return Actor(ActorKind.USER, text)
