"""`tradeguard test-alert`: every channel routed for a priority, each reported."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.alerts.receivers import HttpReceiver, SmtpReceiver
from tradeguard import Guard, load_config

CLI = Path(sys.executable).parent / "tradeguard"


@pytest.fixture
def receivers() -> Iterator[tuple[HttpReceiver, SmtpReceiver]]:
    http, smtp = HttpReceiver().start(), SmtpReceiver().start()
    yield http, smtp
    http.stop()
    smtp.stop()


def run(config: Path, priority: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRADEGUARD_CONFIG"}
    return subprocess.run(
        [str(CLI), "test-alert", "--priority", priority, "-c", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def write_config(
    tmp_path: Path, http: HttpReceiver, smtp: SmtpReceiver, password: str = "s3cret"
) -> Path:
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "users": {"a": "admin"},
                "alerts": {
                    "slack_webhook": http.url("/slack"),
                    "pagerduty_key": "k",
                    "pagerduty_url": http.url("/pagerduty"),
                    "webhooks": [{"url": http.url("/hook")}],
                    "email": {
                        "enabled": True,
                        "smtp_server": "127.0.0.1",
                        "smtp_port": smtp.port,
                        "username": "alerts",
                        "password": password,
                        "to_addresses": ["r@example.test"],
                        "use_tls": False,
                    },
                },
            }
        )
    )
    Guard(load_config(config)).close()  # create the store
    return config


def test_test_alert_when_channels_healthy_then_each_reports_delivered(
    tmp_path: Path, receivers: tuple[HttpReceiver, SmtpReceiver]
) -> None:
    """Critical goes through PagerDuty, Slack, email and the webhook; each says how fast."""
    http, smtp = receivers
    done = run(write_config(tmp_path, http, smtp), "critical")
    assert done.returncode == 0, done.stderr
    for channel in ("pagerduty", "slack", "email", "webhook"):
        assert f"{channel}: delivered in" in done.stdout
    assert "test alert" in http.on("/slack")[0].json()["text"] and len(smtp.messages) == 1


def test_test_alert_when_a_channel_fails_then_reported_and_exit_1(
    tmp_path: Path, receivers: tuple[HttpReceiver, SmtpReceiver]
) -> None:
    """A broken channel is named with its error; the others still deliver."""
    http, smtp = receivers
    done = run(write_config(tmp_path, http, smtp, password="wrong"), "warning")
    assert done.returncode == 1
    assert "email: FAILED (SMTP login refused" in done.stdout
    assert "slack: delivered in" in done.stdout and "pagerduty" not in done.stdout
