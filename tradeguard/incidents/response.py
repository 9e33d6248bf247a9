"""Incident response: what opens an incident, and the five phase bodies the KillChain runs.

Every emergency is an incident (its id is deterministic, so an emergency declared in a CLI is
run by the running guard); so is the first criticality crossing of a halt episode, which also
releases the avalanche reserve, once. The phases: contain (soft halt, halt the affected
strategies), preserve (a snapshot for the post-mortem), diagnose (whose breach the evidence
ties to the cause; who lost most is listed, never blamed), remediate (per the cause's policy:
disable the tied strategy and blacklist its genome, keep it halted, or nothing more), learn
(the root cause as the store now has it). This object is the KillChain's ``Ports``.

An incident belongs to the halt episode it opened in (the portfolio's version then): once a
person has lifted the portfolio since, the chain tightens nothing more on its behalf;
containment or remediation that had not run by then is recorded as superseded.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

from tradeguard import inputs
from tradeguard.audit import AuditEntry
from tradeguard.clock import to_iso
from tradeguard.config import Remedy
from tradeguard.engine.book import KILLCHAIN
from tradeguard.engine.core import Core
from tradeguard.errors import StoreUnavailable
from tradeguard.incidents.killchain import (
    Incident,
    KillChain,
    Phase,
    PhaseWork,
    cause_of,
    diagnose,
    new_id,
)
from tradeguard.incidents.registry import GenomeRegistry
from tradeguard.ledger import Ledger, StrategyMetrics
from tradeguard.model import (
    PORTFOLIO,
    ActorKind,
    Breach,
    PortfolioState,
    Scope,
    ScopeKind,
    StateChange,
    StrategyState,
)
from tradeguard.state import Command
from tradeguard.store import StateStore

log = logging.getLogger("tradeguard")


class IncidentResponse:
    def __init__(
        self,
        core: Core,
        *,
        ledger: Ledger,
        genomes: GenomeRegistry,
        snapshot: Callable[[], dict[str, Any]],
        venues: Callable[[], dict[str, Any]],
    ) -> None:
        self._book = core.book
        self._storage = core.storage
        self._transitions = core.transitions
        self._ledger = ledger
        self._genomes = genomes
        self._actuator = core.actuator
        self.clock = core.clock
        self._snapshot = snapshot  # the status read model, for the post-mortem
        self._venues = venues  # every venue's positions and open orders
        self.chain = KillChain(self, core.book.config.killchain.callback_timeout_seconds)

    # -- the KillChain's ports ------------------------------------------------------------

    def healthy_store(self) -> StateStore | None:
        return self._storage.healthy()

    def emit(self, event: str, payload: object) -> None:
        self._actuator.emit(event, payload)

    def work(self) -> Mapping[Phase, PhaseWork]:
        return {
            Phase.CONTAIN: self._contain,
            Phase.PRESERVE: self._preserve,
            Phase.DIAGNOSE: self._diagnose,
            Phase.REMEDIATE: self._remediate,
            Phase.LEARN: self._learn,
        }

    # -- opening --------------------------------------------------------------------------

    def open(
        self,
        trigger: str,
        reason: str,
        by: str,
        *,
        incident_id: str | None = None,
        breach: Breach | None = None,
        strategies: list[str] | None = None,
        episode: int | None = None,
        remedy: Remedy | None = None,
    ) -> Incident | None:
        """Record the incident (once: a deterministic id is opened by one process only) and,
        in a running guard, run it. ``episode``: the portfolio version it acts for (now's, by
        default); ``remedy``: a person's explicit choice over the configured policy. Without a
        healthy store it cannot be recorded: logged."""
        now = self.clock.time()
        incident = Incident(
            incident_id or new_id(trigger),
            now,
            trigger,
            inputs.text(reason),
            by,
            strategies,
            breach=None if breach is None else breach.to_dict(),
            episode=self._book.status_of(PORTFOLIO).version if episode is None else episode,
            remedy=None if remedy is None else str(remedy),
        )
        store = self._storage.healthy()
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
        if self._book.running or self._book.fed:
            self.chain.launch(incident)
        return incident

    def resume(self) -> None:
        """Run every incident still open that no live process holds: one a crash cut off, or
        one a CLI process recorded."""
        store = self._storage.healthy()
        if store is None:
            return
        try:
            open_ = store.incidents(status="running")
        except StoreUnavailable as exc:
            log.error("could not read incidents: %s", exc)
            return
        for data in open_:
            self.chain.launch(Incident.from_dict(data))

    def on_change(self, change: StateChange) -> None:
        """Every emergency is an incident."""
        if change.scope.kind is ScopeKind.PORTFOLIO and change.after == PortfolioState.EMERGENCY:
            self.open(
                "emergency",
                change.reason,
                str(change.actor),
                incident_id=f"emergency-v{change.version}",
                breach=change.breach,
                episode=change.version,
            )

    def on_breach(self, breach: Breach) -> None:
        """The criticality score crossed: release the reserve (once, durably), then start the
        KillChain, once per halt episode (a score that dips and crosses again before the book
        was reset is the same incident, still being handled)."""
        if breach.rule != "criticality":
            return
        store = self._storage.healthy()
        if store is None:
            log.critical("criticality crossed with no healthy store: no incident recorded")
            return
        version = self._book.status_of(PORTFOLIO).version
        incident_id = f"criticality-v{version}"
        try:
            handled = any(  # ids are criticality-v<portfolio version>: look them up
                store.incident(f"criticality-v{v}") is not None
                for v in range(self._book.normal_version, version + 1)
            )
            self._release_reserve(store, breach, None if handled else incident_id)
        except StoreUnavailable as exc:
            log.error("criticality crossing: %s", exc)
            handled = False
        if not handled:
            self.open(
                "criticality",
                breach.message,
                f"rule:{breach.rule}",
                incident_id=incident_id,
                breach=breach,
                episode=version,
            )

    def _release_reserve(self, store: StateStore, breach: Breach, incident: str | None) -> None:
        """Once, in one transaction: two processes crossing at once release it once."""
        now = self.clock.time()

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

    # -- the phases -----------------------------------------------------------------------

    def _lift(self, incident: Incident) -> str | None:
        """How a person lifted the incident's halt episode, if one has (in this process or,
        adopted first, in another)."""
        self._transitions.catch_up()
        if incident.episode is None or not self._book.lifted_since(incident.episode):
            return None
        now = self._book.status_of(PORTFOLIO)
        return (
            f"a person lifted the halt episode (portfolio v{incident.episode}; now "
            f"{now.state} v{now.version}, {now.actor}: {now.reason})"
        )

    def _contain(self, incident: Incident) -> list[str]:
        lift = self._lift(incident)
        if lift is not None:
            return [f"superseded: {lift} before containment ran: nothing tightened"]
        why, episode = f"incident {incident.id}: contained", incident.episode
        quietly = self._transitions.quietly
        quietly(PORTFOLIO, Command.SOFT_HALT, KILLCHAIN, f"{why}: no new orders", episode=episode)
        with self._book.lock:
            targets = incident.strategies or sorted(self._book.registered)
        halted = [
            sid
            for sid in targets
            if self._book.status_of(Scope.strategy(sid)).state
            in (StrategyState.ACTIVE, StrategyState.RECOVERING)
            and quietly(Scope.strategy(sid), Command.HALT, KILLCHAIN, why, episode=episode)
            is not None
        ]
        lift = self._lift(incident)
        if lift is not None:  # the person came while this phase was deciding
            done = f"halted {', '.join(halted)} before it" if halted else "nothing tightened"
            return [f"superseded: {lift} during containment: {done}"]
        return [
            f"portfolio {self._book.portfolio_state}: no new orders",
            f"halted {', '.join(halted) if halted else 'nothing more (already halted)'}",
        ]

    def _preserve(self, incident: Incident) -> list[str]:
        recent = self._storage.require().audit_records(limit=50)
        venues = self._venues()
        incident.snapshot = {
            "at": to_iso(self.clock.time()),
            "status": self._snapshot(),
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
        """The evidence: a strategy a person named for disabling; else, if the incident's own
        breach was a strategy's, that strategy; else the rule halts within
        ``lookback_seconds`` that still stand (a reset of the portfolio, or a person resuming
        the strategy, means they were reviewed); else nobody (losses are listed only)."""
        since = incident.opened_at - self._book.config.killchain.lookback_seconds
        with self._book.lock:
            affected = set(incident.strategies or self._book.registered)
            losses = {sid: _loss(self._ledger.strategy(sid)) for sid in affected}
        breach = incident.breach or {}
        own = str(breach.get("scope", ""))
        firsts: list[tuple[float, str, str]] = []
        owned = own.startswith("strategy:") and Scope.parse(own).id in affected
        if owned:
            firsts = [
                (float(breach.get("at", incident.opened_at)), Scope.parse(own).id, breach["rule"])
            ]
        else:
            for record in self._storage.require().audit_records(since=since):
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
        d = diagnose(firsts, losses, own=owned)
        if incident.remedy is not None and incident.strategies:  # a person's explicit word
            (named,) = incident.strategies
            d |= {
                "responsible": named,
                "rule": None,
                "method": "named",
                "evidence": f"named by {incident.opened_by} for {incident.remedy}",
            }
        cause = cause_of(incident)
        d["cause"] = cause
        d["remedy"] = incident.remedy or str(self._policy(cause))
        incident.diagnosis = d
        if d["responsible"] is None:
            return [f"no strategy tied to the cause: {d['evidence']}"]
        return [f"tied to the cause: {d['responsible']} ({d['method']}: {d['evidence']})"]

    def _policy(self, cause: str) -> Remedy:
        policy: Remedy = getattr(self._book.config.killchain.remediation, cause)
        return policy

    def _remediate(self, incident: Incident) -> list[str]:
        """What the cause's policy says for the strategy the evidence tied to it: disable it and
        blacklist its genome, keep it halted, or nothing beyond containment. Never on behalf
        of an episode a person has lifted (unless a person asked for it by name). Raises (and
        the phase is tried again) when the disabling or the blacklisting could not be
        recorded."""
        d = incident.diagnosis or {}
        sid, remedy = d.get("responsible"), Remedy(d.get("remedy", Remedy.HALT))
        policy = f"remediation for a {d.get('cause')} incident: {remedy}"
        lift = None if incident.remedy else self._lift(incident)
        if sid is None:
            notes = [f"nothing disabled: no strategy tied to the cause ({policy})"]
        elif remedy is Remedy.NONE:
            notes = [f"{sid} tied to the cause; {policy}: containment only"]
        elif lift is not None:
            state = self._book.status_of(Scope.strategy(sid)).state
            notes = [f"superseded: {lift} before remediation ran: {sid} left {state}"]
        elif remedy is Remedy.HALT:
            why = f"incident {incident.id}: tied to the cause ({d.get('evidence')})"
            self._transitions.quietly(
                Scope.strategy(sid), Command.HALT, KILLCHAIN, why, episode=incident.episode
            )
            state = self._book.status_of(Scope.strategy(sid)).state
            notes = [f"{sid} {state}, not disabled ({policy}): a person decides what follows"]
        else:
            notes = self._disable(incident, sid, d)
        incident.remediation = notes
        return notes

    def _disable(self, incident: Incident, sid: str, d: dict[str, Any]) -> list[str]:
        why = f"incident {incident.id}: responsible ({d.get('method')}: {d.get('evidence')})"
        scope = Scope.strategy(sid)
        episode = None if incident.remedy else incident.episode  # a person's word stands
        change = self._transitions.apply(scope, Command.DISABLE, KILLCHAIN, why, episode=episode)
        lift = None if episode is None else self._lift(incident)
        if change is None and lift is not None:  # the person's lift came first
            state = self._book.status_of(scope).state
            return [f"superseded: {lift} before remediation ran: {sid} left {state}"]
        policy = self._book.config.on_halt(sid)
        notes = [f"disabled {sid}; its positions are handled by its policy ({policy})"]
        record = self._genomes.of(sid)
        if record is None:
            notes.append(f"{sid} registered no genome: nothing to blacklist")
        else:
            marked = self._genomes.blacklist(record.fingerprint, incident.id, why)
            if marked is None or not marked.blacklisted:
                raise RuntimeError(f"genome {record.fingerprint[:12]} could not be blacklisted")
            notes.append(f"blacklisted genome {record.fingerprint[:12]}")
        return notes

    def _learn(self, incident: Incident) -> list[str]:
        """The root cause, as the store now has it (not as remediation hoped)."""
        d = incident.diagnosis or {}
        sid = d.get("responsible")
        if sid is None:
            return ["recorded: no root cause found in the evidence"]
        state = self._book.status_of(Scope.strategy(sid)).state
        record = self._genomes.of(sid)
        if record is None:
            genome = "; it registered no genome"
        elif record.blacklisted:
            genome = f"; genome {record.fingerprint[:12]} can never register or trade again"
        else:
            genome = f"; genome {record.fingerprint[:12]} is not blacklisted"
        return [f"root cause: {sid} ({d.get('method')}: {d.get('evidence')}); {state}{genome}"]


def _loss(m: StrategyMetrics) -> float:
    """What a strategy has lost: from its equity peak, or its realized P&L, whichever is more."""
    drop = 0.0
    if m.peak_equity is not None and m.equity is not None:
        drop = m.peak_equity - m.equity
    return max(0.0, drop, -m.realized_pnl)
