"""The emergency stop coordinator: cancel everything, close everything, verify flat.

Every round on a venue re-reads the truth before acting: cancel open orders, read positions,
send one reduce-only market order per position for exactly what is left. That is what makes it
idempotent: after a timeout that may or may not have filled, after a partial fill, after a
crash and restart, the next round closes only what is still open, and a reduce-only order can
never flip a position. Venues run concurrently; within one, a sliding-window limiter keeps to
the venue's rate limit and rounds are serialized so two stops never race each other.

Nothing here reads a clock or sleeps except through what it is given, so tests drive deadlines
and backoff with a fake clock.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tradeguard.clock import Clock, to_iso
from tradeguard.venues.base import (
    Side,
    Venue,
    VenueError,
    VenueOrder,
    VenuePosition,
    VenueTimeout,
)

T = TypeVar("T")
Step = Callable[[str, dict[str, Any]], None]
Sleep = Callable[[float], Awaitable[None]]


def is_flat(positions: Sequence[VenuePosition] | None) -> bool:
    """The one test of "flat" every report uses: a position read that answered and found
    nothing. ``None`` is a read that failed or never happened: unknown, which is never flat."""
    return positions is not None and not positions


def held(positions: Sequence[VenuePosition]) -> str:
    """What is still open, for people: how many positions, and in which symbols."""
    return f"{len(positions)} open ({', '.join(sorted({p.symbol for p in positions}))})"


def counted(n: int, noun: str) -> str:
    """``1 order``, ``2 orders``: counts people read, in the audit and on the terminal."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def describe_step(kind: str, details: dict[str, Any]) -> str:
    """A stop's step in one line, from its published details: the audit record's reason and
    the demo's narration are the same words."""
    venue = details.get("venue", "")
    if kind == "venue_cancelled":
        return f"{venue}: {counted(details['cancelled'], 'order')} cancelled"
    if kind == "venue_flat":
        return (
            f"{venue}: flat after {counted(details['orders_sent'], 'order')}, "
            f"{counted(details['rounds'], 'round')}, "
            f"{counted(len(details['errors']), 'error')} retried"
        )
    if kind == "venue_kept":
        return f"{venue}: {details['outcome']}"
    if kind == "finished":
        return f"{details['outcome']} in {details['seconds']:.3f}s"
    if kind == "escalated":
        return f"{venue}: not flat after {details['elapsed']:.1f}s; escalated"
    return f"{kind} {venue}".strip()


@dataclass
class VenueReport:
    """One venue's part of a stop. ``open_positions`` and ``open_orders`` are what the last
    round read (``None``: not read in it, or the read failed), so ``flat`` is never a stale
    or a missing answer."""

    venue: str
    close_positions: bool = True
    cancelled: int = 0
    orders_sent: int = 0
    rounds: int = 0
    cancel_seconds: float | None = None
    flatten_seconds: float | None = None
    errors: list[str] = field(default_factory=list)
    open_positions: list[VenuePosition] | None = None
    open_orders: list[VenueOrder] | None = None

    @property
    def flat(self) -> bool:
        return is_flat(self.open_positions)

    @property
    def done(self) -> bool:
        """What the stop set out to do is verified: no order left, every position read, and
        none left when it closes them."""
        kept = not self.close_positions and self.open_positions is not None
        return self.open_orders == [] and (self.flat or kept)

    @property
    def outcome(self) -> str:
        return verdict([self])

    def to_dict(self) -> dict[str, Any]:
        positions = self.open_positions
        return {
            "venue": self.venue,
            "flat": self.flat,
            "done": self.done,
            "outcome": self.outcome,
            "cancelled": self.cancelled,
            "orders_sent": self.orders_sent,
            "rounds": self.rounds,
            "cancel_seconds": self.cancel_seconds,
            "flatten_seconds": self.flatten_seconds,
            "errors": self.errors[-10:],
            "open_positions": None
            if positions is None
            else [[p.strategy_id, p.symbol, p.quantity] for p in positions],
            "open_orders": None
            if self.open_orders is None
            else [o.order_id for o in self.open_orders],
        }


def verdict(venues: Sequence[VenueReport]) -> str:
    """A stop's verdict in words, the same in the audit, the events, the CLI, the report, the
    dashboard and the demo: FLAT only when every venue is verified flat and done."""
    if not venues:
        return "NOT FLAT: no venue attached"
    still = [p for v in venues for p in v.open_positions or ()]
    if all(v.done for v in venues):
        everywhere_flat = all(v.flat for v in venues)
        return "FLAT" if everywhere_flat else f"orders cancelled; positions kept: {held(still)}"
    if all(v.flat for v in venues):
        unsure = ", ".join(v.venue for v in venues if v.open_orders != [])
        return f"flat; orders not verified cancelled on {unsure}"
    unknown = ", ".join(v.venue for v in venues if v.open_positions is None)
    parts = ([held(still)] if still else []) + (
        [f"positions unknown on {unknown}"] if unknown else []
    )
    return f"NOT FLAT: {'; '.join(parts)}"


@dataclass
class FlattenReport:
    """What a stop did, venue by venue; ``flat`` only when every venue read after the stop
    holds nothing for the scope, ``done`` when every venue verified what the stop set out to
    do (with ``close_positions`` off, positions are kept and said so)."""

    run_id: str
    scope: str
    reason: str
    close_positions: bool
    started_at: float
    finished_at: float = 0.0
    escalated: bool = False
    venues: list[VenueReport] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.finished_at - self.started_at

    @property
    def flat(self) -> bool:
        return bool(self.venues) and all(v.flat for v in self.venues)

    @property
    def done(self) -> bool:
        return bool(self.venues) and all(v.done for v in self.venues)

    @property
    def outcome(self) -> str:
        return verdict(self.venues)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "scope": self.scope,
            "reason": self.reason,
            "close_positions": self.close_positions,
            "started_at": to_iso(self.started_at),
            "seconds": round(self.seconds, 6),
            "flat": self.flat,
            "done": self.done,
            "outcome": self.outcome,
            "escalated": self.escalated,
            "venues": [v.to_dict() for v in self.venues],
        }


@dataclass(frozen=True)
class StopPolicy:
    deadline_seconds: float = 30.0  # escalate if not flat by then
    give_up_seconds: float = 300.0  # stop retrying (still halted; people take over)
    backoff_initial: float = 0.05
    backoff_max: float = 2.0
    max_in_flight: int = 50  # concurrent requests per venue
    call_timeout: float = 5.0  # a venue call that takes longer is a timeout, and retried


class RateLimiter:
    """At most ``rate`` requests in any one-second window (what a venue's 429 counts). A
    request occupies the window from when it is sent until a second after it finished: the
    venue counts it when it arrives, which may be later than we sent it (a busy loop, the
    network), and never later than its answer.

    Time is the stop's injected clock and sleep, so tests pace a whole stop on simulated time.
    That clock is the wall clock in production, which can be stepped backwards: a request that
    finished "in the future" is counted as finishing now, so no wait is ever longer than the
    one second the window lasts."""

    def __init__(self, rate: float, *, clock: Clock, sleep: Sleep) -> None:
        self._rate = max(1, int(rate * 0.9))  # a margin for the venue's own clock
        self._clock = clock
        self._sleep = sleep
        self._finished: deque[float] = deque()
        self._in_flight = 0

    async def wait(self) -> None:
        while True:
            now = self._clock.time()
            if self._finished and self._finished[-1] > now:  # the clock was stepped back
                self._finished = deque(min(t, now) for t in self._finished)
            while self._finished and self._finished[0] <= now - 1.0:
                self._finished.popleft()
            if len(self._finished) + self._in_flight < self._rate:
                self._in_flight += 1
                return
            wake = self._finished[0] + 1.0 - now if self._finished else 0.01
            await self._sleep(wake)

    def finished(self) -> None:
        self._in_flight -= 1
        self._finished.append(self._clock.time())


@dataclass
class _Run:
    """One stop in progress: its report, and how its steps are announced."""

    report: FlattenReport
    strategy_id: str | None
    escalation: asyncio.Event
    notify: Step
    clock: Clock

    def step(self, kind: str, details: dict[str, Any]) -> None:
        self.notify(
            kind,
            {
                "run": self.report.run_id,
                "scope": self.report.scope,
                "at": self.clock.time(),
                **details,
            },
        )


class EmergencyStop:
    """Runs stops. Keep one per guard: its per-venue locks and rate limiters must outlive a
    single run, or two stops could trade the same venue at once."""

    def __init__(
        self,
        venues: Sequence[Venue],
        *,
        clock: Clock,
        policy: StopPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        on_step: Step | None = None,
        still_wanted: Callable[[str], bool] | None = None,
    ) -> None:
        self.venues = venues  # the caller's list: venues attached later are included
        self._clock = clock
        self._policy = policy if policy is not None else StopPolicy()
        self._sleep = sleep
        self._notify = on_step or (lambda _kind, _details: None)
        self._still_wanted = still_wanted or (lambda _scope: True)
        self._limiters: dict[str, RateLimiter] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def run(
        self,
        *,
        run_id: str,
        reason: str,
        strategy_id: str | None = None,
        close_positions: bool = True,
    ) -> FlattenReport:
        scope = "portfolio" if strategy_id is None else f"strategy:{strategy_id}"
        report = FlattenReport(run_id, scope, reason, close_positions, self._clock.time())
        run = _Run(report, strategy_id, asyncio.Event(), self._notify, self._clock)
        venues = list(self.venues)
        run.step("started", {"reason": reason, "venues": [v.name for v in venues]})
        results = await asyncio.gather(
            *(self._venue(v, run) for v in venues), return_exceptions=True
        )
        for venue, result in zip(venues, results, strict=True):
            if isinstance(result, VenueReport):
                report.venues.append(result)
            elif isinstance(result, Exception):  # a bug, not a venue fault: report it, not flat
                failed = VenueReport(
                    venue.name, close_positions, errors=[f"stop failed: {result!r}"]
                )
                report.venues.append(failed)
            else:
                raise result
        report.finished_at = self._clock.time()
        report.escalated = run.escalation.is_set()
        run.step("finished", report.to_dict())
        return report

    async def _venue(self, venue: Venue, run: _Run) -> VenueReport:
        out = VenueReport(venue.name, run.report.close_positions)
        policy, start = self._policy, self._clock.time()
        backoff = policy.backoff_initial
        lock = self._locks.setdefault(venue.name, asyncio.Lock())
        while True:
            if not self._still_wanted(run.report.scope):  # lifted meanwhile: stop stopping
                out.errors.append("abandoned: the halt was lifted")
                run.step("abandoned", out.to_dict())
                return out
            out.rounds += 1
            try:
                async with lock:
                    progressed = await self._round(venue, out, run, start)
                if out.done:
                    out.flatten_seconds = self._clock.time() - start
                    run.step("venue_flat" if out.flat else "venue_kept", out.to_dict())
                    return out
                backoff = policy.backoff_initial if progressed else backoff
            except Exception as exc:  # every failure is retried: the book must get flat
                out.errors.append(
                    f"round {out.rounds}: {exc!r}"
                    if not isinstance(exc, VenueError)
                    else f"round {out.rounds}: {exc}"
                )
            elapsed = self._clock.time() - start
            if elapsed >= policy.deadline_seconds and not run.escalation.is_set():
                run.escalation.set()
                run.step(
                    "escalated",
                    {
                        "venue": venue.name,
                        "elapsed": elapsed,
                        "deadline": policy.deadline_seconds,
                        "still_open": out.to_dict(),
                    },
                )
            if elapsed >= policy.give_up_seconds:
                run.step("gave_up", out.to_dict())
                return out
            await self._sleep(backoff)
            backoff = min(backoff * 2, policy.backoff_max)

    async def _round(self, venue: Venue, out: VenueReport, run: _Run, start: float) -> bool:
        """One pass; returns whether a close went through. Reads positions every time, closing
        or not: what it reads is the report's truth, and a read that fails leaves it unknown."""
        sid = run.strategy_id
        out.open_positions = out.open_orders = None  # an earlier round's reads are stale now
        out.cancelled += await self._call(venue, lambda: venue.cancel_all(sid))
        if out.cancel_seconds is None:
            out.cancel_seconds = self._clock.time() - start
            run.step(
                "venue_cancelled",
                {"venue": venue.name, "cancelled": out.cancelled, "seconds": out.cancel_seconds},
            )
        positions = out.open_positions = await self._call(venue, lambda: venue.positions(sid))
        if not positions or not run.report.close_positions:
            out.open_orders = await self._call(venue, lambda: venue.open_orders(sid))
            return False
        limit = asyncio.Semaphore(self._policy.max_in_flight)
        results = await asyncio.gather(
            *(self._close(venue, p, run.report.run_id, out.rounds, limit) for p in positions),
            return_exceptions=True,
        )
        closed = 0
        for result in results:
            if isinstance(result, Exception):
                out.errors.append(f"round {out.rounds}: {result}")
            elif isinstance(result, BaseException):
                raise result
            else:
                out.orders_sent += 1
                closed += 1
        return closed > 0  # only a close that went through resets the backoff

    async def _close(
        self,
        venue: Venue,
        position: VenuePosition,
        run_id: str,
        round_no: int,
        limit: asyncio.Semaphore,
    ) -> VenueOrder:
        side = Side.SELL if position.quantity > 0 else Side.BUY
        owner = position.strategy_id or "_"
        async with limit:
            return await self._call(
                venue,
                lambda: venue.submit_order(
                    symbol=position.symbol,
                    side=side,
                    quantity=abs(position.quantity),
                    client_order_id=f"tg-{run_id}-{owner}-{position.symbol}-{round_no}",
                    reduce_only=True,
                    strategy_id=position.strategy_id,
                ),
            )

    async def _call(self, venue: Venue, request: Callable[[], Awaitable[T]]) -> T:
        limiter = self._limiters.get(venue.name)
        if limiter is None:
            limiter = self._limiters[venue.name] = RateLimiter(
                venue.rate_limit, clock=self._clock, sleep=self._sleep
            )
        await limiter.wait()
        try:
            return await asyncio.wait_for(request(), self._policy.call_timeout)
        except TimeoutError:
            raise VenueTimeout(
                f"{venue.name}: no answer in {self._policy.call_timeout:g}s"
            ) from None
        finally:
            limiter.finished()
