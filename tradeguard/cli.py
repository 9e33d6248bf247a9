"""The ``tradeguard`` command. Thin: every command calls the Guard, which reads the store.

Exit codes: 0 done, 1 error (including a broken audit chain), 2 usage, 3 permission denied,
4 unknown strategy or request.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tradeguard.clock import to_iso
from tradeguard.config import Config, config_warnings, load_config
from tradeguard.errors import ConfigError, PermissionDenied, TradeguardError, UnknownRequest
from tradeguard.guard import Guard

EXIT_ERROR, EXIT_USAGE, EXIT_DENIED, EXIT_UNKNOWN = 1, 2, 3, 4

app = typer.Typer(
    help="Kill switch and circuit breakers for algorithmic trading.",
    no_args_is_help=True,
    add_completion=False,
)
config_app = typer.Typer(help="Configuration files.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(audit_app, name="audit")

# Not a terminal (CI, a pipe): wide enough that tables stay readable.
out = Console(width=None if os.isatty(1) else 140)
err = Console(stderr=True, width=None if os.isatty(2) else 140)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config; default: $TRADEGUARD_CONFIG or defaults."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]

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


def _fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    err.print(f"[red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _config(path: Path | None) -> Config:
    chosen = path or (Path(env) if (env := os.environ.get("TRADEGUARD_CONFIG")) else None)
    if chosen is None:
        raise _fail("no config: pass -c FILE or set TRADEGUARD_CONFIG", EXIT_USAGE)
    try:
        return load_config(chosen)
    except ConfigError as exc:
        raise _fail("\n".join(exc.errors)) from exc


def _guard(path: Path | None) -> Guard:
    """A guard on an existing store: reading commands never create one (a fresh, empty store
    would report "normal" for a book that is in fact halted somewhere else)."""
    config = _config(path)
    if not config.state.path.exists():
        raise _fail(
            f"no state database at {config.state.path}: check state.path in the config "
            "(a guard creates it on first start)"
        )
    return Guard(config)


@config_app.command("check")
def config_check(file: Path) -> None:
    """Validate a config file: print "ok" or every error with its key path."""
    try:
        config = load_config(file)
    except ConfigError as exc:
        for line in exc.errors:
            err.print(f"error: {line}", highlight=False)
        raise typer.Exit(EXIT_ERROR) from exc
    for warning in config_warnings(config):
        err.print(f"warning: {warning}", highlight=False)
    out.print("ok")


@app.command()
def status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Show portfolio and strategy states from the store; works with no guard running."""
    with _guard(config) as guard:
        snapshot = guard.status()
    broken = not snapshot["store"]["ok"]
    if as_json:
        out.print_json(json.dumps(snapshot))
        if broken:
            raise typer.Exit(EXIT_ERROR)
        return
    p = snapshot["portfolio"]
    style = STATE_STYLE.get(p["state"], "")
    out.print(f"portfolio: [{style}]{p['state']}[/]  {p['reason']}  since {p['since']}")
    if not snapshot["store"]["ok"]:
        out.print(f"[bold red]store unavailable:[/] {snapshot['store']['error']}")
    table = Table("strategy", "state", "reason", "since")
    for sid, s in snapshot["strategies"].items():
        table.add_row(
            sid,
            f"[{STATE_STYLE.get(s['state'], '')}]{s['state']}[/]",
            s["reason"],
            s["since"] or "",
        )
    if snapshot["strategies"]:
        out.print(table)
    if broken:
        raise typer.Exit(EXIT_ERROR)
    for req in snapshot["pending_approvals"]:
        out.print(
            f"pending {req['action']} {req['id']} by {req['requested_by']}, "
            f"expires {req['expires_at']}: approve with `tradeguard approve {req['id']}`"
        )


def _since(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _fail(f"--since {value!r} is not an ISO date/time", EXIT_USAGE) from exc
    if parsed.tzinfo is None:
        raise _fail("--since needs a timezone, e.g. 2026-11-21T09:00+00:00", EXIT_USAGE)
    return parsed.timestamp()


@audit_app.command("show")
def audit_show(
    config: ConfigOption = None,
    since: Annotated[str | None, typer.Option(help="ISO time with zone.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List audit records, oldest first."""
    with _guard(config) as guard:
        records = guard.audit_records(since=_since(since))
    if as_json:
        out.print_json(json.dumps([r.to_dict() for r in records]))
        return
    table = Table("seq", "actor", "action", "scope", "change", "reason")
    table.add_column("time", no_wrap=True)
    for r in records:
        e = r.entry
        change = f"{e.before} -> {e.after}" if e.after else ""
        table.add_row(str(r.seq), e.actor, e.action, e.scope, change, e.reason, to_iso(e.ts))
    out.print(table)


@audit_app.command("verify")
def audit_verify(config: ConfigOption = None) -> None:
    """Exit 0 if the chain is intact; otherwise 1, naming the first bad record."""
    with _guard(config) as guard:
        result = guard.verify_audit()
    if result.ok:
        out.print(f"ok: {result.checked} records, chain intact")
        return
    where = "" if result.first_bad_seq is None else f" at record {result.first_bad_seq}"
    raise _fail(f"audit chain broken{where}: {result.problem}")


@app.command()
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


def main() -> None:
    try:
        app()
    except PermissionDenied as exc:
        err.print(f"[red]permission denied:[/] {exc}", highlight=False)
        raise SystemExit(EXIT_DENIED) from exc
    except UnknownRequest as exc:
        err.print(f"[red]unknown:[/] {exc}", highlight=False)
        raise SystemExit(EXIT_UNKNOWN) from exc
    except TradeguardError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise SystemExit(EXIT_ERROR) from exc
