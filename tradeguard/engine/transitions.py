"""Transitions: the only writer of scope states.

A halt takes effect in memory before it is written (the next order check already sees it); a
resume or reset is written before it takes effect (a failed write lifts nothing). Every change
is published to the subscribers in the order they subscribed, synchronously and after the state
is in force, then as events on the actuator. A failure to apply a halt locks the book down
rather than letting trading go on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tradeguard import inputs
from tradeguard.audit import AuditEntry
from tradeguard.clock import Clock
from tradeguard.engine.book import SYSTEM, TIGHT_STATES, Book
from tradeguard.engine.refusals import RefusalWindows, key_of
from tradeguard.engine.storage import Storage
from tradeguard.errors import InvalidTransition, PermissionDenied, StoreUnavailable
from tradeguard.events import Actuator
from tradeguard.model import (
    PORTFOLIO,
    Actor,
    Breach,
    PortfolioState,
    Scope,
    ScopeKind,
    StateChange,
    StrategyState,
)
from tradeguard.state import TIGHTENING, Command, ScopeStatus, next_state
from tradeguard.store import Approval, Rung, StateConflict, StateWrite

log = logging.getLogger("tradeguard")

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

Subscriber = Callable[[StateChange], None]


class Transitions:
    def __init__(
        self, book: Book, storage: Storage, clock: Clock, actuator: Actuator, marker: Path
    ) -> None:
        self._book = book
        self._storage = storage
        self._clock = clock
        self._actuator = actuator
        self._marker = marker
        self._subscribers: list[Subscriber] = []
        self._catch_up: Callable[[], bool] | None = None
        self._refusals = RefusalWindows(clock, lambda: book.config.auth.refusal_window_seconds)

    def subscribe(self, fn: Subscriber) -> None:
        """Call ``fn(change)`` on every change, synchronously, once the state is in force."""
        self._subscribers.append(fn)

    def follow(self, catch_up: Callable[[], bool]) -> None:
        """``catch_up()`` adopts what other processes wrote, True when there was anything: a
        halt that memory calls redundant asks it first (the store may hold a lift made
        elsewhere that this process has not adopted yet)."""
        self._catch_up = catch_up

    def catch_up(self) -> bool:
        """Adopt what other processes wrote, now (True when there was anything): before an
        automated actor decides on whether a person has lifted something."""
        return self._catch_up is not None and self._catch_up()

    def apply(
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
        episode: int | None = None,
    ) -> StateChange | None:
        """Move ``scope`` by ``command``; None when it was already at least as strict, or when
        it tightens on behalf of the halt episode that began at portfolio version ``episode``
        (an incident's) and a person has lifted the portfolio since. A halt
        that lost a version race is re-decided on the stored state (it never loosens); a lift
        that lost one is refused: it was decided on what the person saw. A halt that memory
        calls redundant is decided again once the store's changes are adopted, if it has any
        (one ``data_version`` read): "already halted" must be the store's word, not memory's."""
        self._may(actor, command)
        started = time.perf_counter()
        reason = inputs.text(reason)
        tightening = command in TIGHTENING
        key = str(scope)
        states = self._book.states
        catch_up = self._catch_up if tightening else None  # asked once, while on memory
        with self._book.lock:
            current = self._book.status_of(scope)
            for _attempt in range(5):
                if episode is not None and self._superseded(scope, current, episode):
                    return None
                after = next_state(scope.kind, current.state, command)
                if after is None and catch_up is not None:
                    fresh, catch_up = catch_up(), None
                    if fresh:
                        current = self._book.status_of(scope)
                        continue
                if after is None:  # already at least as strict (perhaps by another process)
                    states[key] = current
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
                    states[key] = status  # effective now; durable below
                try:
                    try:
                        self._persist(change, current.version, approvals, rungs)
                    except StateConflict:
                        stored = self._stored(key)
                        if not tightening:
                            states[key] = stored
                            raise InvalidTransition(
                                f"{key} changed in another process (now {stored.state}: "
                                f"{stored.reason}); nothing was lifted: look again"
                            ) from None
                        current = stored  # re-decide the halt on the stored truth; memory
                        catch_up = None  # keeps the stricter attempt meanwhile
                        continue
                except StoreUnavailable as exc:
                    if tightening:
                        self.publish(change)
                        self.fail_store(str(exc))
                    raise
                if not tightening:
                    states[key] = status
                break
            else:
                message = f"{key} kept changing in another process; could not record {command}"
                if tightening:
                    self.fail_store(message)
                raise StoreUnavailable(message)
        change = dataclasses.replace(change, durable_seconds=time.perf_counter() - started)
        self.publish(change)
        return change

    def _superseded(self, scope: Scope, current: ScopeStatus, episode: int) -> bool:
        """A person lifted the episode: in memory, or (the portfolio's own row, re-read after
        a version race) in the store."""
        if self._book.lifted_since(episode):
            return True
        portfolio = scope.kind is ScopeKind.PORTFOLIO
        return portfolio and current.state == PortfolioState.NORMAL and current.version > episode

    def quietly(
        self,
        scope: Scope,
        command: Command,
        actor: Actor,
        reason: str,
        breach: Breach | None = None,
        *,
        episode: int | None = None,
    ) -> StateChange | None:
        """For automated actors: a store failure is already handled (emergency), not raised; any
        other failure to apply a halt locks everything down rather than letting trading go on."""
        try:
            return self.apply(scope, command, actor, reason, breach=breach, episode=episode)
        except StoreUnavailable:
            return None
        except Exception as exc:
            log.exception("could not apply %s to %s", command, scope)
            why = f"internal_error: could not apply {command} to {scope}: {exc!r}"
            try:  # durably if the store still works, in memory regardless
                self.apply(PORTFOLIO, Command.EMERGENCY, SYSTEM, why)
            except Exception:
                self.lockdown(why)
            return None

    def _may(self, actor: Actor, command: Command) -> None:
        """A reader changes nothing; an automated actor only tightens."""
        if self._book.read_only:
            raise InvalidTransition(
                f"this guard was opened read-only, to look: {command} from one that writes"
            )
        if actor.automated and command not in TIGHTENING:
            raise PermissionDenied(f"{actor} is automated and may only tighten, not {command}")

    def lockdown(self, reason: str) -> None:
        """Emergency in memory, for failures where the normal path cannot be trusted."""
        shout(f"entering emergency: {reason}")
        current = self._book.states["portfolio"]
        if current.state == PortfolioState.EMERGENCY:
            return
        now = self._clock.time()
        self._book.states["portfolio"] = ScopeStatus(
            PortfolioState.EMERGENCY, reason, now, str(SYSTEM), current.version
        )
        self.publish(
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

    def fail_store(self, message: str) -> None:
        """The store cannot be trusted: lock down in memory; nothing can be lifted until fixed.
        A marker file beside the DB carries the emergency over a restart, should the store
        come back without it. Once this guard closed its store, a write that finds it closed
        is the shutdown's doing, not the store's: logged, no marker (the next process would
        otherwise start in emergency over a store that is fine)."""
        if self._storage.closed:
            log.warning("after close, not a store failure: %s", message)
            return
        self._storage.error = message
        self.lockdown(f"store_unavailable: {message}")
        if self._book.read_only:  # a reader reports what it found; it leaves no trace
            return
        try:
            if not self._marker.exists():
                self._marker.write_text(json.dumps({"at": self._clock.time(), "reason": message}))
        except OSError as exc:
            log.critical("could not write the emergency marker either: %s", exc)

    def adopt_marker(self) -> None:
        """A previous run lost its store and locked down: make that emergency durable now."""
        marker = self._marker
        if not marker.exists():
            return
        try:
            why = str(json.loads(marker.read_text()).get("reason", "unknown"))
        except (OSError, ValueError, AttributeError):
            why = "unreadable marker"
        if self._book.read_only:  # shown as it stands; a guard that writes makes it durable
            self.lockdown(f"store_unavailable earlier: {why} (marker {marker.name})")
            return
        self.apply(
            PORTFOLIO,
            Command.EMERGENCY,
            SYSTEM,
            f"store_unavailable earlier: {why} (marker {marker.name})",
        )
        marker.unlink()

    def refresh(self, key: str) -> None:
        """Before a lift, take the store's word if another process moved the scope on."""
        store = self._storage.healthy()
        if store is None:
            return
        stored = store.load_states().get(key)
        mine = self._book.states.get(key)
        if stored is not None and (mine is None or stored.version > mine.version):
            self._book.states[key] = stored

    def refuse(
        self,
        user: object,
        command: Command | str,
        scope: Scope,
        why: str,
        *,
        source: str | None = None,
    ) -> None:
        """Record a refused attempt (audit and the ``refused`` event); never raises. Repeats
        of one kind within ``auth.refusal_window_seconds`` are counted, not each recorded
        (``engine.refusals``). ``source``: where it came from (a client address)."""
        entry = AuditEntry(
            self._clock.time(),
            inputs.text(user, 64),
            f"refused:{command}",
            str(scope),
            None,
            None,
            inputs.text(why),
            {} if source is None else {"source": inputs.text(source, 64)},
        )
        first, closed = self._refusals.note(key_of(source or "", entry), entry)
        if first:
            self._actuator.emit("refused", dataclasses.asdict(entry))
        self._record_refusals([*closed, entry] if first else closed)

    def flush_refusals(self, *, everything: bool = False) -> None:
        """Write the counts of the refusal windows closed by now (the breaker tick), or of
        every window (close)."""
        self._record_refusals(self._refusals.due(everything=everything))

    def _record_refusals(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        try:
            self._storage.opened().commit(audit=entries)  # a failed store takes it if it can
        except StoreUnavailable as exc:
            log.error("could not audit %d refused attempts: %s", len(entries), exc)

    def publish(self, change: StateChange) -> None:
        if self._book.read_only:  # a reader never acts: no stops, alerts or incidents
            return
        for subscriber in self._subscribers:
            subscriber(change)
        self._actuator.emit("state_change", change)
        event = _EVENT_FOR.get((change.scope.kind, change.after))
        if event is None:
            return
        self._actuator.emit(
            event, change.scope.id if change.scope.kind is ScopeKind.STRATEGY else change
        )

    def _persist(
        self,
        change: StateChange,
        expected: int,
        approvals: Sequence[Approval],
        rungs: Sequence[Rung],
    ) -> None:
        """Whatever stops the write is a store failure: a halt then stands in memory."""
        try:
            self._write(change, expected, approvals, rungs)
        except (StateConflict, StoreUnavailable):
            raise
        except Exception as exc:
            raise StoreUnavailable(f"could not record {change.after}: {exc!r}") from exc

    def _write(
        self,
        change: StateChange,
        expected: int,
        approvals: Sequence[Approval],
        rungs: Sequence[Rung],
    ) -> None:
        tight = change.after in TIGHT_STATES  # a halt is written even to a failed store
        store = self._storage.opened() if tight else self._storage.require()
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
        store.commit(
            states=[StateWrite(str(change.scope), status, expected)],
            audit=[entry],
            approvals=approvals,
            rungs=rungs,
        )

    def _stored(self, key: str) -> ScopeStatus:
        """The store's row for a scope after a conflict; a row that vanished is corruption."""
        stored = self._storage.opened().load_states().get(key)
        if stored is None:
            raise StoreUnavailable(f"the state row for {key} disappeared from the store")
        return stored


def shout(message: str) -> None:
    """Logged as critical, and on stderr too when the host set up no logging to hear it (the
    package's NullHandler swallows records otherwise): a guard that locks itself down, at
    start with an unusable store say, must never do so in silence."""
    log.critical("%s", message)
    if not _heard(log):
        print(f"tradeguard CRITICAL: {message}", file=sys.stderr, flush=True)


def _heard(logger: logging.Logger) -> bool:
    """Whether a record logged here reaches a handler that outputs it somewhere."""
    node: logging.Logger | None = logger
    while node is not None:
        if any(not isinstance(h, logging.NullHandler) for h in node.handlers):
            return True
        node = node.parent if node.propagate else None
    return False
