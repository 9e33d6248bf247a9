"""What every command shares: the consoles, exit codes, common options, and opening a guard.

Commands only read and write through a Guard on an existing store; these helpers find the
config, refuse to create a store a reading command would mistake for the truth, and
authenticate the operator before anything is written.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from tradeguard.config import Config, load_config
from tradeguard.errors import ConfigError
from tradeguard.guard import Guard
from tradeguard.model import User
from tradeguard.store.anchor import anchor_path

EXIT_ERROR, EXIT_USAGE, EXIT_DENIED, EXIT_UNKNOWN = 1, 2, 3, 4

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


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    """Print the error; the caller raises what this returns, so the exit code is visible there."""
    err.print(Text.assemble(("error:", "red"), f" {message}"), highlight=False)
    return typer.Exit(code)


def read_config(path: Path | None) -> Config:
    """The config from ``-c``, else $TRADEGUARD_CONFIG; neither is a usage error."""
    chosen = path or (Path(env) if (env := os.environ.get("TRADEGUARD_CONFIG")) else None)
    if chosen is None:
        raise fail("no config: pass -c FILE or set TRADEGUARD_CONFIG", EXIT_USAGE)
    try:
        return load_config(chosen)
    except ConfigError as exc:
        raise fail("\n".join(exc.errors)) from exc


def open_reader(path: Path | None) -> Guard:
    """A read-only guard on an existing store, for the commands that only look: they leave
    the store's files as they found them, even a cut-off incident or an emergency marker
    (shown, not adopted: the next guard that writes adopts them)."""
    return open_guard(path, read_only=True)


def open_guard(path: Path | None, *, read_only: bool = False) -> Guard:
    """A guard on an existing store: reading commands never create one (a fresh, empty store
    would report "normal" for a book that is in fact halted somewhere else)."""
    config = read_config(path)
    if not config.auth.enabled:
        err.print(
            Text.assemble(
                ("warning:", "yellow"),
                " authentication is off in this config: anyone can act as any user",
            )
        )
    db = config.state.path
    unanchored = not anchor_path(db).exists()  # an anchored store is judged when it opens
    if unanchored and (not db.exists() or db.stat().st_size == 0):
        raise fail(
            f"no state database at {config.state.path}: check state.path in the config "
            "(a guard creates it on first start)"
        )
    return Guard(config, read_only=read_only)


def operator_guard(config: Path | None, user: str, *, stopping: bool = False) -> tuple[Guard, User]:
    """A guard on the store, and ``user`` authenticated: the operator to pass to commands (the
    bare name when auth is off). ``stopping``: a halt is never refused, so a failed
    authentication is said, and recorded, and the halt goes through as not authenticated."""
    guard = open_guard(config)
    if not guard.auth_enabled:  # open_guard has said so
        return guard, user
    token = os.environ.get("TRADEGUARD_TOKEN")
    if token is None and os.isatty(0):
        token = typer.prompt(f"token for {user}", hide_input=True)
    try:
        who = guard.authenticate(user, token)
    except Exception as exc:  # a stop goes on whatever its credential did to the check
        if not stopping:
            guard.close()
            raise
        err.print(
            Text.assemble(
                ("warning:", "yellow"),
                f" not authenticated ({exc}): the halt goes through, on record as "
                "not authenticated",
            )
        )
        return guard, user
    return guard, user if who is None else who
