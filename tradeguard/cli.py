"""The ``tradeguard`` command. Thin: every command calls the Guard, which reads the store.

Exit codes: 0 done, 1 error (including a broken audit chain), 2 usage, 3 permission denied,
4 unknown strategy or request.
"""

from __future__ import annotations

import json
import os
import pwd
import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tradeguard.clock import to_iso
from tradeguard.config import Config, config_warnings, load_config
from tradeguard.errors import (
    BadRequest,
    ConfigError,
    PermissionDenied,
    TradeguardError,
    UnknownRequest,
    UnknownStrategy,
)
from tradeguard.guard import Guard
from tradeguard.model import StateChange
from tradeguard.store import Approval

EXIT_ERROR, EXIT_USAGE, EXIT_DENIED, EXIT_UNKNOWN = 1, 2, 3, 4

app = typer.Typer(
    help="Kill switch and circuit breakers for algorithmic trading.",
    no_args_is_help=True,
    add_completion=False,
)
config_app = typer.Typer(help="Configuration files.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
users_app = typer.Typer(
    help="Operators: roles and tokens, kept in the store.", no_args_is_help=True
)
app.add_typer(config_app, name="config")
app.add_typer(audit_app, name="audit")
criticality_app = typer.Typer(
    help="The CriticalityMonitor: 15 systemic-risk indicators.", no_args_is_help=True
)
app.add_typer(users_app, name="users")
app.add_typer(criticality_app, name="criticality")
incidents_app = typer.Typer(help="Incidents the KillChain handled.", no_args_is_help=True)
genomes_app = typer.Typer(help="Strategy genomes and the blacklist.", no_args_is_help=True)
app.add_typer(incidents_app, name="incidents")
app.add_typer(genomes_app, name="genomes")

# Not a terminal (CI, a pipe): wide enough that tables stay readable.
# markup=False: reasons, names and ids are data, never Rich markup ("[/x]" in a halt reason
# must not break the operator's screen); styles are applied explicitly with Text.
# Piped (a log, a grep): tables 140 wide, and a message never folded across lines.
out = Console(width=None if os.isatty(1) else 140, soft_wrap=not os.isatty(1), markup=False)
err = Console(
    stderr=True, width=None if os.isatty(2) else 140, soft_wrap=not os.isatty(2), markup=False
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config; default: $TRADEGUARD_CONFIG or defaults."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
UserOption = Annotated[
    str,
    typer.Option("--user", "-u", help="Who is acting (token: $TRADEGUARD_TOKEN, or asked for)."),
]
ReasonOption = Annotated[str | None, typer.Option("--reason", "-r", help="Why; goes on record.")]

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
    err.print(Text.assemble(("error:", "red"), f" {message}"), highlight=False)
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
    if not config.auth.enabled:
        err.print(
            Text.assemble(
                ("warning:", "yellow"),
                " authentication is off in this config: anyone can act as any user",
            )
        )
    if not config.state.path.exists():
        raise _fail(
            f"no state database at {config.state.path}: check state.path in the config "
            "(a guard creates it on first start)"
        )
    return Guard(config)


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(f"{option} {value!r} is not a date (YYYY-MM-DD)", EXIT_USAGE) from None


@criticality_app.command("replay")
def criticality_replay(
    dataset: Annotated[
        str | None,
        typer.Argument(help="us-equities, sp500, nasdaq or sp500-stocks (or give --csv)."),
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="First day reported.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day replayed.")] = None,
    csv: Annotated[
        Path | None,
        typer.Option(
            help="Your own history: date, symbol, close[, open, high, low, volume, bid, ask]."
        ),
    ] = None,
    report: Annotated[Path, typer.Option(help="The HTML report with the plots.")] = Path(
        "criticality-replay.html"
    ),
    reset_after: Annotated[
        int,
        typer.Option(min=1, help="The simulated desk lifts a halt after this many quiet days."),
    ] = 10,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay a real history through the monitor and a guard: when the score crossed the
    threshold, what the guard did, and a plot."""
    from tradeguard.criticality import data
    from tradeguard.criticality.replay import render, replay

    if (dataset is None) == (csv is None):
        raise _fail("give a DATASET or --csv FILE (one of them)", EXIT_USAGE)
    chosen = config or (Path(env) if (env := os.environ.get("TRADEGUARD_CONFIG")) else None)
    try:
        settings = load_config(chosen) if chosen is not None else Config()
        history = data.load_csv(csv) if csv is not None else data.load(str(dataset))
    except ConfigError as exc:
        raise _fail("\n".join(exc.errors)) from exc
    except data.DataUnavailable as exc:
        raise _fail(str(exc)) from exc
    try:
        result = replay(
            history,
            settings,
            Guard,
            start=_day(start, "--from"),
            end=_day(end, "--to"),
            reset_after=reset_after,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    render(result, report)
    scored = sum(score is not None for score in result.scores)
    if scored < len(result.scores):
        err.print(
            f"warning: no score on {len(result.scores) - scored} of {len(result.scores)} days "
            "(warming up, or too few assets with a complete window)",
            highlight=False,
        )
    if not scored:
        raise _fail("no day had a score: give --from a later date or a longer history")
    if as_json:
        out.print_json(json.dumps(result.to_json()))
        return
    top = result.max_score
    out.print(
        f"{result.name}: {len(result.days)} days, threshold "
        f"{result.threshold:.2f}, highest score {'-' if top is None else f'{top:.3f}'}"
    )
    for day, score in result.crossings:
        out.print(f"{day}  crossed: score {score:.3f}")
    for action in result.actions:
        out.print(
            f"{action.day}  {action.before} -> {action.after} by {action.by}: {action.reason}"
        )
    out.print(f"report: {report}")


@incidents_app.command("list")
def incidents_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every incident, oldest first: trigger, status, who was found responsible."""
    with _guard(config) as guard:
        found = guard.incidents()
    if as_json:
        out.print_json(json.dumps([{k: v for k, v in i.items() if k != "snapshot"} for i in found]))
        return
    table = Table("id", "opened", "trigger", "status", "responsible", "reason")
    for i in found:
        responsible = (i.get("diagnosis") or {}).get("responsible") or "-"
        table.add_row(i["id"], i["opened"], i["trigger"], i["status"], responsible, i["reason"])
    out.print(table)


@incidents_app.command("show")
def incidents_show(
    incident_id: str, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """One incident: its timeline of phases and durations, the diagnosis, the remediation."""
    with _guard(config) as guard:
        found = guard.incident(incident_id)
    if found is None:
        raise _fail(f"no incident {incident_id!r}; see `tradeguard incidents list`", EXIT_UNKNOWN)
    if as_json:
        out.print_json(json.dumps(found))
        return
    out.print(
        f"incident {found['id']} ({found['trigger']}, severity {found['severity'] or '-'}, "
        f"{found['status']}), opened {found['opened']} by {found['opened_by']}: {found['reason']}"
    )
    table = Table("phase", "seconds", "notes")
    for p in found["phases"]:
        seconds = "running" if p["seconds"] is None else f"{p['seconds']:.3f}"
        table.add_row(p["phase"], seconds, "\n".join(p["notes"]))
    out.print(table)
    diagnosis = found.get("diagnosis") or {}
    if diagnosis:
        out.print(
            f"diagnosis: {diagnosis.get('responsible') or 'nobody'} ({diagnosis.get('method')})"
        )
    snapshot = found.get("snapshot") or {}
    if snapshot.get("audit_head"):
        head = snapshot["audit_head"]
        out.print(f"snapshot at {snapshot['at']}, audit head #{head['seq']} {head['hash']}")


@genomes_app.command("list")
def genomes_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every genome seen, its strategies, and whether it is blacklisted."""
    with _guard(config) as guard:
        found = guard.genomes()
    if as_json:
        out.print_json(json.dumps(found))
        return
    table = Table("fingerprint", "strategies", "blacklisted", "incident")
    for g in found:
        table.add_row(
            g["fingerprint"][:16],
            ", ".join(g["strategies"]),
            "yes" if g["blacklisted"] else "no",
            g["incident"] or "",
        )
    out.print(table)


def _genome(guard: Guard, prefix: str) -> dict[str, Any]:
    matches = [g for g in guard.genomes() if g["fingerprint"].startswith(prefix)]
    if len(matches) != 1:
        what = "no genome" if not matches else f"{len(matches)} genomes"
        raise _fail(f"{what} with a fingerprint starting {prefix!r}", EXIT_UNKNOWN)
    return matches[0]


@genomes_app.command("show")
def genomes_show(fingerprint: str, config: ConfigOption = None) -> None:
    """One genome, as registered (a fingerprint prefix is enough)."""
    with _guard(config) as guard:
        found = _genome(guard, fingerprint)
    out.print_json(json.dumps(found))


@genomes_app.command("unblock")
def genomes_unblock(
    fingerprint: str,
    user: UserOption,
    reason: ReasonOption = None,
    config: ConfigOption = None,
) -> None:
    """Open a two-person request to lift a genome's blacklist (risk_manager); a different
    person completes it with `tradeguard approve ID`."""
    with _operator(config, user) as guard:
        found = _genome(guard, fingerprint)
        request = guard.unblock_genome(found["fingerprint"], user, reason or "unblock from CLI")
    out.print(
        f"unblock request {request.id} opened; a different risk_manager or admin completes "
        f"it with:\n  tradeguard approve {request.id} --user NAME"
    )


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
    out.print(
        Text.assemble("portfolio: ", (p["state"], style), f"  {p['reason']}  since {p['since']}")
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
def audit_verify(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Exit 0 if the chain is intact; otherwise 1, naming the first bad record."""
    with _guard(config) as guard:
        result = guard.verify_audit()
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "ok": result.ok,
                    "checked": result.checked,
                    "first_bad_seq": result.first_bad_seq,
                    "problem": result.problem,
                }
            )
        )
        if not result.ok:
            raise typer.Exit(EXIT_ERROR)
        return
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
        err.print(Text.assemble(("permission denied:", "red"), f" {exc}"), highlight=False)
        raise SystemExit(EXIT_DENIED) from exc
    except (UnknownRequest, UnknownStrategy) as exc:
        err.print(Text.assemble(("unknown:", "red"), f" {exc}"), highlight=False)
        raise SystemExit(EXIT_UNKNOWN) from exc
    except BadRequest as exc:
        err.print(Text.assemble(("bad request:", "red"), f" {exc}"), highlight=False)
        raise SystemExit(EXIT_USAGE) from exc
    except TradeguardError as exc:
        err.print(Text.assemble(("error:", "red"), f" {exc}"), highlight=False)
        raise SystemExit(EXIT_ERROR) from exc


# -- operator commands: each authenticates, writes through the store, and says what follows ----


def _operator(config: Path | None, user: str) -> Guard:
    """A guard on the store, with ``user`` authenticated (or a warning when auth is off)."""
    guard = _guard(config)
    if not guard.auth_enabled:  # _guard has said so
        return guard
    token = os.environ.get("TRADEGUARD_TOKEN")
    if token is None and os.isatty(0):
        token = typer.prompt(f"token for {user}", hide_input=True)
    try:
        guard.authenticate(user, token)
    except PermissionDenied:
        guard.close()
        raise
    return guard


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
    if force or strategy in guard.status()["strategies"]:
        return
    guard.refuse(user, "halt-strategy", f"unknown strategy {strategy!r}")
    known = ", ".join(guard.status()["strategies"]) or "none yet"
    raise _fail(
        f"unknown strategy {strategy!r} (known: {known}); check the name, or pass "
        "--force to halt it before it first reports",
        EXIT_UNKNOWN,
    )


@app.command("halt-strategy")
def halt_strategy(
    strategy: str,
    user: UserOption,
    reason: ReasonOption = None,
    force: Annotated[bool, typer.Option(help="Halt a strategy no guard has seen yet.")] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Halt one strategy: its orders are cancelled (and, by its policy, its positions closed)."""
    with _operator(config, user) as guard:
        _known_strategy(guard, user, strategy, force)
        change = guard.halt_strategy(strategy, user, reason or "halted from the CLI")
    _report(change, as_json, f"strategy {strategy} was already halted (your press is on record)")


@app.command()
def resume(
    strategy: str,
    user: UserOption,
    reason: ReasonOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resume a halted strategy (senior_trader or higher)."""
    with _operator(config, user) as guard:
        _known_strategy(guard, user, strategy, force=False)
        change = guard.resume_strategy(strategy, user, reason or "resumed from the CLI")
    _report(change, as_json, "")


def _portfolio_command(name: str, method: str, default_reason: str, already: str, doc: str) -> None:
    """The three portfolio halts take the same options and differ only in what they call."""

    def command(
        user: UserOption,
        reason: ReasonOption = None,
        config: ConfigOption = None,
        as_json: JsonOption = False,
    ) -> None:
        with _operator(config, user) as guard:
            change = getattr(guard, method)(user, reason or default_reason)
        _report(change, as_json, already)

    command.__doc__ = doc
    app.command(name)(command)


_portfolio_command(
    "portfolio-halt",
    "portfolio_halt",
    "soft halt from the CLI",
    "the portfolio is already at least soft-halted (press recorded)",
    "Soft halt: no new risk; positions are kept and may be reduced.",
)
_portfolio_command(
    "portfolio-close",
    "portfolio_close",
    "hard halt from the CLI",
    "the portfolio is already at least hard-halted (press recorded)",
    "Hard halt: no orders; every order cancelled and every position closed.",
)
_portfolio_command(
    "emergency",
    "emergency",
    "emergency from the CLI",
    "the portfolio is already in emergency (press recorded)",
    "Emergency lockdown: hard halt, limits frozen; lifting it takes two people.",
)


@app.command()
def reset(
    user: UserOption,
    reason: ReasonOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Lift a portfolio halt (risk_manager); an emergency needs a second person's approve."""
    with _operator(config, user) as guard:
        request = guard.reset(user, reason or "reset from the CLI")
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


@app.command()
def approve(
    request_id: str,
    user: UserOption,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Complete a two-person request as the second, different person."""
    with _operator(config, user) as guard:
        done = guard.approve(request_id, user)
    if isinstance(done, Approval):  # a genome unblock
        if as_json:
            out.print_json(json.dumps(done.to_dict()))
        else:
            out.print(
                f"{done.scope} unblocked by {done.approved_by} (requested by {done.requested_by})"
            )
        return
    _report(done, as_json, "")


@app.command()
def monitor(
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 2.0,
    iterations: Annotated[int, typer.Option(help="Stop after N refreshes (0: never).")] = 0,
    config: ConfigOption = None,
) -> None:
    """Live full-screen status, refreshed from the store."""
    from rich.live import Live

    from tradeguard.live_view import render_status

    chosen = _config(config)
    count = 0
    with Live(console=out, screen=os.isatty(1), auto_refresh=False) as live:
        while True:
            with _guard(config) as guard:
                live.update(render_status(guard.status(), chosen), refresh=True)
            count += 1
            if iterations and count >= iterations:
                return
            time.sleep(interval)


@audit_app.command("export")
def audit_export(
    output: Annotated[Path | None, typer.Option(help="File to write; default stdout.")] = None,
    config: ConfigOption = None,
) -> None:
    """Every record as JSON lines, hashes included, for offline verification and archiving."""
    with _guard(config) as guard:
        lines = "".join(json.dumps(r.to_dict()) + "\n" for r in guard.audit_records())
    if output is None:
        sys.stdout.write(lines)
    else:
        output.write_text(lines, encoding="utf-8")
        out.print(f"{lines.count(chr(10))} records written to {output}", highlight=False)


# -- users --------------------------------------------------------------------------------


def _admin(config: Path | None, user: str | None) -> tuple[Guard, str]:
    """User administration needs an authenticated admin once one exists; before that, whoever
    can write the store's file is the administrator (the bootstrap)."""
    guard = _guard(config)
    admins = [u for u in guard.users() if u["role"] == "admin" and u["has_token"]]
    if not admins or not guard.auth_enabled:
        by = f"local:{pwd.getpwuid(os.getuid()).pw_name}"  # not $USER: that is anyone's to set
        err.print(
            f"note: no admin with a token yet: acting as {by} (file access)",
            style="dim",
            highlight=False,
        )
        return guard, by
    if user is None:
        guard.close()
        raise _fail("an admin must authenticate: --user NAME with $TRADEGUARD_TOKEN", EXIT_USAGE)
    guard.close()
    guard = _operator(config, user)
    if user not in {a["name"] for a in admins}:
        guard.refuse(user, "users", f"{user} is not an admin with a token")
        guard.close()
        raise PermissionDenied(f"{user} is not an admin with a token")
    return guard, user


AdminOption = Annotated[str | None, typer.Option("--user", "-u", help="The admin acting.")]


@users_app.command("add")
def users_add(
    name: str,
    role: Annotated[str, typer.Option(help="viewer, trader, senior_trader, risk_manager or admin")],
    user: AdminOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a user; its token is printed once (only a hash is kept)."""
    guard, by = _admin(config, user)
    with guard:
        token = guard.add_user(name, role, by=by)
    _token_issued(name, token, as_json, f"user {name} ({role}) created")


@users_app.command("token")
def users_token(
    name: str, user: AdminOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """Issue a new token for a user; the old one stops working."""
    guard, by = _admin(config, user)
    with guard:
        token = guard.issue_token(name, by=by)
    _token_issued(name, token, as_json, f"new token for {name}")


def _token_issued(name: str, token: str, as_json: bool, what: str) -> None:
    """The token is shown once, as its last line (scripts take the last line, or --json)."""
    if as_json:
        out.print_json(json.dumps({"user": name, "token": token}))
    else:
        out.print(f"{what}. Token, shown only now:\n{token}", highlight=False)


@users_app.command("set-role")
def users_set_role(
    name: str, role: str, user: AdminOption = None, config: ConfigOption = None
) -> None:
    """Change a user's role."""
    guard, by = _admin(config, user)
    with guard:
        guard.set_role(name, role, by=by)
    out.print(f"{name} is now {role}", highlight=False)


@users_app.command("remove")
def users_remove(name: str, user: AdminOption = None, config: ConfigOption = None) -> None:
    """Remove a user's record (role and token)."""
    guard, by = _admin(config, user)
    with guard:
        guard.remove_user(name, by=by)
        still = name in guard.config.users
    out.print(
        f"{name} removed"
        + (
            " from the store; it is still in the config's users: remove it there too"
            if still
            else ""
        ),
        highlight=False,
    )


@users_app.command("list")
def users_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every user, role, whether it has a token, and where its role comes from."""
    with _guard(config) as guard:
        users = guard.users()
    if as_json:
        out.print_json(json.dumps(users))
        return
    table = Table("user", "role", "token", "source")
    for u in users:
        table.add_row(u["name"], u["role"], "yes" if u["has_token"] else "no", u["source"])
    out.print(table)


@app.command()
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

    chosen = _config(config)
    if not chosen.auth.enabled:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise _fail(
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
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        guard.close()


@app.command("test-alert")
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
        raise _fail(
            f"priority must be info, warning or critical, not {priority!r}", EXIT_USAGE
        ) from None
    with _guard(config) as guard:
        dispatcher = guard.alerts
        routed = dispatcher.routed(level)
        if not routed:
            raise _fail(f"no configured channel is routed for {level}: see alerts.routing")
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
