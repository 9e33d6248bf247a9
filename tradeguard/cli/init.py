"""``tradeguard init``: the one command that creates a store.

Every other command refuses a missing store (a fresh, empty one would read "normal" for a book
that is halted elsewhere); an operator creates it here, on purpose, once. A trading process's
first ``Guard`` may still create its own (the quick start needs nothing else).
"""

from __future__ import annotations

from typing import Annotated

import typer

from tradeguard.cli.common import ConfigOption, JsonOption, fail, read_config
from tradeguard.cli.users import local_administrator, show_change
from tradeguard.guard import Guard
from tradeguard.store.anchor import anchor_path
from tradeguard.store.keyfile import key_path


def init(
    config: ConfigOption = None,
    admin: Annotated[
        str | None,
        typer.Option("--admin", help="Create this first admin and print their enrollment code."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create the store named by state.path, with its anchor and audit key beside it; never
    over an existing one. With --admin NAME, also the first admin's one-time enrollment code."""
    cfg = read_config(config)
    db = cfg.state.path
    files = (db, db.with_name(db.name + "-wal"), anchor_path(db), key_path(db))
    found = [str(f) for f in files if f.exists()]
    if found:
        raise fail(f"a store is already there ({', '.join(found)}): init never overwrites one")
    if not db.parent.is_dir():
        raise fail(f"no directory {db.parent} for state.path {db}")
    with Guard(cfg) as guard:
        problem = guard.status()["store"]
        if not problem["ok"]:
            raise fail(f"could not create the store at {db}: {problem['error']}")
        if not as_json:
            keyed = "" if cfg.state.audit_key else f", audit key {key_path(db)}"
            typer.echo(f"store created at {db} (anchor {anchor_path(db)}{keyed})")
        if admin is None:
            if not as_json:
                typer.echo("next: tradeguard users add NAME --role admin -c CONFIG")
            return
        change = guard.add_user(admin, "admin", by=local_administrator())
    show_change(change, as_json, f"user {admin} (admin) created")
