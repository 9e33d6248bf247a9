"""The backstop: the periodic threads that catch what no event did.

The breaker tick (every ``breaker.interval_seconds``) re-reads every metric source, re-applies
every rule (time-based ones included), climbs the recovery ladder, keeps at unfinished stops,
resumes incidents, pumps alerts, writes the counts of closed refusal windows and saves the
loss baselines; the watcher adopts other processes' writes within
``guard.watch_interval_seconds`` in every guard, started or not (a trading process that never
called ``start`` must still obey a CLI halt), from the guard's birth to its ``close``; the
criticality thread runs the monitor's cycle outside the
guard's lock and judges its score like any other metric. None of them holds logic of its own:
they call the same engine the event path uses.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tradeguard.alerts.dispatcher import AlertDispatcher
from tradeguard.clock import to_iso
from tradeguard.effects.ladder import Climber
from tradeguard.effects.stops import Stops
from tradeguard.engine.core import Core
from tradeguard.engine.intake import Intake
from tradeguard.engine.sync import StoreSync
from tradeguard.errors import InvalidInput, InvalidTransition, StoreUnavailable
from tradeguard.ledger import Ledger
from tradeguard.model import PORTFOLIO, Breach
from tradeguard.periodic import Periodic
from tradeguard.rules import Topic
from tradeguard.timed_calls import TimedCalls

if TYPE_CHECKING:
    from tradeguard.criticality.monitor import Reading

log = logging.getLogger("tradeguard")

MetricsSource = Callable[[], Mapping[str, Any]]
_WATCHER = "tradeguard-watcher"


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one breaker tick found: published as the ``breaker_tick`` event."""

    at: float
    breaches: list[Breach] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Backstop:
    def __init__(
        self,
        core: Core,
        *,
        intake: Intake,
        sync: StoreSync,
        climber: Climber,
        stops: Stops,
        alerts: AlertDispatcher,
        resume_incidents: Callable[[], None],
    ) -> None:
        self._book = core.book
        self._storage = core.storage
        self._transitions = core.transitions
        self._intake = intake
        self._ledger: Ledger = intake.ledger
        self._sync = sync
        self._climber = climber
        self._stops = stops
        self._alerts = alerts
        self._actuator = core.actuator
        self._clock = core.clock
        self._resume_incidents = resume_incidents
        self.sources: dict[str, MetricsSource] = {}
        self.last_tick: TickResult | None = None
        self.last_criticality: Reading | None = None
        self._threads: dict[str, Periodic] = {}
        # one pool per source: a source that hangs uses up its own threads, never the ones
        # the other sources are read on (their breaches must still be applied)
        self._source_calls: dict[str, TimedCalls] = {}

    def tick(self) -> TickResult:
        """Re-read every metric source, re-apply every rule (time-based ones included), save
        the loss baselines, publish the result. This is all the breaker thread does."""
        errors: list[str] = []
        self._sync.adopt(errors)
        timeout = self._book.config.breaker.source_timeout_seconds
        for name, source in list(self.sources.items()):
            try:
                self._intake.apply_reading(name, self._calls_for(name).call(source, timeout))
            except InvalidInput as exc:
                errors.append(f"{name}: {exc}")
            except Exception as exc:  # a broken source is a blind spot: fail closed
                errors.append(f"{name}: {exc!r}")
                self._intake.halt_invalid(PORTFOLIO, f"metrics source {name} failed: {exc!r}")
        breaches = self._intake.evaluate_everything()
        self._climber.climb()
        self._stops.keep_stopping()
        if self._book.running or self._book.fed:
            self._resume_incidents()
        self._alerts.pump()
        self._transitions.flush_refusals()
        problem = self.save_baselines()
        if problem:
            errors.append(problem)
        result = TickResult(self._clock.time(), breaches, errors)
        self.last_tick = result
        self._actuator.emit("breaker_tick", result)
        return result

    def criticality_tick(self) -> Reading | None:
        """One CriticalityMonitor cycle: compute the 15 indicators outside the guard's lock,
        then judge the score like any other metric. A failing cycle is a blind spot: it halts
        like a broken source."""
        now = self._clock.time()
        intake, lock = self._intake, self._book.lock
        monitor = intake.monitor
        p = self._ledger.portfolio
        if not intake.bars_given:  # no bars: sample the price feed, when it has moved on
            with lock:
                prices, newest = dict(p.prices), max(p.price_times.values(), default=None)
            seen = monitor.last_observation
            if newest is not None and (seen is None or newest > seen):
                from tradeguard.criticality.monitor import Bar

                monitor.add(newest, {s: Bar(v) for s, v in prices.items()})
                with lock:
                    p.market_at = newest
                    p.criticality_at = p.criticality_at or newest
        try:
            monitor.close_cycle()
            reading = monitor.evaluate(now)
        except Exception as exc:
            log.exception("criticality cycle failed")
            intake.halt_invalid(PORTFOLIO, f"criticality monitor failed: {exc!r}")
            return None
        blind = reading.score is None and reading.observations >= monitor.config.min_observations
        with intake.applying(PORTFOLIO):
            p.criticality = math.inf if blind else reading.score  # warmed up, yet unmeasurable
            p.criticality_at = now
            p.criticality_drivers = ", ".join(
                f"{r.name} {r.contribution:.2f}" for r in reading.top() if r.contribution
            )
            intake.evaluate_portfolio(Topic.CRITICALITY)
        self.last_criticality = reading
        self._actuator.emit("criticality", reading)
        store = self._storage.healthy()
        if store is not None and self._book.running:  # for `status` in other processes
            try:
                store.update_value("criticality", lambda _old: reading.to_dict())
            except (StoreUnavailable, ValueError) as exc:
                log.error("could not store the criticality reading: %s", exc)
        return reading

    def save_baselines(self) -> str | None:
        """Write the loss baselines (peaks, day start, streaks) so a restart keeps measuring
        from them; the breaker does it every tick and ``close`` does it last. Returns the
        problem, if the store failed (the guard is then in emergency)."""
        with self._book.lock:
            if not self._book.fed:  # a reader (the CLI) must not write back what it read
                return None
            baselines = self._ledger.baselines()
        store = self._storage.healthy()
        if store is None:
            return None
        try:
            store.save_metrics(baselines, self._clock.time())
        except StoreUnavailable as exc:
            self._transitions.fail_store(str(exc))
            return f"store: {exc}"
        except ValueError as exc:  # a baseline that is not finite JSON: keep the old ones
            log.error("could not save loss baselines: %s", exc)
            return f"baselines: {exc}"
        return None

    def save_baseline(self, key: str) -> None:
        """Write one scope's baselines now (a resume's acknowledgement of the losses must
        survive a crash before the next tick); a failure is logged, the tick writes again."""
        store = self._storage.healthy()
        if store is None:
            return
        try:
            store.save_metrics({key: self._ledger.baselines()[key]}, self._clock.time())
        except (StoreUnavailable, ValueError) as exc:
            log.error("could not save the baselines of %s: %s", key, exc)

    def start(self) -> None:
        """Mark the guard running, finish what a crash cut off, start the threads."""
        if self._book.read_only:
            raise InvalidTransition("a guard opened read-only, to look, cannot be started")
        config = self._book.config
        self._book.running = True
        self._resume_incidents()
        self._stops.resume()
        self._alerts.pump(everything_pending=True)  # what a crash left pending goes out now
        self.watch()
        self._thread("tradeguard-breaker", self.tick, config.breaker.interval_seconds)
        if config.criticality.enabled:
            interval = config.criticality.interval_seconds
            self._thread("tradeguard-criticality", self.criticality_tick, interval)

    def watch(self) -> None:
        """Start the store watcher (the guard does when built): the first look one interval
        from now, as the store was just loaded."""
        interval = self._book.config.guard.watch_interval_seconds
        self._thread(_WATCHER, self._sync.watch, interval, wait_first=True)

    def stop(self) -> None:
        """Stop monitoring (the breaker and criticality threads); the watcher runs on until
        ``close``: a guard that stopped monitoring still obeys a halt made elsewhere."""
        for name, thread in self._threads.items():
            if name != _WATCHER:
                thread.stop()

    def close(self) -> None:
        """Stop every thread and release the source readers (a hung one is left to die)."""
        for thread in self._threads.values():
            thread.stop()
        for calls in self._source_calls.values():
            calls.close()

    def health(self) -> dict[str, Any]:
        """Judged by the age of the last tick, not by the thread being alive: a thread that is
        alive but stuck is no backstop."""
        breaker = self._threads.get("tradeguard-breaker")
        running = breaker is not None and breaker.running
        last = self.last_tick
        age = None if last is None else self._clock.time() - last.at
        limit = 3 * self._book.config.breaker.interval_seconds
        return {
            "running": running,
            "healthy": running and age is not None and age <= limit,
            "last_tick": None if last is None else to_iso(last.at),
            "last_tick_age_seconds": age,
        }

    def _calls_for(self, source: str) -> TimedCalls:
        calls = self._source_calls.get(source)
        if calls is None:
            workers = self._book.config.breaker.source_workers
            calls = self._source_calls[source] = TimedCalls(
                workers, name=f"tradeguard-source-{source}"
            )
        return calls

    def _thread(
        self, name: str, fn: Callable[[], object], interval: float, *, wait_first: bool = False
    ) -> None:
        thread = self._threads.get(name)
        if thread is None:
            thread = self._threads[name] = Periodic(fn, interval, name, wait_first=wait_first)
        thread.start()
