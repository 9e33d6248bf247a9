"""Graduated re-entry, from the breaker tick: climb recovering strategies, rung by rung.

The person who resumed a strategy authorized its whole ladder, so each step is audited in that
name and needs that person still to hold the role. Nothing climbs while the strategy breaches
or the portfolio is halted; leaving paper also needs what a resume made elsewhere (a CLI) could
not check: fresh feeds, no stop running, positions reconciled with the venues. ``Readiness``
is that judgement, shared with the resume itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from tradeguard.audit import AuditEntry
from tradeguard.config import Triggers
from tradeguard.effects.stops import Stops
from tradeguard.engine.core import Core
from tradeguard.engine.intake import Intake
from tradeguard.engine.rungs import Rungs
from tradeguard.errors import StoreUnavailable, TradeguardError
from tradeguard.model import Actor, ActorKind, PortfolioState, Role, Scope, StrategyState
from tradeguard.recovery import cooldown_left, cooldown_seconds, unreconciled
from tradeguard.state import REQUIRED_ROLE, Command, ScopeStatus
from tradeguard.store import Rung, StateConflict

log = logging.getLogger("tradeguard")

EPISODE_RECORDS = 5_000  # audit records read back to find what halted a scope since its lift
_LIFTED = frozenset({PortfolioState.NORMAL, StrategyState.ACTIVE, StrategyState.RECOVERING})

Held = dict[str, float] | str | None  # what the venues hold, why they could not say, or no venues


class Readiness:
    """Whether a halted strategy may come back, and whether a recovering one may leave paper."""

    def __init__(self, core: Core, *, intake: Intake, stops: Stops) -> None:
        self._book = core.book
        self._storage = core.storage
        self._intake = intake
        self._stops = stops
        self._clock = core.clock

    def held(self, sid: str) -> Held:
        """Venue I/O: never call it under the guard's lock."""
        return self._stops.positions(sid, self._book.config.emergency.call_timeout_seconds)

    def cooldown(
        self,
        status: ScopeStatus,
        breaching: Iterable[str],
        triggers: Triggers,
        episode: list[str] | None,
    ) -> float:
        """The longest cool-down of every rule that halted the scope since it was last lifted
        and of every rule still breaching on it (a rule's wait survives a person escalating
        its halt, and a rule that fired after a person's halt still gets its own wait),
        measured from the latest halt. ``episode``: ``episode_rules``, read outside the lock."""
        causes = [*breaching]
        kind, _, name = status.actor.partition(":")
        if kind == "rule":
            causes.append(name)
        causes += sorted(Triggers.model_fields) if episode is None else episode
        config = self._book.config
        return cooldown_seconds(
            causes, (triggers, config.triggers), config.recovery.cooldown_seconds
        )

    def episode_rules(self, key: str) -> list[str] | None:
        """The rules that halted ``key`` since its last lift, read back from the audit (the
        newest ``EPISODE_RECORDS`` records); None when its last lift is further back than that
        or the store cannot say (then every rule's cool-down counts: fail closed)."""
        store = self._storage.healthy()
        if store is None:
            return None
        try:
            records = store.audit_records(limit=EPISODE_RECORDS)
        except StoreUnavailable:
            return None
        rules: list[str] = []
        for record in reversed(records):
            e = record.entry
            if e.action != "state_change" or e.scope != key:
                continue
            if e.after in _LIFTED:
                return rules
            kind, _, name = e.actor.partition(":")
            if kind == "rule":
                rules.append(name)
        return rules if len(records) < EPISODE_RECORDS else None

    def unfit_to_resume(
        self, sid: str, status: ScopeStatus, held: Held, episode: list[str] | None
    ) -> list[str]:
        """Every reason not to lift the halt now: its cool-down, stale feeds, the portfolio
        hard-halted, its stop still running, a limit still crossed once its loss counters
        restart, positions the venues and the guard disagree on."""
        now = self._clock.time()
        key = f"strategy:{sid}"
        triggers = self._book.config.triggers_for(sid)
        seconds = self.cooldown(status, self._book.active.get(key, ()), triggers, episode)
        wait = cooldown_left(status, seconds, now)
        problems = [wait] if wait else []
        if self._book.portfolio_state is PortfolioState.HARD_HALT:
            problems.append("the portfolio is hard-halted: reset it first")
        store = self._storage.healthy()
        running = [] if store is None else [d["id"] for d in store.incidents(status="running")]
        if running:
            problems.append(f"incident {', '.join(running)} is still running")
        fresh = self._intake.ledger.rebased(sid)
        problems += [
            f"still breaching: {b.message}"
            for rule in self._intake.rules.for_strategy(sid)
            if (b := rule.evaluate(fresh, now)) is not None
        ]
        return problems + self.unfit_to_trade(sid, held, now)

    def unfit_to_trade(self, sid: str, held: Held, now: float) -> list[str]:
        """What a strategy coming back needs from the live system, checked at the resume and
        again, by the guard that has the feeds and the venues, before it leaves paper."""
        ledger = self._intake.ledger
        problems = []
        stale = sorted(
            rule.name
            for rule in self._intake.rules.portfolio
            if rule.name in ("feed_stale", "equity_stale")
            and rule.evaluate(ledger.portfolio, now) is not None
        )
        if stale:
            problems.append(f"feeds are stale ({', '.join(stale)})")
        if self._stops.is_running(f"strategy:{sid}"):
            problems.append("its emergency stop is still running")
        if isinstance(held, str):
            problems.append(held)
        elif held is not None:
            known = {s: q for s, (q, _mark) in ledger.strategy(sid).positions.items()}
            problems += unreconciled(known, held)
        return problems


class Climber:
    def __init__(
        self,
        core: Core,
        *,
        rungs: Rungs,
        readiness: Readiness,
        intake: Intake,
        role_of: Callable[[str], Role | None],
    ) -> None:
        self._book = core.book
        self._storage = core.storage
        self._transitions = core.transitions
        self._rungs = rungs
        self._readiness = readiness
        self._ledger = intake.ledger
        self._role_of = role_of
        self._clock = core.clock
        self.holds: dict[str, str] = {}  # why a rung whose gate passed did not climb

    def climb(self) -> None:
        """A recovering strategy whose gate passed moves up a rung, and past the last one back
        to full size (see the module's docstring for what it needs)."""
        now = self._clock.time()
        ladder = self._rungs.ladder
        with self._book.lock:
            due = []
            for key, status in list(self._book.states.items()):
                if key != "portfolio" and status.state == StrategyState.RECOVERING:
                    sid = Scope.parse(key).id
                    rung = self._rungs.of(sid, status)
                    if ladder.gate(rung, self._ledger.strategy(sid), now) is None:
                        due.append((sid, rung))
                    else:
                        self.holds.pop(sid, None)
        held = {sid: self._readiness.held(sid) for sid, rung in due if rung.stage == 0}
        with self._book.lock:
            for sid, rung in due:
                if self._rungs.by_strategy.get(sid) != rung:
                    continue  # halted, or moved by another guard meanwhile
                blockers = self._blockers(sid, rung, held.get(sid), now)
                if blockers:
                    self.holds[sid] = "; ".join(blockers)
                    continue
                self.holds.pop(sid, None)
                self._step(sid, rung, now)

    def _blockers(self, sid: str, rung: Rung, held: Held, now: float) -> list[str]:
        problems = []
        role = self._role_of(rung.authorized_by)
        if role is None or role < REQUIRED_ROLE[Command.RESUME]:
            problems.append(
                f"{rung.authorized_by}, who resumed it, may no longer resume: halt it and "
                "have a senior_trader resume it"
            )
        state = self._book.portfolio_state
        if state is not PortfolioState.NORMAL:
            problems.append(f"the portfolio is in {state}")
        breaching = self._book.active.get(f"strategy:{sid}")
        if breaching:
            problems.append(f"breaching {', '.join(sorted(breaching))}")
        if rung.stage == 0:
            problems += self._readiness.unfit_to_trade(sid, held, now)
        return problems

    def _step(self, sid: str, rung: Rung, now: float) -> None:
        ladder = self._rungs.ladder
        m = self._ledger.strategy(sid)
        passed = ladder.stage(rung).name
        following = ladder.following(rung, now, m)
        if following is None:
            scope, by = Scope.strategy(sid), rung.authorized_by
            why = (
                f"recovery ladder complete: gate of {passed} passed; back to full size "
                f"(on {by}'s resume)"
            )
            try:  # a failure leaves the stricter state in force, which is safe
                self._transitions.apply(scope, Command.PROMOTE, Actor(ActorKind.USER, by), why)
            except TradeguardError as exc:
                log.error("could not %s %s: %s", Command.PROMOTE, scope, exc)
            return
        name = ladder.stage(following).name
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
            self._storage.require().commit(audit=[entry], rungs=[following])
        except StateConflict:  # another guard on the store climbed it first
            self._rungs.adopt()
            return
        except StoreUnavailable as exc:  # not recorded, so not climbed: the size stays small
            log.error("could not record the recovery step of %s: %s", sid, exc)
            return
        self._rungs.set(sid, following)
