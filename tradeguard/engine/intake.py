"""Intake: validated inputs -> ledger -> the rules that watch them -> transitions.

Every input is validated before it touches the ledger; a value that fails is refused with a
clear error and halts its scope (fail closed). Rules are level-triggered: a halt lifted while
its cause persists comes straight back; the ``breach`` event fires only when a rule starts
breaching.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from tradeguard import inputs
from tradeguard.clock import from_timestamp, to_iso
from tradeguard.engine.book import SYSTEM
from tradeguard.engine.core import Core
from tradeguard.errors import InvalidInput, TradeguardError, UnknownStrategy
from tradeguard.ledger import PORTFOLIO_METRICS, STRATEGY_METRICS, Ledger
from tradeguard.model import PORTFOLIO, Action, Actor, ActorKind, Breach, Scope, ScopeKind
from tradeguard.rules import PortfolioRule, RuleSet, StrategyRule, Topic
from tradeguard.state import ACTION_COMMAND, Command

if TYPE_CHECKING:  # imported when first used: numpy and scipy cost a CLI call 0.3 s
    from tradeguard.criticality.monitor import Bar, CriticalityMonitor

log = logging.getLogger("tradeguard")
T = TypeVar("T")

ACTION_SEVERITY = {
    Action.HALT_STRATEGY: 0,
    Action.SOFT_HALT: 1,
    Action.HARD_HALT: 2,
    Action.EMERGENCY: 3,
}


class Intake:
    def __init__(self, core: Core, *, ledger: Ledger) -> None:
        self._book = core.book
        self.ledger = ledger
        self.rules = RuleSet(core.book.config)  # replaced whole by a limit change
        self._transitions = core.transitions
        self._clock = core.clock
        self._actuator = core.actuator
        self._monitor: CriticalityMonitor | None = None
        self.bars_given = False  # bars, not sampled prices, feed the monitor
        self.on_rising: list[Callable[[Breach], None]] = []  # after the ``breach`` event

    # -- inputs ---------------------------------------------------------------------------

    def record_trade(self, strategy_id: str, pnl: float) -> None:
        sid = self.strategy_id(strategy_id)
        value = self._valid(Scope.strategy(sid), inputs.number, "pnl", pnl)
        with self.applying(Scope.strategy(sid)):
            self.ledger.record_trade(sid, value)
            self._evaluate_strategy(sid, Topic.TRADES)

    def update_equity(self, equity: float, strategy_id: str | None = None) -> None:
        if strategy_id is None:
            self.update_portfolio(equity=equity)
            return
        sid = self.strategy_id(strategy_id)
        value = self._valid(Scope.strategy(sid), inputs.number, "equity", equity)
        with self.applying(Scope.strategy(sid)):
            self.ledger.update_strategy_equity(sid, value)
            self._evaluate_strategy(sid, Topic.EQUITY)

    def update_position(self, strategy_id: str, symbol: str, quantity: float, price: float) -> None:
        sid = self.strategy_id(strategy_id)
        scope = Scope.strategy(sid)
        sym = self._valid(scope, inputs.identifier, "symbol", symbol)
        qty = self._valid(scope, inputs.number, "quantity", quantity)
        px = self._valid(scope, inputs.positive, "price", price)
        with self.applying(scope):
            self.ledger.update_position(sid, sym, qty, px)
            self._evaluate_strategy(sid, Topic.POSITIONS)

    def update_portfolio(
        self,
        *,
        equity: float | None = None,
        margin_used: float | None = None,
        margin_available: float | None = None,
    ) -> None:
        if equity is None and margin_used is None and margin_available is None:
            self.reject(PORTFOLIO, "update_portfolio needs equity, margin_used or margin_available")
        eq = None if equity is None else self._valid(PORTFOLIO, inputs.number, "equity", equity)
        used = available = None
        if margin_used is not None:
            used = self._valid(PORTFOLIO, inputs.non_negative, "margin_used", margin_used)
        if margin_available is not None:
            available = self._valid(
                PORTFOLIO, inputs.non_negative, "margin_available", margin_available
            )
        with self.applying(PORTFOLIO):
            now = self._clock.time()
            if eq is not None:
                for sid in self._resized(eq, now):
                    self._evaluate_strategy(sid, Topic.EQUITY)
                self.evaluate_portfolio(Topic.EQUITY)
            if used is not None or available is not None:
                self.ledger.update_margin(used, available)
                self.evaluate_portfolio(Topic.MARGIN)

    def update_prices(self, prices: Mapping[str, float], ts: object = None) -> None:
        if not isinstance(prices, Mapping):
            self.reject(PORTFOLIO, f"prices must be a mapping of symbol to price, got {prices!r}")
        clean = {
            self._valid(PORTFOLIO, inputs.identifier, "symbol", s): self._valid(
                PORTFOLIO, inputs.positive, f"price of {s}", p
            )
            for s, p in prices.items()
        }
        now = self._clock.time()
        at = now
        if ts is not None:
            at = self._valid(PORTFOLIO, lambda _n, v: from_timestamp(v), "ts", ts)
            skew = self._book.config.guard.max_clock_skew_seconds
            if at > now + skew:
                self.reject(
                    PORTFOLIO,
                    f"ts {to_iso(at)} is more than {skew:g}s in the future: a clock is wrong",
                )
        with self.applying(PORTFOLIO):
            times = self.ledger.portfolio.price_times
            fresh = {s: p for s, p in clean.items() if at >= times.get(s, at)}
            for sid in self.ledger.update_prices(fresh, at):
                self._evaluate_strategy(sid, Topic.PRICES)
            self.evaluate_portfolio(Topic.PRICES)

    @property
    def monitor(self) -> CriticalityMonitor:
        """The CriticalityMonitor, made on first use."""
        with self._book.lock:
            if self._monitor is None:
                from tradeguard.criticality.monitor import CriticalityMonitor

                self._monitor = CriticalityMonitor(self._book.config.criticality)
            return self._monitor

    def update_bars(self, bars: Mapping[str, Mapping[str, float]], ts: object = None) -> None:
        if not isinstance(bars, Mapping):
            self.reject(PORTFOLIO, f"bars must be a mapping of symbol to bar, got {bars!r}")
        clean = {
            self._valid(PORTFOLIO, inputs.identifier, "symbol", s): self._valid(
                PORTFOLIO, _bar, f"bar of {s}", b
            )
            for s, b in bars.items()
        }
        self.update_prices({s: b.close for s, b in clean.items()}, ts)
        at = self._clock.time() if ts is None else from_timestamp(ts)
        self.monitor.add(at, clean)
        with self._book.lock:
            self.bars_given = True
            p = self.ledger.portfolio
            p.market_at = at
            if p.criticality_at is None:  # the monitor owes its first cycle from now on
                p.criticality_at = at

    def heartbeat(self, source: str) -> None:
        sid = self.strategy_id(source)
        with self.applying(Scope.strategy(sid)):
            self.ledger.heartbeat(sid, self._clock.time())
            self._evaluate_strategy(sid, Topic.HEARTBEAT)

    def update_strategy_metrics(self, strategy_id: str, **metrics: Any) -> None:
        sid = self.strategy_id(strategy_id)
        scope = Scope.strategy(sid)
        values = self._metric_values(scope, STRATEGY_METRICS, metrics)
        with self.applying(scope):
            self.ledger.set_strategy_metrics(sid, values)
            self._evaluate_strategy(sid, Topic.METRICS)

    def update_portfolio_metrics(self, **metrics: Any) -> None:
        values = self._metric_values(PORTFOLIO, PORTFOLIO_METRICS, metrics)
        with self.applying(PORTFOLIO):
            self.ledger.set_portfolio_metrics(values)
            self.evaluate_portfolio(Topic.METRICS)

    def apply_reading(self, name: str, reading: Mapping[str, Any]) -> None:
        """What a metrics source returned: ``{"portfolio": {...}, "strategies": {id: {...}}}``."""
        if not isinstance(reading, Mapping) or set(reading) - {"portfolio", "strategies"}:
            self.reject(
                PORTFOLIO,
                f"metrics source {name} returned {reading!r}; expected "
                "{'portfolio': {...}, 'strategies': {id: {...}}}",
            )
        if "portfolio" in reading:
            self.update_portfolio_metrics(**reading["portfolio"])
        for sid, metrics in dict(reading.get("strategies", {})).items():
            self.update_strategy_metrics(sid, **metrics)

    # -- validation, failing closed -------------------------------------------------------

    def strategy_id(self, strategy_id: object) -> str:
        try:
            sid = inputs.identifier("strategy_id", strategy_id)
        except ValueError as exc:
            self.reject(PORTFOLIO, str(exc))
        if sid not in self._book.registered:
            if self._book.config.guard.strict_strategies:
                message = f"unknown strategy {sid!r}: register it first (strict_strategies is on)"
                self.halt_invalid(Scope.strategy(sid), message)
                raise UnknownStrategy(message, scope=f"strategy:{sid}")
            with self._book.lock:
                self._book.registered.add(sid)
        return sid

    def _valid(
        self, scope: Scope, check: Callable[[str, object], T], name: str, value: object
    ) -> T:
        try:
            return check(name, value)
        except Exception as exc:  # whatever a value does to its check, it is refused
            self.reject(scope, str(exc) if isinstance(exc, ValueError) else f"{name}: {exc!r}")

    def applying(self, scope: Scope) -> Applying:
        """Hold the lock while an input is applied; if applying it fails in any unforeseen
        way, halt its scope and say so, rather than let trading go on unwatched."""
        return Applying(self, scope)

    def _metric_values(
        self, scope: Scope, known: Mapping[str, tuple[str, inputs.Validator]], given: dict[str, Any]
    ) -> dict[str, float | int]:
        if not given.keys() <= known.keys():
            unknown = sorted(set(given) - set(known))
            self.reject(scope, f"unknown metrics {unknown}; known: {sorted(known)}")
        return {name: self._valid(scope, known[name][1], name, v) for name, v in given.items()}

    def reject(self, scope: Scope, message: str) -> NoReturn:
        self.halt_invalid(scope, message)
        raise InvalidInput(message, scope=str(scope))

    def halt_invalid(self, scope: Scope, message: str) -> None:
        if scope.kind is ScopeKind.STRATEGY:
            command = Command.HALT
        else:
            command = ACTION_COMMAND[self._book.config.guard.invalid_input_action]
        log.error("invalid input for %s: %s", scope, message)
        self._transitions.quietly(scope, command, SYSTEM, f"invalid_input: {message}")

    # -- evaluation -----------------------------------------------------------------------

    def _evaluate_strategy(self, sid: str, topic: Topic) -> list[Breach]:
        rules = self.rules.strategy_watching(sid, topic)
        if not rules:
            return []
        return self._settle(rules, self.ledger.strategies[sid], f"strategy:{sid}")

    def _resized(self, equity: float, now: float) -> list[str]:
        """Apply a portfolio equity and name the holders whose position-size verdict it may
        flip: those on the default limit whose size crossed it (looked up, not scanned), and
        every holder with triggers of its own. The others' verdicts stand as they were."""
        ledger = self.ledger
        moved = ledger.update_portfolio_equity(equity, now, self.rules.size_limit)
        held = ledger.strategies
        own = [sid for sid in self.rules.configured if sid in held and held[sid].positions]
        return list(dict.fromkeys(moved + own)) if own else moved

    def evaluate_portfolio(self, topic: Topic) -> list[Breach]:
        rules = self.rules.portfolio_watching(topic)
        return self._settle(rules, self.ledger.portfolio, "portfolio") if rules else []

    def evaluate_everything(self) -> list[Breach]:
        with self._book.lock:
            breaches = []
            for sid in list(self.ledger.strategies):
                breaches += self._settle(
                    self.rules.for_strategy(sid), self.ledger.strategies[sid], f"strategy:{sid}"
                )
            breaches += self._settle(self.rules.portfolio, self.ledger.portfolio, "portfolio")
        return breaches

    def recheck(self, key: str) -> None:
        """Right after a lift: conditions that still breach halt again now, not at the next
        tick (level-triggered, like every evaluation). A portfolio lift judges every rule,
        as a strategy's rule may act on the portfolio."""
        if key == "portfolio":
            self.evaluate_everything()
        else:
            sid = Scope.parse(key).id
            self._settle(self.rules.for_strategy(sid), self.ledger.strategy(sid), key)

    def _settle(
        self, rules: Sequence[StrategyRule] | Sequence[PortfolioRule], view: Any, key: str
    ) -> list[Breach]:
        """Apply every breach (level-triggered: a halt lifted while the cause persists comes
        straight back); publish ``breach`` only when a rule starts breaching (edge)."""
        now = self._clock.time()
        breaches = [b for rule in rules if (b := rule.evaluate(view, now)) is not None]
        active = self._book.active.get(key)
        if not breaches:  # the common case, on every input: nothing made per scope
            if active:
                active.difference_update(rule.name for rule in rules)
            return breaches
        if active is None:
            active = self._book.active[key] = set()
        rising: list[Breach] = []
        breaching = {b.rule for b in breaches}
        for rule in rules:
            if rule.name not in breaching:
                active.discard(rule.name)
        for breach in breaches:
            if breach.rule not in active:
                active.add(breach.rule)
                rising.append(breach)
        # Strictest first: the weaker actions then find their state already in force.
        for breach in sorted(breaches, key=lambda b: ACTION_SEVERITY[b.action], reverse=True):
            self._act_on(breach)
        for breach in rising:  # announced once the halt is in force
            log.warning("breach %s on %s: %s", breach.rule, breach.scope, breach.message)
            self._actuator.emit("breach", breach)
            for react in self.on_rising:
                react(breach)
        return breaches

    def _act_on(self, breach: Breach) -> None:
        target = breach.scope if breach.action is Action.HALT_STRATEGY else PORTFOLIO
        actor = Actor(ActorKind.RULE, breach.rule)
        self._transitions.quietly(
            target, ACTION_COMMAND[breach.action], actor, f"{breach.rule}: {breach.message}", breach
        )


class Applying:
    """The context of ``Intake.applying``: a class, not a generator, as it is on every input."""

    __slots__ = ("_intake", "_scope")

    def __init__(self, intake: Intake, scope: Scope) -> None:
        self._intake, self._scope = intake, scope

    def __enter__(self) -> None:
        book = self._intake._book
        book.lock.acquire()
        book.fed = True

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object
    ) -> None:
        intake, scope = self._intake, self._scope
        try:
            if exc is None or isinstance(exc, TradeguardError) or not isinstance(exc, Exception):
                return
            log.exception("applying an input to %s failed", scope, exc_info=exc)
            message = f"could not apply input: {exc!r}"
            intake.halt_invalid(scope, message)
            raise InvalidInput(message, scope=str(scope)) from exc
        finally:
            intake._book.lock.release()


def _bar(name: str, value: object) -> Bar:
    """A bar at the edge, checked by the one bar check the CSV replay uses too."""
    from tradeguard.criticality.data import bar_fields
    from tradeguard.criticality.monitor import Bar

    return Bar(**bar_fields(value, name))
