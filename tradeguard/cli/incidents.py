"""``tradeguard incidents`` and ``tradeguard genomes``: what the KillChain handled and the
strategy genomes it blacklisted."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from tradeguard.cli.common import (
    EXIT_UNKNOWN,
    ConfigOption,
    JsonOption,
    ReasonOption,
    UserOption,
    fail,
    open_reader,
    operator_guard,
    out,
)
from tradeguard.guard import Guard

incidents_app = typer.Typer(help="Incidents the KillChain handled.", no_args_is_help=True)
genomes_app = typer.Typer(help="Strategy genomes and the blacklist.", no_args_is_help=True)


@incidents_app.command("list")
def incidents_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every incident, oldest first: trigger, status, who was found responsible."""
    with open_reader(config) as guard:
        found = guard.incidents(snapshots=False)
    if as_json:
        out.print_json(json.dumps(found))
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
    with open_reader(config) as guard:
        found = guard.incident(incident_id)
    if found is None:
        raise fail(f"no incident {incident_id!r}; see `tradeguard incidents list`", EXIT_UNKNOWN)
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
            f"diagnosis: {diagnosis.get('responsible') or 'nobody'} ({diagnosis.get('method')}"
            f"{': ' + diagnosis['evidence'] if diagnosis.get('evidence') else ''})"
        )
        if diagnosis.get("cause"):
            out.print(f"cause: {diagnosis['cause']}; remediation: {diagnosis.get('remedy')}")
    snapshot = found.get("snapshot") or {}
    if snapshot.get("audit_head"):
        head = snapshot["audit_head"]
        out.print(f"snapshot at {snapshot['at']}, audit head #{head['seq']} {head['hash']}")


@genomes_app.command("list")
def genomes_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every genome seen, its strategies, and whether it is blacklisted."""
    with open_reader(config) as guard:
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
        raise fail(f"{what} with a fingerprint starting {prefix!r}", EXIT_UNKNOWN)
    return matches[0]


@genomes_app.command("show")
def genomes_show(fingerprint: str, config: ConfigOption = None) -> None:
    """One genome, as registered (a fingerprint prefix is enough)."""
    with open_reader(config) as guard:
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
    guard, who = operator_guard(config, user)
    with guard:
        found = _genome(guard, fingerprint)
        request = guard.unblock_genome(found["fingerprint"], who, reason or "unblock from CLI")
    out.print(
        f"unblock request {request.id} opened; a different risk_manager or admin completes "
        f"it with:\n  tradeguard approve {request.id} --user NAME"
    )
