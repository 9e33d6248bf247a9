"""The four channels. Each sends one alert or raises ``DeliveryFailed``; none retries: the
dispatcher does, from the outbox, so a crash loses nothing and a dead channel blocks no other."""

from __future__ import annotations

import hashlib
import hmac
import json
from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib
import httpx

from tradeguard.alerts.message import Alert
from tradeguard.config import AlertsConfig, EmailConfig, WebhookConfig
from tradeguard.errors import DeliveryFailed


class Channel(Protocol):
    name: str

    async def send(self, alert: Alert, client: httpx.AsyncClient) -> None: ...


def _check(response: httpx.Response, expected: tuple[int, ...]) -> None:
    if response.status_code in expected:
        return
    code = response.status_code
    retry_after = None
    if code == 429:
        try:
            retry_after = float(response.headers.get("retry-after", "1"))
        except ValueError:
            retry_after = 1.0
    permanent = 400 <= code < 500 and code not in (408, 429)
    raise DeliveryFailed(
        f"HTTP {code}: {response.text[:200]}", permanent=permanent, retry_after=retry_after
    )


class Slack:
    """An incoming webhook: ``{"text": ...}``, answered with 200 "ok"."""

    name = "slack"

    def __init__(self, url: str) -> None:
        self._url = url

    async def send(self, alert: Alert, client: httpx.AsyncClient) -> None:
        text = f"*[{alert.priority.upper()}] {alert.title}*\n{alert.text}"
        _check(await client.post(self._url, json={"text": text}), (200,))


class PagerDuty:
    """Events API v2: trigger an incident per scope, resolve it when the scope is reset."""

    name = "pagerduty"

    def __init__(self, url: str, routing_key: str) -> None:
        self._url, self._key = url, routing_key

    async def send(self, alert: Alert, client: httpx.AsyncClient) -> None:
        event: dict[str, Any] = {
            "routing_key": self._key,
            "event_action": "resolve" if alert.resolve else "trigger",
            "dedup_key": f"tradeguard:{alert.scope}",
        }
        if not alert.resolve:
            event["payload"] = {
                "summary": alert.title[:1024],
                "source": "tradeguard",
                "severity": str(alert.priority),  # ours are PagerDuty's names
                "timestamp": alert.to_dict()["time"],
                "custom_details": {"text": alert.text, "alert_id": alert.id},
            }
        _check(await client.post(self._url, json=event), (200, 202))


class Webhook:
    """The alert as JSON; with a secret, ``X-Tradeguard-Signature: sha256=<hmac of body>``."""

    name = "webhook"

    def __init__(self, hooks: list[WebhookConfig]) -> None:
        self._hooks = hooks

    async def send(self, alert: Alert, client: httpx.AsyncClient) -> None:
        body = json.dumps(alert.to_dict(), sort_keys=True).encode()
        for hook in self._hooks:  # every hook must take it; a failure retries all (idempotent)
            headers = {"Content-Type": "application/json", "Idempotency-Key": alert.id}
            if hook.secret is not None:
                digest = hmac.new(hook.secret.get_secret_value().encode(), body, hashlib.sha256)
                headers["X-Tradeguard-Signature"] = f"sha256={digest.hexdigest()}"
            _check(await client.post(hook.url, content=body, headers=headers), (200, 201, 202, 204))


class Email:
    """SMTP with STARTTLS (or implicit TLS on 465) and login when configured."""

    name = "email"

    def __init__(self, config: EmailConfig, timeout: float) -> None:
        self._c, self._timeout = config, timeout

    async def send(self, alert: Alert, client: httpx.AsyncClient) -> None:
        c = self._c
        message = EmailMessage()
        message["Subject"] = f"[tradeguard {alert.priority}] {alert.title}"
        message["From"] = c.from_address or c.username or "tradeguard@localhost"
        message["To"] = ", ".join(c.to_addresses)
        message["Message-ID"] = f"<{alert.id}@tradeguard>"
        message.set_content(alert.text)
        implicit = c.use_tls and c.smtp_port == 465
        try:
            await aiosmtplib.send(
                message,
                hostname=c.smtp_server,
                port=c.smtp_port,
                username=c.username,
                password=None if c.password is None else c.password.get_secret_value(),
                use_tls=implicit,
                start_tls=c.use_tls and not implicit,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise DeliveryFailed(f"SMTP login refused: {exc.code}", permanent=True) from exc
        except aiosmtplib.SMTPException as exc:
            raise DeliveryFailed(f"SMTP: {exc}") from exc


def build(config: AlertsConfig) -> dict[str, Channel]:
    """The channels the config gives what they need."""
    channels: dict[str, Channel] = {}
    if config.slack_webhook is not None:
        channels["slack"] = Slack(config.slack_webhook.get_secret_value())
    if config.pagerduty_key is not None:
        channels["pagerduty"] = PagerDuty(
            config.pagerduty_url, config.pagerduty_key.get_secret_value()
        )
    if config.webhooks:
        channels["webhook"] = Webhook(config.webhooks)
    if config.email.enabled:
        channels["email"] = Email(config.email, config.timeout_seconds)
    return channels
