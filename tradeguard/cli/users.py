"""``tradeguard users``: operators, their roles and tokens, kept in the store.

A token is shown once, when it is issued; the store keeps only its hash.
"""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tradeguard.cli.common import (
    EXIT_USAGE,
    ConfigOption,
    JsonOption,
    err,
    fail,
    open_guard,
    operator_guard,
    out,
)
from tradeguard.errors import PermissionDenied
from tradeguard.guard import Guard

users_app = typer.Typer(
    help="Operators: roles and tokens, kept in the store.", no_args_is_help=True
)


def _admin(config: Path | None, user: str | None) -> tuple[Guard, str]:
    """User administration needs an authenticated admin once one exists; before that, whoever
    can write the store's file is the administrator (the bootstrap)."""
    guard = open_guard(config)
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
        raise fail("an admin must authenticate: --user NAME with $TRADEGUARD_TOKEN", EXIT_USAGE)
    guard.close()
    guard, _who = operator_guard(config, user)
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
    with open_guard(config) as guard:
        users = guard.users()
    if as_json:
        out.print_json(json.dumps(users))
        return
    table = Table("user", "role", "token", "source")
    for u in users:
        table.add_row(u["name"], u["role"], "yes" if u["has_token"] else "no", u["source"])
    out.print(table)
