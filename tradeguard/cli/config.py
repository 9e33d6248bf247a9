"""``tradeguard config``: check a config file before a guard runs on it."""

from __future__ import annotations

from pathlib import Path

import typer

from tradeguard.cli.common import EXIT_ERROR, err, out
from tradeguard.config import config_warnings, load_config
from tradeguard.errors import ConfigError

config_app = typer.Typer(help="Configuration files.", no_args_is_help=True)


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
