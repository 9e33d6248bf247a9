"""The book: every scope's state and the sets the decision path reads, behind one lock.

One object shared by the engine's parts, so that a halt made by any of them is what the very
next order check sees. The dicts and sets are mutated in place and never replaced (the
pre-trade gate holds them directly), except ``blocked`` and ``config``, which are swapped in
one assignment so the lock-free order check reads either the old or the new whole value.
"""

from __future__ import annotations

import threading

from tradeguard.config import Config
from tradeguard.model import (
    PORTFOLIO,
    Actor,
    ActorKind,
    PortfolioState,
    Scope,
    ScopeKind,
    StateChange,
    StrategyState,
)
from tradeguard.state import ScopeStatus

SYSTEM = Actor(ActorKind.SYSTEM, "guard")
KILLCHAIN = Actor(ActorKind.SYSTEM, "killchain")

# The states a store that failed may still record: stopping never waits for a healthy store.
TIGHT_STATES = frozenset(
    {
        StrategyState.HALTED,
        StrategyState.DISABLED,
        PortfolioState.SOFT_HALT,
        PortfolioState.HARD_HALT,
        PortfolioState.EMERGENCY,
    }
)


class Book:
    """Scope states, versions, registered and blocked strategies, what is breaching now."""

    def __init__(self, config: Config, *, read_only: bool = False) -> None:
        self.lock = threading.RLock()
        self.read_only = read_only  # a reader: it looks, and never writes or acts
        self.config = config  # replaced whole by a limit change (see control.limits)
        # since 0: never changed (a status shows no time rather than the time it was asked)
        self.states: dict[str, ScopeStatus] = {
            "portfolio": ScopeStatus(PortfolioState.NORMAL, "initial", 0.0, str(SYSTEM), 0)
        }
        self.registered: set[str] = set(config.strategies)
        self.blocked: frozenset[str] = frozenset()  # strategies whose genome is blacklisted
        self.active: dict[str, set[str]] = {}  # scope -> rules currently breaching
        # A lift adopted from another process while the rules decide on it: transitions see
        # it (a re-halt is written against its version), the lock-free order gate never does.
        self.deciding: dict[str, ScopeStatus] = {}
        self.normal_version = 0  # the portfolio's version at its last reset (a halt episode)
        self.fed = False  # given inputs (and so has loss baselines worth saving)?
        self.running = False  # started: runs incidents (a CLI process only records them)

    def status_of(self, scope: Scope) -> ScopeStatus:
        key = str(scope)
        found = self.deciding.get(key) if self.deciding else None
        if found is None:
            found = self.states.get(key)
        if found is not None:
            return found
        if scope.kind is ScopeKind.PORTFOLIO:
            raise AssertionError("the portfolio always has a state")
        return ScopeStatus(StrategyState.ACTIVE, "registered", 0.0, str(SYSTEM), 0)

    @property
    def portfolio_state(self) -> PortfolioState:
        return PortfolioState(self.status_of(PORTFOLIO).state)

    def strategy_keys(self) -> list[str]:
        """Every strategy scope that has a state of its own (halted at least once)."""
        return [k for k in self.states if k.startswith("strategy:")]

    def lifted_since(self, episode: int) -> bool:
        """Whether a person has lifted the portfolio since its version ``episode`` (the halt
        episode an incident belongs to): only people reset it to normal. The reset is in
        force in ``states`` before its subscribers move ``normal_version``: both are read."""
        now = self.status_of(PORTFOLIO)
        lifted = now.state == PortfolioState.NORMAL and now.version > episode
        return lifted or self.normal_version > episode

    def on_change(self, change: StateChange) -> None:
        """A reset ends a halt episode: a new one may begin (see incidents.response)."""
        if change.scope.kind is ScopeKind.PORTFOLIO and change.after == PortfolioState.NORMAL:
            self.normal_version = change.version
