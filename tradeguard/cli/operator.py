"""The operator's commands: the state of the book, halts, resumes, resets and approvals.

Each command that acts authenticates the operator, writes through the store (every running
guard acts on it) and says what follows.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from tradeguard.cli.common import (
    EXIT_ERROR,
    EXIT_UNKNOWN,
    ConfigOption,
    JsonOption,
    ReasonOption,
    UserOption,
    fail,
    open_reader,
    operator_guard,
    out,
    read_config,
)
from tradeguard.guard import Guard
from tradeguard.model import StateChange
from tradeguard.store import Approval

STATE_STYLE = {
    "normal": "green",
    "active": "green",
    "recovering": "yellow",
    "soft_halt": "yellow",
    "halted": "red",
    "hard_halt": "red",
    "emergency": "bold white on red",
    "disabled": "magenta",
}


def status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Show portfolio and strategy states from the store; works with no guard running."""
    with open_reader(config) as guard:
        snapshot = guard.status()
    broken = not snapshot["store"]["ok"]
    if as_json:
        out.print_json(json.dumps(snapshot))
        if broken:
            raise typer.Exit(EXIT_ERROR)
        return
    p = snapshot["portfolio"]
    style = STATE_STYLE.get(p["state"], "")
    out.print(
        Text.assemble(
            "portfolio: ",
            (p["state"], style),
            f"  {p['reason']}" + (f"  since {p['since']}" if p["since"] else ""),
        )
    )
    day = snapshot["portfolio"]["metrics"]["trading_day"]
    calendar = snapshot["trading_day"]
    out.print(
        f"trading day {day or '-'} (rolls at {calendar['rollover']} {calendar['timezone']})",
        highlight=False,
    )
    if not snapshot["store"]["ok"]:
        out.print(
            Text.assemble(("store unavailable:", "bold red"), f" {snapshot['store']['error']}")
        )
    table = Table("strategy", "state", "reason", "since")
    for sid, s in snapshot["strategies"].items():
        recovery = s["recovery"]
        table.add_row(
            sid,
            Text(s["state"], style=STATE_STYLE.get(s["state"], "")),
            s["reason"] if recovery is None else f"recovery {recovery['summary']}",
            s["since"] or "",
        )
    if snapshot["strategies"]:
        out.print(table)
    last = snapshot["emergency_stop"]["last"]
    if last is not None:
        verdict = last.get("outcome", "verdict not recorded")
        out.print(f"last stop: {last['scope']}: {verdict} (started {last['started_at']})")
    if broken:
        raise typer.Exit(EXIT_ERROR)
    for req in snapshot["pending_approvals"]:
        out.print(
            f"pending {req['action']} {req['id']} by {req['requested_by']}, "
            f"expires {req['expires_at']}: approve with `tradeguard approve {req['id']}`"
        )


def _report(change: StateChange | None, as_json: bool, nothing: str) -> None:
    if as_json:
        out.print_json(json.dumps(None if change is None else change.to_dict()))
        return
    if change is None:
        out.print(nothing, highlight=False)
        return
    out.print(
        Text.assemble(
            f"{change.scope}: {change.before} -> ",
            (change.after, STATE_STYLE.get(change.after, "")),
            f" by {change.actor} ({change.reason})",
        ),
        highlight=False,
    )
    out.print(
        "recorded in the store: running guards act on it within a fraction of a second", style="dim"
    )


def _known_strategy(guard: Guard, user: str, strategy: str, force: bool) -> None:
    if force or guard.has_strategy(strategy):
        return
    guard.refuse(user, "halt-strategy", f"unknown strategy {strategy!r}")
    known = ", ".join(guard.status()["strategies"]) or "none yet"  # the refusal's help only
    raise fail(
        f"unknown strategy {strategy!r} (known: {known}); check the name, or pass "
        "--force to halt it before it first reports",
        EXIT_UNKNOWN,
    )


def halt_strategy(
    strategy: str,
    user: UserOption,
    reason: ReasonOption = None,
    force: Annotated[bool, typer.Option(help="Halt a strategy no guard has seen yet.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Halt one strategy: its orders are cancelled (and, by its policy, its positions closed)."""
    guard, who = operator_guard(config, user, stopping=True)
    with guard:
        _known_strategy(guard, user, strategy, force)
        change = guard.halt_strategy(strategy, who, reason or "halted from the CLI")
    _report(change, as_json, f"strategy {strategy} was already halted (your press is on record)")


def resume(
    strategy: str,
    user: UserOption,
    reason: ReasonOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resume a halted strategy (senior_trader or higher)."""
    guard, who = operator_guard(config, user)
    with guard:
        _known_strategy(guard, user, strategy, force=False)
        change = guard.resume_strategy(strategy, who, reason or "resumed from the CLI")
    _report(change, as_json, "")


def _portfolio_command(
    method: str, default_reason: str, already: str, doc: str
) -> Callable[..., None]:
    """The three portfolio halts take the same options and differ only in what they call."""

    def command(
        user: UserOption,
        reason: ReasonOption = None,
        config: ConfigOption = None,
        as_json: JsonOption = False,
    ) -> None:
        guard, who = operator_guard(config, user, stopping=True)
        with guard:
            change = getattr(guard, method)(who, reason or default_reason)
        _report(change, as_json, already)

    command.__doc__ = doc
    return command


portfolio_halt = _portfolio_command(
    "portfolio_halt",
    "soft halt from the CLI",
    "the portfolio is already at least soft-halted (press recorded)",
    "Soft halt: no new risk; positions are kept and may be reduced.",
)
portfolio_close = _portfolio_command(
    "portfolio_close",
    "hard halt from the CLI",
    "the portfolio is already at least hard-halted (press recorded)",
    "Hard halt: no orders; every order cancelled and every position closed.",
)
emergency = _portfolio_command(
    "emergency",
    "emergency from the CLI",
    "the portfolio is already in emergency (press recorded)",
    "Emergency lockdown: hard halt, limits frozen; lifting it takes two people.",
)


def reset(
    user: UserOption,
    reason: ReasonOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Lift a portfolio halt (risk_manager); an emergency needs a second person's approve."""
    guard, who = operator_guard(config, user)
    with guard:
        request = guard.reset(who, reason or "reset from the CLI")
    if as_json:
        out.print_json(json.dumps(request.to_dict()))
    elif request.status == "pending":
        out.print(
            f"reset request {request.id} opened; a different risk_manager or admin "
            f"completes it with:\n  tradeguard approve {request.id} --user NAME\n"
            f"before {request.to_dict()['expires_at']}",
            highlight=False,
        )
    else:
        out.print("portfolio: lifted to normal; running guards act on it at once", highlight=False)


def approve(
    request_id: str,
    user: UserOption,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Complete a two-person request as the second, different person."""
    guard, who = operator_guard(config, user)
    with guard:
        done = guard.approve(request_id, who)
    if isinstance(done, Approval):  # a genome unblock or a user administration act
        if as_json:
            out.print_json(json.dumps(done.to_dict()))
            return
        what = f"{done.scope} unblocked" if done.action == "unblock_genome" else done.reason
        out.print(
            f"{what} by {done.approved_by} (requested by {done.requested_by})", highlight=False
        )
        if done.share:
            out.print(
                f"your share of {done.scope.removeprefix('user:')}'s enrollment code, shown "
                f"only now (they need it and the requester's):\n{done.share}",
                highlight=False,
            )
        return
    _report(done, as_json, "")


def monitor(
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
    iterations: Annotated[int, typer.Option(help="Stop after N refreshes (0: never).")] = 0,
    config: ConfigOption = None,
) -> None:
    """Live full-screen status, refreshed from the store; piped (a log, `tee`), one snapshot
    per interval, each printed whole as it is taken."""
    from rich.live import Live

    from tradeguard.live_view import render_status

    chosen = read_config(config)
    count = 0

    def snapshot() -> RenderableType:
        with open_reader(config) as guard:
            return render_status(guard.status(), chosen)

    def more() -> bool:
        nonlocal count
        count += 1
        if iterations and count >= iterations:
            return False
        time.sleep(interval)
        return True

    if not os.isatty(1):  # Live draws only when it stops on a pipe: print as it goes
        while True:
            out.print(snapshot())
            out.file.flush()
            if not more():
                return
    with Live(console=out, screen=True, auto_refresh=False) as live:
        while True:
            live.update(snapshot(), refresh=True)
            if not more():
                return
