"""The commands that run a guard in this process: the HTTP API, a test alert, the demo day."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from tradeguard.cli.common import (
    EXIT_ERROR,
    EXIT_USAGE,
    ConfigOption,
    err,
    fail,
    open_guard,
    out,
    read_config,
)
from tradeguard.guard import Guard


def serve(
    host: Annotated[str, typer.Option(help="Bind address; keep 127.0.0.1 unless behind TLS.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8787,
    config: ConfigOption = None,
) -> None:
    """The HTTP API, the dashboard (/) and /metrics; a guard process watching the store."""
    import uvicorn

    from tradeguard.api import create_app

    chosen = read_config(config)
    if not chosen.auth.enabled:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise fail(
                f"authentication is off: refusing to serve on {host}; bind 127.0.0.1 "
                "or turn auth on",
                EXIT_USAGE,
            )
        err.print(Text.assemble(("warning:", "yellow"), " authentication is off in this config"))
    guard = Guard(chosen)
    guard.start()
    out.print(
        f"dashboard and API on http://{host}:{port}/  (bearer token: <user>.<token>)",
        highlight=False,
    )
    try:
        app = create_app(guard, hosts=["127.0.0.1", "localhost", host])
        uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)
    finally:
        guard.close()


def test_alert(
    priority: Annotated[str, typer.Option(help="info, warning or critical")] = "critical",
    config: ConfigOption = None,
) -> None:
    """Send a test alert through every channel routed for PRIORITY; report each channel."""
    import asyncio

    from tradeguard.alerts import message
    from tradeguard.config import AlertPriority

    try:
        level = AlertPriority(priority)
    except ValueError:
        raise fail(
            f"priority must be info, warning or critical, not {priority!r}", EXIT_USAGE
        ) from None
    with open_guard(config) as guard:
        dispatcher = guard.alerts
        routed = dispatcher.routed(level)
        if not routed:
            raise fail(f"no configured channel is routed for {level}: see alerts.routing")
        alert = message.test_alert(level, time.time(), guard.config.alerts.dashboard_url)

        async def send() -> dict[str, Any]:
            try:
                return await dispatcher.send_now(alert)
            finally:
                await dispatcher.aclose()

        results = asyncio.run(send())
    failed = False
    for channel, outcome in results.items():
        if outcome.ok:
            out.print(f"{channel}: delivered in {outcome.latency_ms:.0f} ms")
        else:
            failed = True
            out.print(Text.assemble((f"{channel}: FAILED", "red"), f" ({outcome.error})"))
    if failed:
        raise typer.Exit(EXIT_ERROR)


def demo(
    seed: Annotated[int, typer.Option(help="Market and fault seed: same seed, same day.")] = 7,
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per real second; 0: flat out.")
    ] = 600.0,
    state_dir: Annotated[Path, typer.Option(help="Where the DB, audit log and report go.")] = Path(
        "tradeguard-demo"
    ),
) -> None:
    """A simulated trading day: a strategy halted, a crash, a hard halt, a flatten through
    venue faults. Writes an HTML report beside the state DB and the audit log."""
    from tradeguard.demo import run

    if not run(out, state_dir, seed=seed, speed=speed):
        raise typer.Exit(EXIT_ERROR)
