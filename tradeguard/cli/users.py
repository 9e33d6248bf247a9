"""``tradeguard users``: operators, their roles, enrollment and tokens, kept in the store.

An enrollment code (or one share of a split one) is shown once, to the admin who issued it;
the user redeems it with ``users enroll`` for a token nobody else sees. The store keeps only
hashes.
"""

from __future__ import annotations

import dataclasses
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
    open_reader,
    operator_guard,
    out,
)
from tradeguard.clock import to_iso
from tradeguard.control.enrollment import UserChange
from tradeguard.errors import PermissionDenied
from tradeguard.guard import Guard
from tradeguard.model import Operator, User, user_key

users_app = typer.Typer(
    help="Operators: roles and tokens, kept in the store.", no_args_is_help=True
)


def _admin(config: Path | None, user: str | None) -> tuple[Guard, User]:
    """User administration needs an authenticated admin once two-person administration is
    established; before that (the bootstrap), whoever can write the store's file is the
    administrator: the one trust root, who could write the file directly anyway."""
    guard = open_guard(config)
    if not guard.two_person_administration or not guard.auth_enabled:
        by = local_administrator()
        err.print(
            f"note: two-person administration is not established yet: acting as {by} (file access)",
            style="dim",
            highlight=False,
        )
        return guard, by
    if user is None:
        guard.close()
        raise fail("an admin must authenticate: --user NAME with $TRADEGUARD_TOKEN", EXIT_USAGE)
    guard.close()
    guard, who = operator_guard(config, user)
    admins = {user_key(u["name"]) for u in guard.users() if u["role"] == "admin"}
    if user_key(user) not in admins:
        guard.refuse(user, "users", f"{user} is not an admin")
        guard.close()
        raise PermissionDenied(f"{user} is not an admin")
    return guard, who


def local_administrator() -> str:
    """Who acts by file access: the account running the command (not $USER: anyone sets it)."""
    return f"local:{pwd.getpwuid(os.getuid()).pw_name}"


AdminOption = Annotated[str | None, typer.Option("--user", "-u", help="The admin acting.")]


@users_app.command("add")
def users_add(
    name: str,
    role: Annotated[str, typer.Option(help="viewer, trader, senior_trader, risk_manager or admin")],
    user: AdminOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a user; prints its one-time enrollment code (or, for a lifting role once two
    people administer, a request and your share of the code)."""
    guard, by = _admin(config, user)
    with guard:
        change = guard.add_user(name, role, by=by)
    show_change(change, as_json, f"user {name} ({role}) created")


@users_app.command("token")
def users_token(
    name: str, user: AdminOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """Your own new token (--user is NAME, authenticated with your current token), or
    re-enroll someone else: their token stops working and a new enrollment code is printed."""
    if user is not None and user_key(user) == user_key(name):
        guard, who = operator_guard(config, user)
        with guard:
            if not isinstance(who, Operator):
                raise fail("authentication is off: there is no token to renew")
            token = guard.renew_token(who)
        _secret(as_json, {"user": who.name, "token": token}, f"new token for {who.name}", token)
        return
    guard, by = _admin(config, user)
    with guard:
        change = guard.issue_token(name, by=by)
    show_change(change, as_json, f"{name} must enroll again: their old token no longer works")


@users_app.command("enroll")
def users_enroll(name: str, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Redeem your enrollment code ($TRADEGUARD_ENROLLMENT_CODE, or asked for; a split code's
    two shares one after the other) for your token, shown once and to you only."""
    code = os.environ.get("TRADEGUARD_ENROLLMENT_CODE")
    if code is None:
        if not os.isatty(0):
            raise fail("no code: set TRADEGUARD_ENROLLMENT_CODE or run on a terminal", EXIT_USAGE)
        code = typer.prompt(f"enrollment code for {name}", hide_input=True)
    with open_guard(config) as guard:
        token = guard.enroll(name, code)
    _secret(as_json, {"user": name, "token": token}, f"{name} enrolled", token)


def show_change(change: UserChange, as_json: bool, what: str) -> None:
    """A code or a share is shown once, as the last line (scripts take the last line, or
    --json); a request says how it is completed."""
    if as_json:
        out.print_json(json.dumps(change.to_dict()))
        return
    if change.request is not None:
        rid = change.request.id
        out.print(
            f"request {rid} opened ({change.request.reason}); a different risk_manager or admin "
            f"completes it with:\n  tradeguard approve {rid} --user NAME",
            highlight=False,
        )
        what = f"{change.user} needs both shares of the code to enroll"
    if change.code is None:
        out.print(what if change.request is None else "", highlight=False)
        return
    kind = "your share of the enrollment code" if change.request else "enrollment code"
    out.print(
        f"{what}. {kind.capitalize()}, shown only now (expires "
        f"{change.to_dict()['expires_at']}; redeem with `tradeguard users enroll "
        f"{change.user}`):\n{change.code}",
        highlight=False,
    )


def _secret(as_json: bool, data: dict[str, str], what: str, secret: str) -> None:
    if as_json:
        out.print_json(json.dumps(data))
    else:
        out.print(f"{what}. Token, shown only now:\n{secret}", highlight=False)


@users_app.command("set-role")
def users_set_role(
    name: str, role: str, user: AdminOption = None, config: ConfigOption = None
) -> None:
    """Change a user's role (a change to who can lift is a two-person request)."""
    guard, by = _admin(config, user)
    with guard:
        change = guard.set_role(name, role, by=by)
    show_change(change, False, f"{name} is now {role}")


@users_app.command("remove")
def users_remove(name: str, user: AdminOption = None, config: ConfigOption = None) -> None:
    """Remove a user's record (role and token); a lifting user's is a two-person request."""
    guard, by = _admin(config, user)
    with guard:
        change = guard.remove_user(name, by=by)
        still = guard.config_lists_user(name)
    if change.request is not None:
        show_change(change, False, "")
        return
    out.print(
        f"{name} removed"
        + (
            " from the store; it is still in the config's users: remove it there too"
            if still
            else ""
        ),
        highlight=False,
    )


@users_app.command("history")
def users_history(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Who enrolled whom and every administration act, oldest first (append-only)."""
    with open_reader(config) as guard:
        events = guard.user_history()
    if as_json:
        out.print_json(json.dumps([dataclasses.asdict(e) for e in events]))
        return
    table = Table("when", "by", "act", "user", "details")
    for e in events:
        table.add_row(to_iso(e.at), e.actor, e.action, e.user, json.dumps(e.details))
    out.print(table)


@users_app.command("list")
def users_list(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Every user, role, whether it has a token, and where its role comes from."""
    with open_reader(config) as guard:
        users = guard.users()
    if as_json:
        out.print_json(json.dumps(users))
        return
    table = Table("user", "role", "token", "source")
    for u in users:
        token = "yes" if u["has_token"] else "enrolling" if u["enrolling"] else "no"
        table.add_row(u["name"], u["role"], token, u["source"])
    out.print(table)
