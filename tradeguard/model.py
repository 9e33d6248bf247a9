"""Value types shared by every layer: states, roles, scopes, breaches and state changes."""

from __future__ import annotations

import functools
import math
import unicodedata
from dataclasses import dataclass, field
from enum import Enum, IntEnum, StrEnum
from typing import Any

from tradeguard.clock import to_iso


class PortfolioState(StrEnum):
    """Portfolio trading state, from most to least permissive."""

    NORMAL = "normal"
    SOFT_HALT = "soft_halt"  # reduce-only: no new risk, positions kept
    HARD_HALT = "hard_halt"  # no orders, cancel all, flatten
    EMERGENCY = "emergency"  # lockdown: hard halt that only a two-person reset lifts

    @property
    def severity(self) -> int:
        return _PORTFOLIO_ORDER.index(self)


_PORTFOLIO_ORDER = list(PortfolioState)


class StrategyState(StrEnum):
    """Strategy (or agent) state; ``disabled`` is permanent."""

    ACTIVE = "active"
    RECOVERING = "recovering"
    HALTED = "halted"
    DISABLED = "disabled"


def user_key(name: str) -> str:
    """The one spelling of a person's name that identity is decided on (NFKC, then casefold):
    ``Alice``, ``alice`` and their full-width twin are one person, for uniqueness, authentication
    and the two-person rule alike. The name is still shown as it was created."""
    return unicodedata.normalize("NFKC", name).casefold()


class Role(IntEnum):
    """Operator roles, ordered: a higher role may do everything a lower one may."""

    VIEWER = 0
    TRADER = 1
    SENIOR_TRADER = 2
    RISK_MANAGER = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(r.label for r in cls)
            raise ValueError(f"unknown role {text!r}; expected one of {names}") from None


class Action(StrEnum):
    """What a breached trigger does."""

    HALT_STRATEGY = "halt_strategy"
    SOFT_HALT = "soft_halt"
    HARD_HALT = "hard_halt"
    EMERGENCY = "emergency"


class ScopeKind(Enum):
    PORTFOLIO = "portfolio"
    STRATEGY = "strategy"


@dataclass(frozen=True, slots=True)
class Scope:
    """What a state, a breach or an audit record is about."""

    kind: ScopeKind
    id: str = ""

    def __str__(self) -> str:
        return "portfolio" if self.kind is ScopeKind.PORTFOLIO else f"strategy:{self.id}"

    @classmethod
    def strategy(cls, strategy_id: str) -> Scope:
        if type(strategy_id) is str:  # every input names its strategy: build each scope once
            return _strategy_scope(strategy_id)
        return cls(ScopeKind.STRATEGY, strategy_id)

    @classmethod
    def parse(cls, text: str) -> Scope:
        if text == "portfolio":
            return PORTFOLIO
        kind, sep, ident = text.partition(":")
        if kind != "strategy" or not sep or not ident:
            raise ValueError(f"not a scope: {text!r}")
        return cls.strategy(ident)


@functools.lru_cache(maxsize=4096)
def _strategy_scope(strategy_id: str) -> Scope:
    return Scope(ScopeKind.STRATEGY, strategy_id)


PORTFOLIO = Scope(ScopeKind.PORTFOLIO)


class ActorKind(StrEnum):
    USER = "user"  # an identified human operator
    RULE = "rule"  # an automated trigger
    SYSTEM = "system"  # the guard itself (store failure, invalid input), the KillChain
    AGENT = "agent"  # an automated principal (an AI or agent layer): gated by its trust


@dataclass(frozen=True, slots=True)
class Actor:
    """Who caused a change. Only users may loosen a state."""

    kind: ActorKind
    name: str

    def __str__(self) -> str:
        return self.name if self.kind is ActorKind.USER else f"{self.kind}:{self.name}"

    @property
    def automated(self) -> bool:
        return self.kind is not ActorKind.USER


@dataclass(frozen=True, slots=True)
class Operator:
    """A user whose token this process has verified (``Guard.authenticate`` returns one). Pass
    it in place of the bare name and the audit records the act as authenticated; a bare name
    (an in-process call, which has no token) is recorded as not authenticated."""

    name: str

    def __str__(self) -> str:
        return self.name


User = str | Operator  # who acts on a command: a name, or an authenticated operator


@dataclass(frozen=True, slots=True)
class Breach:
    """A trigger found its limit crossed. ``value`` is None when it could not be measured."""

    rule: str
    scope: Scope
    value: float | None
    limit: float
    action: Action
    message: str
    at: float = 0.0  # when it was detected (the guard's clock)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "rule": self.rule,
            "scope": str(self.scope),
            "value": finite_or_none(self.value),
            "limit": self.limit,
            "action": str(self.action),
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class StateChange:
    """One applied transition, as recorded in the store and the audit log."""

    scope: Scope
    before: str
    after: str
    actor: Actor
    reason: str
    at: float
    version: int
    breach: Breach | None = None
    details: dict[str, Any] = field(default_factory=dict)
    durable_seconds: float | None = None  # decision to committed in the store (not audited)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": str(self.scope),
            "before": self.before,
            "after": self.after,
            "actor": str(self.actor),
            "reason": self.reason,
            "at": to_iso(self.at),
            "version": self.version,
            "breach": None if self.breach is None else self.breach.to_dict(),
        }


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN or infinity; an unmeasurable value is shown as null."""
    if value is None or not math.isfinite(value):
        return None
    return value


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True, slots=True)
class Order:
    """An order the trading system is about to send, as the pre-trade check sees it."""

    strategy_id: str
    symbol: str
    side: str  # "buy" | "sell"
    quantity: float
    price: float
    client_order_id: str | None = None
    order_type: str = "limit"


@dataclass(frozen=True, slots=True)
class Decision:
    """A pre-trade verdict; ``check`` names the check that refused it."""

    accepted: bool
    check: str | None
    reason: str
    # No __bool__: `refusal or next_check()` would treat a refusal as absent. Read .accepted.


ACCEPTED = Decision(True, None, "accepted")
