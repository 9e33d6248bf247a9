"""Alerts delivered to real receivers on 127.0.0.1, through faults, never holding up a halt."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest

from tests.alerts.receivers import HttpReceiver, SmtpReceiver
from tests.conftest import MakeGuard, reading
from tradeguard import Guard, Order, PortfolioState
from tradeguard.testing import FakeClock

SECRETS = ("pd-routing-key", "hook-secret", "s3cret")


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver().start()
    yield receiver
    receiver.hold.set()
    receiver.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver().start()
    yield receiver
    receiver.stop()


def alerts_config(http: HttpReceiver, smtp: SmtpReceiver, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "slack_webhook": http.url("/slack"),
        "pagerduty_key": "pd-routing-key",
        "pagerduty_url": http.url("/pagerduty"),
        "webhooks": [{"url": http.url("/hook"), "secret": "hook-secret"}],
        "email": {
            "enabled": True,
            "smtp_server": "127.0.0.1",
            "smtp_port": smtp.port,
            "username": "alerts",
            "password": "s3cret",
            "to_addresses": ["risk@example.test"],
            "use_tls": False,
        },
        "timeout_seconds": 2.0,
        "max_attempts": 4,
        "dashboard_url": "http://127.0.0.1:8787/",
    }
    config.update(overrides)
    return config


@pytest.fixture
def guard(make_guard: MakeGuard, http: HttpReceiver, smtp: SmtpReceiver) -> Guard:
    return make_guard(alerts=alerts_config(http, smtp))


def outbox(guard: Guard) -> list[tuple[str, str]]:
    with reading(guard.config.state.path) as store:
        return [(row.channel, row.status) for row in store.outbox()]


class TestEveryChannel:
    def test_emergency_when_raised_then_each_channel_gets_a_valid_message(
        self, guard: Guard, http: HttpReceiver, smtp: SmtpReceiver
    ) -> None:
        """Critical goes to PagerDuty, Slack, email and the webhook, each in its own format."""
        guard.emergency("trader1", reason="venue acting strangely")
        assert guard.flush(timeout=30)
        slack = http.on("/slack")[0].json()
        assert (
            set(slack) == {"text"}
            and "EMERGENCY" in slack["text"]
            and "two people" in slack["text"]
        )
        event = http.on("/pagerduty")[0].json()
        assert event["routing_key"] == "pd-routing-key" and event["event_action"] == "trigger"
        assert event["dedup_key"] == "tradeguard:portfolio"
        payload = event["payload"]
        assert (
            payload["severity"] == "critical"
            and payload["source"] == "tradeguard"
            and payload["summary"]
        )
        hook = http.on("/hook")[0]
        expected = hmac.new(b"hook-secret", hook.body, hashlib.sha256).hexdigest()
        assert hook.headers["X-Tradeguard-Signature"] == f"sha256={expected}"
        assert hook.headers["Idempotency-Key"] == hook.json()["id"]
        mail = smtp.messages[0]
        subject = " ".join(str(mail["Subject"]).split())  # long headers are folded
        assert subject.startswith("[tradeguard critical] PORTFOLIO EMERGENCY")
        assert "venue acting strangely" in mail.get_payload()
        assert "http://127.0.0.1:8787/" in mail.get_payload()
        assert sorted(outbox(guard)) == [
            ("email", "delivered"),
            ("pagerduty", "delivered"),
            ("slack", "delivered"),
            ("webhook", "delivered"),
        ]

    def test_reset_when_incident_lifted_then_pagerduty_resolved(
        self, guard: Guard, http: HttpReceiver
    ) -> None:
        """Lifting the portfolio resolves its PagerDuty incident (same dedup key)."""
        guard.portfolio_close("trader1")
        guard.reset("risk1")
        assert guard.flush(timeout=30)
        actions = [(r.json()["event_action"], r.json()["dedup_key"]) for r in http.on("/pagerduty")]
        assert actions == [
            ("trigger", "tradeguard:portfolio")
        ]  # info (the reset) is not routed there
        # The two Slack posts travel concurrently: either may arrive first.
        assert any("back to normal" in r.json()["text"] for r in http.on("/slack"))

    def test_routing_when_warning_then_no_page(
        self, guard: Guard, http: HttpReceiver, smtp: SmtpReceiver
    ) -> None:
        """A strategy halt is a warning: Slack, email and webhook, no PagerDuty page."""
        guard.halt_strategy("s1", user="trader1", reason="manual check")
        guard.flush(timeout=30)
        assert (
            http.on("/pagerduty") == [] and len(http.on("/slack")) == 1 and len(smtp.messages) == 1
        )

    def test_breach_when_rule_fires_then_one_alert_with_value_and_limit(
        self, guard: Guard, http: HttpReceiver
    ) -> None:
        """A rule's halt is announced once, by its breach: value against limit and the action."""
        guard.update_strategy_metrics("s1", max_drawdown=0.07)
        guard.flush(timeout=30)
        texts = [r.json()["text"] for r in http.on("/slack")]
        assert len(texts) == 1 and "7.00% > limit 5.00%" in texts[0] and "halt_strategy" in texts[0]

    def test_refusal_when_audited_then_alerted(self, guard: Guard, http: HttpReceiver) -> None:
        """A refused attempt is an alert too."""
        with pytest.raises(Exception, match="needs senior_trader"):
            guard.resume_strategy("s1", user="trader1")
        guard.flush(timeout=30)
        assert "refused: trader1 tried resume" in http.on("/slack")[-1].json()["text"]


class TestFaults:
    def test_receiver_when_down_then_retried_until_it_is_back(
        self, make_guard: MakeGuard, http: HttpReceiver, smtp: SmtpReceiver, clock: FakeClock
    ) -> None:
        """Connection refused: the alert waits in the outbox and goes out when the receiver returns."""
        port = http.port
        http.stop()
        guard = make_guard(alerts=alerts_config(http, smtp))
        guard.halt_strategy("s1", user="trader1")
        guard.flush(timeout=30)
        assert ("slack", "pending") in outbox(guard)
        http.start(port)
        clock.advance(5)
        guard.tick()
        guard.flush(timeout=30)
        assert ("slack", "delivered") in outbox(guard) and len(http.on("/slack")) == 1

    def test_receiver_when_500_twice_then_delivered_on_third_attempt(
        self, guard: Guard, http: HttpReceiver, clock: FakeClock
    ) -> None:
        """Server errors are retried with backoff, on the guard's clock."""
        http.script["/slack"] = deque([("status", 500), ("status", 500)])
        guard.halt_strategy("s1", user="trader1")
        for _ in range(3):
            guard.flush(timeout=30)
            clock.advance(10)
            guard.tick()
        guard.flush(timeout=30)
        assert len(http.on("/slack")) == 3 and ("slack", "delivered") in outbox(guard)

    def test_receiver_when_429_then_waits_as_told(
        self, guard: Guard, http: HttpReceiver, clock: FakeClock
    ) -> None:
        """A 429 with Retry-After is honoured: no retry before it, one after."""
        http.script["/slack"] = deque([("status", 429, 30)])
        guard.halt_strategy("s1", user="trader1")
        guard.flush(timeout=30)
        clock.advance(20)
        guard.tick()
        guard.flush(timeout=30)
        assert len(http.on("/slack")) == 1
        clock.advance(11)
        guard.tick()
        guard.flush(timeout=30)
        assert len(http.on("/slack")) == 2 and ("slack", "delivered") in outbox(guard)

    def test_receiver_when_slow_then_timed_out_and_retried(
        self, make_guard: MakeGuard, http: HttpReceiver, smtp: SmtpReceiver, clock: FakeClock
    ) -> None:
        """A receiver slower than the timeout is a failed attempt, retried; nothing waits on it."""
        guard = make_guard(alerts=alerts_config(http, smtp, timeout_seconds=0.2))
        http.script["/slack"] = deque([("hang",)])
        guard.halt_strategy("s1", user="trader1")
        guard.flush(timeout=30)
        http.hold.set()
        clock.advance(5)
        guard.tick()
        guard.flush(timeout=30)
        assert ("slack", "delivered") in outbox(guard)

    def test_smtp_when_login_refused_then_reported_failed(
        self, make_guard: MakeGuard, http: HttpReceiver, smtp: SmtpReceiver
    ) -> None:
        """A wrong password cannot be fixed by retrying: reported as failed at once."""
        config = alerts_config(http, smtp)
        config["email"]["password"] = "wrong"
        guard = make_guard(alerts=config)
        guard.halt_strategy("s1", user="trader1")
        guard.flush(timeout=30)
        assert ("email", "failed") in outbox(guard) and smtp.messages == []
        assert ("slack", "delivered") in outbox(guard)  # one dead channel delays no other

    def test_receiver_when_always_failing_then_failed_after_max_attempts(
        self, guard: Guard, http: HttpReceiver, clock: FakeClock
    ) -> None:
        """Never silently dropped: after max_attempts it is marked failed (and logged critical)."""
        http.script["/slack"] = deque([("status", 503)] * 10)
        guard.halt_strategy("s1", user="trader1")
        for _ in range(6):
            guard.flush(timeout=30)
            clock.advance(60)
            guard.tick()
        guard.flush(timeout=30)
        assert ("slack", "failed") in outbox(guard) and len(http.on("/slack")) == 4


class TestNeverBlocking:
    def test_halt_when_every_channel_hangs_then_it_is_in_force_before_any_answer(
        self, guard: Guard, http: HttpReceiver
    ) -> None:
        """The halt does not wait: it is in force while the receivers still hold the alerts."""
        for path in ("/slack", "/pagerduty", "/hook"):
            http.script[path] = deque([("hang",)])
        guard.emergency("trader1")
        assert guard.portfolio_state is PortfolioState.EMERGENCY
        assert http.holding.wait(timeout=30)  # an alert is stuck at a receiver right now
        assert not guard.check_order(Order("s1", "BTC", "buy", 1, 1)).accepted  # orders stopped
        http.hold.set()
        guard.flush(timeout=30)


class TestFoldingAndDurability:
    def test_repeats_when_within_cooldown_then_folded_into_one_follow_up(
        self, guard: Guard, http: HttpReceiver, clock: FakeClock
    ) -> None:
        """Repeats are held back, then sent as one 'N more', never silently dropped."""
        for _ in range(3):
            guard.update_strategy_metrics("s1", max_drawdown=0.07)
            guard.update_strategy_metrics(
                "s1", max_drawdown=0.01
            )  # the rule clears, then fires again
        guard.flush(timeout=30)
        assert len(http.on("/slack")) == 1
        clock.advance(61)
        guard.tick()
        guard.flush(timeout=30)
        texts = [r.json()["text"] for r in http.on("/slack")]
        assert len(texts) == 2 and "2 more like this" in texts[1]

    def test_critical_when_repeated_then_never_held_back(
        self, guard: Guard, http: HttpReceiver
    ) -> None:
        """Critical alerts skip the cooldown."""
        for _ in range(3):
            guard.emergency("trader1")
            guard.approve(guard.reset("risk1").id, "risk2")
        guard.flush(timeout=30)
        assert len(http.on("/pagerduty")) == 3

    def test_pending_when_guard_restarts_then_sent_with_the_same_id(
        self, make_guard: MakeGuard, http: HttpReceiver, smtp: SmtpReceiver
    ) -> None:
        """The outbox survives a restart; the receiver can deduplicate on the idempotency key."""
        port = http.port
        http.stop()
        first = make_guard(alerts=alerts_config(http, smtp))
        first.halt_strategy("s1", user="trader1")
        first.flush(timeout=30)
        with reading(first.config.state.path) as store:
            pending_id = next(r.id for r in store.outbox() if r.channel == "webhook")
        first.close()
        http.start(port)
        second = make_guard(alerts=alerts_config(http, smtp))
        second.start()
        second.flush(timeout=30)
        second.stop()
        assert [r.headers["Idempotency-Key"] for r in http.on("/hook")] == [pending_id]

    def test_secrets_when_alerting_then_never_logged(
        self, guard: Guard, http: HttpReceiver, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Keys, webhook secrets and passwords stay out of the logs."""
        http.script["/slack"] = deque([("status", 500)])
        with caplog.at_level(logging.DEBUG):
            guard.emergency("trader1")
            guard.flush(timeout=30)
        assert caplog.text and not any(secret in caplog.text for secret in SECRETS)
