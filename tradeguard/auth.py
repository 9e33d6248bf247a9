"""Who may do what, and proof of who is asking.

Roles: the config's ``users:`` seeds the store at start-up; after that the store is the
source of truth (``tradeguard users ...`` changes it, and every process sees the change at its
next check). Tokens authenticate the CLI and the HTTP API; only a salted scrypt hash is kept,
and a verified token is cached by its SHA-256 so an API call does not pay scrypt each time.
The in-process Python API trusts its host program and takes user names as given.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable

from tradeguard.errors import PermissionDenied
from tradeguard.model import Actor, ActorKind, Role
from tradeguard.state import REQUIRED_ROLE, Command

# scrypt cost: about 20-50 ms here, far too slow to guess tokens by the million.
_N, _R, _P = 2**14, 8, 1
# One hash at a time in a process: each takes 16 MB of memory-hard work, and the attempts a
# flood gets admitted (``auth.failed_logins_per_second``) all start together at the top of a
# second; run at once they took every core and cache from the guard (measured: a halt under a
# flood of bad tokens about twice as slow as with them one after another).
_HASHING = threading.Lock()


def new_token() -> str:
    return secrets.token_urlsafe(24)


def hash_token(token: str, salt: str | None = None) -> tuple[str, str]:
    """Returns (salt, hash), both hex."""
    salt = salt if salt is not None else secrets.token_hex(16)
    with _HASHING:
        digest = hashlib.scrypt(
            token.encode(), salt=bytes.fromhex(salt), n=_N, r=_R, p=_P, dklen=32
        )
    return salt, digest.hex()


def token_matches(token: str, salt: str, token_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token, salt)[1], token_hash)


class Authorizer:
    """Checks a user's role against the least role a command needs."""

    def __init__(self, role_of: Callable[[str], Role | None]) -> None:
        self._role_of = role_of

    def authorize(self, user: object, command: Command) -> Actor:
        """The actor for ``user`` if its role allows ``command``; raises PermissionDenied."""
        if not isinstance(user, str) or not user:
            raise PermissionDenied("an operator must be identified by a user name")
        role = self._role_of(user)
        if role is None:
            raise PermissionDenied(
                f"unknown user {user!r}: add it under `users:` in the config or with "
                f"`tradeguard users add` to allow {command}"
            )
        needed = REQUIRED_ROLE[command]
        if role < needed:
            raise PermissionDenied(
                f"{user} is {role.label}; {command} needs {needed.label} or higher"
            )
        return Actor(ActorKind.USER, user)
