"""The live terminal view `tradeguard monitor` redraws: the whole status on one screen, colour
for state. Only the CLI imports it; not to be confused with ``tradeguard.criticality.monitor``,
which computes market indicators."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tradeguard.config import Config

STYLE = {
    "normal": "green",
    "active": "green",
    "recovering": "yellow",
    "soft_halt": "black on yellow",
    "halted": "red",
    "hard_halt": "white on red",
    "emergency": "bold white on dark_red",
    "disabled": "magenta",
}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def render_status(status: dict[str, Any], config: Config) -> RenderableType:
    p = status["portfolio"]
    m = p["metrics"]
    head = Table.grid(padding=(0, 2))
    head.add_row(
        Text(f" {p['state'].upper()} ", style=STYLE.get(p["state"], "")),
        Text(p["reason"]),
        Text(f"since {p['since']}"),
    )
    head.add_row(
        "equity",
        f"{m['equity']:,.0f}" if m["equity"] is not None else "-",
        f"drawdown {_pct(m['drawdown'])}  daily loss {_pct(m['daily_loss'])}  "
        f"margin {_pct(m['margin_utilization'])}",
    )
    strategies = Table("strategy", "state", "drawdown", "losses", "reason", expand=True)
    for sid, s in status["strategies"].items():
        sm = s["metrics"]
        strategies.add_row(
            Text(sid),
            Text(s["state"], style=STYLE.get(s["state"], "")),
            _pct(sm["drawdown"]),
            str(sm["consecutive_losses"]),
            Text(s["reason"] if s["recovery"] is None else f"recovery {s['recovery']['summary']}"),
        )
    parts: list[RenderableType] = [Panel(head, title="portfolio"), strategies]
    for req in status["pending_approvals"]:
        parts.append(
            Text.assemble(
                ("pending", "yellow"),
                f" {req['action']} {req['id']} by "
                f"{req['requested_by']}, expires {req['expires_at']}",
            )
        )
    if not status["store"]["ok"]:
        parts.append(
            Text.assemble(("store unavailable:", "bold red"), f" {status['store']['error']}")
        )
    auth = "on" if config.auth.enabled else "OFF"
    parts.append(Text(f"state DB {config.state.path}; auth {auth}", style="dim"))
    return Group(*parts)
