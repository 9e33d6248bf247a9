"""Turns guard events into alerts and gets them delivered: routed, folded, durable, retried.

Each alert is written to the store's outbox, one row per channel, before anything is sent;
sending happens on the actuator loop, so no halt waits for a channel. A failed send is retried
with backoff (or when a 429 says) from the breaker's tick, on the guard's clock; rows still
pending after a crash are sent when the guard starts again, with the same id as idempotency
key. Repeats of one alert (same rule, same scope) within the cooldown are held back and sent
as one "N more" follow-up; critical alerts are never held back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the channels (httpx, aiosmtplib) load only when one is configured
    import httpx

    from tradeguard.alerts.channels import Channel

from tradeguard.alerts import message
from tradeguard.alerts.message import Alert
from tradeguard.clock import Clock
from tradeguard.config import AlertPriority, AlertsConfig
from tradeguard.errors import DeliveryFailed, StoreUnavailable
from tradeguard.store import OutboxRow, StateStore

log = logging.getLogger("tradeguard.alerts")

Submit = Callable[[Callable[[], Awaitable[Any]]], "Future[Any]"]


@dataclass
class _Cooling:
    until: float
    alert: Alert
    held: int = 0


@dataclass(frozen=True)
class Delivery:
    """One attempt's outcome: published as the ``alert_delivery`` event."""

    alert_id: str
    channel: str
    ok: bool
    latency_ms: float
    error: str | None
    final: bool  # delivered, or failed for good


class AlertDispatcher:
    def __init__(
        self,
        config: AlertsConfig,
        *,
        store: Callable[[], StateStore | None],
        clock: Clock,
        submit: Submit,
        emit: Callable[[str, object], None],
        channels: dict[str, Channel] | None = None,
    ) -> None:
        self.config = config
        if channels is None and config.configured:
            from tradeguard.alerts.channels import build

            channels = build(config)
        self.channels: dict[str, Channel] = channels or {}
        self._store, self._clock, self._submit, self._emit = store, clock, submit, emit
        self._cooling: dict[str, _Cooling] = {}
        self._in_flight: set[tuple[str, str]] = set()
        self._client: httpx.AsyncClient | None = None

    # -- from events to the outbox ----------------------------------------------------------

    def routed(self, priority: AlertPriority) -> list[str]:
        return [c for c in self.config.routing.get(priority, []) if c in self.channels]

    def publish(self, alert: Alert | None) -> None:
        """Route, fold repeats, write to the outbox, and send."""
        if alert is None or not self.routed(alert.priority):
            return
        now = self._clock.time()
        if alert.priority is not AlertPriority.CRITICAL and self.config.cooldown_seconds > 0:
            cooling = self._cooling.get(alert.key)
            if cooling is not None and now < cooling.until:
                cooling.held += 1
                cooling.alert = alert
                return
            self._cooling[alert.key] = _Cooling(now + self.config.cooldown_seconds, alert)
        self._enqueue(alert, now)

    def _enqueue(self, alert: Alert, now: float) -> None:
        rows = [
            OutboxRow(
                alert.id, channel, str(alert.priority), alert.to_dict(), "pending", 0, now, now
            )
            for channel in self.routed(alert.priority)
        ]
        store = self._store()
        try:
            if store is None:
                raise StoreUnavailable("no state store")
            store.enqueue_alerts(rows)
        except StoreUnavailable as exc:  # still send: an alert beats a perfect record of one
            log.error("alert %s not written to the outbox (%s); sending anyway", alert.id, exc)
        self._send(rows)

    def pump(self, *, everything_pending: bool = False) -> None:
        """From the breaker's tick: send folded follow-ups whose cooldown ended, and retry
        what is due. At start-up, everything still pending goes at once: a crash must not
        have made an alert wait out its backoff as well."""
        now = self._clock.time()
        link = self.config.dashboard_url
        for key, cooling in list(self._cooling.items()):
            if now >= cooling.until:
                del self._cooling[key]
                if cooling.held:
                    self._enqueue(message.folded(cooling.alert, cooling.held, now, link), now)
        store = self._store()
        if store is None:
            return
        try:
            due = store.due_alerts(float("inf") if everything_pending else now)
        except StoreUnavailable as exc:
            log.error("cannot read the alert outbox: %s", exc)
            return
        self._send([r for r in due if (r.id, r.channel) not in self._in_flight])

    # -- delivery, on the actuator loop -----------------------------------------------------

    def _send(self, rows: list[OutboxRow]) -> None:
        if not rows:
            return
        self._in_flight.update((r.id, r.channel) for r in rows)
        self._submit(lambda: asyncio.gather(*(self._attempt(r) for r in rows)))

    async def _attempt(self, row: OutboxRow) -> Delivery:
        try:
            return await self._try(row)
        finally:
            self._in_flight.discard((row.id, row.channel))

    async def _try(self, row: OutboxRow, *, record: bool = True) -> Delivery:
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.config.timeout_seconds)
        channel = self.channels.get(row.channel)
        alert = Alert.from_dict(row.payload)
        started = time.perf_counter()
        error, permanent, retry_after = None, False, None
        if channel is None:
            error, permanent = f"channel {row.channel} is no longer configured", True
        else:
            try:
                await asyncio.wait_for(
                    channel.send(alert, self._client), self.config.timeout_seconds
                )
            except DeliveryFailed as exc:
                error, permanent, retry_after = str(exc), exc.permanent, exc.retry_after
            except TimeoutError:
                error = f"no answer in {self.config.timeout_seconds:g}s"
            except Exception as exc:  # refused connection, DNS, TLS: all retried
                error = f"{type(exc).__name__}: {exc}"
        latency = (time.perf_counter() - started) * 1e3
        now = self._clock.time()
        attempts = row.attempts + 1
        if error is None:
            updated = dataclasses.replace(
                row,
                status="delivered",
                attempts=attempts,
                delivered_at=now,
                latency_ms=latency,
                last_error=None,
            )
        elif permanent or attempts >= self.config.max_attempts:
            updated = dataclasses.replace(row, status="failed", attempts=attempts, last_error=error)
            log.critical("alert %s via %s FAILED for good: %s", row.id, row.channel, error)
        else:
            backoff = retry_after if retry_after is not None else min(0.5 * 2**row.attempts, 60)
            updated = dataclasses.replace(
                row, attempts=attempts, next_attempt=now + backoff, last_error=error
            )
            log.warning(
                "alert %s via %s not delivered (%s); retry in %.1fs",
                row.id,
                row.channel,
                error,
                backoff,
            )
        store = self._store() if record else None
        if store is not None:
            try:
                store.update_alert(updated)
            except StoreUnavailable as exc:
                log.error("cannot record alert %s: %s", row.id, exc)
        outcome = Delivery(
            row.id, row.channel, error is None, latency, error, updated.status != "pending"
        )
        self._emit("alert_delivery", outcome)
        return outcome

    async def send_now(self, alert: Alert) -> dict[str, Delivery]:
        """Straight through every routed channel, no outbox, no retry (`test-alert`)."""
        rows = [
            OutboxRow(
                alert.id,
                c,
                str(alert.priority),
                alert.to_dict(),
                "pending",
                self.config.max_attempts - 1,
                0.0,
                0.0,
            )
            for c in self.routed(alert.priority)
        ]
        results = await asyncio.gather(*(self._try(r) for r in rows))
        return {r.channel: r for r in results}

    async def warm_up(self) -> None:
        """Build the HTTP client (and its TLS context) before the first alert needs it."""
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.config.timeout_seconds)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
