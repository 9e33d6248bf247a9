"""The Guard: the facade that wires ledger, rules, state machine, store, audit and callbacks.

Decide fast, act asynchronously. An input is validated, folded into the ledger and checked by
the rules that watch it, all under one lock and without waiting on anything but the store's
commit of a transition. A halt takes effect in memory before it is written (the next order
check already sees it); a resume or reset is written before it takes effect (a failed write
lifts nothing). Callbacks run later, on the actuator thread.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from pydantic import ValidationError

from tradeguard import inputs, pretrade
from tradeguard.alerts import message as alert_message
from tradeguard.alerts.dispatcher import AlertDispatcher
from tradeguard.audit import AuditEntry, AuditRecord, Verification
from tradeguard.auth import Authorizer, hash_token, new_token, token_matches
from tradeguard.clock import Clock, SystemClock, from_timestamp, to_iso
from tradeguard.config import USER_NAME, Config, OnHalt, Trigger, Triggers, load_config
from tradeguard.emergency import EmergencyStop, FlattenReport, Sleep, StopPolicy
from tradeguard.errors import (
    ApprovalRefused,
    BadRequest,
    GenomeBlacklisted,
    InvalidInput,
    InvalidTransition,
    PermissionDenied,
    ResumeRefused,
    StoreUnavailable,
    TradeguardError,
    UnknownRequest,
    UnknownStrategy,
)
from tradeguard.events import Actuator, Callback
from tradeguard.genomes import GenomeRecord, fingerprint
from tradeguard.killchain import Incident, KillChain, PhaseCallback, diagnose, new_id
from tradeguard.ledger import PORTFOLIO_METRICS, STRATEGY_METRICS, Ledger, StrategyMetrics
from tradeguard.model import (
    PORTFOLIO,
    Action,
    Actor,
    ActorKind,
    Breach,
    Decision,
    Order,
    PortfolioState,
    Role,
    Scope,
    ScopeKind,
    StateChange,
    StrategyState,
)
from tradeguard.periodic import Periodic
from tradeguard.recovery import Ladder, cooldown_left, cooldown_seconds, unreconciled
from tradeguard.rules import PortfolioRule, RuleSet, StrategyRule, Topic
from tradeguard.state import (
    ACTION_COMMAND,
    REQUIRED_ROLE,
    TIGHTENING,
    TWO_PERSON_RESET,
    Command,
    ScopeStatus,
    next_state,
)
from tradeguard.store import (
    Approval,
    FlattenRun,
    Rung,
    SqliteStore,
    StateConflict,
    StateStore,
    StateWrite,
    UserRecord,
)
from tradeguard.timed_calls import TimedCalls
from tradeguard.venues.base import Venue

if TYPE_CHECKING:  # imported when first used: numpy and scipy cost a CLI call 0.3 s
    from tradeguard.criticality.monitor import Bar, CriticalityMonitor, Reading

log = logging.getLogger("tradeguard")

SYSTEM = Actor(ActorKind.SYSTEM, "guard")
KILLCHAIN = Actor(ActorKind.SYSTEM, "killchain")

# What an automated principal may ask for, by the least trust level; nothing else, ever.
AGENT_ACTIONS: dict[str, int] = {
    "halt_strategy": 1,
    "soft_halt": 2,
    "hard_halt": 3,
    "start_incident": 3,  # its remediation disables a strategy for good
    "emergency": 3,
}
NEVER_AUTOMATED = ("resume", "reset", "approve", "unblock_genome", "set_limit")

# Which callback event a transition publishes, by (scope kind, new state).
_EVENT_FOR: dict[tuple[ScopeKind, str], str] = {
    (ScopeKind.STRATEGY, StrategyState.HALTED): "strategy_halt",
    (ScopeKind.STRATEGY, StrategyState.ACTIVE): "strategy_resume",
    (ScopeKind.STRATEGY, StrategyState.RECOVERING): "strategy_resume",
    (ScopeKind.PORTFOLIO, PortfolioState.SOFT_HALT): "portfolio_halt",
    (ScopeKind.PORTFOLIO, PortfolioState.HARD_HALT): "portfolio_close",
    (ScopeKind.PORTFOLIO, PortfolioState.EMERGENCY): "emergency_stop",
    (ScopeKind.PORTFOLIO, PortfolioState.NORMAL): "reset",
}

MetricsSource = Callable[[], Mapping[str, Any]]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one breaker tick found: published as the ``breaker_tick`` event."""

    at: float
    breaches: list[Breach] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Guard:
    """The kill switch. Thread-safe; one per trading process (or several sharing one store)."""

    def __init__(  # noqa: PLR0915  # one statement per piece of state: the facade's inventory
        self,
        config: Config | None = None,
        *,
        clock: Clock | None = None,
        store: StateStore | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.config = config if config is not None else Config()
        self._clock = clock if clock is not None else SystemClock()
        self._lock = threading.RLock()
        self._rules = RuleSet(self.config)
        self._ledger = Ledger(self.config.triggers)
        self._auth = Authorizer(self._role_of)
        self._verified: dict[tuple[str, str], str] = {}  # (user, sha256(token)) -> its hash
        self._actuator = Actuator(self.config.guard.callback_timeout_seconds)
        self._sources: dict[str, MetricsSource] = {}
        self._source_calls = TimedCalls(name="tradeguard-source")
        self._breaker: Periodic | None = None
        self._watcher: Periodic | None = None
        self._seen_version = -1
        self._active: dict[str, set[str]] = {}  # scope -> rules currently breaching
        self._registered: set[str] = set(self.config.strategies)
        self._store_error: str | None = None
        self.last_tick: TickResult | None = None
        self._sleep = sleep
        self._fed = False  # has this guard been given inputs (and so has baselines to save)?
        self._closed = False
        self._venues: list[Venue] = []
        self._stopper: EmergencyStop | None = None
        self._flattens: dict[str, concurrent.futures.Future[FlattenReport]] = {}
        self.last_flatten: FlattenReport | None = None
        self._last_reports: dict[str, FlattenReport] = {}
        self.refusals: collections.Counter[str] = collections.Counter()  # pre-trade, by check
        self._pipeline = pretrade.Pipeline(self.config.pretrade, self._clock.time())
        self._capital_factor: dict[str, float] = {}
        self._ladder = Ladder(self.config.recovery)
        self._rungs: dict[str, Rung] = {}  # recovering strategies' rungs (sid -> rung)
        self._holds: dict[str, str] = {}  # why a rung whose gate passed did not climb
        self._criticality: CriticalityMonitor | None = None
        self.last_criticality: Reading | None = None
        self._criticality_thread: Periodic | None = None
        self._bars_given = False  # bars, not sampled prices, feed the monitor
        self._killchain = KillChain(self, self.config.killchain.callback_timeout_seconds)
        self._blocked: set[str] = set()  # strategies whose genome is blacklisted
        self._running = False  # started: runs incidents (a CLI process only records them)
        self._normal_version = 0  # the portfolio's version at its last reset (see _on_criticality)
        now = self._clock.time()
        self._states: dict[str, ScopeStatus] = {
            "portfolio": ScopeStatus(PortfolioState.NORMAL, "initial", now, str(SYSTEM), 0)
        }
        for sid, strategy in self.config.strategies.items():
            self._ledger.strategy(sid).allocated_capital = strategy.allocated_capital
        self.alerts = AlertDispatcher(
            self.config.alerts,
            store=self._healthy_store,
            clock=self._clock,
            submit=self._actuator.submit,
            emit=self._actuator.emit,
        )
        self._wire_alerts()
        if self.alerts.channels:
            self._actuator.submit(self.alerts.warm_up)  # in the background: nothing waits
        self._store: StateStore | None = None
        try:
            key = self.config.state.audit_key
            self._store = (
                store
                if store is not None
                else SqliteStore(
                    self.config.state.path,
                    audit_key=None if key is None else key.get_secret_value().encode(),
                )
            )
            self._load()
        except Exception as exc:  # whatever cannot be loaded cannot be trusted: fail closed
            self._fail_store(f"cannot load state: {exc!r}")

    # -- start-up -------------------------------------------------------------------------

    def _load(self) -> None:
        assert self._store is not None
        for key, status in self._store.load_states().items():
            scope = Scope.parse(key)
            if scope.kind is ScopeKind.PORTFOLIO:
                PortfolioState(status.state)
            else:
                StrategyState(status.state)
                self._registered.add(scope.id)
                self._ledger.strategy(scope.id)
            self._states[key] = status
        self._adopt_marker()
        saved = self._store.load_metrics()
        self._ledger.restore(saved)
        self._registered.update(Scope.parse(k).id for k in saved if k != "portfolio")
        self._adopt_rungs()
        self._adopt_genomes()
        portfolio = self._states["portfolio"]
        if portfolio.state == PortfolioState.NORMAL:
            self._normal_version = portfolio.version

    def _role_of(self, name: str) -> Role | None:
        """A user's role: the store's record where one exists (made by `tradeguard users`),
        else the config's ``users:``. If the store cannot be read, the config still lets
        people halt (stopping is cheap); lifting needs the store anyway. An automated
        principal's name never has a human role, whatever the store says."""
        if name in self.config.autonomy.principals:
            return None
        if self._store is not None and not self._store_error:
            with contextlib.suppress(StoreUnavailable):
                record = self._store.users().get(name)
                if record is not None:
                    return Role.parse(record.role)
        return self.config.users.get(name)

    def _user_audit(self, by: str, action: str, name: str, why: str) -> AuditEntry:
        return AuditEntry(self._clock.time(), by, action, f"user:{name}", None, None, why)

    def _healthy_store(self) -> StateStore | None:
        return None if self._store_error else self._store

    def _wire_alerts(self) -> None:
        """Every breach, halt, resume, reset, refusal and escalation becomes an alert. These
        callbacks are async: they run on the actuator loop and never hold up a halt."""
        link = self.config.alerts.dashboard_url
        publish = self.alerts.publish

        async def on_change(change: StateChange) -> None:
            publish(alert_message.from_change(change, link))

        async def on_breach(breach: Breach) -> None:
            if breach.rule != "flatten_deadline":  # that one is its escalation's alert
                publish(alert_message.from_breach(breach, link))

        async def on_escalation(breach: Breach) -> None:
            publish(alert_message.from_escalation(breach, link))

        async def on_refused(entry: dict[str, Any]) -> None:
            publish(alert_message.from_refusal(entry, link))

        self._actuator.register("state_change", on_change)
        self._actuator.register("breach", on_breach)
        self._actuator.register("escalation", on_escalation)
        self._actuator.register("refused", on_refused)

    def _fail_store(self, message: str) -> None:
        """The store cannot be trusted: lock down in memory; nothing can be lifted until fixed.
        A marker file beside the DB carries the emergency over a restart, should the store
        come back without it."""
        self._store_error = message
        self._lockdown(f"store_unavailable: {message}")
        try:
            marker = self._marker()
            if not marker.exists():
                marker.write_text(json.dumps({"at": self._clock.time(), "reason": message}))
        except OSError as exc:
            log.critical("could not write the emergency marker either: %s", exc)

    def _marker(self) -> Path:
        path = self.config.state.path
        return path.with_name(path.name + ".emergency")

    def _adopt_marker(self) -> None:
        """A previous run lost its store and locked down: make that emergency durable now."""
        marker = self._marker()
        if not marker.exists():
            return
        try:
            why = str(json.loads(marker.read_text()).get("reason", "unknown"))
        except (OSError, ValueError, AttributeError):
            why = "unreadable marker"
        self._transition(
            PORTFOLIO,
            Command.EMERGENCY,
            SYSTEM,
            f"store_unavailable earlier: {why} (marker {marker.name})",
        )
        marker.unlink()

    def _lockdown(self, reason: str) -> None:
        """Emergency in memory, for failures where the normal path cannot be trusted."""
        log.critical("entering emergency: %s", reason)
        current = self._states["portfolio"]
        if current.state == PortfolioState.EMERGENCY:
            return
        now = self._clock.time()
        self._states["portfolio"] = ScopeStatus(
            PortfolioState.EMERGENCY, reason, now, str(SYSTEM), current.version
        )
        self._publish(
            StateChange(
                PORTFOLIO,
                current.state,
                PortfolioState.EMERGENCY,
                SYSTEM,
                reason,
                now,
                current.version,
            )
        )

    # -- registration and callbacks -------------------------------------------------------

    def register_strategy(
        self,
        strategy_id: str,
        *,
        allocated_capital: float | None = None,
        genome: object = None,
    ) -> None:
        """Make a strategy (or agent) known; required before use when ``strict_strategies``.
        ``genome``: any JSON description of what it is (parameters, code version); a genome
        the KillChain blacklisted raises ``GenomeBlacklisted`` (audited) and registers
        nothing."""
        sid = inputs.identifier("strategy_id", strategy_id)
        capital = None
        if allocated_capital is not None:
            capital = inputs.positive("allocated_capital", allocated_capital)
        if genome is not None:
            self._register_genome(sid, genome)
        with self._lock:
            self._registered.add(sid)
            m = self._ledger.strategy(sid)
            if capital is not None:
                m.allocated_capital = capital

    # -- genomes ------------------------------------------------------------------------------

    def _register_genome(self, sid: str, genome: object) -> None:
        try:
            fp = fingerprint(genome)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        if sid in self._blocked:
            why = f"{sid} belongs to a blacklisted genome: register the new one under a new id"
            self._audit_refusal(SYSTEM, "register", Scope.strategy(sid), why)
            raise GenomeBlacklisted(why, fingerprint=fp)
        now = self._clock.time()

        def add(row: dict[str, Any] | None) -> dict[str, Any] | None:
            if row is None:
                return GenomeRecord(fp, genome, (sid,)).to_row()
            if row["blacklisted"] or sid in row["strategies"]:
                return None  # refused below, or nothing to add
            return {**row, "strategies": [*row["strategies"], sid]}

        def registered(row: dict[str, Any]) -> list[AuditEntry]:
            why = f"{sid} registered with genome {fp[:12]}"
            return [
                AuditEntry(now, str(SYSTEM), "genome:registered", f"strategy:{sid}", None, fp, why)
            ]

        row = self._require_store().update_genome(fp, add, registered)
        assert row is not None
        record = GenomeRecord.from_dict(row)
        if record.blacklisted:
            why = f"genome {fp[:12]} is blacklisted ({record.reason}); {sid} may not register"
            self._audit_refusal(SYSTEM, "register", Scope.strategy(sid), why)
            raise GenomeBlacklisted(why, fingerprint=fp)

    def _genome_record(self, fp: str) -> GenomeRecord | None:
        data = self._require_store().genomes().get(fp)
        return None if data is None else GenomeRecord.from_dict(data)

    def _genome_of(self, sid: str) -> GenomeRecord | None:
        """The genome a strategy registered with, from the store (whichever process it was)."""
        for data in self._require_store().genomes().values():
            if sid in data["strategies"]:
                return GenomeRecord.from_dict(data)
        return None

    def _adopt_genomes(self) -> None:
        """Which strategies belong to a blacklisted genome: at start, and whenever the store
        changed (a blacklisting in another process stops orders here too). A strategy listed
        by any blacklisted genome is blocked."""
        if self._store is None:
            return
        blocked = {
            sid
            for data in self._store.genomes().values()
            if data["blacklisted"]
            for sid in data["strategies"]
        }
        self._blocked = blocked  # one assignment: check_order reads it without the lock

    def is_blacklisted(self, genome: object) -> bool:
        """For an evolutionary framework, before it breeds: was this genome blacklisted?"""
        try:
            fp = fingerprint(genome)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        record = self._genome_record(fp)
        return record is not None and record.blacklisted

    def genomes(self) -> list[dict[str, Any]]:
        return [
            GenomeRecord.from_dict(d).to_dict() for d in self._require_store().genomes().values()
        ]

    def _blacklist(self, fp: str, incident: str, why: str) -> GenomeRecord | None:
        now = self._clock.time()

        def mark(row: dict[str, Any] | None) -> dict[str, Any] | None:
            if row is None or row["blacklisted"]:
                return None
            return {
                **row,
                "blacklisted": True,
                "incident": incident,
                "reason": why,
                "at_epoch": now,
            }

        def audit(row: dict[str, Any]) -> list[AuditEntry]:
            details = {"incident": incident, "strategies": row["strategies"]}
            scope = f"genome:{fp}"
            return [
                AuditEntry(
                    now, str(KILLCHAIN), "genome:blacklisted", scope, None, None, why, details
                )
            ]

        row = self._require_store().update_genome(fp, mark, audit)
        self._adopt_genomes()
        return None if row is None else GenomeRecord.from_dict(row)

    def unblock_genome(
        self, genome_fingerprint: str, user: str, reason: str = "unblock"
    ) -> Approval:
        """Open a two-person request to lift a genome's blacklist (risk_manager); a second,
        different person completes it with ``approve``. Strategies the KillChain disabled stay
        disabled, and their ids stay blocked: the genome may come back under a new id. The
        request is tied to this blacklisting: a newer one is not lifted by it."""
        actor = self._authorize(user, Command.UNBLOCK, PORTFOLIO)
        fp = str(genome_fingerprint)
        record = self._genome_record(fp)
        if record is None or not record.blacklisted:
            why = f"genome {fp[:12]} is not blacklisted: nothing to unblock"
            self._audit_refusal(user, Command.UNBLOCK, PORTFOLIO, why)
            raise InvalidTransition(why)
        now = self._clock.time()
        request = Approval(
            id=secrets.token_hex(6),
            action="unblock_genome",
            scope=f"genome:{fp}:{record.incident}",
            requested_by=str(actor),
            requested_at=now,
            expires_at=now + self.config.guard.approval_ttl_seconds,
            target_version=0,
            status="pending",
            reason=inputs.text(reason),
        )
        self._commit_request(
            request, f"unblock of genome {fp[:12]} requested; needs a second approver"
        )
        return request

    def _unblock(self, actor: Actor, request: Approval) -> None:
        fp, incident = _genome_request(request)
        now = self._clock.time()

        def lift(row: dict[str, Any] | None) -> dict[str, Any] | None:
            if row is None or not row["blacklisted"] or row.get("incident") != incident:
                return None
            return {**row, "blacklisted": False}

        def audit(row: dict[str, Any]) -> list[AuditEntry]:
            details = {
                "request": request.id,
                "requested_by": request.requested_by,
                "approved_by": str(actor),
            }
            return [
                AuditEntry(
                    now,
                    str(actor),
                    "genome:unblocked",
                    f"genome:{fp}",
                    None,
                    None,
                    request.reason,
                    details,
                )
            ]

        store = self._require_store()
        store.update_genome(fp, lift, audit)
        store.commit(approvals=[request])
        self._adopt_genomes()  # the strategies it disabled stay disabled: their state says so

    # -- incidents: the KillChain ---------------------------------------------------------

    def on_phase(self, phase: str, fn: PhaseCallback) -> None:
        """Call ``fn(incident)`` after each incident's ``phase`` (detect, contain, preserve,
        diagnose, remediate, learn); one that raises or takes longer than
        ``killchain.callback_timeout_seconds`` is logged, and the chain goes on."""
        self._killchain.on_phase(phase, fn)

    def start_incident(
        self, reason: str, user: str, *, strategies: Sequence[str] | None = None
    ) -> Incident:
        """Open an incident by hand (risk_manager: its remediation disables the responsible
        strategy for good; anyone may still halt): all six phases then run."""
        actor = self._authorize(user, Command.INCIDENT, PORTFOLIO)
        if isinstance(strategies, str | bytes):
            raise BadRequest("strategies must be a list of ids, not one string")
        try:
            affected = (
                None
                if strategies is None
                else [inputs.identifier("strategy", s) for s in strategies]
            )
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        incident = self._open_incident("manual", reason, str(actor), strategies=affected)
        if incident is None:
            raise StoreUnavailable(self._store_error or "no state store")
        return incident

    def _open_incident(
        self,
        trigger: str,
        reason: str,
        by: str,
        *,
        incident_id: str | None = None,
        breach: Breach | None = None,
        strategies: list[str] | None = None,
    ) -> Incident | None:
        """Record the incident (once: a deterministic id is opened by one process only) and,
        in a running guard, run it. Without a healthy store it cannot be recorded: logged."""
        now = self._clock.time()
        incident = Incident(
            incident_id or new_id(trigger),
            now,
            trigger,
            inputs.text(reason),
            by,
            strategies,
            breach=None if breach is None else breach.to_dict(),
        )
        store = self._healthy_store()
        if store is None:
            log.critical("incident %s not recorded: no healthy store", incident.id)
            return None
        entry = AuditEntry(
            now, by, "incident:opened", f"incident:{incident.id}", None, None, incident.reason
        )
        try:
            if not store.open_incident(incident.to_dict(), [entry]):
                found = store.incident(incident.id)
                incident = incident if found is None else Incident.from_dict(found)
        except StoreUnavailable as exc:
            log.critical("incident %s not recorded: %s", incident.id, exc)
            return None
        if self._running or self._fed:
            self._killchain.launch(incident)
        return incident

    def _resume_incidents(self) -> None:
        """Run every incident still open that no live process holds: one a crash cut off, or
        one a CLI process recorded."""
        store = self._healthy_store()
        if store is None:
            return
        try:
            open_ = store.incidents(status="running")
        except StoreUnavailable as exc:
            log.error("could not read incidents: %s", exc)
            return
        for data in open_:
            self._killchain.launch(Incident.from_dict(data))

    def incidents(self) -> list[dict[str, Any]]:
        return self._require_store().incidents()

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        return self._require_store().incident(str(incident_id))

    def wait_incidents(self, timeout: float = 30.0) -> bool:
        """Wait for the incidents running here to finish all their phases."""
        return self._killchain.wait(timeout)

    def _contain(self, incident: Incident) -> list[str]:
        why = f"incident {incident.id}: contained"
        self._transition_quietly(PORTFOLIO, Command.SOFT_HALT, KILLCHAIN, f"{why}: no new orders")
        with self._lock:
            targets = incident.strategies or sorted(self._registered)
        halted = [
            sid
            for sid in targets
            if self.status_of(Scope.strategy(sid)).state
            in (StrategyState.ACTIVE, StrategyState.RECOVERING)
            and self._transition_quietly(Scope.strategy(sid), Command.HALT, KILLCHAIN, why)
            is not None
        ]
        return [
            f"portfolio {self.portfolio_state}: no new orders",
            f"halted {', '.join(halted) if halted else 'nothing more (already halted)'}",
        ]

    def _preserve(self, incident: Incident) -> list[str]:
        store = self._require_store()
        recent = store.audit_records(limit=50)
        venues = {}
        with self._lock:
            attached = list(self._venues)
        for venue in attached:

            async def read(v: Venue = venue) -> dict[str, Any]:
                return {
                    "positions": [dataclasses.asdict(p) for p in await v.positions()],
                    "open_orders": [dataclasses.asdict(o) for o in await v.open_orders()],
                }

            try:
                timeout = self.config.emergency.call_timeout_seconds
                venues[venue.name] = self._actuator.submit(read).result(timeout=timeout)
            except Exception as exc:
                venues[venue.name] = {"error": repr(exc)}
        incident.snapshot = {
            "at": to_iso(self._clock.time()),
            "status": self.status(),
            "venues": venues,
            "recent_audit": [dataclasses.asdict(r.entry) for r in recent],
            "audit_head": None if not recent else {"seq": recent[-1].seq, "hash": recent[-1].hash},
        }
        head = "none" if not recent else recent[-1].hash[:12]
        return [
            f"snapshot of {len(incident.snapshot['status']['strategies'])} strategies, "
            f"{len(venues)} venues, audit head {head}"
        ]

    def _diagnose(self, incident: Incident) -> list[str]:
        """The evidence: if the incident's own breach was a strategy's, that strategy; else
        the rule halts within ``lookback_seconds`` that still stand (a reset of the portfolio,
        or a person resuming the strategy, means they were reviewed), else the losses."""
        since = incident.opened_at - self.config.killchain.lookback_seconds
        with self._lock:
            affected = set(incident.strategies or self._registered)
            losses = {sid: _loss(self._ledger.strategy(sid)) for sid in affected}
        breach = incident.breach or {}
        own = str(breach.get("scope", ""))
        firsts: list[tuple[float, str, str]] = []
        if own.startswith("strategy:") and Scope.parse(own).id in affected:
            firsts = [
                (float(breach.get("at", incident.opened_at)), Scope.parse(own).id, breach["rule"])
            ]
        else:
            for record in self._require_store().audit_records(since=since):
                e = record.entry
                kind, _, rule = e.actor.partition(":")
                if e.action != "state_change" or e.ts > incident.opened_at:
                    continue
                if e.scope == "portfolio":
                    if e.after == PortfolioState.NORMAL:
                        firsts = []  # a reset: what came before was reviewed
                    continue
                sid = Scope.parse(e.scope).id
                if e.after in (StrategyState.ACTIVE, StrategyState.RECOVERING):
                    firsts = [f for f in firsts if f[1] != sid]  # resumed: reviewed
                elif e.after == StrategyState.HALTED and kind == ActorKind.RULE and sid in affected:
                    firsts.append((e.ts, sid, rule))
        incident.diagnosis = diagnose(firsts, losses)
        d = incident.diagnosis
        if d["responsible"] is None:
            return ["no strategy breached or lost: no one to blame"]
        rule = f", rule {d['rule']}" if d["rule"] else ""
        return [f"responsible: {d['responsible']} ({d['method']}{rule})"]

    def _remediate(self, incident: Incident) -> list[str]:
        """Disable the responsible strategy and blacklist its genome; raises (and the phase is
        tried again) when either could not be recorded."""
        d = incident.diagnosis or {}
        sid = d.get("responsible")
        if sid is None:
            incident.remediation = ["nothing disabled: no responsible strategy"]
            return incident.remediation
        rule = f", rule {d['rule']}" if d.get("rule") else ""
        why = f"incident {incident.id}: responsible ({d.get('method')}{rule})"
        self._transition(Scope.strategy(sid), Command.DISABLE, KILLCHAIN, why)
        notes = [
            f"disabled {sid}; its positions are handled by its policy ({self.config.on_halt(sid)})"
        ]
        record = self._genome_of(sid)
        if record is None:
            notes.append(f"{sid} registered no genome: nothing to blacklist")
        else:
            marked = self._blacklist(record.fingerprint, incident.id, why)
            if marked is None or not marked.blacklisted:
                raise RuntimeError(f"genome {record.fingerprint[:12]} could not be blacklisted")
            notes.append(f"blacklisted genome {record.fingerprint[:12]}")
        incident.remediation = notes
        return notes

    def _learn(self, incident: Incident) -> list[str]:
        """The root cause, as the store now has it (not as remediation hoped)."""
        d = incident.diagnosis or {}
        sid = d.get("responsible")
        if sid is None:
            return ["recorded: no root cause found in the evidence"]
        record = self._genome_of(sid)
        if record is None:
            genome = "; it registered no genome"
        elif record.blacklisted:
            genome = f"; genome {record.fingerprint[:12]} can never register or trade again"
        else:
            genome = f"; genome {record.fingerprint[:12]} is not blacklisted (unblocked since?)"
        return [f"root cause: {sid} ({d.get('method')}){genome}"]

    # -- automated principals -------------------------------------------------------------

    def agent_request(
        self, principal: str, action: str, target: str | None = None, reason: str = ""
    ) -> StateChange | Incident | None:
        """What an automated principal (an AI or agent layer) asks for, gated by its trust:
        1 halts a strategy, 2 also soft-halts and opens incidents, 3 also hard-halts and
        declares emergencies. Resuming, resetting, approving, unblocking or changing a limit
        is refused at every level. Every refusal is audited."""
        name = inputs.text(principal, 64)
        agent = self.config.autonomy.principals.get(name)
        actor = Actor(ActorKind.AGENT, name)
        why = ""
        if not isinstance(action, str):
            why, action = f"action must be text, got {action!r}", inputs.text(action, 64)
        elif agent is None:
            why = f"{name} is not a known automated principal"
        elif action in NEVER_AUTOMATED:
            why = f"automated principals may never {action}: that needs a person"
        elif action not in AGENT_ACTIONS:
            why = f"unknown action {action!r}; known: {sorted(AGENT_ACTIONS)}"
        elif agent.trust < AGENT_ACTIONS[action]:
            why = f"{name} has trust {agent.trust}; {action} needs {AGENT_ACTIONS[action]}"
        if why:
            self._audit_refusal(str(actor), action, PORTFOLIO, why)
            raise PermissionDenied(why)
        text = reason or f"requested by {actor}"
        if action == "start_incident":
            return self._open_incident("manual", text, str(actor))
        if action == "halt_strategy":
            try:
                sid = inputs.identifier("strategy", target)
            except ValueError as exc:
                self._audit_refusal(str(actor), action, PORTFOLIO, str(exc))
                raise BadRequest(str(exc)) from None
            with self._lock:
                self._registered.add(sid)
            return self._transition(Scope.strategy(sid), Command.HALT, actor, text)
        command = {"soft_halt": Command.SOFT_HALT, "hard_halt": Command.HARD_HALT}.get(
            action, Command.EMERGENCY
        )
        return self._transition(PORTFOLIO, command, actor, text)

    # -- capital and the avalanche reserve ------------------------------------------------

    def allocate(self, capital: float, fitness: Mapping[str, float]) -> dict[str, float]:
        """Give each strategy (agent) capital by fitness, capped at ``reserve.max_agent_share``,
        holding ``reserve.share`` back as the avalanche reserve. The allocations are what the
        agent_capital trigger and the pre-trade cap compare against. Audited."""
        from tradeguard.criticality.reserve import allocate

        try:
            amount = inputs.positive("capital", capital)
            if not isinstance(fitness, Mapping):
                raise ValueError(f"fitness must be a mapping of strategy to score, got {fitness!r}")
            scores = {
                inputs.identifier("strategy", k): inputs.number(f"fitness of {k}", v)
                for k, v in fitness.items()
            }
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        r = self.config.reserve
        shares = allocate(amount, scores, reserve_share=r.share, max_share=r.max_agent_share)
        now = self._clock.time()

        def held_back(current: Any) -> dict[str, Any]:
            if isinstance(current, dict) and current.get("released"):  # spent stays spent
                return {**current, "capital": amount}
            return {"capital": amount, "amount": amount * r.share, "released": False}

        def audit(_value: Any) -> list[AuditEntry]:
            why = f"capital {amount:,.2f}: reserve {amount * r.share:,.2f}, " + ", ".join(
                f"{k} {v:,.2f}" for k, v in shares.items()
            )
            scope, details = str(PORTFOLIO), {"allocations": shares}
            return [
                AuditEntry(now, "system:allocator", "allocation", scope, None, None, why, details)
            ]

        self._require_store().update_value("avalanche_reserve", held_back, audit)
        with self._lock:
            for sid, value in shares.items():
                self._registered.add(sid)
                self._ledger.strategy(sid).allocated_capital = value if value > 0 else None
            self._evaluate_everything()
        return shares

    def on_reserve_release(self, fn: Callback) -> None:
        """Call ``fn({"amount", "capital", "score", "incident"})`` when the reserve is
        released (once, at the first criticality crossing)."""
        self._actuator.register("reserve_release", fn)

    def _on_criticality(self, breach: Breach) -> None:
        """The score crossed: release the reserve (once, durably), then start the KillChain,
        once per halt episode (a score that dips and crosses again before the book was reset
        is the same incident, still being handled)."""
        store = self._healthy_store()
        if store is None:
            log.critical("criticality crossed with no healthy store: no incident recorded")
            return
        incident_id = f"criticality-v{self.status_of(PORTFOLIO).version}"
        try:
            handled = any(  # ids are criticality-v<portfolio version>: look them up
                store.incident(f"criticality-v{version}") is not None
                for version in range(self._normal_version, self.status_of(PORTFOLIO).version + 1)
            )
            self._release_reserve(store, breach, None if handled else incident_id)
        except StoreUnavailable as exc:
            log.error("criticality crossing: %s", exc)
            handled = False
        if not handled:
            self._open_incident(
                "criticality",
                breach.message,
                f"rule:{breach.rule}",
                incident_id=incident_id,
                breach=breach,
            )

    def _release_reserve(self, store: StateStore, breach: Breach, incident: str | None) -> None:
        """Once, in one transaction: two processes crossing at once release it once."""
        now = self._clock.time()

        def release(current: Any) -> Any:
            if not isinstance(current, dict) or current.get("released"):
                return None
            return {**current, "released": True, "at": now, "incident": incident}

        def audit(value: Any) -> list[AuditEntry]:
            why = f"avalanche reserve {value['amount']:,.2f} released: {breach.message}"
            actor, scope = f"rule:{breach.rule}", str(PORTFOLIO)
            return [AuditEntry(now, actor, "reserve:released", scope, None, None, why)]

        reserve, released = store.update_value("avalanche_reserve", release, audit)
        if not released:
            return
        payload = {
            "amount": reserve["amount"],
            "capital": reserve["capital"],
            "score": breach.value,
            "incident": incident,
        }
        self._actuator.emit("reserve_release", payload)

    def register_callback(self, event: str, fn: Callback) -> None:
        """Call ``fn`` on ``event``; see ``tradeguard.events.EVENTS``. Sync or async."""
        self._actuator.register(event, fn)

    def register_metrics_source(self, name: str, fn: MetricsSource) -> None:
        """Polled by every breaker tick; returns ``{"portfolio": {...}, "strategies": {...}}``."""
        self._sources[inputs.identifier("source name", name)] = fn

    # -- inputs ---------------------------------------------------------------------------

    def record_trade(self, strategy_id: str, pnl: float) -> None:
        """A closed trade and its realized P&L (currency)."""
        sid = self._strategy_id(strategy_id)
        value = self._valid(Scope.strategy(sid), inputs.number, "pnl", pnl)
        with self._applying(Scope.strategy(sid)):
            self._ledger.record_trade(sid, value)
            self._evaluate_strategy(sid, Topic.TRADES)

    def update_equity(self, equity: float, strategy_id: str | None = None) -> None:
        """Account equity (currency) of the portfolio, or of one strategy."""
        if strategy_id is None:
            self.update_portfolio(equity=equity)
            return
        sid = self._strategy_id(strategy_id)
        value = self._valid(Scope.strategy(sid), inputs.number, "equity", equity)
        with self._applying(Scope.strategy(sid)):
            self._ledger.update_strategy_equity(sid, value)
            self._evaluate_strategy(sid, Topic.EQUITY)

    def update_position(self, strategy_id: str, symbol: str, quantity: float, price: float) -> None:
        """A strategy's net position in a symbol (signed quantity; 0 when flat) and its price."""
        sid = self._strategy_id(strategy_id)
        scope = Scope.strategy(sid)
        sym = self._valid(scope, inputs.identifier, "symbol", symbol)
        qty = self._valid(scope, inputs.number, "quantity", quantity)
        px = self._valid(scope, inputs.positive, "price", price)
        with self._applying(scope):
            self._ledger.update_position(sid, sym, qty, px)
            self._evaluate_strategy(sid, Topic.POSITIONS)

    def update_portfolio(
        self,
        *,
        equity: float | None = None,
        margin_used: float | None = None,
        margin_available: float | None = None,
    ) -> None:
        """Portfolio equity and margin; utilization is used / (used + available)."""
        if equity is None and margin_used is None and margin_available is None:
            self._reject(
                PORTFOLIO, "update_portfolio needs equity, margin_used or margin_available"
            )
        eq = None if equity is None else self._valid(PORTFOLIO, inputs.number, "equity", equity)
        used = available = None
        if margin_used is not None:
            used = self._valid(PORTFOLIO, inputs.non_negative, "margin_used", margin_used)
        if margin_available is not None:
            available = self._valid(
                PORTFOLIO, inputs.non_negative, "margin_available", margin_available
            )
        with self._applying(PORTFOLIO):
            now = self._clock.time()
            if eq is not None:
                for sid in self._ledger.update_portfolio_equity(eq, now):
                    self._evaluate_strategy(sid, Topic.EQUITY)
                self._evaluate_portfolio(Topic.EQUITY)
            if used is not None or available is not None:
                self._ledger.update_margin(used, available)
                self._evaluate_portfolio(Topic.MARGIN)

    def update_prices(self, prices: Mapping[str, float], ts: object = None) -> None:
        """A snapshot of prices; ``ts`` (epoch seconds or aware datetime) defaults to now."""
        if not isinstance(prices, Mapping):
            self._reject(PORTFOLIO, f"prices must be a mapping of symbol to price, got {prices!r}")
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
            skew = self.config.guard.max_clock_skew_seconds
            if at > now + skew:
                self._reject(
                    PORTFOLIO,
                    f"ts {to_iso(at)} is more than {skew:g}s in the future: a clock is wrong",
                )
        with self._applying(PORTFOLIO):
            times = self._ledger.portfolio.price_times
            fresh = {s: p for s, p in clean.items() if at >= times.get(s, at)}
            for sid in self._ledger.update_prices(fresh, at):
                self._evaluate_strategy(sid, Topic.PRICES)
            self._evaluate_portfolio(Topic.PRICES)

    @property
    def criticality(self) -> CriticalityMonitor:
        """The CriticalityMonitor, made on first use."""
        with self._lock:
            if self._criticality is None:
                from tradeguard.criticality.monitor import CriticalityMonitor

                self._criticality = CriticalityMonitor(self.config.criticality)
            return self._criticality

    def update_bars(self, bars: Mapping[str, Mapping[str, float]], ts: object = None) -> None:
        """One market observation per symbol for the CriticalityMonitor: ``close`` and, where
        the feed has them, ``high``, ``low``, ``volume``, ``bid``, ``ask`` (the volume and
        spread indicators use the symbols that give them). The closes also count as a price
        snapshot. Without bars, each criticality cycle samples the last prices instead."""
        if not isinstance(bars, Mapping):
            self._reject(PORTFOLIO, f"bars must be a mapping of symbol to bar, got {bars!r}")
        clean = {
            self._valid(PORTFOLIO, inputs.identifier, "symbol", s): self._valid(
                PORTFOLIO, _bar, f"bar of {s}", b
            )
            for s, b in bars.items()
        }
        self.update_prices({s: b.close for s, b in clean.items()}, ts)
        at = self._clock.time() if ts is None else from_timestamp(ts)
        self.criticality.add(at, clean)
        with self._lock:
            self._bars_given = True
            p = self._ledger.portfolio
            p.market_at = at
            if p.criticality_at is None:  # the monitor owes its first cycle from now on
                p.criticality_at = at

    def heartbeat(self, source: str) -> None:
        """An agent (strategy) is alive; one that has beaten and then goes quiet is stuck."""
        sid = self._strategy_id(source)
        with self._applying(Scope.strategy(sid)):
            self._ledger.heartbeat(sid, self._clock.time())
            self._evaluate_strategy(sid, Topic.HEARTBEAT)

    def update_strategy_metrics(self, strategy_id: str, **metrics: Any) -> None:
        """Report metrics computed elsewhere (the seed's call); see ``STRATEGY_METRICS``."""
        sid = self._strategy_id(strategy_id)
        scope = Scope.strategy(sid)
        values = self._metric_values(scope, STRATEGY_METRICS, metrics)
        with self._applying(scope):
            self._ledger.set_strategy_metrics(sid, values)
            self._evaluate_strategy(sid, Topic.METRICS)

    def update_portfolio_metrics(self, **metrics: Any) -> None:
        """Report portfolio metrics computed elsewhere; see ``PORTFOLIO_METRICS``."""
        values = self._metric_values(PORTFOLIO, PORTFOLIO_METRICS, metrics)
        with self._applying(PORTFOLIO):
            self._ledger.set_portfolio_metrics(values)
            self._evaluate_portfolio(Topic.METRICS)

    # -- validation, failing closed -------------------------------------------------------

    def _strategy_id(self, strategy_id: object) -> str:
        try:
            sid = inputs.identifier("strategy_id", strategy_id)
        except ValueError as exc:
            self._reject(PORTFOLIO, str(exc))
        if sid not in self._registered:
            if self.config.guard.strict_strategies:
                message = f"unknown strategy {sid!r}: register it first (strict_strategies is on)"
                self._halt_invalid(Scope.strategy(sid), message)
                raise UnknownStrategy(message, scope=f"strategy:{sid}")
            with self._lock:
                self._registered.add(sid)
        return sid

    def _valid(
        self, scope: Scope, check: Callable[[str, object], T], name: str, value: object
    ) -> T:
        try:
            return check(name, value)
        except Exception as exc:  # whatever a value does to its check, it is refused
            self._reject(scope, str(exc) if isinstance(exc, ValueError) else f"{name}: {exc!r}")

    def _applying(self, scope: Scope) -> _Applying:
        """Hold the lock while an input is applied; if applying it fails in any unforeseen
        way, halt its scope and say so, rather than let trading go on unwatched."""
        return _Applying(self, scope)

    def _metric_values(
        self, scope: Scope, known: Mapping[str, tuple[str, inputs.Validator]], given: dict[str, Any]
    ) -> dict[str, float | int]:
        if not given.keys() <= known.keys():
            unknown = sorted(set(given) - set(known))
            self._reject(scope, f"unknown metrics {unknown}; known: {sorted(known)}")
        return {name: self._valid(scope, known[name][1], name, v) for name, v in given.items()}

    def _reject(self, scope: Scope, message: str) -> NoReturn:
        self._halt_invalid(scope, message)
        raise InvalidInput(message, scope=str(scope))

    def _halt_invalid(self, scope: Scope, message: str) -> None:
        if scope.kind is ScopeKind.STRATEGY:
            command = Command.HALT
        else:
            command = ACTION_COMMAND[self.config.guard.invalid_input_action]
        log.error("invalid input for %s: %s", scope, message)
        self._transition_quietly(scope, command, SYSTEM, f"invalid_input: {message}")

    # -- evaluation -----------------------------------------------------------------------

    def _evaluate_strategy(self, sid: str, topic: Topic) -> list[Breach]:
        rules = self._rules.strategy_watching(sid, topic)
        if not rules:
            return []
        return self._settle(rules, self._ledger.strategies[sid], f"strategy:{sid}")

    def _evaluate_portfolio(self, topic: Topic) -> list[Breach]:
        rules = self._rules.portfolio_watching(topic)
        return self._settle(rules, self._ledger.portfolio, "portfolio") if rules else []

    def _settle(
        self, rules: Sequence[StrategyRule] | Sequence[PortfolioRule], view: Any, key: str
    ) -> list[Breach]:
        """Apply every breach (level-triggered: a halt lifted while the cause persists comes
        straight back); publish ``breach`` only when a rule starts breaching (edge)."""
        now = self._clock.time()
        active = self._active.get(key)
        if active is None:
            active = self._active[key] = set()
        breaches: list[Breach] = []
        rising: list[Breach] = []
        for rule in rules:
            breach = rule.evaluate(view, now)
            if breach is None:
                active.discard(rule.name)
                continue
            breaches.append(breach)
            if rule.name not in active:
                active.add(rule.name)
                rising.append(breach)
        if not breaches:  # the common case, on every input
            return breaches
        # Strictest first: the weaker actions then find their state already in force.
        for breach in sorted(breaches, key=lambda b: _ACTION_SEVERITY[b.action], reverse=True):
            self._act_on(breach)
        for breach in rising:  # announced once the halt is in force
            log.warning("breach %s on %s: %s", breach.rule, breach.scope, breach.message)
            self._actuator.emit("breach", breach)
            if breach.rule == "criticality":
                self._on_criticality(breach)
        return breaches

    def _act_on(self, breach: Breach) -> None:
        target = breach.scope if breach.action is Action.HALT_STRATEGY else PORTFOLIO
        actor = Actor(ActorKind.RULE, breach.rule)
        self._transition_quietly(
            target, ACTION_COMMAND[breach.action], actor, f"{breach.rule}: {breach.message}", breach
        )

    # -- transitions ----------------------------------------------------------------------

    def status_of(self, scope: Scope) -> ScopeStatus:
        found = self._states.get(str(scope))
        if found is not None:
            return found
        if scope.kind is ScopeKind.PORTFOLIO:
            raise AssertionError("the portfolio always has a state")
        return ScopeStatus(StrategyState.ACTIVE, "registered", 0.0, str(SYSTEM), 0)

    def _transition_quietly(
        self,
        scope: Scope,
        command: Command,
        actor: Actor,
        reason: str,
        breach: Breach | None = None,
    ) -> StateChange | None:
        """For automated actors: a store failure is already handled (emergency), not raised; any
        other failure to apply a halt locks everything down rather than letting trading go on."""
        try:
            return self._transition(scope, command, actor, reason, breach=breach)
        except StoreUnavailable:
            return None
        except Exception as exc:
            log.exception("could not apply %s to %s", command, scope)
            why = f"internal_error: could not apply {command} to {scope}: {exc!r}"
            try:  # durably if the store still works, in memory regardless
                self._transition(PORTFOLIO, Command.EMERGENCY, SYSTEM, why)
            except Exception:
                self._lockdown(why)
            return None

    def _transition(
        self,
        scope: Scope,
        command: Command,
        actor: Actor,
        reason: str,
        *,
        breach: Breach | None = None,
        approvals: Sequence[Approval] = (),
        details: Mapping[str, Any] | None = None,
        rungs: Sequence[Rung] = (),
    ) -> StateChange | None:
        started = time.perf_counter()
        reason = inputs.text(reason)
        tightening = command in TIGHTENING
        if actor.automated and not tightening:
            raise PermissionDenied(f"{actor} is automated and may only tighten, not {command}")
        key = str(scope)
        with self._lock:
            current = self.status_of(scope)
            for _attempt in range(5):
                after = next_state(scope.kind, current.state, command)
                if after is None:  # already at least as strict (perhaps by another process)
                    self._states[key] = current
                    return None
                now = self._clock.time()
                status = ScopeStatus(after, reason, now, str(actor), current.version + 1)
                change = StateChange(
                    scope,
                    str(current.state),
                    str(after),
                    actor,
                    reason,
                    now,
                    status.version,
                    breach,
                    dict(details or {}),
                )
                if tightening:
                    self._states[key] = status  # effective now; durable below
                try:
                    try:
                        self._persist_or_fail(change, current.version, approvals, rungs)
                    except StateConflict:
                        stored = self._stored(key)
                        if not tightening:
                            # A lift is decided on what the person saw; the state moved on.
                            self._states[key] = stored
                            raise InvalidTransition(
                                f"{key} changed in another process (now {stored.state}: "
                                f"{stored.reason}); nothing was lifted: look again"
                            ) from None
                        current = stored  # re-decide the halt on the stored truth; memory
                        continue  # keeps the stricter attempt meanwhile
                except StoreUnavailable as exc:
                    if tightening:
                        self._publish(change)
                        self._fail_store(str(exc))
                    raise
                if not tightening:
                    self._states[key] = status
                break
            else:
                message = f"{key} kept changing in another process; could not record {command}"
                if tightening:
                    self._fail_store(message)
                raise StoreUnavailable(message)
        change = dataclasses.replace(change, durable_seconds=time.perf_counter() - started)
        self._publish(change)
        return change

    def _persist_or_fail(
        self,
        change: StateChange,
        expected: int,
        approvals: Sequence[Approval],
        rungs: Sequence[Rung] = (),
    ) -> None:
        """Whatever stops the write is a store failure: a halt then stands in memory."""
        try:
            self._persist(change, expected, approvals, rungs)
        except (StateConflict, StoreUnavailable):
            raise
        except Exception as exc:
            raise StoreUnavailable(f"could not record {change.after}: {exc!r}") from exc

    def _persist(
        self,
        change: StateChange,
        expected: int,
        approvals: Sequence[Approval],
        rungs: Sequence[Rung],
    ) -> None:
        if self._store is None or (self._store_error and change.after not in _TIGHT_STATES):
            raise StoreUnavailable(self._store_error or "no state store")
        status = ScopeStatus(
            change.after, change.reason, change.at, str(change.actor), change.version
        )
        details = dict(change.details)
        if change.breach is not None:
            details["breach"] = change.breach.to_dict()
        entry = AuditEntry(
            change.at,
            str(change.actor),
            "state_change",
            str(change.scope),
            change.before,
            change.after,
            change.reason,
            details,
        )
        self._store.commit(
            states=[StateWrite(str(change.scope), status, expected)],
            audit=[entry],
            approvals=approvals,
            rungs=rungs,
        )

    def _stored(self, key: str) -> ScopeStatus:
        """The store's row for a scope after a conflict; a row that vanished is corruption."""
        assert self._store is not None
        stored = self._store.load_states().get(key)
        if stored is None:
            raise StoreUnavailable(f"the state row for {key} disappeared from the store")
        return stored

    def _publish(self, change: StateChange) -> None:
        if change.scope.kind is ScopeKind.PORTFOLIO and change.after == PortfolioState.NORMAL:
            self._normal_version = change.version  # a new halt episode may begin
        if change.scope.kind is ScopeKind.STRATEGY and change.after != StrategyState.RECOVERING:
            self._set_rung(change.scope.id, None)  # off the ladder: full size, or halted
        self._react(change)
        self._actuator.emit("state_change", change)
        event = _EVENT_FOR.get((change.scope.kind, change.after))
        if event is None:
            return
        self._actuator.emit(
            event, change.scope.id if change.scope.kind is ScopeKind.STRATEGY else change
        )

    def _audit_refusal(self, user: object, command: Command | str, scope: Scope, why: str) -> None:
        entry = AuditEntry(
            self._clock.time(),
            inputs.text(user, 64),
            f"refused:{command}",
            str(scope),
            None,
            None,
            inputs.text(why),
        )
        self._actuator.emit("refused", dataclasses.asdict(entry))
        try:
            if self._store is None:
                raise StoreUnavailable(self._store_error or "no state store")
            self._store.commit(audit=[entry])
        except StoreUnavailable as exc:
            log.error("could not audit a refused %s by %s: %s", command, user, exc)

    def refuse(self, user: object, action: str, why: str) -> None:
        """Record a refused attempt made at the edge (CLI, API) before it reached a command."""
        self._audit_refusal(user, action, PORTFOLIO, why)

    def _authorize(self, user: object, command: Command, scope: Scope) -> Actor:
        try:
            return self._auth.authorize(user, command)
        except PermissionDenied as exc:
            self._audit_refusal(user, command, scope, str(exc))
            raise

    def _manual(
        self,
        user: object,
        command: Command,
        scope: Scope,
        reason: str,
        *,
        rungs: Sequence[Rung] = (),
    ) -> StateChange | None:
        actor = self._authorize(user, command, scope)
        try:
            change = self._transition(scope, command, actor, reason, rungs=rungs)
        except InvalidTransition as exc:
            self._audit_refusal(user, command, scope, str(exc))
            raise
        if change is None:  # pressed while already at least as strict: still on record
            self._halt_pressed_again(actor, command, scope, reason)
        return change

    def _halt_pressed_again(self, actor: Actor, command: Command, scope: Scope, why: str) -> None:
        """A person asked to stop: any reset waiting for approval no longer reflects the
        situation, so it is superseded and cannot lift this scope past the new request."""
        state = self.status_of(scope).state
        superseded = []
        if scope.kind is ScopeKind.PORTFOLIO and self._store is not None and not self._store_error:
            now = self._clock.time()
            try:
                superseded = [
                    _decided(a, "superseded", None, now)
                    for a in self._store.approvals()
                    if a.scope == str(scope)
                ]
            except StoreUnavailable as exc:
                self._fail_store(str(exc))
        entry = AuditEntry(
            self._clock.time(),
            str(actor),
            f"repeated:{command}",
            str(scope),
            str(state),
            str(state),
            why,
            {"superseded": [a.id for a in superseded]},
        )
        try:
            if self._store is None or self._store_error:
                raise StoreUnavailable(self._store_error or "no state store")
            self._store.commit(audit=[entry], approvals=superseded)
        except StoreUnavailable as exc:
            log.error("could not record a repeated %s by %s: %s", command, actor, exc)

    # -- authentication and users ---------------------------------------------------------

    @property
    def auth_enabled(self) -> bool:
        return self.config.auth.enabled

    def authenticate(self, user: object, token: str | None) -> None:
        """Check ``token`` is ``user``'s (CLI and HTTP); refusals are audited. With auth off in
        the config this accepts anyone the roles know, and callers say so."""
        if not self.config.auth.enabled:
            return
        name = user if isinstance(user, str) else ""
        record = None
        if self._store is not None and not self._store_error:
            with contextlib.suppress(StoreUnavailable):
                record = self._store.users().get(name)
        if record is None or record.salt is None or record.token_hash is None:
            known = record is not None or name in self.config.users
            why = (
                f"{user!r} has no token: `tradeguard users token {name}` issues one"
                if known
                else f"unknown user {user!r}"
            )
            self._audit_refusal(user, "authenticate", PORTFOLIO, why)
            raise PermissionDenied(why)
        key = (name, hashlib.sha256((token or "").encode()).hexdigest())
        if self._verified.get(key) == record.token_hash:
            return
        if not token or not token_matches(token, record.salt, record.token_hash):
            self._audit_refusal(user, "authenticate", PORTFOLIO, "wrong token")
            raise PermissionDenied(f"wrong token for {name}")
        self._verified[key] = record.token_hash

    def users(self) -> list[dict[str, Any]]:
        """Every user: the store's records and the config's ``users:``; the store's role wins."""
        stored = self._require_store().users()
        listed = []
        for name in sorted(set(stored) | set(self.config.users)):
            record = stored.get(name)
            listed.append(
                {
                    "name": name,
                    "role": record.role if record else self.config.users[name].label,
                    "has_token": record is not None and record.token_hash is not None,
                    "source": "store" if record else "config",
                }
            )
        return listed

    def add_user(self, name: str, role: str, *, by: str) -> str:
        """Create a user and return its token (shown once; only its hash is kept)."""
        store = self._require_store()
        name = self._valid_user_name(name)
        parsed = self._valid_role(role)
        if name in store.users() or name in self.config.users:
            raise BadRequest(f"user {name!r} exists: use `set-role` or `token`")
        return self._put_user(name, parsed, by=by, action="user:added", token=new_token())

    def issue_token(self, name: str, *, by: str) -> str:
        """A new token for an existing user; the old one stops working."""
        record = self._require_store().users().get(name)
        role = Role.parse(record.role) if record is not None else self.config.users.get(name)
        if role is None:
            raise UnknownRequest(f"no user {name!r}")
        return self._put_user(name, role, by=by, action="user:token", token=new_token())

    def set_role(self, name: str, role: str, *, by: str) -> None:
        record = self._require_store().users().get(name)
        if record is None and name not in self.config.users:
            raise UnknownRequest(f"no user {name!r}")
        self._put_user(
            name, self._valid_role(role), by=by, action="user:role", token=None, keep=record
        )

    def remove_user(self, name: str, *, by: str) -> None:
        """Remove a user's record (role and token). One listed in the config keeps its config
        role, without a token, until it is removed from the config too."""
        audit = self._user_audit(by, "user:removed", name, "removed")
        if not self._require_store().remove_user(name, audit):
            raise UnknownRequest(f"no user {name!r} in the store")

    def _put_user(
        self,
        name: str,
        role: Role,
        *,
        by: str,
        action: str,
        token: str | None,
        keep: UserRecord | None = None,
    ) -> str:
        if name in self.config.autonomy.principals:
            raise BadRequest(f"{name} is an automated principal: it cannot be a user too")
        salt: str | None
        digest: str | None
        issuer: str | None
        if token:
            (salt, digest), issuer = hash_token(token), by
        else:
            salt = keep.salt if keep else None
            digest = keep.token_hash if keep else None
            issuer = keep.issued_by if keep else None
        record = UserRecord(name, role.label, salt, digest, self._clock.time(), issuer)
        audit = self._user_audit(by, action, name, f"role {role.label}")
        self._require_store().put_user(record, audit)
        return token or ""

    @staticmethod
    def _valid_user_name(name: str) -> str:
        """Letters, digits and _.@- only: a user named "system:guard" or "local:x" would read
        in the audit log like the guard itself or a bootstrap administrator."""
        if not isinstance(name, str) or not USER_NAME.match(name):
            raise BadRequest(f"invalid user name {name!r}: 1-64 letters, digits and _.@-")
        return name

    @staticmethod
    def _valid_role(role: str) -> Role:
        try:
            return Role.parse(role)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    def _require_store(self) -> StateStore:
        if self._store is None or self._store_error:
            raise StoreUnavailable(self._store_error or "no state store")
        return self._store

    # -- manual overrides -----------------------------------------------------------------

    def _manual_strategy_id(self, strategy_id: object, user: object, command: Command) -> str:
        try:
            return inputs.identifier("strategy_id", strategy_id)
        except ValueError as exc:
            self._audit_refusal(user, command, PORTFOLIO, str(exc))
            raise BadRequest(str(exc)) from None

    def _refresh(self, key: str) -> None:
        """Before a lift, take the store's word if another process moved the scope on."""
        if self._store is None or self._store_error:
            return
        stored = self._store.load_states().get(key)
        mine = self._states.get(key)
        if stored is not None and (mine is None or stored.version > mine.version):
            self._states[key] = stored

    def _recheck(self, key: str) -> None:
        """Right after a lift: conditions that still breach halt again now, not at the next
        tick (level-triggered, like every evaluation)."""
        if key == "portfolio":
            self._settle(self._rules.portfolio, self._ledger.portfolio, key)
        else:
            sid = Scope.parse(key).id
            self._settle(self._rules.for_strategy(sid), self._ledger.strategy(sid), key)

    def halt_strategy(
        self, strategy_id: str, user: str, reason: str = "manual halt"
    ) -> StateChange | None:
        """Any known user may halt. Returns None when it was already halted."""
        sid = self._manual_strategy_id(strategy_id, user, Command.HALT)
        with self._lock:
            change = self._manual(user, Command.HALT, Scope.strategy(sid), reason)
            self._registered.add(sid)
            self._ledger.strategy(sid)
        return change

    def resume_strategy(
        self, strategy_id: str, user: str, reason: str = "manual resume"
    ) -> StateChange:
        """Needs senior_trader, the halt's cool-down served, and the strategy fit to trade
        (``ResumeRefused`` names every failed check). It then re-enters on the recovery ladder
        (paper -> 25% -> 50% -> full), or at full size with the ladder off. Loss counters
        restart from here."""
        sid = self._manual_strategy_id(strategy_id, user, Command.RESUME)
        scope = Scope.strategy(sid)
        command = Command.RESUME if self.config.recovery.enabled else Command.RESUME_FULL
        self._authorize(user, Command.RESUME, scope)
        held = self._venue_positions(sid)  # venue I/O: never under the guard's lock
        with self._lock:
            self._refresh("portfolio")
            if self.portfolio_state is PortfolioState.EMERGENCY:
                why = (
                    "lockdown: nothing is resumed during an emergency; "
                    "the two-person reset comes first"
                )
                self._audit_refusal(user, Command.RESUME, scope, why)
                raise PermissionDenied(why)
            self._refresh(str(scope))
            status = self.status_of(scope)
            if status.state != StrategyState.HALTED:
                why = f"cannot resume strategy {sid} in state {status.state}: only a halt lifts"
                self._audit_refusal(user, Command.RESUME, scope, why)
                raise InvalidTransition(why)
            problems = self._unfit_to_resume(sid, status, held)
            if problems:
                why = f"cannot resume {sid} yet: " + "; ".join(problems)
                self._audit_refusal(user, Command.RESUME, scope, why)
                raise ResumeRefused(why, problems=problems)
            rungs = []
            if command is Command.RESUME:  # the ladder's first rung, written with the resume
                rebased, now = self._ledger.rebased(sid), self._clock.time()
                rungs = [self._ladder.first(str(scope), status.version + 1, now, rebased, user)]
            change = self._manual(user, command, scope, reason, rungs=rungs)
            assert change is not None  # a resume is never a no-op
            self._ledger.rebase_strategy(sid)
            self._save_baseline(str(scope))
            self._active.pop(str(scope), None)
            if rungs:
                self._set_rung(sid, rungs[0])
            self._recheck(str(scope))
        return change

    def _unfit_to_resume(
        self, sid: str, status: ScopeStatus, held: dict[str, float] | str | None
    ) -> list[str]:
        """Every reason not to lift the halt now: its cool-down, stale feeds, the portfolio
        hard-halted, its stop still running, a limit still crossed once its loss counters
        restart, positions the venues and the guard disagree on."""
        now = self._clock.time()
        key = f"strategy:{sid}"
        seconds = self._cooldown(status, self._active.get(key, ()), self.config.triggers_for(sid))
        wait = cooldown_left(status, seconds, now)
        problems = [wait] if wait else []
        if self.portfolio_state is PortfolioState.HARD_HALT:
            problems.append("the portfolio is hard-halted: reset it first")
        store = self._healthy_store()
        running = [] if store is None else [d["id"] for d in store.incidents(status="running")]
        if running:
            problems.append(f"incident {', '.join(running)} is still running")
        fresh = self._ledger.rebased(sid)
        problems += [
            f"still breaching: {b.message}"
            for rule in self._rules.for_strategy(sid)
            if (b := rule.evaluate(fresh, now)) is not None
        ]
        return problems + self._unfit_to_trade(sid, held, now)

    def _unfit_to_trade(
        self, sid: str, held: dict[str, float] | str | None, now: float
    ) -> list[str]:
        """What a strategy coming back needs from the live system, checked at the resume and
        again, by the guard that has the feeds and the venues, before it leaves paper."""
        problems = []
        stale = sorted(
            rule.name
            for rule in self._rules.portfolio
            if rule.name in ("feed_stale", "equity_stale")
            and rule.evaluate(self._ledger.portfolio, now) is not None
        )
        if stale:
            problems.append(f"feeds are stale ({', '.join(stale)})")
        running = self._flattens.get(f"strategy:{sid}")
        if running is not None and not running.done():
            problems.append("its emergency stop is still running")
        if isinstance(held, str):
            problems.append(held)
        elif held is not None:
            known = {s: q for s, (q, _mark) in self._ledger.strategy(sid).positions.items()}
            problems += unreconciled(known, held)
        return problems

    def _cooldown(self, status: ScopeStatus, breaching: Iterable[str], triggers: Triggers) -> float:
        """The longest cool-down of the halt's cause and of every rule still breaching on the
        scope (a rule that fired after a person's halt still gets its own wait)."""
        causes = [*breaching]
        kind, _, name = status.actor.partition(":")
        if kind == "rule":
            causes.append(name)
        return cooldown_seconds(
            causes, (triggers, self.config.triggers), self.config.recovery.cooldown_seconds
        )

    def _venue_positions(self, sid: str) -> dict[str, float] | str | None:
        """What the attached venues hold for the strategy, summed per symbol; None without
        venues (a CLI process), or why they could not be read (which refuses the resume)."""
        with self._lock:
            venues = list(self._venues)
        if not venues:
            return None

        async def read() -> dict[str, float]:
            held: dict[str, float] = {}
            for venue in venues:
                for p in await venue.positions(sid):
                    held[p.symbol] = held.get(p.symbol, 0.0) + p.quantity
            return held

        timeout = self.config.emergency.call_timeout_seconds * len(venues)
        try:
            return self._actuator.submit(read).result(timeout=timeout)
        except Exception as exc:
            return f"cannot reconcile positions with the venues: {exc!r}"

    # -- the recovery ladder ----------------------------------------------------------------

    def _set_rung(self, sid: str, rung: Rung | None) -> None:
        """The one place a strategy's rung changes: the pre-trade allocation and the stage's
        P&L floor follow it."""
        with self._lock:
            if rung is None:
                self._rungs.pop(sid, None)
            else:
                self._rungs[sid] = rung
            m = self._ledger.strategies.get(sid)
            if m is not None:
                m.recovery_floor = None if rung is None else self._ladder.floor(rung)

    def _rung_of(self, sid: str, status: ScopeStatus) -> Rung:
        """The rung of a recovering strategy. One this guard has not got (a resume written
        before a crash cut off its rung) starts at the bottom, from the resume."""
        rung = self._rungs.get(sid)
        if rung is None or rung.version != status.version:
            m = self._ledger.strategy(sid)
            rung = self._ladder.first(
                f"strategy:{sid}", status.version, status.since, m, status.actor
            )
            self._set_rung(sid, rung)
        return rung

    def _adopt_rungs(self) -> None:
        """Load the stored rungs of recovering strategies: at start, and when another process
        resumed one."""
        if self._store is None:
            return
        stored = self._store.rungs()
        for key, status in list(self._states.items()):
            if key == "portfolio" or status.state != StrategyState.RECOVERING:
                continue
            rung = stored.get(key)
            if rung is not None and rung.version == status.version:
                self._set_rung(Scope.parse(key).id, rung)

    def _climb(self) -> None:
        """From the breaker tick: a recovering strategy whose gate passed moves up a rung, and
        past the last one back to full size. The person who resumed it authorized the whole
        ladder, so each step is audited in that name and needs that person still to hold the
        role. Nothing climbs while the strategy breaches or the portfolio is halted; leaving
        paper also needs the live checks a resume made elsewhere (a CLI) could not make: fresh
        feeds, no stop running, positions reconciled with the venues (read outside the lock)."""
        now = self._clock.time()
        with self._lock:
            due = []
            for key, status in list(self._states.items()):
                if key != "portfolio" and status.state == StrategyState.RECOVERING:
                    sid = Scope.parse(key).id
                    rung = self._rung_of(sid, status)
                    if self._ladder.gate(rung, self._ledger.strategy(sid), now) is None:
                        due.append((sid, rung))
                    else:
                        self._holds.pop(sid, None)
        held = {sid: self._venue_positions(sid) for sid, rung in due if rung.stage == 0}
        with self._lock:
            for sid, rung in due:
                if self._rungs.get(sid) != rung:
                    continue  # halted, or moved by another guard meanwhile
                blockers = self._blockers(sid, rung, held.get(sid), now)
                if blockers:
                    self._holds[sid] = "; ".join(blockers)
                    continue
                self._holds.pop(sid, None)
                self._step(sid, rung, now)

    def _blockers(
        self, sid: str, rung: Rung, held: dict[str, float] | str | None, now: float
    ) -> list[str]:
        problems = []
        role = self._role_of(rung.authorized_by)
        if role is None or role < REQUIRED_ROLE[Command.RESUME]:
            problems.append(
                f"{rung.authorized_by}, who resumed it, may no longer resume: halt it and "
                "have a senior_trader resume it"
            )
        if self.portfolio_state is not PortfolioState.NORMAL:
            problems.append(f"the portfolio is in {self.portfolio_state}")
        breaching = self._active.get(f"strategy:{sid}")
        if breaching:
            problems.append(f"breaching {', '.join(sorted(breaching))}")
        if rung.stage == 0:
            problems += self._unfit_to_trade(sid, held, now)
        return problems

    def _step(self, sid: str, rung: Rung, now: float) -> None:
        m = self._ledger.strategy(sid)
        passed = self._ladder.stage(rung).name
        following = self._ladder.following(rung, now, m)
        if following is None:
            self._transition_or_log(
                Scope.strategy(sid),
                Command.PROMOTE,
                Actor(ActorKind.USER, rung.authorized_by),
                f"recovery ladder complete: gate of {passed} passed; back to full size "
                f"(on {rung.authorized_by}'s resume)",
            )
            return
        name = self._ladder.stage(following).name
        entry = AuditEntry(
            now,
            rung.authorized_by,
            "recovery_stage",
            f"strategy:{sid}",
            passed,
            name,
            f"gate of {passed} passed: recovery moves up to {name} "
            f"(on {rung.authorized_by}'s resume)",
            {"resumed_by": rung.authorized_by, "version": rung.version},
        )
        try:
            if self._store is None or self._store_error:
                raise StoreUnavailable(self._store_error or "no state store")
            self._store.commit(audit=[entry], rungs=[following])
        except StateConflict:  # another guard on the store climbed it first
            self._adopt_rungs()
            return
        except StoreUnavailable as exc:  # not recorded, so not climbed: the size stays small
            log.error("could not record the recovery step of %s: %s", sid, exc)
            return
        self._set_rung(sid, following)

    def _transition_or_log(self, scope: Scope, command: Command, actor: Actor, why: str) -> None:
        """A loosening move the guard makes on a person's authority: a failure leaves the
        stricter state in force, which is safe, and is logged."""
        try:
            self._transition(scope, command, actor, why)
        except TradeguardError as exc:
            log.error("could not %s %s: %s", command, scope, exc)

    def _stage_of(self, sid: str, status: ScopeStatus) -> float:
        """The pre-trade allocation of a recovering strategy: its rung's fraction; paper while
        this guard does not know the rung (no I/O here: the hot path)."""
        rung = self._rungs.get(sid)
        if rung is None or rung.version != status.version:
            return 0.0
        return self._ladder.stage(rung).fraction

    def portfolio_halt(self, user: str, reason: str = "manual soft halt") -> StateChange | None:
        """Soft halt: no new risk; positions are kept."""
        return self._manual(user, Command.SOFT_HALT, PORTFOLIO, reason)

    def portfolio_close(self, user: str, reason: str = "manual hard halt") -> StateChange | None:
        """Hard halt: no orders; cancel all and close all positions."""
        return self._manual(user, Command.HARD_HALT, PORTFOLIO, reason)

    def emergency(self, user: str, reason: str = "manual emergency stop") -> StateChange | None:
        """Lockdown; only a two-person reset lifts it."""
        return self._manual(user, Command.EMERGENCY, PORTFOLIO, reason)

    async def emergency_stop(
        self, initiator: str, reason: str = "manual emergency stop"
    ) -> FlattenReport:
        """The seed's coroutine: lock everything down, then cancel every order and close every
        position on every venue; returns when the book is verified flat or the stop gave up."""
        self.emergency(initiator, reason)
        future = self._flatten(None, reason)
        if future is None:
            now = self._clock.time()
            # Nothing attached, nothing verified: not "flat", which would be a claim.
            return FlattenReport("", "portfolio", "no venues attached", True, now, now, flat=False)
        return await asyncio.wrap_future(future)

    def reset(self, user: str, reason: str = "manual reset") -> Approval:
        """Lift a portfolio halt. A soft or hard halt is lifted at once by a risk_manager; an
        emergency opens a two-person request that another user completes with ``approve``."""
        with self._lock:
            actor = self._authorize(user, Command.RESET, PORTFOLIO)
            self._refresh("portfolio")
            current = self.status_of(PORTFOLIO)
            if current.state == PortfolioState.NORMAL:
                why = "the portfolio is not halted: nothing to reset"
                self._audit_refusal(user, Command.RESET, PORTFOLIO, why)
                raise InvalidTransition(why)
            now = self._clock.time()
            breaching = self._active.get("portfolio", ())
            wait = cooldown_left(
                current, self._cooldown(current, breaching, self.config.triggers), now
            )
            if wait:
                self._audit_refusal(user, Command.RESET, PORTFOLIO, f"cannot reset yet: {wait}")
                raise ResumeRefused(f"cannot reset yet: {wait}", problems=[wait])
            request = Approval(
                id=secrets.token_hex(6),
                action=str(Command.RESET),
                scope=str(PORTFOLIO),
                requested_by=str(actor),
                requested_at=now,
                expires_at=now + self.config.guard.approval_ttl_seconds,
                target_version=current.version,
                status="pending",
                reason=inputs.text(reason),
            )
            if current.state in TWO_PERSON_RESET:
                self._commit_request(
                    request, f"reset of {current.state} requested; needs a second approver"
                )
                return request
            done = _decided(request, "executed", str(actor), now)
            self._lift(actor, reason, done)
            return done

    def approve(self, request_id: str, user: str) -> StateChange | Approval:
        """Complete a two-person request as a second, different, authorized user: a reset
        returns its state change, a genome unblock the executed request."""
        with self._lock:
            actor = self._authorize(user, Command.RESET, PORTFOLIO)
            if self._store is None or self._store_error:
                raise StoreUnavailable(self._store_error or "no state store")
            request = self._store.approval(str(request_id))
            if request is None:
                self._audit_refusal(user, "approve", PORTFOLIO, f"no request {request_id!r}")
                raise UnknownRequest(f"no two-person request {request_id!r}; see pending_approvals")
            now = self._clock.time()
            self._refresh("portfolio")
            problem, status = self._approval_problem(request, str(actor), now)
            if problem:
                self._audit_refusal(user, "approve", PORTFOLIO, f"{request.id}: {problem}")
                if status:
                    self._commit_request(_decided(request, status, None, now), problem)
                raise ApprovalRefused(problem)
            done = _decided(request, "executed", str(actor), now)
            if request.action == "unblock_genome":
                self._unblock(actor, done)
                return done
            return self._lift(actor, request.reason, done)

    def _issued_by(self, approver: str, requester: str) -> bool:
        """Whether ``requester`` issued ``approver``'s token, directly or through a chain of
        issuers: then it is one person with two names, not two people."""
        users = self._require_store().users()
        name, seen = approver, set()
        while name not in seen:
            seen.add(name)
            record = users.get(name)
            if record is None or record.issued_by is None:
                return False
            if record.issued_by == requester:
                return True
            name = record.issued_by
        return False

    def _approval_problem(self, request: Approval, approver: str, now: float) -> tuple[str, str]:
        """Why the request cannot be approved, and the status it moves to (if it changes)."""
        if request.status != "pending":
            return f"request {request.id} is {request.status}; it cannot be used again", ""
        if now > request.expires_at:
            return f"request {request.id} expired at {to_iso(request.expires_at)}", "expired"
        if approver == request.requested_by:
            return "the second approver must be a different person from the requester", ""
        if self._issued_by(approver, request.requested_by):
            return (
                f"{approver}'s token was issued by {request.requested_by}, the requester: "
                "the second approver must hold credentials of their own"
            ), ""
        requester_role = self._role_of(request.requested_by)
        if requester_role is None or requester_role < REQUIRED_ROLE[Command.RESET]:
            return (
                f"the requester {request.requested_by} may no longer reset: open a new request"
            ), "superseded"
        if request.scope.startswith("genome:"):
            fp, incident = _genome_request(request)
            record = self._genome_record(fp)
            if record is None or not record.blacklisted or record.incident != incident:
                return "the genome's blacklisting changed since the request: open a new one", (
                    "superseded"
                )
        elif self.status_of(Scope.parse(request.scope)).version != request.target_version:
            return (
                "the portfolio changed since the request was opened: open a new one",
                "superseded",
            )
        return "", ""

    def _lift(self, actor: Actor, reason: str, request: Approval) -> StateChange:
        approvers = {
            "request": request.id,
            "requested_by": request.requested_by,
            "approved_by": request.approved_by,
        }
        change = self._transition(
            PORTFOLIO, Command.RESET, actor, reason, approvals=[request], details=approvers
        )
        assert change is not None  # RESET is never a no-op
        self._ledger.rebase_portfolio()
        self._active.pop("portfolio", None)
        self._recheck("portfolio")
        return change

    def _commit_request(self, request: Approval, why: str) -> None:
        if self._store is None or self._store_error:
            raise StoreUnavailable(self._store_error or "no state store")
        entry = AuditEntry(
            self._clock.time(),
            request.requested_by,
            f"request:{request.status}",
            request.scope,
            None,
            None,
            why,
            {"request": request.id},
        )
        self._store.commit(audit=[entry], approvals=[request])

    # -- orders and limits -----------------------------------------------------------------

    def check_order(self, order: Order) -> Decision:
        """The 8-point pre-trade verdict, called before every order: kill_switch, bounds,
        limits, cap, drawdown, rate, dedup, allocation. Reads state without the guard's lock."""
        refused = pretrade.malformed(order)
        if refused is None and order.strategy_id not in self._registered:
            refused = Decision(
                False,
                "kill_switch",
                f"unknown strategy {order.strategy_id!r}: "
                "register it or report its state before it trades",
            )
        if refused is None and order.strategy_id in self._blocked:
            refused = Decision(
                False, "kill_switch", f"{order.strategy_id}'s genome is blacklisted by an incident"
            )
        if refused is None:
            sid, symbol = order.strategy_id, order.symbol
            held = self._ledger.strategies.get(sid)
            entry = None if held is None else held.positions.get(symbol)
            strategy = self._states.get("strategy:" + sid)
            try:  # an order that breaks a check is refused, not let through
                stage: float | None = None
                position_limit: float | None = None
                if strategy is not None and strategy.state == _RECOVERING:
                    stage, position_limit = self._stage_of(sid, strategy), self._position_limit(sid)
                # tuple.__new__: the NamedTuple's own constructor is a Python-level function
                # that costs three times as much, on every order
                context = tuple.__new__(
                    pretrade.Context,
                    (
                        self._states["portfolio"].state,
                        _ACTIVE if strategy is None else strategy.state,
                        0.0 if entry is None else entry[0],
                        0.0 if held is None else held.gross_notional,
                        None if held is None else held.drawdown,
                        # the market's last price, else the position's own mark (an exit must
                        # not be refused because only the position, not the feed, named it)
                        self._ledger.portfolio.prices.get(
                            symbol, None if entry is None else entry[1]
                        ),
                        self._capital_cap(sid, held),
                        stage,
                        position_limit,
                    ),
                )
                decision = self._pipeline.check(
                    order, context, self._clock.time(), well_formed=True
                )
            except Exception as exc:
                log.exception("pre-trade check failed on %r", order)
                decision = Decision(False, "bounds", f"could not check the order: {exc!r}")
            if decision.accepted:
                return decision
            refused = decision
        self.refusals[refused.check or "unknown"] += 1  # plain counter: no lock on the hot path
        return refused

    def order_closed(self, strategy_id: str, client_order_id: str) -> bool:
        """Tell the guard an accepted order is done (filled, cancelled or rejected), so it stops
        counting against caps and reduce-only; without this, it counts for
        ``pretrade.reservation_seconds``. Report the new position with ``update_position``."""
        return self._pipeline.closed(strategy_id, client_order_id)

    def _position_limit(self, sid: str) -> float | None:
        """The largest position the position_size trigger lets the strategy hold now."""
        trigger = self.config.triggers_for(sid).position_size
        equity = self._ledger.portfolio.equity
        if not trigger.enabled or equity is None or equity <= 0:
            return None
        return trigger.limit * equity

    def _capital_cap(self, sid: str, held: StrategyMetrics | None) -> float | None:
        if held is None or held.allocated_capital is None:
            return None
        factor = self._capital_factor.get(sid)
        if factor is None:
            trigger = self.config.triggers_for(sid).agent_capital
            factor = self._capital_factor[sid] = trigger.limit if trigger.enabled else math.inf
        return held.allocated_capital * factor

    def set_limit(
        self,
        trigger: str,
        user: str,
        *,
        limit: float | None = None,
        action: str | None = None,
        enabled: bool | None = None,
        reason: str = "limit change",
    ) -> None:
        """Change a trigger at run time (risk_manager; audited; not persisted across restarts:
        the config file stays the source of truth). During an emergency the limits are frozen:
        only a change that makes the trigger stricter is accepted."""
        actor = self._authorize(user, Command.CONFIGURE, PORTFOLIO)
        with self._lock:
            self._refresh("portfolio")  # an emergency declared elsewhere freezes limits here too
            current = getattr(self.config.triggers, trigger, None)
            if trigger not in Triggers.model_fields or not isinstance(current, Trigger):
                self._refuse_config(
                    user, f"unknown trigger {trigger!r}; known: {sorted(Triggers.model_fields)}"
                )
            changes = {
                k: v
                for k, v in (("limit", limit), ("action", action), ("enabled", enabled))
                if v is not None
            }
            if not changes:
                self._refuse_config(user, "nothing to change: give limit, action or enabled")
            try:
                new = type(current).model_validate({**current.model_dump(), **changes})
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or trigger}: {e['msg']}" for e in exc.errors()
                )
                self._refuse_config(user, f"triggers.{trigger}: {problems}")
            if self.portfolio_state is PortfolioState.EMERGENCY and not _stricter(
                trigger, current, new
            ):
                why = (
                    "lockdown: limits are frozen during an emergency; only a stricter "
                    "limit is accepted until the two-person reset"
                )
                self._audit_refusal(user, Command.CONFIGURE, PORTFOLIO, why)
                raise PermissionDenied(why)
            if self._store is None or self._store_error:
                raise StoreUnavailable(self._store_error or "no state store")
            before, after = current.model_dump(mode="json"), new.model_dump(mode="json")
            self._store.commit(
                audit=[
                    AuditEntry(
                        self._clock.time(),
                        str(actor),
                        "configure",
                        f"trigger:{trigger}",
                        json.dumps(before, sort_keys=True),
                        json.dumps(after, sort_keys=True),
                        reason,
                    )
                ]
            )
            triggers = self.config.triggers.model_copy(update={trigger: new})
            self.config = self.config.model_copy(update={"triggers": triggers})
            self._rules = RuleSet(self.config)
            self._capital_factor.clear()  # the pre-trade cap follows the new agent_capital
            self._evaluate_everything()  # a tightened limit may already be crossed

    def _refuse_config(self, user: object, why: str) -> NoReturn:
        self._audit_refusal(user, Command.CONFIGURE, PORTFOLIO, why)
        raise BadRequest(why)

    # -- the emergency stop on the venues ---------------------------------------------------

    def add_venue(self, venue: Venue) -> None:
        """A venue whose orders and positions the emergency stop takes care of."""
        with self._lock:
            if any(v.name == venue.name for v in self._venues):
                raise ValueError(f"a venue named {venue.name!r} is already attached")
            self._venues.append(venue)  # the coordinator sees the list: no rebuild, no new locks

    def _react(self, change: StateChange) -> None:
        """What a state change sets in motion on the venues: a hard halt or emergency takes
        the book flat; a strategy halt cancels its orders and, by its policy, closes it."""
        if change.scope.kind is ScopeKind.PORTFOLIO:
            if change.after in _FLATTENING:
                self._flatten(None, change.reason)
            if change.after == PortfolioState.EMERGENCY:  # every emergency is an incident
                self._open_incident(
                    "emergency",
                    change.reason,
                    str(change.actor),
                    incident_id=f"emergency-v{change.version}",
                    breach=change.breach,
                )
        elif change.after in (StrategyState.HALTED, StrategyState.DISABLED):
            self._flatten(change.scope.id, change.reason)

    def _still_halted(self, scope: str) -> bool:
        """Whether a stop for ``scope`` should go on: a lift ends it (and its escalation)."""
        if scope == "portfolio":
            return self.portfolio_state in _FLATTENING
        state = self.status_of(Scope.parse(scope)).state
        return state in (StrategyState.HALTED, StrategyState.DISABLED)

    def _keep_stopping(self) -> None:
        """From the breaker tick: a scope still halted whose last stop gave up, failed, or
        missed a venue attached since gets another stop. It keeps at it until flat."""
        if not self._venues:
            return
        names = {v.name for v in self._venues}
        scopes = ["portfolio"] + [k for k in self._states if k.startswith("strategy:")]
        for scope in scopes:
            if not self._still_halted(scope):
                continue
            running = self._flattens.get(scope)
            if running is not None and not running.done():
                continue
            last = self._last_reports.get(scope)
            if last is not None and last.flat and {v.venue for v in last.venues} == names:
                continue
            if last is None and running is None and scope != "portfolio":
                continue  # never started here: a strategy halted before this process began
            sid = None if scope == "portfolio" else Scope.parse(scope).id
            self._flatten(sid, "retry: the last stop did not verify every venue flat")

    def _flatten(
        self, strategy_id: str | None, reason: str
    ) -> concurrent.futures.Future[FlattenReport] | None:
        """Start a stop for the scope, or join the one running; intent is recorded first."""
        if not self._venues:
            return None
        scope = "portfolio" if strategy_id is None else f"strategy:{strategy_id}"
        close = strategy_id is None or self.config.on_halt(strategy_id) is OnHalt.FLATTEN
        with self._lock:
            running = self._flattens.get(scope)
            if running is not None and not running.done():
                return running
            run = FlattenRun(secrets.token_hex(6), scope, reason, "running", self._clock.time())
            self._record_run(run)
            stopper = self._coordinator()
            future = self._actuator.submit(lambda: self._execute(stopper, run, strategy_id, close))
            self._flattens[scope] = future
        return future

    def _coordinator(self) -> EmergencyStop:
        if self._stopper is None:
            e = self.config.emergency
            policy = StopPolicy(
                e.deadline_seconds,
                e.give_up_seconds,
                e.backoff_initial_seconds,
                e.backoff_max_seconds,
                e.max_in_flight,
                e.call_timeout_seconds,
            )
            self._stopper = EmergencyStop(
                self._venues,
                clock=self._clock,
                policy=policy,
                sleep=self._sleep,
                on_step=self._flatten_step,
                still_wanted=self._still_halted,
            )
        return self._stopper

    async def _execute(
        self, stopper: EmergencyStop, run: FlattenRun, strategy_id: str | None, close: bool
    ) -> FlattenReport:
        try:
            report = await stopper.run(
                run_id=run.id, reason=run.reason, strategy_id=strategy_id, close_positions=close
            )
        except Exception as exc:
            log.exception("emergency stop %s failed", run.id)
            self._record_run(dataclasses.replace(run, status="failed", report={"error": repr(exc)}))
            raise
        status = "flat" if report.flat else "incomplete"
        self._record_run(dataclasses.replace(run, status=status, report=report.to_dict()))
        self.last_flatten = report
        self._last_reports[report.scope] = report
        self._actuator.emit("flatten_done", report)
        return report

    def _record_run(self, run: FlattenRun) -> None:
        try:
            if self._store is None or self._store_error:
                raise StoreUnavailable(self._store_error or "no state store")
            self._store.record_flatten(run)
        except StoreUnavailable as exc:  # the stop goes on; only its record is missing
            log.error("could not record emergency stop %s (%s): %s", run.id, run.status, exc)

    def _flatten_step(self, kind: str, details: dict[str, Any]) -> None:
        """Every step of a stop is audited and published; a missed deadline escalates."""
        scope = str(details.get("scope", "portfolio"))
        entry = AuditEntry(
            self._clock.time(),
            "system:emergency_stop",
            f"flatten:{kind}",
            scope,
            None,
            None,
            _step_summary(kind, details),
            details,
        )
        try:
            if self._store is not None and not self._store_error:
                self._store.commit(audit=[entry])
        except StoreUnavailable as exc:
            log.error("could not audit emergency stop step %s: %s", kind, exc)
        self._actuator.emit("flatten_step", {"step": kind, **details})
        if kind != "escalated":
            return
        breach = Breach(
            "flatten_deadline",
            Scope.parse(scope),
            float(details["elapsed"]),
            float(details["deadline"]),
            Action.EMERGENCY,
            f"{details['venue']} not flat after {details['elapsed']:.1f}s",
            float(details["at"]),
        )
        if not self._still_halted(scope):
            return  # lifted meanwhile: nothing to escalate
        self._actuator.emit("breach", breach)
        self._actuator.emit("escalation", breach)
        if scope == "portfolio":
            self._transition_quietly(
                PORTFOLIO,
                Command.EMERGENCY,
                Actor(ActorKind.RULE, "flatten_deadline"),
                f"flatten_deadline: {breach.message}",
                breach,
            )

    def _resume_stops(self) -> None:
        """After a restart: a hard halt or emergency still in force is taken flat again, and
        strategy stops that were cut off are finished."""
        if not self._venues:
            return
        interrupted = []
        if self._store is not None and not self._store_error:
            try:
                interrupted = self._store.flatten_runs(status="running")
            except StoreUnavailable as exc:
                self._fail_store(str(exc))
        for run in interrupted:
            self._record_run(dataclasses.replace(run, status="interrupted"))
        if self.portfolio_state in (PortfolioState.HARD_HALT, PortfolioState.EMERGENCY):
            self._flatten(None, f"resumed after restart: {self.status_of(PORTFOLIO).reason}")
        for run in interrupted:
            scope = Scope.parse(run.scope)
            if scope.kind is ScopeKind.STRATEGY and self.strategy_state(scope.id) in (
                StrategyState.HALTED,
                StrategyState.DISABLED,
            ):
                self._flatten(scope.id, f"resumed after restart: {run.reason}")

    # -- the breaker's tick ---------------------------------------------------------------

    def tick(self) -> TickResult:
        """Re-read every metric source, re-apply every rule (time-based ones included), save
        the loss baselines, publish the result. This is all the breaker thread does."""
        errors: list[str] = []
        self._sync_from_store(errors)
        timeout = self.config.breaker.source_timeout_seconds
        for name, source in list(self._sources.items()):
            try:
                self._apply_reading(name, self._source_calls.call(source, timeout))
            except InvalidInput as exc:
                errors.append(f"{name}: {exc}")
            except Exception as exc:  # a broken source is a blind spot: fail closed
                errors.append(f"{name}: {exc!r}")
                self._halt_invalid(PORTFOLIO, f"metrics source {name} failed: {exc!r}")
        breaches = self._evaluate_everything()
        self._climb()
        self._keep_stopping()
        if self._running or self._fed:
            self._resume_incidents()
        self.alerts.pump()
        problem = self.save_baselines()
        if problem:
            errors.append(problem)
        result = TickResult(self._clock.time(), breaches, errors)
        self.last_tick = result
        self._actuator.emit("breaker_tick", result)
        return result

    def criticality_tick(self) -> Reading | None:
        """One CriticalityMonitor cycle (its thread calls this every ``interval_seconds``):
        compute the 15 indicators outside the guard's lock, then judge the score like any
        other metric. A failing cycle is a blind spot: it halts like a broken source."""
        now = self._clock.time()
        monitor = self.criticality
        if not self._bars_given:  # no bars: sample the price feed, when it has moved on
            with self._lock:
                p = self._ledger.portfolio
                prices, newest = dict(p.prices), max(p.price_times.values(), default=None)
            seen = monitor.last_observation
            if newest is not None and (seen is None or newest > seen):
                from tradeguard.criticality.monitor import Bar

                monitor.add(newest, {s: Bar(v) for s, v in prices.items()})
                with self._lock:
                    p.market_at = newest
                    p.criticality_at = p.criticality_at or newest
        try:
            monitor.close_cycle()
            reading = monitor.evaluate(now)
        except Exception as exc:
            log.exception("criticality cycle failed")
            self._halt_invalid(PORTFOLIO, f"criticality monitor failed: {exc!r}")
            return None
        blind = reading.score is None and reading.observations >= monitor.config.min_observations
        with self._applying(PORTFOLIO):
            p = self._ledger.portfolio
            p.criticality = math.inf if blind else reading.score  # warmed up, yet unmeasurable
            p.criticality_at = now
            p.criticality_drivers = ", ".join(
                f"{r.name} {r.contribution:.2f}" for r in reading.top() if r.contribution
            )
            self._evaluate_portfolio(Topic.CRITICALITY)
        self.last_criticality = reading
        self._actuator.emit("criticality", reading)
        store = self._healthy_store()
        if store is not None and self._running:  # for `status` in other processes (a CLI)
            try:
                store.update_value("criticality", lambda _old: reading.to_dict())
            except (StoreUnavailable, ValueError) as exc:
                log.error("could not store the criticality reading: %s", exc)
        return reading

    def _criticality_status(self) -> dict[str, Any] | None:
        """This process's last reading, else the one the running guard stored."""
        if self.last_criticality is not None:
            return self.last_criticality.to_dict()
        store = self._healthy_store()
        if store is None:
            return None
        try:
            stored = store.value("criticality")
        except StoreUnavailable:
            return None
        return stored if isinstance(stored, dict) else None

    def _evaluate_everything(self) -> list[Breach]:
        with self._lock:
            breaches = []
            for sid in list(self._ledger.strategies):
                breaches += self._settle(
                    self._rules.for_strategy(sid), self._ledger.strategies[sid], f"strategy:{sid}"
                )
            breaches += self._settle(self._rules.portfolio, self._ledger.portfolio, "portfolio")
        return breaches

    def save_baselines(self) -> str | None:
        """Write the loss baselines (peaks, day start, streaks) so a restart keeps measuring
        from them; the breaker does it every tick and ``close`` does it last. Returns the
        problem, if the store failed (the guard is then in emergency)."""
        with self._lock:
            if not self._fed:  # a reader (the CLI) must not write back what it read
                return None
            baselines = self._ledger.baselines()
        if self._store is None or self._store_error:
            return None
        try:
            self._store.save_metrics(baselines, self._clock.time())
        except StoreUnavailable as exc:
            self._fail_store(str(exc))
            return f"store: {exc}"
        except ValueError as exc:  # a baseline that is not finite JSON: keep the old ones
            log.error("could not save loss baselines: %s", exc)
            return f"baselines: {exc}"
        return None

    def _save_baseline(self, key: str) -> None:
        """Write one scope's baselines now (a resume's acknowledgement of the losses must
        survive a crash before the next tick); a failure is logged, the tick writes again."""
        if self._store is None or self._store_error:
            return
        try:
            self._store.save_metrics({key: self._ledger.baselines()[key]}, self._clock.time())
        except (StoreUnavailable, ValueError) as exc:
            log.error("could not save the baselines of %s: %s", key, exc)

    def _sync_from_store(self, errors: list[str]) -> None:
        """Adopt changes other processes sharing the store made (a CLI halt, another guard),
        and fire the same callbacks as if they had been made here."""
        if self._store is None or self._store_error:
            return
        try:
            stored = self._store.load_states()
        except StoreUnavailable as exc:
            errors.append(f"store: {exc}")
            self._fail_store(str(exc))
            return
        try:
            self._adopt_genomes()  # a blacklisting elsewhere stops orders here too
        except StoreUnavailable as exc:
            errors.append(f"store: {exc}")
            self._fail_store(str(exc))
            return
        adopted = []
        with self._lock:
            for key, status in stored.items():
                mine = self._states.get(key)
                if mine is not None and status.version <= mine.version:
                    continue
                scope = Scope.parse(key)
                before = mine.state if mine is not None else str(self.status_of(scope).state)
                self._states[key] = status
                if scope.kind is ScopeKind.STRATEGY:
                    self._registered.add(scope.id)
                    promoted = (
                        mine is not None
                        and mine.state == StrategyState.RECOVERING
                        and status.version == mine.version + 1
                    )
                    resumed = status.state in (StrategyState.ACTIVE, StrategyState.RECOVERING)
                    if resumed and not promoted:  # a resume elsewhere acknowledged the losses
                        self._ledger.rebase_strategy(scope.id)
                        self._active.pop(key, None)
                elif status.state == PortfolioState.NORMAL:
                    self._ledger.rebase_portfolio()
                    self._active.pop(key, None)
                adopted.append(
                    StateChange(
                        scope,
                        before,
                        status.state,
                        _actor_of(status.actor),
                        status.reason,
                        status.since,
                        status.version,
                    )
                )
            if any(c.after == StrategyState.RECOVERING for c in adopted):
                try:
                    self._adopt_rungs()
                except StoreUnavailable as exc:
                    errors.append(f"store: {exc}")
                    self._fail_store(str(exc))
        for change in adopted:
            if change.before != change.after:
                self._publish(change)

    def _apply_reading(self, name: str, reading: Mapping[str, Any]) -> None:
        if not isinstance(reading, Mapping) or set(reading) - {"portfolio", "strategies"}:
            self._reject(
                PORTFOLIO,
                f"metrics source {name} returned {reading!r}; expected "
                "{'portfolio': {...}, 'strategies': {id: {...}}}",
            )
        if "portfolio" in reading:
            self.update_portfolio_metrics(**reading["portfolio"])
        for sid, metrics in dict(reading.get("strategies", {})).items():
            self.update_strategy_metrics(sid, **metrics)

    async def start_monitoring(self) -> None:
        """Start the breaker thread (the seed's coroutine); returns at once."""
        self.start()

    def _watch_store(self) -> None:
        """The out-of-band path: a CLI or another process wrote to the store; adopt it now,
        not at the next breaker tick."""
        if self._store is None or self._store_error:
            return
        version = self._store.data_version()
        if version != self._seen_version:
            self._seen_version = version
            self._sync_from_store([])

    def start(self) -> None:
        self._running = True
        self._resume_incidents()
        self._resume_stops()
        self.alerts.pump(everything_pending=True)  # what a crash left pending goes out now
        if self._watcher is None:
            self._watcher = Periodic(
                self._watch_store,
                self.config.guard.watch_interval_seconds,
                name="tradeguard-watcher",
            )
        self._watcher.start()
        if self._breaker is None:
            self._breaker = Periodic(
                self.tick, self.config.breaker.interval_seconds, name="tradeguard-breaker"
            )
        self._breaker.start()
        if self.config.criticality.enabled:
            if self._criticality_thread is None:
                self._criticality_thread = Periodic(
                    self.criticality_tick,
                    self.config.criticality.interval_seconds,
                    name="tradeguard-criticality",
                )
            self._criticality_thread.start()

    def stop(self) -> None:
        for thread in (self._watcher, self._breaker, self._criticality_thread):
            if thread is not None:
                thread.stop()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait for queued callbacks to finish (tests and orderly shutdown)."""
        return self._actuator.flush(timeout)

    def close(self) -> None:
        """Stop the breaker; give running stops a moment, then let them resume on restart."""
        if self._closed:
            return
        self._closed = True
        self.stop()
        self._source_calls.close()
        self.save_baselines()
        flushed = self._actuator.flush(5.0)
        if self.alerts.channels:
            self._actuator.submit(self.alerts.aclose)
            flushed = self._actuator.flush(5.0)
        with self._lock:
            running = list(self._flattens.values())
        for future in running:
            future.cancel()
        self._killchain.close()
        # callbacks emitted since the flush get the actuator's grace; if the flush already
        # waited out a hung callback, waiting for it again helps nobody
        self._actuator.close(grace=5.0 if flushed else 0.0)
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading --------------------------------------------------------------------------

    def _breaker_health(self) -> dict[str, Any]:
        """Judged by the age of the last tick, not by the thread being alive: a thread that is
        alive but stuck is no backstop."""
        running = self._breaker is not None and self._breaker.running
        last = self.last_tick
        age = None if last is None else self._clock.time() - last.at
        limit = 3 * self.config.breaker.interval_seconds
        return {
            "running": running,
            "healthy": running and age is not None and age <= limit,
            "last_tick": None if last is None else to_iso(last.at),
            "last_tick_age_seconds": age,
        }

    def strategy_state(self, strategy_id: str) -> StrategyState:
        return StrategyState(self.status_of(Scope.strategy(strategy_id)).state)

    @property
    def portfolio_state(self) -> PortfolioState:
        return PortfolioState(self.status_of(PORTFOLIO).state)

    def status(self) -> dict[str, Any]:
        """A JSON-serializable snapshot of every state, metric and pending request."""
        with self._lock:
            portfolio = self.status_of(PORTFOLIO)
            strategies = {}
            halted_unknown = {k[9:] for k in self._states if k.startswith("strategy:")}
            now = self._clock.time()
            for sid in sorted(self._registered | halted_unknown):
                st = self.status_of(Scope.strategy(sid))
                m = self._ledger.strategy(sid)
                climbing = st.state == StrategyState.RECOVERING
                strategies[sid] = {
                    **_status_dict(st),
                    "metrics": m.to_dict(),
                    "recovery": self._ladder.describe(
                        self._rung_of(sid, st), m, now, self._holds.get(sid)
                    )
                    if climbing
                    else None,
                    "breaching": sorted(self._active.get(f"strategy:{sid}", ())),
                }
            pending: list[dict[str, Any]] = []
            if self._store is not None and not self._store_error:
                try:
                    pending = [a.to_dict() for a in self._store.approvals() if a.expires_at >= now]
                except StoreUnavailable as exc:
                    self._fail_store(str(exc))
            return {
                "portfolio": {
                    **_status_dict(portfolio),
                    "metrics": self._ledger.portfolio.to_dict(),
                    "breaching": sorted(self._active.get("portfolio", ())),
                },
                "strategies": strategies,
                "pending_approvals": pending,
                "store": {
                    "path": str(self.config.state.path),
                    "ok": self._store_error is None,
                    "error": self._store_error,
                },
                "breaker": self._breaker_health(),
                "rules": self._rules.describe(),
                "criticality": self._criticality_status(),
                "emergency_stop": {
                    "venues": [v.name for v in self._venues],
                    "running": sorted(s for s, f in self._flattens.items() if not f.done()),
                    "last": None if self.last_flatten is None else self.last_flatten.to_dict(),
                },
            }

    def audit_records(
        self, since: float | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        if self._store is None:
            raise StoreUnavailable(self._store_error or "no state store")
        return self._store.audit_records(since=since, limit=limit)

    def verify_audit(self) -> Verification:
        if self._store is None:
            raise StoreUnavailable(self._store_error or "no state store")
        return self._store.verify_audit()


_FLATTENING = (PortfolioState.HARD_HALT, PortfolioState.EMERGENCY)
# bound once for check_order: an enum member read through its class costs about 0.1 us
_ACTIVE, _RECOVERING = StrategyState.ACTIVE, StrategyState.RECOVERING

_ACTION_SEVERITY = {
    Action.HALT_STRATEGY: 0,
    Action.SOFT_HALT: 1,
    Action.HARD_HALT: 2,
    Action.EMERGENCY: 3,
}

_TIGHT_STATES = frozenset(
    {
        StrategyState.HALTED,
        StrategyState.DISABLED,
        PortfolioState.SOFT_HALT,
        PortfolioState.HARD_HALT,
        PortfolioState.EMERGENCY,
    }
)


class _Applying:
    """The context of ``Guard._applying``: a class, not a generator, as it is on every input."""

    __slots__ = ("_guard", "_scope")

    def __init__(self, guard: Guard, scope: Scope) -> None:
        self._guard, self._scope = guard, scope

    def __enter__(self) -> None:
        self._guard._lock.acquire()
        self._guard._fed = True

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object
    ) -> None:
        guard, scope = self._guard, self._scope
        try:
            if exc is None or isinstance(exc, TradeguardError) or not isinstance(exc, Exception):
                return
            log.exception("applying an input to %s failed", scope, exc_info=exc)
            message = f"could not apply input: {exc!r}"
            guard._halt_invalid(scope, message)
            raise InvalidInput(message, scope=str(scope)) from exc
        finally:
            guard._lock.release()


def _stricter(name: str, old: Trigger, new: Trigger) -> bool:
    """Whether ``new`` stops trading at least as early and as hard as ``old``."""
    if old.enabled and not new.enabled:
        return False
    if _ACTION_SEVERITY[new.action] < _ACTION_SEVERITY[old.action]:
        return False
    return new.limit >= old.limit if name == "win_rate" else new.limit <= old.limit


def _step_summary(kind: str, details: dict[str, Any]) -> str:
    venue = details.get("venue", "")
    if kind == "venue_cancelled":
        return f"{venue}: {details['cancelled']} orders cancelled in {details['seconds']:.3f}s"
    if kind == "venue_flat":
        return f"{venue}: flat after {details['orders_sent']} orders, {details['rounds']} rounds"
    if kind == "finished":
        return f"{'flat' if details['flat'] else 'NOT flat'} in {details['seconds']:.3f}s"
    if kind == "escalated":
        return f"{venue}: not flat after {details['elapsed']:.1f}s; escalated"
    return f"{kind} {venue}".strip()


def _genome_request(request: Approval) -> tuple[str, str]:
    """The fingerprint and the blacklisting incident an unblock request was opened for."""
    _kind, fp, incident = request.scope.split(":", 2)
    return fp, incident


def _loss(m: StrategyMetrics) -> float:
    """What a strategy has lost: from its equity peak, or its realized P&L, whichever is more."""
    drop = 0.0
    if m.peak_equity is not None and m.equity is not None:
        drop = m.peak_equity - m.equity
    return max(0.0, drop, -m.realized_pnl)


def _bar(name: str, value: object) -> Bar:
    """A bar at the edge: a mapping with a positive ``close``; the other fields, when given,
    finite and positive (volume may be zero), and high >= low."""
    from tradeguard.criticality.data import bar_problem
    from tradeguard.criticality.monitor import FIELDS, Bar

    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a mapping like {{'close': 101.5}}, got {value!r}")
    unknown = sorted(set(value) - set(FIELDS))
    if unknown:
        raise ValueError(f"{name}: unknown fields {unknown}; known: {list(FIELDS)}")
    if "close" not in value:
        raise ValueError(f"{name} needs a close")
    fields = {
        f: (inputs.non_negative if f == "volume" else inputs.positive)(f"{name}.{f}", v)
        for f, v in value.items()
    }
    problem = bar_problem(fields)
    if problem:
        raise ValueError(f"{name}: {problem}")
    return Bar(**fields)


def _actor_of(text: str) -> Actor:
    kind, sep, name = text.partition(":")
    if sep and kind in (ActorKind.RULE, ActorKind.SYSTEM, ActorKind.AGENT):
        return Actor(ActorKind(kind), name)
    return Actor(ActorKind.USER, text)


def _decided(request: Approval, status: str, by: str | None, at: float) -> Approval:
    return dataclasses.replace(request, status=status, approved_by=by, decided_at=at)


def _status_dict(status: ScopeStatus) -> dict[str, Any]:
    return {
        "state": str(status.state),
        "reason": status.reason,
        "since": to_iso(status.since) if status.since else None,
        "actor": status.actor,
        "version": status.version,
    }


_singleton: Guard | None = None
_singleton_lock = threading.Lock()


def get_kill_switch() -> Guard:
    """The process-wide guard (the seed's entry point): built on first use from the file named
    by ``TRADEGUARD_CONFIG``, or from the defaults, and the same object afterwards."""
    global _singleton
    with _singleton_lock:
        if _singleton is None:
            path = os.environ.get("TRADEGUARD_CONFIG")
            _singleton = Guard(load_config(path) if path else Config())
        return _singleton


__all__ = ["Guard", "TickResult", "TradeguardError", "get_kill_switch"]
