"""What `tradeguard monitor` shows: the whole status on one screen, colour for state."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table

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
        f"[{STYLE.get(p['state'], '')}] {p['state'].upper()} [/]",
        p["reason"],
        f"since {p['since']}",
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
            sid,
            f"[{STYLE.get(s['state'], '')}]{s['state']}[/]",
            _pct(sm["drawdown"]),
            str(sm["consecutive_losses"]),
            s["reason"],
        )
    parts: list[RenderableType] = [Panel(head, title="portfolio"), strategies]
    for req in status["pending_approvals"]:
        parts.append(
            f"[yellow]pending[/] {req['action']} {req['id']} by {req['requested_by']}, "
            f"expires {req['expires_at']}"
        )
    if not status["store"]["ok"]:
        parts.append(f"[bold red]store unavailable:[/] {status['store']['error']}")
    parts.append(
        f"[dim]state DB {config.state.path}; auth {'on' if config.auth.enabled else 'OFF'}[/]"
    )
    return Group(*parts)
