"""A short scripted session through the public API, on simulated time, narrated as it goes.

The emergency-stop issue replaces it with a simulated trading day on simulated venues.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from tradeguard.clock import to_iso
from tradeguard.config import load_config
from tradeguard.errors import ApprovalRefused, PermissionDenied
from tradeguard.guard import Guard
from tradeguard.model import Breach, StateChange
from tradeguard.testing import FakeClock

USERS = {
    "trader1": "trader",
    "senior_trader": "senior_trader",
    "risk_manager": "risk_manager",
    "cto": "admin",
    "cfo": "admin",
}


def run(console: Console, state_dir: Path | None = None) -> None:  # noqa: PLR0915  # a script
    directory = state_dir or Path(tempfile.mkdtemp(prefix="tradeguard-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "tradeguard.db"
    for stale in directory.glob("tradeguard.db*"):
        stale.unlink()
    config_file = directory / "tradeguard.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "users": USERS,
                "state": {"path": "tradeguard.db"},
                "strategies": {"mean_rev": {"allocated_capital": 200_000}},
            }
        )
    )
    config = load_config(config_file)
    clock = FakeClock()

    def say(text: str) -> None:
        console.print(f"[dim]{to_iso(clock.time())[11:19]}[/] {text}", highlight=False)

    with Guard(config, clock=clock) as guard:

        def on_change(change: StateChange) -> None:
            console.print(
                f"         [bold]event[/] {change.scope}: {change.before} -> "
                f"{change.after} by {change.actor}",
                highlight=False,
            )

        def on_breach(breach: Breach) -> None:
            console.print(
                f"         [bold red]breach[/] {breach.scope}: {breach.message}", highlight=False
            )

        guard.register_callback("state_change", on_change)
        guard.register_callback("breach", on_breach)

        def step(text: str) -> None:
            guard.flush()
            console.rule(text, style="cyan")

        step("1. Normal trading")
        guard.update_portfolio(equity=1_000_000, margin_used=200_000, margin_available=800_000)
        guard.update_prices({"BTC": 60_000.0, "ETH": 3_000.0})
        for sid in ("momentum", "mean_rev", "arb"):
            guard.heartbeat(sid)
        guard.update_position("mean_rev", "ETH", 20, 3_000.0)
        guard.record_trade("momentum", 1_200.0)
        say(f"portfolio {guard.portfolio_state}; strategies active: momentum, mean_rev, arb")

        step("2. momentum loses five trades in a row")
        for pnl in (-300.0, -450.0, -120.0, -800.0, -260.0):
            clock.advance(30)
            guard.record_trade("momentum", pnl)
        say(f"momentum is {guard.strategy_state('momentum')}")

        step("3. A trader may halt, but not resume")
        try:
            guard.resume_strategy("momentum", user="trader1")
        except PermissionDenied as exc:
            say(f"[yellow]refused[/]: {exc}")
        guard.resume_strategy("momentum", user="senior_trader", reason="bad fills fixed")
        say(f"momentum is {guard.strategy_state('momentum')} (loss streak counted from zero)")

        step("4. The breaker thread's tick finds a stuck agent")
        clock.advance(301)
        for sid in ("momentum", "mean_rev"):
            guard.heartbeat(sid)
        guard.update_prices({"BTC": 60_100.0, "ETH": 3_004.0})
        guard.tick()
        say(f"arb is {guard.strategy_state('arb')}: no heartbeat for 5 minutes")

        step("5. Losses: daily loss 3% soft-halts, drawdown 10% hard-halts")
        clock.advance(120)
        guard.update_portfolio(equity=965_000)
        say(f"portfolio {guard.portfolio_state}: no new risk, positions kept")
        clock.advance(120)
        guard.update_portfolio(equity=890_000)
        say(f"portfolio {guard.portfolio_state}: cancel all, close all")

        step("6. Emergency lockdown, lifted only by two people")
        asyncio.run(guard.emergency_stop(initiator="trader1", reason="venue acting strangely"))
        request = guard.reset(user="cto", reason="venue confirmed healthy")
        say(f"cto opened reset request {request.id}; portfolio still {guard.portfolio_state}")
        try:
            guard.approve(request.id, user="cto")
        except ApprovalRefused as exc:
            say(f"[yellow]refused[/]: {exc}")
        guard.approve(request.id, user="cfo")
        say(f"cfo approved: portfolio {guard.portfolio_state}")

        step("7. The audit trail")
        guard.flush()
        table = Table("seq", "who", "scope", "what", "reason")
        for record in guard.audit_records():
            e = record.entry
            what = f"{e.before} -> {e.after}" if e.after else e.action
            table.add_row(str(record.seq), e.actor, e.scope, what, e.reason)
        console.print(table)
        result = guard.verify_audit()
        say(f"audit chain: {'intact' if result.ok else 'BROKEN'}, {result.checked} records")
    console.print(f"state and audit log: {db}", highlight=False)
    console.print(f"look again: tradeguard status -c {config_file}", highlight=False)
    console.print(f"            tradeguard audit verify -c {config_file}", highlight=False)
