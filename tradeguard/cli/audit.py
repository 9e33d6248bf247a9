"""``tradeguard audit``: the hash-chained audit log, listed, verified and exported."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tradeguard.cli.common import (
    EXIT_ERROR,
    EXIT_USAGE,
    ConfigOption,
    JsonOption,
    fail,
    open_reader,
    out,
)
from tradeguard.clock import NaiveTime, parse_iso, to_iso

audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
RELATIVE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
SINCE_HELP = (
    "From when: a duration back from now (90s, 30m, 2h, 1d, 1w) or an ISO date/time "
    "(a time without a zone is UTC)."
)


def since_time(value: str | None, now: float) -> float | None:
    """``--since`` as epoch seconds: ``2h`` is two hours before ``now``; an ISO time without a
    zone is read as UTC (what every time this tool prints is in); a date alone is its midnight."""
    if value is None:
        return None
    text = value.strip()
    if relative := RELATIVE.fullmatch(text):
        return now - float(relative[1]) * UNIT_SECONDS[relative[2]]
    try:
        return parse_iso(text).timestamp()
    except NaiveTime:
        return parse_iso(text + "+00:00").timestamp()
    except ValueError as exc:
        raise fail(
            f"--since {value!r} is neither a duration (2h, 30m, 1d) nor an ISO date/time",
            EXIT_USAGE,
        ) from exc


@audit_app.command("show")
def audit_show(
    config: ConfigOption = None,
    since: Annotated[str | None, typer.Option(help=SINCE_HELP)] = None,
    as_json: JsonOption = False,
) -> None:
    """List audit records, oldest first."""
    with open_reader(config) as guard:
        records = guard.audit_records(since=since_time(since, time.time()))
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
    with open_reader(config) as guard:
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
    raise fail(f"audit chain broken{where}: {result.problem}")


@audit_app.command("export")
def audit_export(
    output: Annotated[Path | None, typer.Option(help="File to write; default stdout.")] = None,
    config: ConfigOption = None,
) -> None:
    """Every record as JSON lines, hashes included, for offline verification and archiving."""
    with open_reader(config) as guard:
        lines = "".join(json.dumps(r.to_dict()) + "\n" for r in guard.audit_records())
    if output is None:
        sys.stdout.write(lines)
    else:
        output.write_text(lines, encoding="utf-8")
        out.print(f"{lines.count(chr(10))} records written to {output}", highlight=False)
