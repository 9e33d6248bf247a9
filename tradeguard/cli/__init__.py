"""The ``tradeguard`` command. Thin: every command calls the Guard, which reads the store.

Exit codes: 0 done, 1 error (including a broken audit chain), 2 usage, 3 permission denied,
4 unknown strategy or request.

The commands live in one module per group; this module assembles them, in the order
``tradeguard --help`` lists them, and maps the errors that escape a command to exit codes.
"""

from __future__ import annotations

import typer
from rich.text import Text

from tradeguard.cli import operator, serve
from tradeguard.cli.audit import audit_app
from tradeguard.cli.common import EXIT_DENIED, EXIT_ERROR, EXIT_UNKNOWN, EXIT_USAGE, err
from tradeguard.cli.config import config_app
from tradeguard.cli.criticality import criticality_app
from tradeguard.cli.incidents import genomes_app, incidents_app
from tradeguard.cli.init import init
from tradeguard.cli.users import users_app
from tradeguard.errors import (
    BadRequest,
    PermissionDenied,
    TradeguardError,
    UnknownRequest,
    UnknownStrategy,
)

app = typer.Typer(
    help="Kill switch and circuit breakers for algorithmic trading.",
    no_args_is_help=True,
    add_completion=False,
)
# In the order `tradeguard --help` lists them: the commands, then the groups.
app.command()(init)
app.command()(operator.status)
app.command()(serve.demo)
app.command("halt-strategy")(operator.halt_strategy)
app.command()(operator.resume)
app.command("portfolio-halt")(operator.portfolio_halt)
app.command("portfolio-close")(operator.portfolio_close)
app.command("emergency")(operator.emergency)
app.command()(operator.reset)
app.command()(operator.approve)
app.command()(operator.monitor)
app.command()(serve.serve)
app.command("test-alert")(serve.test_alert)
app.add_typer(config_app, name="config")
app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.add_typer(criticality_app, name="criticality")
app.add_typer(incidents_app, name="incidents")
app.add_typer(genomes_app, name="genomes")


def main() -> None:
    """The ``tradeguard`` entry point: run the command, and turn a refusal into its exit code."""
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
