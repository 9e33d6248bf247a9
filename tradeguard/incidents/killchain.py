"""The KillChain: six phases of incident response that, once started, always run to the end.

detect (type and severity), contain (halt the affected strategies, no new orders), preserve
(snapshot the state for the post-mortem), diagnose (who breached first, who lost most),
remediate (disable the responsible strategy, blacklist its genome, flatten per policy), learn
(record the root cause). Each phase is written to the store when it starts and when it ends,
so a crash resumes the chain at the phase it cut off (every phase is safe to run twice). Python
callbacks run after each phase's own work; one that raises or hangs is logged and timed out,
and the chain goes on. A phase whose own work fails (the store refused the blacklist, say) is tried
again; if it still fails, the incident stays open at that phase and the guard's next tick (or
the next process, once this one's lease has run out) runs it again. No component can stop or
skip a phase: there is no API to do so.

The chain runs on its own thread; the halt that triggered it has already taken effect.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from tradeguard.audit import AuditEntry
from tradeguard.clock import Clock, to_iso
from tradeguard.errors import SourceTimeout, StoreUnavailable
from tradeguard.store import StateConflict, StateStore
from tradeguard.timed_calls import TimedCalls

log = logging.getLogger("tradeguard.killchain")

LEASE_SECONDS = 300.0  # a process that ran an incident and died frees it after this long
RELEASED = 0.0  # a lease that ended at the epoch: a parked incident is free for any process
ATTEMPTS = 3  # a phase whose work fails is tried again; then the incident waits for a retry


class Phase(StrEnum):
    DETECT = "detect"
    CONTAIN = "contain"
    PRESERVE = "preserve"
    DIAGNOSE = "diagnose"
    REMEDIATE = "remediate"
    LEARN = "learn"


PHASES = tuple(Phase)
PhaseCallback = Callable[["Incident"], object]


@dataclass
class PhaseRecord:
    phase: str
    started: float
    finished: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "started": self.started,
            "finished": self.finished,
            "seconds": None if self.finished is None else self.finished - self.started,
            "notes": self.notes,
        }


@dataclass
class Incident:
    """One incident and everything the chain found; JSON in the store."""

    id: str
    opened_at: float
    trigger: str  # emergency | criticality | manual
    reason: str
    opened_by: str
    strategies: list[str] | None = None  # affected; None: every strategy
    status: str = "running"  # running | closed
    severity: str | None = None
    kind: str | None = None
    phases: list[PhaseRecord] = field(default_factory=list)
    snapshot: dict[str, Any] | None = None
    diagnosis: dict[str, Any] | None = None
    remediation: list[str] = field(default_factory=list)
    breach: dict[str, Any] | None = None
    # the portfolio's version when it opened: the halt episode it acts for (None: recorded
    # before episodes were; it then acts as if no person had lifted anything)
    episode: int | None = None
    remedy: str | None = None  # a person's explicit choice (disable); None: the config's

    def next_phase(self) -> Phase | None:
        done = {p.phase for p in self.phases if p.finished is not None}
        return next((phase for phase in PHASES if phase not in done), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "opened_at": self.opened_at,
            "opened": to_iso(self.opened_at),
            "trigger": self.trigger,
            "reason": self.reason,
            "opened_by": self.opened_by,
            "strategies": self.strategies,
            "status": self.status,
            "severity": self.severity,
            "kind": self.kind,
            "phases": [p.to_dict() for p in self.phases],
            "snapshot": self.snapshot,
            "diagnosis": self.diagnosis,
            "remediation": self.remediation,
            "breach": self.breach,
            "episode": self.episode,
            "remedy": self.remedy,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Incident:
        return cls(
            id=str(data["id"]),
            opened_at=float(data["opened_at"]),
            trigger=str(data["trigger"]),
            reason=str(data["reason"]),
            opened_by=str(data["opened_by"]),
            strategies=None if data.get("strategies") is None else list(data["strategies"]),
            status=str(data["status"]),
            severity=data.get("severity"),
            kind=data.get("kind"),
            phases=[
                PhaseRecord(p["phase"], p["started"], p["finished"], list(p["notes"]))
                for p in data.get("phases", [])
            ],
            snapshot=data.get("snapshot"),
            diagnosis=data.get("diagnosis"),
            remediation=list(data.get("remediation", [])),
            breach=data.get("breach"),
            episode=None if data.get("episode") is None else int(data["episode"]),
            remedy=data.get("remedy"),
        )


def new_id(trigger: str) -> str:
    return f"{trigger}-{secrets.token_hex(4)}"


SEVERITY = {"emergency": "critical", "criticality": "high", "manual": "high"}


def diagnose(
    first_breaches: Sequence[tuple[float, str, str]],
    losses: Mapping[str, float],
    *,
    own: bool = False,
) -> dict[str, Any]:
    """Who the evidence ties to the incident's cause: the strategy whose rule breached first
    in the look-back (time, strategy, rule; ``own``: that breach started the incident), else
    nobody. Who lost most is listed, never blamed: a loss is an outcome, not a cause. Pure:
    the guard gathers the evidence, this decides."""
    ranked = sorted(((loss, sid) for sid, loss in losses.items() if loss > 0), reverse=True)
    found: dict[str, Any] = {
        "losses": [{"strategy": sid, "loss": loss} for loss, sid in ranked],
        "lost_most": ranked[0][1] if ranked else None,
    }
    if first_breaches:
        at, sid, rule = min(first_breaches)
        started = "started the incident" if own else "still stood when the incident opened"
        return {
            **found,
            "responsible": sid,
            "rule": rule,
            "method": "own breach" if own else "breached first",
            "breached_at": to_iso(at),
            "evidence": f"its {rule} breach at {to_iso(at)} {started}",
        }
    evidence = "no rule breach in the look-back names a strategy"
    if found["lost_most"] is not None:
        evidence += f" ({found['lost_most']} lost most: an outcome, not evidence)"
    nobody = {"responsible": None, "rule": None, "method": "no evidence", "evidence": evidence}
    return {**found, **nobody}


def cause_of(incident: Incident) -> str:
    """The cause a remediation policy is chosen by: ``criticality`` (the score crossed),
    ``rule`` (a rule's breach started it), else ``person`` (declared by a person, an
    automated principal or the guard itself)."""
    if incident.trigger == "criticality":
        return "criticality"
    if incident.breach is not None and incident.breach.get("rule"):
        return "rule"
    return "person"


PhaseWork = Callable[["Incident"], list[str]]


class Ports(Protocol):
    """What the chain needs from the guard, and nothing more: it never imports the Guard."""

    clock: Clock

    def healthy_store(self) -> StateStore | None: ...

    def emit(self, event: str, payload: object) -> None: ...

    def work(self) -> Mapping[Phase, PhaseWork]:
        """The bodies of contain, preserve, diagnose, remediate and learn."""
        ...


class KillChain:
    """Runs incidents for one guard, one at a time, on its own thread."""

    def __init__(self, ports: Ports, callback_timeout: float) -> None:
        self._ports = ports
        self._timeout = callback_timeout
        # each callback on threads of its own: one that hangs never keeps the others uncalled
        self._callbacks: dict[Phase, list[tuple[PhaseCallback, TimedCalls]]] = {}
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="tradeguard-killchain"
        )
        self._running: dict[str, concurrent.futures.Future[Incident | None]] = {}
        self._lock = threading.Lock()
        # set by close: past it (monotonic seconds), a chain parks before its next phase
        self._park_after: float | None = None
        self.owner = secrets.token_hex(8)  # this process, for the store's lease

    def on_phase(self, phase: str, fn: PhaseCallback) -> None:
        try:
            chosen = Phase(phase)
        except ValueError:
            raise ValueError(f"unknown phase {phase!r}; expected one of {list(PHASES)}") from None
        if not callable(fn):
            raise TypeError("callback must be callable")
        calls = TimedCalls(2, name="tradeguard-callback")
        self._callbacks.setdefault(chosen, []).append((fn, calls))

    def launch(self, incident: Incident) -> concurrent.futures.Future[Incident | None]:
        """Queue the incident here unless it is queued or running here already. It is claimed
        in the store when it starts, not now: another process may hold it (its lease then
        decides who resumes it after a crash)."""
        with self._lock:
            running = self._running.get(incident.id)
            if running is not None and not running.done():
                return running
            if self._park_after is not None:  # recorded running: the next start runs it
                parked: concurrent.futures.Future[Incident | None] = concurrent.futures.Future()
                parked.set_result(None)
                return parked
            future = self._executor.submit(self._claimed_run, incident.id)
            self._running[incident.id] = future
            return future

    def wait(self, timeout: float = 30.0) -> bool:
        pending = [f for f in self._running.values() if not f.done()]
        return not concurrent.futures.wait(pending, timeout).not_done

    def close(self, grace: float = 0.0) -> None:
        """Finish or park: the incident running goes on for up to ``grace`` seconds (most
        finish), then stops before its next phase, its lease released, so the next start
        resumes it at once; queued ones stay running in the store for the same. One still in
        a phase after the grace is cut off by the store's closing (resumed once its lease
        has run out)."""
        if threading.current_thread().name.startswith("tradeguard-killchain"):
            grace = 0.0  # a callback closing the guard: the chain cannot wait for itself
        self._park_after = time.monotonic() + grace
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.wait(grace)
        for registered in self._callbacks.values():
            for _fn, calls in registered:
                calls.close()

    def _claimed_run(self, incident_id: str) -> Incident | None:
        """Claim the incident (a lease in the store), read its latest state, run what is left."""
        store = self._ports.healthy_store()
        now = self._ports.clock.time()
        if store is None or not store.claim_incident(incident_id, self.owner, now, LEASE_SECONDS):
            return None
        found = store.incident(incident_id)
        if found is None or found["status"] != "running":
            return None
        return self._run(Incident.from_dict(found))

    def _run(self, incident: Incident) -> Incident:
        work = {Phase.DETECT: self._detect, **self._ports.work()}
        clock = self._ports.clock
        while (phase := incident.next_phase()) is not None:
            if self._park_after is not None and time.monotonic() >= self._park_after:
                self._park(incident, phase)
                return incident
            record = next((p for p in incident.phases if p.phase == phase), None)
            if record is None:
                record = PhaseRecord(str(phase), clock.time())
                incident.phases.append(record)
            else:  # cut off by a crash: run again (every phase is idempotent)
                record.notes.append(f"resumed at {to_iso(clock.time())} after an interruption")
            if not self._save(incident, f"incident:{phase}:started", f"{phase} started"):
                return incident  # the lease is lost: another process runs it now
            failure = None
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    record.notes += work[phase](incident)
                    failure = None
                    break
                except Exception as exc:
                    log.exception(
                        "incident %s: %s failed (attempt %d)", incident.id, phase, attempt
                    )
                    failure = exc
            if failure is not None:  # left open at this phase: the next tick runs it again
                record.notes.append(f"failed {ATTEMPTS} times, will be retried: {failure!r}")
                self._save(incident, f"incident:{phase}:failed", repr(failure))
                return incident
            record.notes += self._call_back(phase, incident)
            record.finished = clock.time()
            if phase is Phase.LEARN:
                incident.status = "closed"
            done = "; ".join(record.notes) or f"{phase} done"
            if not self._save(incident, f"incident:{phase}", done):
                return incident
        self._ports.emit("incident", incident)
        return incident

    def _detect(self, incident: Incident) -> list[str]:
        breach = incident.breach or {}
        critical = breach.get("action") in ("hard_halt", "emergency")
        incident.severity = "critical" if critical else SEVERITY.get(incident.trigger, "high")
        incident.kind = str(breach.get("rule") or incident.trigger)
        return [f"{incident.kind} incident, severity {incident.severity}: {incident.reason}"]

    def _call_back(self, phase: Phase, incident: Incident) -> list[str]:
        notes = []
        for fn, calls in self._callbacks.get(phase, []):
            name = getattr(fn, "__qualname__", repr(fn))
            try:
                calls.call(functools.partial(_call, fn, incident), self._timeout)
            except SourceTimeout as exc:  # no answer in time, or still hung from before
                log.error("incident %s: callback %s on %s: %s", incident.id, name, phase, exc)
                notes.append(f"callback {name} timed out after {self._timeout:g}s ({exc})")
            except Exception as exc:
                log.exception("incident %s: callback %s on %s raised", incident.id, name, phase)
                notes.append(f"callback {name} raised {exc!r}")
        return notes

    def _park(self, incident: Incident, phase: Phase) -> None:
        """The guard is closing: stop before ``phase``, on record, and free the lease."""
        why = f"parked before {phase} by close(); the next start resumes it"
        log.warning("incident %s: %s", incident.id, why)
        self._save(incident, f"incident:{phase}:parked", why, lease_until=RELEASED)

    def _save(
        self, incident: Incident, action: str, why: str, *, lease_until: float | None = None
    ) -> bool:
        """Record progress (and renew the lease, or release it); False when this process no
        longer holds the incident, which then stops here."""
        now = self._ports.clock.time()
        entry = AuditEntry(
            now, "system:killchain", action, f"incident:{incident.id}", None, None, why
        )
        store = self._ports.healthy_store()
        try:
            if store is None:
                raise StoreUnavailable("no healthy store")
            until = now + LEASE_SECONDS if lease_until is None else lease_until
            store.save_incident(incident.to_dict(), self.owner, until, [entry])
        except StateConflict:
            log.error("incident %s: lease lost to another process; it goes on there", incident.id)
            return False
        except StoreUnavailable as exc:  # keep going: the response matters more than its record
            log.error("incident %s: could not record %s: %s", incident.id, action, exc)
        return True


def _call(fn: PhaseCallback, incident: Incident) -> object:
    result = fn(incident)
    if inspect.isawaitable(result):
        return asyncio.run(_awaited(result))
    return result


async def _awaited(awaitable: Any) -> object:
    return await awaitable
