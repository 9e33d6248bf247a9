"""The Guard: the facade that wires decide, act and control, and delegates to them.

Decide (``engine``) is synchronous and under one lock: inputs, rules, transitions, the order
gate. Act (``effects``) subscribes to state changes: stops, the recovery ladder, alerts, the
periodic backstop. ``incidents`` runs the KillChain on ports. Control (``control``) is the one
layer the Python API, the CLI and the HTTP API call: commands, approvals, users, limits,
agents and the status read model. This file holds no logic of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tradeguard.assembly import assemble
from tradeguard.audit import AuditRecord, Verification
from tradeguard.clock import Clock, SystemClock
from tradeguard.config import Config
from tradeguard.control.enrollment import UserChange
from tradeguard.effects.backstop import MetricsSource, TickResult
from tradeguard.emergency import FlattenReport, Sleep
from tradeguard.errors import TradeguardError
from tradeguard.events import Callback
from tradeguard.incidents.killchain import Incident, PhaseCallback
from tradeguard.inputs import identifier
from tradeguard.model import (
    PORTFOLIO,
    Decision,
    Operator,
    Order,
    PortfolioState,
    Scope,
    StateChange,
    StrategyState,
    User,
)
from tradeguard.state import Command, ScopeStatus
from tradeguard.store import Approval, StateStore, UserEvent
from tradeguard.venues.base import Venue

if TYPE_CHECKING:  # imported when first used: numpy and scipy cost a CLI call 0.3 s
    from tradeguard.criticality.monitor import CriticalityMonitor, Reading


class Guard:
    """The kill switch. Thread-safe; one per trading process (or several sharing one store)."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        clock: Clock | None = None,
        store: StateStore | None = None,
        sleep: Sleep = asyncio.sleep,
        read_only: bool = False,
    ) -> None:
        """``read_only``: a guard to look through (what ``tradeguard status`` uses): it opens
        the store read-only, shows what it holds (a damaged or distrusted store as an
        emergency, as any guard would), and never writes, alerts, watches or acts; a command
        that would change a state raises ``InvalidTransition``."""
        config = config if config is not None else Config()
        parts = assemble(
            config,
            clock if clock is not None else SystemClock(),
            store,
            sleep,
            read_only=read_only,
        )
        core = parts.core
        self._book, self._storage, self._actuator = core.book, core.storage, core.actuator
        self._transitions = core.transitions
        self._intake, self._orders, self._stops = parts.intake, parts.orders, parts.stops
        self._users, self._genomes, self._incidents = parts.users, parts.genomes, parts.incidents
        self._admin = parts.admin
        self._backstop, self._status, self._commands = parts.backstop, parts.status, parts.commands
        self._approvals, self._limits, self._agents = parts.approvals, parts.limits, parts.agents
        self.alerts = parts.alerts
        self._closed = False
        if not read_only:
            self._backstop.watch()  # started or not, a guard obeys what other processes write

    # -- registration and callbacks -------------------------------------------------------

    @property
    def config(self) -> Config:
        return self._book.config

    def register_strategy(
        self, strategy_id: str, *, allocated_capital: float | None = None, genome: object = None
    ) -> None:
        """Make a strategy (or agent) known, with its capital and its genome (any JSON: a
        blacklisted one raises ``GenomeBlacklisted``); needed first with ``strict_strategies``."""
        self._commands.register_strategy(strategy_id, allocated_capital, genome)

    def register_callback(self, event: str, fn: Callback) -> None:
        """Call ``fn`` on ``event``; see ``tradeguard.events.EVENTS``. Sync or async."""
        self._actuator.register(event, fn)

    def register_metrics_source(self, name: str, fn: MetricsSource) -> None:
        """Polled by every breaker tick; returns ``{"portfolio": {...}, "strategies": {...}}``."""
        self._backstop.sources[identifier("source name", name)] = fn

    def add_venue(self, venue: Venue) -> None:
        """A venue whose orders and positions the emergency stop takes care of."""
        self._stops.add_venue(venue)

    # -- genomes, incidents, capital ------------------------------------------------------

    def is_blacklisted(self, genome: object) -> bool:
        """For an evolutionary framework, before it breeds: was this genome blacklisted?"""
        return self._genomes.is_blacklisted(genome)

    def genomes(self) -> list[dict[str, Any]]:
        return self._genomes.listed()

    def unblock_genome(
        self, genome_fingerprint: str, user: User, reason: str = "unblock"
    ) -> Approval:
        """Open a two-person request to lift a genome's blacklist (risk_manager); a second,
        different person completes it with ``approve``. Disabled strategies stay disabled."""
        return self._approvals.unblock_genome(genome_fingerprint, user, reason)

    def on_phase(self, phase: str, fn: PhaseCallback) -> None:
        """Call ``fn(incident)`` after each incident's ``phase`` (detect, contain, preserve,
        diagnose, remediate, learn); one that raises or times out is logged, the chain goes on."""
        self._incidents.chain.on_phase(phase, fn)

    def start_incident(
        self,
        reason: str,
        user: User,
        *,
        strategies: Sequence[str] | None = None,
        disable: bool = False,
    ) -> Incident:
        """Open an incident by hand (risk_manager): all six phases then run. ``disable=True``
        with one strategy named: it is disabled and its genome blacklisted on your word."""
        return self._commands.start_incident(reason, user, strategies, disable)

    def incidents(self, *, snapshots: bool = True) -> list[dict[str, Any]]:
        """Every incident; ``snapshots=False`` leaves out the (large) post-mortem snapshots."""
        return self._status.incidents(snapshots=snapshots)

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        return self._storage.require().incident(str(incident_id))

    def wait_incidents(self, timeout: float = 30.0) -> bool:
        """Wait for the incidents running here to finish all their phases."""
        return self._incidents.chain.wait(timeout)

    def agent_request(
        self, principal: str, action: str, target: str | None = None, reason: str = ""
    ) -> StateChange | Incident | None:
        """What an automated principal asks for, gated by its trust; see ``control.agents``."""
        return self._agents.request(principal, action, target, reason)

    def allocate(self, capital: float, fitness: Mapping[str, float]) -> dict[str, float]:
        """Capital by fitness, capped at ``reserve.max_agent_share``, holding ``reserve.share``
        back as the avalanche reserve. Audited."""
        return self._limits.allocate(capital, fitness)

    def on_reserve_release(self, fn: Callback) -> None:
        """Call ``fn({"amount", "capital", "score", "incident"})`` when the reserve is
        released (once, at the first criticality crossing)."""
        self._actuator.register("reserve_release", fn)

    # -- inputs (see engine.intake) -------------------------------------------------------

    def record_trade(self, strategy_id: str, pnl: float) -> None:
        """A closed trade and its realized P&L (currency)."""
        self._intake.record_trade(strategy_id, pnl)

    def update_equity(self, equity: float, strategy_id: str | None = None) -> None:
        """Account equity (currency) of the portfolio, or of one strategy."""
        self._intake.update_equity(equity, strategy_id)

    def update_position(self, strategy_id: str, symbol: str, quantity: float, price: float) -> None:
        """A strategy's net position in a symbol (signed quantity; 0 when flat) and its price."""
        self._intake.update_position(strategy_id, symbol, quantity, price)

    def update_portfolio(
        self,
        *,
        equity: float | None = None,
        margin_used: float | None = None,
        margin_available: float | None = None,
    ) -> None:
        """Portfolio equity and margin; utilization is used / (used + available)."""
        self._intake.update_portfolio(
            equity=equity, margin_used=margin_used, margin_available=margin_available
        )

    def update_prices(self, prices: Mapping[str, float], ts: object = None) -> None:
        """A snapshot of prices; ``ts`` (epoch seconds or aware datetime) defaults to now."""
        self._intake.update_prices(prices, ts)

    def update_bars(self, bars: Mapping[str, Mapping[str, float]], ts: object = None) -> None:
        """One observation per symbol for the CriticalityMonitor (``close``, and ``high``,
        ``low``, ``volume``, ``bid``, ``ask`` where the feed has them); also a price snapshot."""
        self._intake.update_bars(bars, ts)

    def heartbeat(self, source: str) -> None:
        """An agent (strategy) is alive; one that has beaten and then goes quiet is stuck."""
        self._intake.heartbeat(source)

    def update_strategy_metrics(self, strategy_id: str, **metrics: Any) -> None:
        """Report metrics computed elsewhere (the seed's call); see ``STRATEGY_METRICS``."""
        self._intake.update_strategy_metrics(strategy_id, **metrics)

    def update_portfolio_metrics(self, **metrics: Any) -> None:
        """Report portfolio metrics computed elsewhere; see ``PORTFOLIO_METRICS``."""
        self._intake.update_portfolio_metrics(**metrics)

    @property
    def criticality(self) -> CriticalityMonitor:
        """The CriticalityMonitor, made on first use."""
        return self._intake.monitor

    # -- commands (see control) -----------------------------------------------------------

    def halt_strategy(
        self, strategy_id: str, user: User, reason: str = "manual halt"
    ) -> StateChange | None:
        """Any known user may halt. Returns None when it was already halted."""
        return self._commands.halt_strategy(strategy_id, user, reason)

    def resume_strategy(
        self, strategy_id: str, user: User, reason: str = "manual resume"
    ) -> StateChange:
        """Needs senior_trader, the cool-down served and the strategy fit to trade
        (``ResumeRefused`` names every failed check); re-enters on the recovery ladder."""
        return self._commands.resume_strategy(strategy_id, user, reason)

    def portfolio_halt(self, user: User, reason: str = "manual soft halt") -> StateChange | None:
        """Soft halt: no new risk; positions are kept."""
        return self._commands.manual(user, Command.SOFT_HALT, PORTFOLIO, reason)

    def portfolio_close(self, user: User, reason: str = "manual hard halt") -> StateChange | None:
        """Hard halt: no orders; cancel all and close all positions."""
        return self._commands.manual(user, Command.HARD_HALT, PORTFOLIO, reason)

    def emergency(self, user: User, reason: str = "manual emergency stop") -> StateChange | None:
        """Lockdown; only a two-person reset lifts it."""
        return self._commands.manual(user, Command.EMERGENCY, PORTFOLIO, reason)

    async def emergency_stop(
        self, initiator: User, reason: str = "manual emergency stop"
    ) -> FlattenReport:
        """The seed's coroutine: lock everything down, then cancel every order and close every
        position on every venue; returns when the book is verified flat or the stop gave up."""
        self.emergency(initiator, reason)
        return await self._stops.emergency_stop(reason)

    def reset(self, user: User, reason: str = "manual reset") -> Approval:
        """Lift a portfolio halt: a soft or hard halt at once (risk_manager); an emergency
        opens a two-person request that another user completes with ``approve``."""
        return self._approvals.reset(user, reason)

    def approve(self, request_id: str, user: User) -> StateChange | Approval:
        """Complete a two-person request as a second, different, authorized user."""
        return self._approvals.approve(request_id, user)

    def refuse(self, user: object, action: str, why: str, *, source: str | None = None) -> None:
        """Record a refused attempt made at the edge (CLI, API) before it reached a command;
        ``source``: where it came from (the HTTP client's address)."""
        self._transitions.refuse(user, action, PORTFOLIO, why, source=source)

    def set_limit(
        self,
        trigger: str,
        user: User,
        *,
        limit: float | None = None,
        action: str | None = None,
        enabled: bool | None = None,
        reason: str = "limit change",
    ) -> None:
        """Change a trigger at run time (risk_manager; audited; not persisted). During an
        emergency only a stricter change is accepted."""
        self._limits.set_limit(
            trigger, user, limit=limit, action=action, enabled=enabled, reason=reason
        )

    # -- users ----------------------------------------------------------------------------

    @property
    def auth_enabled(self) -> bool:
        return self._book.config.auth.enabled

    def authenticate(
        self, user: object, token: str | None, *, source: str | None = None
    ) -> Operator | None:
        """Check ``token`` is ``user``'s (CLI and HTTP; refusals are audited, with their
        ``source``); pass the operator it returns to a command to record it as authenticated
        (None: auth is off)."""
        return self._users.authenticate(user, token, source=source)

    def verified(self, user: str, token: str) -> Operator | None:
        """``user``, if this token was verified in this process before (no hash computed)."""
        return self._users.verified(user, token)

    def users(self) -> list[dict[str, Any]]:
        return self._users.listed()

    def add_user(self, name: str, role: str, *, by: User) -> UserChange:
        """Create a user; returns its one-time enrollment code (the user redeems it with
        ``enroll``). Once two-person administration is established, a lifting role makes it a
        request: the code is then the requester's share, the approver gets the other."""
        return self._admin.add(name, role, by=by)

    def issue_token(self, name: str, *, by: User) -> UserChange:
        """Re-enroll a user: their token stops working now; a new code (or, for a lifting
        user once established, a request and the requester's share) is returned."""
        return self._admin.issue_token(name, by=by)

    def renew_token(self, owner: Operator) -> str:
        """A new token for its authenticated owner (the only one who sees it)."""
        return self._admin.renew(owner)

    def enroll(self, name: str, code: str) -> str:
        """Redeem an enrollment code (both shares of a split one) for a token, shown once."""
        return self._admin.enroll(name, code)

    def set_role(self, name: str, role: str, *, by: User) -> UserChange:
        """Change a role; a change to who can lift is a two-person request once established."""
        return self._admin.set_role(name, role, by=by)

    def remove_user(self, name: str, *, by: User) -> UserChange:
        """Remove a user; a lifting user's removal is a two-person request once established."""
        return self._admin.remove(name, by=by)

    @property
    def two_person_administration(self) -> bool:
        """Whether changing who can lift takes two people (for good, once two enrolled users
        held lifting roles); before that, file access administers alone (the bootstrap)."""
        return self._users.established()

    def config_lists_user(self, name: str) -> bool:
        return self._users.configured(name) is not None

    def user_history(self) -> list[UserEvent]:
        """Who enrolled whom and every administration act, oldest first (append-only)."""
        return self._storage.require().user_history()

    # -- orders ---------------------------------------------------------------------------

    def check_order(self, order: Order) -> Decision:
        """The 8-point pre-trade verdict, called before every order (see ``engine.orders``)."""
        return self._orders.check(order)

    def order_closed(self, strategy_id: str, client_order_id: str) -> bool:
        """An accepted order is done (filled, cancelled or rejected): it stops counting against
        caps and reduce-only; without this, it counts for ``pretrade.reservation_seconds``."""
        return self._orders.closed(strategy_id, client_order_id)

    @property
    def refusals(self) -> Mapping[str, int]:
        """Pre-trade refusals by check, since start."""
        return self._orders.refusals

    # -- running --------------------------------------------------------------------------

    def tick(self) -> TickResult:
        """One breaker tick (see ``effects.backstop``)."""
        return self._backstop.tick()

    def criticality_tick(self) -> Reading | None:
        """One CriticalityMonitor cycle (its thread calls this every ``interval_seconds``)."""
        return self._backstop.criticality_tick()

    def save_baselines(self) -> str | None:
        """Write the loss baselines now; returns the problem, if the store failed."""
        return self._backstop.save_baselines()

    async def start_monitoring(self) -> None:
        """Start the breaker thread (the seed's coroutine); returns at once."""
        self.start()

    def start(self) -> None:
        self._backstop.start()

    def stop(self) -> None:
        self._backstop.stop()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait for queued callbacks to finish (tests and orderly shutdown)."""
        return self._actuator.flush(timeout)

    def close(self) -> None:
        """Stop the threads; give running stops a moment, then let them resume on restart."""
        if self._closed:
            return
        self._closed = True
        self._backstop.close()
        # the incident running here finishes its phase and parks; the next start resumes it
        self._incidents.chain.close(self._book.config.killchain.close_grace_seconds)
        self._transitions.flush_refusals(everything=True)
        self.save_baselines()
        flushed = self._actuator.flush(5.0)
        if self.alerts.channels:
            self._actuator.submit(self.alerts.aclose)
            flushed = self._actuator.flush(5.0)
        self._stops.cancel_all()
        # callbacks emitted since the flush get the actuator's grace; if the flush already
        # waited out a hung callback, waiting for it again helps nobody
        self._actuator.close(grace=5.0 if flushed else 0.0)
        self._storage.close()

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading (see control.status) -----------------------------------------------------

    @property
    def last_tick(self) -> TickResult | None:
        return self._backstop.last_tick

    @property
    def last_criticality(self) -> Reading | None:
        return self._backstop.last_criticality

    @property
    def last_flatten(self) -> FlattenReport | None:
        return self._stops.last

    def status_of(self, scope: Scope) -> ScopeStatus:
        return self._book.status_of(scope)

    def strategy_state(self, strategy_id: str) -> StrategyState:
        return StrategyState(self._book.status_of(Scope.strategy(strategy_id)).state)

    @property
    def portfolio_state(self) -> PortfolioState:
        return self._book.portfolio_state

    def has_strategy(self, strategy_id: str) -> bool:
        """Known here: registered, reported on, or with a state of its own in the store."""
        return self._status.has_strategy(strategy_id)

    def health(self) -> dict[str, Any]:
        """For probes: ``{"ok": store trusted, "portfolio": state}``, without any I/O."""
        return self._status.health()

    def status(self) -> dict[str, Any]:
        """A JSON-serializable snapshot of every state, metric and pending request."""
        return self._status.snapshot()

    def audit_records(
        self, since: float | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        return self._status.audit_records(since, limit)

    def verify_audit(self) -> Verification:
        return self._status.verify_audit()


__all__ = ["Guard", "TickResult", "TradeguardError"]
