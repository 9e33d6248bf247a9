"""Stops: the emergency stop wired to the book (cancel, flatten, verify, escalate, resume).

A hard halt or emergency takes the book flat; a strategy halt cancels its orders and, by its
policy, closes its positions. Intent is recorded before the venues are touched, every step is
audited, a missed deadline escalates to an emergency, and the breaker tick keeps at a stop
until every attached venue is verified flat. The venue work runs on the actuator loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import secrets
from typing import Any

from tradeguard.audit import AuditEntry
from tradeguard.config import OnHalt
from tradeguard.emergency import EmergencyStop, FlattenReport, Sleep, StopPolicy, describe_step
from tradeguard.engine.core import Core
from tradeguard.errors import StoreUnavailable
from tradeguard.model import (
    PORTFOLIO,
    Action,
    Actor,
    ActorKind,
    Breach,
    PortfolioState,
    Scope,
    ScopeKind,
    StateChange,
    StrategyState,
)
from tradeguard.state import Command
from tradeguard.store import FlattenRun
from tradeguard.venues.base import Venue

log = logging.getLogger("tradeguard")

FLATTENING = (PortfolioState.HARD_HALT, PortfolioState.EMERGENCY)
# A finished stop's recorded status, by its verdict: flat; done with positions kept (cancel
# only); or not verified (gave up, abandoned).
_VERDICTS = ("flat", "positions_kept", "incomplete")
_STOPPED = (StrategyState.HALTED, StrategyState.DISABLED)


class Stops:
    def __init__(self, core: Core, *, sleep: Sleep) -> None:
        self._book = core.book
        self._storage = core.storage
        self._transitions = core.transitions
        self._actuator = core.actuator
        self._clock = core.clock
        self._sleep = sleep
        self.venues: list[Venue] = []
        self._stopper: EmergencyStop | None = None
        self.running: dict[str, concurrent.futures.Future[FlattenReport]] = {}
        self.last: FlattenReport | None = None
        self._last_reports: dict[str, FlattenReport] = {}

    def add_venue(self, venue: Venue) -> None:
        with self._book.lock:
            if any(v.name == venue.name for v in self.venues):
                raise ValueError(f"a venue named {venue.name!r} is already attached")
            self.venues.append(venue)  # the coordinator sees the list: no rebuild, no new locks

    def on_change(self, change: StateChange) -> None:
        """A hard halt or emergency takes the book flat; a strategy halt cancels its orders
        and, by its policy, closes it."""
        if change.scope.kind is ScopeKind.PORTFOLIO:
            if change.after in FLATTENING:
                self.flatten(None, change.reason)
        elif change.after in _STOPPED:
            self.flatten(change.scope.id, change.reason)

    async def emergency_stop(self, reason: str) -> FlattenReport:
        """Take the whole book flat and wait for the verdict."""
        future = self.flatten(None, reason)
        if future is None:
            now = self._clock.time()
            # Nothing attached, nothing verified: not "flat", which would be a claim.
            return FlattenReport("", "portfolio", "no venues attached", True, now, now)
        return await asyncio.wrap_future(future)

    def still_halted(self, scope: str) -> bool:
        """Whether a stop for ``scope`` should go on: a lift ends it (and its escalation)."""
        if scope == "portfolio":
            return self._book.portfolio_state in FLATTENING
        return self._book.status_of(Scope.parse(scope)).state in _STOPPED

    def is_running(self, scope: str) -> bool:
        running = self.running.get(scope)
        return running is not None and not running.done()

    def keep_stopping(self) -> None:
        """From the breaker tick: a scope still halted whose last stop gave up, failed, or
        missed a venue attached since gets another stop. It keeps at it until flat."""
        if not self.venues:
            return
        names = {v.name for v in self.venues}
        for scope in ["portfolio", *self._book.strategy_keys()]:
            if not self.still_halted(scope):
                continue
            running = self.running.get(scope)
            if running is not None and not running.done():
                continue
            last = self._last_reports.get(scope)
            if last is not None and last.done and {v.venue for v in last.venues} == names:
                continue
            if last is None and running is None and scope != "portfolio":
                continue  # never started here: a strategy halted before this process began
            sid = None if scope == "portfolio" else Scope.parse(scope).id
            self.flatten(sid, "retry: the last stop did not verify every venue")

    def flatten(
        self, strategy_id: str | None, reason: str
    ) -> concurrent.futures.Future[FlattenReport] | None:
        """Start a stop for the scope, or join the one running; intent is recorded first."""
        if not self.venues:
            return None
        scope = "portfolio" if strategy_id is None else f"strategy:{strategy_id}"
        config = self._book.config
        close = strategy_id is None or config.on_halt(strategy_id) is OnHalt.FLATTEN
        with self._book.lock:
            running = self.running.get(scope)
            if running is not None and not running.done():
                return running
            run = FlattenRun(secrets.token_hex(6), scope, reason, "running", self._clock.time())
            self._record_run(run)
            stopper = self._coordinator()
            future = self._actuator.submit(lambda: self._execute(stopper, run, strategy_id, close))
            self.running[scope] = future
        return future

    def resume(self) -> None:
        """After a restart: a hard halt or emergency still in force is taken flat again, and
        strategy stops that were cut off are finished."""
        if not self.venues:
            return
        interrupted = []
        store = self._storage.healthy()
        if store is not None:
            try:
                interrupted = store.flatten_runs(status="running")
            except StoreUnavailable as exc:
                self._transitions.fail_store(str(exc))
        for run in interrupted:
            self._record_run(dataclasses.replace(run, status="interrupted"))
        if self._book.portfolio_state in FLATTENING:
            why = self._book.status_of(PORTFOLIO).reason
            self.flatten(None, f"resumed after restart: {why}")
        for run in interrupted:
            scope = Scope.parse(run.scope)
            if scope.kind is ScopeKind.STRATEGY and self.still_halted(run.scope):
                self.flatten(scope.id, f"resumed after restart: {run.reason}")

    def positions(self, sid: str, timeout: float) -> dict[str, float] | str | None:
        """What the attached venues hold for the strategy, summed per symbol; None without
        venues (a CLI process), or why they could not be read (which refuses the resume)."""
        with self._book.lock:
            venues = list(self.venues)
        if not venues:
            return None

        async def read() -> dict[str, float]:
            held: dict[str, float] = {}
            for venue in venues:
                for p in await venue.positions(sid):
                    held[p.symbol] = held.get(p.symbol, 0.0) + p.quantity
            return held

        try:
            return self._actuator.submit(read).result(timeout=timeout * len(venues))
        except Exception as exc:
            return f"cannot reconcile positions with the venues: {exc!r}"

    def snapshot(self, timeout: float) -> dict[str, Any]:
        """Every venue's positions and open orders, or why it could not be read."""
        with self._book.lock:
            attached = list(self.venues)
        venues: dict[str, Any] = {}
        for venue in attached:

            async def read(v: Venue = venue) -> dict[str, Any]:
                return {
                    "positions": [dataclasses.asdict(p) for p in await v.positions()],
                    "open_orders": [dataclasses.asdict(o) for o in await v.open_orders()],
                }

            try:
                venues[venue.name] = self._actuator.submit(read).result(timeout=timeout)
            except Exception as exc:
                venues[venue.name] = {"error": repr(exc)}
        return venues

    def describe(self) -> dict[str, Any]:
        """The stops this process runs, and the last verdict: its own, else the last one any
        process recorded in the store (what the CLI and a dashboard without venues show)."""
        return {
            "venues": [v.name for v in self.venues],
            "running": sorted(s for s, f in self.running.items() if not f.done()),
            "last": self._last_recorded() if self.last is None else self.last.to_dict(),
        }

    def _last_recorded(self) -> dict[str, Any] | None:
        store = self._storage.healthy()
        if store is None:
            return None
        try:
            run = store.latest_flatten(_VERDICTS)
        except StoreUnavailable as exc:
            self._transitions.fail_store(str(exc))
            return None
        return None if run is None else run.report

    def cancel_all(self) -> None:
        """At close: running stops are cancelled here and resume on restart."""
        with self._book.lock:
            running = list(self.running.values())
        for future in running:
            future.cancel()

    def _coordinator(self) -> EmergencyStop:
        if self._stopper is None:
            e = self._book.config.emergency
            policy = StopPolicy(
                e.deadline_seconds,
                e.give_up_seconds,
                e.backoff_initial_seconds,
                e.backoff_max_seconds,
                e.max_in_flight,
                e.call_timeout_seconds,
            )
            self._stopper = EmergencyStop(
                self.venues,
                clock=self._clock,
                policy=policy,
                sleep=self._sleep,
                on_step=self._step,
                still_wanted=self.still_halted,
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
        status = _VERDICTS[0] if report.flat else _VERDICTS[1] if report.done else _VERDICTS[2]
        self._record_run(dataclasses.replace(run, status=status, report=report.to_dict()))
        self.last = report
        self._last_reports[report.scope] = report
        self._actuator.emit("flatten_done", report)
        return report

    def _record_run(self, run: FlattenRun) -> None:
        try:
            self._storage.require().record_flatten(run)
        except StoreUnavailable as exc:  # the stop goes on; only its record is missing
            log.error("could not record emergency stop %s (%s): %s", run.id, run.status, exc)

    def _step(self, kind: str, details: dict[str, Any]) -> None:
        """Every step of a stop is audited and published; a missed deadline escalates."""
        scope = str(details.get("scope", "portfolio"))
        entry = AuditEntry(
            self._clock.time(),
            "system:emergency_stop",
            f"flatten:{kind}",
            scope,
            None,
            None,
            describe_step(kind, details),
            details,
        )
        if self._storage.healthy() is not None:
            self._storage.record([entry], f"emergency stop step {kind}")
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
        if not self.still_halted(scope):
            return  # lifted meanwhile: nothing to escalate
        self._actuator.emit("breach", breach)
        self._actuator.emit("escalation", breach)
        if scope == "portfolio":
            self._transitions.quietly(
                PORTFOLIO,
                Command.EMERGENCY,
                Actor(ActorKind.RULE, "flatten_deadline"),
                f"flatten_deadline: {breach.message}",
                breach,
            )
