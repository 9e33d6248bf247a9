"""What every trigger shares: a limit, an action, the inputs it watches and a pure ``evaluate``.

A rule never reads a clock, a store or a network: it compares numbers the ledger derived and
returns a :class:`Breach` or ``None``. A value that is NaN compares false against every limit,
so rules ask "is it inside the limit?" and treat anything else, NaN included, as a breach.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from enum import Enum
from typing import ClassVar, Generic, TypeVar

from tradeguard.config import Trigger
from tradeguard.ledger import PortfolioMetrics, StrategyMetrics
from tradeguard.model import PORTFOLIO, Breach, Scope


class Topic(Enum):
    """The kind of input that can move a rule's verdict; evaluation is event-driven by topic."""

    TRADES = "trades"
    EQUITY = "equity"
    POSITIONS = "positions"
    MARGIN = "margin"
    PRICES = "prices"
    HEARTBEAT = "heartbeat"
    METRICS = "metrics"
    TIME = "time"  # only the passing of time moves it: evaluated by the breaker thread
    CRITICALITY = "criticality"  # the CriticalityMonitor's cycle

    # Members are singletons: identity hashing spares the rule tables Enum's Python-level
    # ``__hash__`` on every input (a tick looks a table up per holder).
    __hash__ = object.__hash__


View = TypeVar("View", StrategyMetrics, PortfolioMetrics)


def fmt(value: float | None, unit: str, *, precise: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "unknown" if value is None or math.isnan(value) else "unbounded"
    if unit == "%":
        return f"{value:.4%}" if precise else f"{value:.2%}"
    if unit == "s":
        return f"{value:.3f}s" if precise else f"{value:.1f}s"
    if unit == "x":
        return f"{value:.4f}x" if precise else f"{value:.2f}x"
    return f"{value:.10g}" if precise else f"{value:g}"


class Rule(ABC, Generic[View]):
    """One trigger. Subclasses set ``name``, ``label``, ``unit``, ``watches`` and ``measure``."""

    name: ClassVar[str]
    label: ClassVar[str]
    unit: ClassVar[str] = ""
    watches: ClassVar[frozenset[Topic]]
    below: ClassVar[bool] = False  # breach when the value falls below the limit (win rate)
    inclusive: ClassVar[bool] = False  # reaching the limit is a breach (loss counts)

    def __init__(self, trigger: Trigger) -> None:
        self.limit = float(trigger.limit)
        self.action = trigger.action

    @abstractmethod
    def measure(self, view: View, now: float) -> float | None:
        """The compared value, or None when the rule does not apply (not enough data)."""

    @abstractmethod
    def scope(self, view: View) -> Scope:
        """The scope a breach is about."""

    def inside(self, value: float) -> bool:
        if self.below:
            return value >= self.limit
        return value < self.limit if self.inclusive else value <= self.limit

    def evaluate(self, view: View, now: float) -> Breach | None:
        value = self.measure(view, now)
        if value is None or self.inside(value):
            return None
        return Breach(
            self.name, self.scope(view), value, self.limit, self.action, self.describe(value), now
        )

    def describe(self, value: float) -> str:
        op = "<" if self.below else (">=" if self.inclusive else ">")
        shown, limit = fmt(value, self.unit), fmt(self.limit, self.unit)
        if shown == limit and value != self.limit:  # 5.003% must not read "5.00% > 5.00%"
            shown = fmt(value, self.unit, precise=True)
        return f"{self.label} {shown} {op} limit {limit}"

    def short_desc(self) -> str:
        """One line for status pages: what trips this rule and what happens then."""
        op = "below" if self.below else ("reaches" if self.inclusive else "above")
        return f"{self.label} {op} {fmt(self.limit, self.unit)} -> {self.action}"


class StrategyRule(Rule[StrategyMetrics]):
    def scope(self, view: StrategyMetrics) -> Scope:
        return view.scope


class PortfolioRule(Rule[PortfolioMetrics]):
    def scope(self, view: PortfolioMetrics) -> Scope:
        return PORTFOLIO
