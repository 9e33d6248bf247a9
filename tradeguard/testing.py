"""Helpers for testing an integration with tradeguard: no real time, no disk, no network.

* :class:`FakeClock`: time that moves only when the test says.
* :class:`MemoryStore`: the whole store in memory, with SQLite's semantics (versions,
  conflicts, the audit chain); give it to ``Guard(store=...)``.
* :class:`CapturingChannel`: an alert channel that keeps what it is sent instead of sending it;
  :func:`capture_alerts` plugs one into a guard.
* :class:`ScriptedVenue`: a venue whose book, answers and failures are what the test scripts,
  for the emergency stop and anything else that talks to a venue.
* :func:`enroll_team`: tokens for the config's users, enrolled as the bootstrap does it.
"""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from tradeguard.clock import Clock, FakeClock
from tradeguard.model import Operator, Role
from tradeguard.store import Approval
from tradeguard.store.memory import MemoryStore
from tradeguard.venues.base import Side, VenueOrder, VenuePosition
from tradeguard.venues.sim import SimulatedVenue

if TYPE_CHECKING:
    import httpx

    from tradeguard.alerts.message import Alert
    from tradeguard.guard import Guard

__all__ = [
    "HANG",
    "Applied",
    "CapturingChannel",
    "FakeClock",
    "MemoryStore",
    "ScriptedVenue",
    "capture_alerts",
    "enroll_team",
]

T = TypeVar("T")


# -- alerts ---------------------------------------------------------------------------------


class CapturingChannel:
    """An alert channel that records every alert it delivers, for a test to assert on.

    ``name`` must be a channel the config routes to (slack, pagerduty, email, webhook); the
    default config routes every priority to slack. :meth:`fail` scripts failed deliveries
    (e.g. ``DeliveryFailed``), raised by the next sends in order, so retries can be tested.
    """

    def __init__(self, name: str = "slack") -> None:
        self.name = name
        self.sent: list[Alert] = []  # delivered, in order
        self.attempts = 0
        self._failures: deque[Exception] = deque()

    def fail(self, *errors: Exception) -> None:
        self._failures.extend(errors)

    async def send(self, alert: Alert, client: httpx.AsyncClient) -> None:
        self.attempts += 1
        if self._failures:
            raise self._failures.popleft()
        self.sent.append(alert)


def capture_alerts(guard: Guard, name: str = "slack") -> CapturingChannel:
    """Deliver ``guard``'s alerts routed to channel ``name`` to a new CapturingChannel (in
    place of that channel, if the config set one up)."""
    channel = CapturingChannel(name)
    guard.alerts.channels[name] = channel
    return channel


# -- users ----------------------------------------------------------------------------------


def enroll_team(guard: Guard, names: Iterable[str], *, by: str = "test-setup") -> dict[str, str]:
    """Tokens for users the config lists, enrolled as a real team is: the trust root (``by``,
    file access) enrolls people one at a time (admins first) until two can lift; from then on
    each new lifting credential is a two-person act (an enrolled admin requests it, another
    lifting user approves, the person redeems both shares) and the rest are one admin's."""
    roles = {u["name"]: Role.parse(u["role"]) for u in guard.users()}
    order = sorted(names, key=lambda n: (-roles[n], list(names).index(n)))
    tokens: dict[str, str] = {}
    for name in order:
        lifting = [n for n in tokens if roles[n] >= Role.RISK_MANAGER]
        admins = [n for n in lifting if roles[n] is Role.ADMIN]
        issuer: str | Operator = by
        if len(lifting) >= 2 and admins:
            issuer = Operator(admins[0])
        change = guard.issue_token(name, by=issuer)
        code = change.code or ""
        if change.request is not None:  # two-person: another lifting user approves
            approver = next(n for n in lifting if n != str(issuer))
            approval = guard.approve(change.request.id, Operator(approver))
            assert isinstance(approval, Approval) and approval.share is not None
            code += approval.share
        tokens[name] = guard.enroll(name, code)
    return {name: tokens[name] for name in names}


# -- venues ---------------------------------------------------------------------------------

Method = Literal["open_orders", "cancel_order", "cancel_all", "positions", "submit_order"]


class _Hang:
    """A scripted call that never answers: the caller's timeout has to catch it."""


HANG = _Hang()


class Applied:
    """A scripted call that takes effect on the book and then raises ``error``: the timeout
    after which the order did go through."""

    def __init__(self, error: Exception) -> None:
        self.error = error


_BOOK = object()  # no step scripted: the book answers


class ScriptedVenue(SimulatedVenue):
    """A simulated venue's book, and a script of what its next calls do instead.

    The book is :class:`SimulatedVenue`'s (no latency, no random faults): positions set with
    ``set_position``, resting orders with :meth:`rest_order`, market orders filled at
    ``prices``, reduce-only orders never past flat, repeated client order ids rejected.
    :meth:`script` queues steps for the next calls of one method, one per call, in order: an
    exception is raised, :data:`HANG` never answers, :class:`Applied` changes the book and then
    raises, and anything else is the answer (a stale position list, say). Once a method's
    script is used up, the book answers again. Every call is logged, with its arguments, in
    :attr:`log`.
    """

    def __init__(
        self,
        name: str = "scripted",
        *,
        prices: dict[str, float] | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name, prices=prices, clock=clock)
        self.log: list[tuple[Method, dict[str, Any]]] = []
        self._script: defaultdict[Method, deque[object]] = defaultdict(deque)

    def script(self, method: Method, *steps: object) -> ScriptedVenue:
        self._script[method].extend(steps)
        return self

    def rest_order(
        self, symbol: str, side: Side, quantity: float, price: float, strategy_id: str | None = None
    ) -> VenueOrder:
        """An open limit order on the book, as if placed earlier (it fills if ``mark`` crosses
        it)."""
        order_id = f"{self.name}-{next(self._ids)}"
        draft = VenueOrder(
            order_id, order_id, symbol, side, quantity, 0.0, price, False, strategy_id, "open"
        )
        return self._place(draft, partial=False)

    async def open_orders(self, strategy_id: str | None = None) -> list[VenueOrder]:
        book = functools.partial(super().open_orders, strategy_id)
        return await self._step("open_orders", book, strategy_id=strategy_id)

    async def cancel_order(self, order_id: str) -> None:
        book = functools.partial(super().cancel_order, order_id)
        await self._step("cancel_order", book, order_id=order_id)

    async def cancel_all(self, strategy_id: str | None = None) -> int:
        book = functools.partial(super().cancel_all, strategy_id)
        return await self._step("cancel_all", book, strategy_id=strategy_id)

    async def positions(self, strategy_id: str | None = None) -> list[VenuePosition]:
        book = functools.partial(super().positions, strategy_id)
        return await self._step("positions", book, strategy_id=strategy_id)

    async def submit_order(
        self,
        *,
        symbol: str,
        side: Side,
        quantity: float,
        client_order_id: str,
        reduce_only: bool = False,
        price: float | None = None,
        strategy_id: str | None = None,
    ) -> VenueOrder:
        order: dict[str, Any] = {
            "symbol": symbol,
            "side": side,
            "quantity": quantity,
            "client_order_id": client_order_id,
            "reduce_only": reduce_only,
            "price": price,
            "strategy_id": strategy_id,
        }
        book = functools.partial(super().submit_order, **order)
        return await self._step("submit_order", book, **order)

    async def _step(self, method: Method, book: Callable[[], Awaitable[T]], **args: Any) -> T:
        self.log.append((method, args))
        queued = self._script[method]
        step = queued.popleft() if queued else _BOOK
        if isinstance(step, _Hang):
            await asyncio.Event().wait()
        if isinstance(step, Exception):
            raise step
        if step is not _BOOK and not isinstance(step, Applied):
            return cast(T, step)
        answer = await book()
        if isinstance(step, Applied):
            raise step.error
        return answer
