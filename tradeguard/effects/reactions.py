"""Alerts as reactions: every breach, halt, resume, reset, refusal and escalation is an alert.

The handlers are async: they run on the actuator loop and never hold up a halt. The outbox
behind ``AlertDispatcher.publish`` makes delivery durable and retried.
"""

from __future__ import annotations

from typing import Any

from tradeguard.alerts import message as alert_message
from tradeguard.alerts.dispatcher import AlertDispatcher
from tradeguard.events import Actuator
from tradeguard.model import Breach, StateChange


def wire_alerts(actuator: Actuator, alerts: AlertDispatcher, link: str | None) -> None:
    publish = alerts.publish

    async def on_change(change: StateChange) -> None:
        publish(alert_message.from_change(change, link))

    async def on_breach(breach: Breach) -> None:
        if breach.rule != "flatten_deadline":  # that one is its escalation's alert
            publish(alert_message.from_breach(breach, link))

    async def on_escalation(breach: Breach) -> None:
        publish(alert_message.from_escalation(breach, link))

    async def on_refused(entry: dict[str, Any]) -> None:
        publish(alert_message.from_refusal(entry, link))

    actuator.register("state_change", on_change)
    actuator.register("breach", on_breach)
    actuator.register("escalation", on_escalation)
    actuator.register("refused", on_refused)
