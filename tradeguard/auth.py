"""Who may do what: users and roles from the config, checked against the command's least role."""

from __future__ import annotations

from collections.abc import Mapping

from tradeguard.errors import PermissionDenied
from tradeguard.model import Actor, ActorKind, Role
from tradeguard.state import REQUIRED_ROLE, Command


class Authorizer:
    def __init__(self, users: Mapping[str, Role]) -> None:
        self._users = dict(users)

    def role_of(self, user: str) -> Role | None:
        return self._users.get(user)

    def authorize(self, user: object, command: Command, *, least: Role | None = None) -> Actor:
        """The actor for ``user`` if its role allows ``command``; raises PermissionDenied."""
        if not isinstance(user, str) or not user:
            raise PermissionDenied("an operator must be identified by a user name")
        role = self._users.get(user)
        if role is None:
            raise PermissionDenied(
                f"unknown user {user!r}: add it under `users:` in the config to allow {command}"
            )
        needed = least if least is not None else REQUIRED_ROLE[command]
        if role < needed:
            raise PermissionDenied(
                f"{user} is {role.label}; {command} needs {needed.label} or higher"
            )
        return Actor(ActorKind.USER, user)
