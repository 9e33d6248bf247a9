"""Alert delivery to real receivers on 127.0.0.1: from the guard call that raised the alert
(an emergency: critical, so every channel) until each receiver has it."""

from __future__ import annotations

import tempfile
import time
from typing import Any

from tests.alerts.receivers import HttpReceiver, SmtpReceiver
from tradeguard import Guard
from tradeguard.config import parse_config


def delivery(samples: int) -> dict[str, dict[str, float]]:
    http, smtp = HttpReceiver().start(), SmtpReceiver().start()
    latencies: dict[str, list[float]] = {c: [] for c in ("slack", "pagerduty", "webhook", "email")}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = parse_config(
                {
                    "users": {"ops": "trader", "r1": "risk_manager", "r2": "admin"},
                    "state": {"path": f"{tmp}/b.db"},
                    "recovery": {"cooldown_seconds": 0},  # the bench resets at once, 40 times
                    "alerts": {
                        "slack_webhook": http.url("/slack"),
                        "pagerduty_key": "k",
                        "pagerduty_url": http.url("/pagerduty"),
                        "webhooks": [{"url": http.url("/hook"), "secret": "s"}],
                        "email": {
                            "enabled": True,
                            "smtp_server": "127.0.0.1",
                            "smtp_port": smtp.port,
                            "username": "a",
                            "password": "s3cret",
                            "to_addresses": ["r@example.test"],
                            "use_tls": False,
                        },
                    },
                }
            )
            guard = Guard(config)
            paths = {"slack": "/slack", "pagerduty": "/pagerduty", "webhook": "/hook"}
            for _ in range(samples):
                start = time.perf_counter()
                guard.emergency("ops", "bench")
                guard.flush(timeout=30)
                for channel, path in paths.items():
                    latencies[channel].append(http.on(path)[-1].at - start)
                latencies["email"].append(smtp.mailbox.arrivals[-1] - start)
                guard.approve(guard.reset("r1").id, "r2")
                guard.flush(timeout=30)
            guard.close()
    finally:
        http.stop()
        smtp.stop()
    return {c: _summary(v) for c, v in latencies.items()}


def _summary(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "p50_ms": ordered[len(ordered) // 2] * 1e3,
        "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1e3,
        "samples": len(ordered),
    }
