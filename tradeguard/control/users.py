"""Users: roles, tokens and authentication.

A user's role comes from the store's record where one exists (made by ``tradeguard users``),
else from the config's ``users:``. Tokens are shown once; only a salted hash is kept. An
automated principal's name never has a human role, whatever the store says.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

from tradeguard.audit import AuditEntry
from tradeguard.auth import hash_token, new_token, token_matches
from tradeguard.config import USER_NAME
from tradeguard.engine.core import Core
from tradeguard.errors import BadRequest, PermissionDenied, StoreUnavailable, UnknownRequest
from tradeguard.model import PORTFOLIO, Operator, Role
from tradeguard.store import UserRecord


class Users:
    def __init__(self, core: Core) -> None:
        self._book = core.book
        self._storage = core.storage
        self._transitions = core.transitions
        self._clock = core.clock
        self._verified: dict[tuple[str, str], str] = {}  # (user, sha256(token)) -> its hash

    def role_of(self, name: str) -> Role | None:
        """If the store cannot be read, the config still lets people halt (stopping is
        cheap); lifting needs the store anyway."""
        config = self._book.config
        if name in config.autonomy.principals:
            return None
        store = self._storage.healthy()
        if store is not None:
            with contextlib.suppress(StoreUnavailable):
                record = store.users().get(name)
                if record is not None:
                    return Role.parse(record.role)
        return config.users.get(name)

    def authenticate(
        self, user: object, token: str | None, *, source: str | None = None
    ) -> Operator | None:
        """Check ``token`` is ``user``'s (CLI and HTTP); refusals are audited, with the
        ``source`` they came from. The operator it returns, passed to a command, records the
        act as authenticated. With auth off in the config it returns None: anyone the roles
        know may act, and callers say so."""
        config = self._book.config
        if not config.auth.enabled:
            return None
        name = user if isinstance(user, str) else ""
        record = self._record(name)
        if record is None or record.salt is None or record.token_hash is None:
            known = record is not None or name in config.users
            why = (
                f"{user!r} has no token: `tradeguard users token {name}` issues one"
                if known
                else f"unknown user {user!r}"
            )
            self._transitions.refuse(user, "authenticate", PORTFOLIO, why, source=source)
            raise PermissionDenied(why)
        if not isinstance(token, str) or not token.isascii():
            token = ""  # tokens are ASCII: anything else (a mis-pasted byte) is a wrong one
        if self._seen(name, token, record.token_hash):
            return Operator(name)
        if not token or not token_matches(token, record.salt, record.token_hash):
            self._transitions.refuse(user, "authenticate", PORTFOLIO, "wrong token", source=source)
            raise PermissionDenied(f"wrong token for {name}")
        self._verified[_cache_key(name, token)] = record.token_hash
        return Operator(name)

    def verified(self, user: str, token: str) -> Operator | None:
        """``user``, if this very token was verified here before and is still theirs; no
        hash is computed and nothing is audited (a cheap check for the failed-login limit)."""
        if not self._book.config.auth.enabled:
            return None
        record = self._record(user)
        if record is None or record.token_hash is None:
            return None
        return Operator(user) if self._seen(user, token, record.token_hash) else None

    def _seen(self, name: str, token: str, token_hash: str) -> bool:
        return self._verified.get(_cache_key(name, token)) == token_hash

    def _record(self, name: str) -> UserRecord | None:
        store = self._storage.healthy()
        if store is not None:
            with contextlib.suppress(StoreUnavailable):
                return store.users().get(name)
        return None

    def listed(self) -> list[dict[str, Any]]:
        """Every user: the store's records and the config's ``users:``; the store's role wins."""
        stored = self._storage.require().users()
        configured = self._book.config.users
        listed = []
        for name in sorted(set(stored) | set(configured)):
            record = stored.get(name)
            listed.append(
                {
                    "name": name,
                    "role": record.role if record else configured[name].label,
                    "has_token": record is not None and record.token_hash is not None,
                    "source": "store" if record else "config",
                }
            )
        return listed

    def add(self, name: str, role: str, *, by: str) -> str:
        """Create a user and return its token (shown once; only its hash is kept)."""
        store = self._storage.require()
        name = _valid_user_name(name)
        parsed = _valid_role(role)
        if name in store.users() or name in self._book.config.users:
            raise BadRequest(f"user {name!r} exists: use `set-role` or `token`")
        return self._put(name, parsed, by=by, action="user:added", token=new_token())

    def issue_token(self, name: str, *, by: str) -> str:
        """A new token for an existing user; the old one stops working."""
        record = self._storage.require().users().get(name)
        role = Role.parse(record.role) if record is not None else self._book.config.users.get(name)
        if role is None:
            raise UnknownRequest(f"no user {name!r}")
        return self._put(name, role, by=by, action="user:token", token=new_token())

    def set_role(self, name: str, role: str, *, by: str) -> None:
        record = self._storage.require().users().get(name)
        if record is None and name not in self._book.config.users:
            raise UnknownRequest(f"no user {name!r}")
        self._put(name, _valid_role(role), by=by, action="user:role", token=None, keep=record)

    def remove(self, name: str, *, by: str) -> None:
        """Remove a user's record (role and token). One listed in the config keeps its config
        role, without a token, until it is removed from the config too."""
        audit = self._audit(by, "user:removed", name, "removed")
        if not self._storage.require().remove_user(name, audit):
            raise UnknownRequest(f"no user {name!r} in the store")

    def issuer_chain_reaches(self, approver: str, requester: str) -> bool:
        """Whether ``requester`` issued ``approver``'s token, directly or through a chain of
        issuers: then it is one person with two names, not two people."""
        users = self._storage.require().users()
        name, seen = approver, set()
        while name not in seen:
            seen.add(name)
            record = users.get(name)
            if record is None or record.issued_by is None:
                return False
            if record.issued_by == requester:
                return True
            name = record.issued_by
        return False

    def _put(
        self,
        name: str,
        role: Role,
        *,
        by: str,
        action: str,
        token: str | None,
        keep: UserRecord | None = None,
    ) -> str:
        if name in self._book.config.autonomy.principals:
            raise BadRequest(f"{name} is an automated principal: it cannot be a user too")
        salt: str | None
        digest: str | None
        issuer: str | None
        if token:
            (salt, digest), issuer = hash_token(token), by
        else:
            salt = keep.salt if keep else None
            digest = keep.token_hash if keep else None
            issuer = keep.issued_by if keep else None
        record = UserRecord(name, role.label, salt, digest, self._clock.time(), issuer)
        audit = self._audit(by, action, name, f"role {role.label}")
        self._storage.require().put_user(record, audit)
        return token or ""

    def _audit(self, by: str, action: str, name: str, why: str) -> AuditEntry:
        return AuditEntry(self._clock.time(), by, action, f"user:{name}", None, None, why)


def _cache_key(name: str, token: str) -> tuple[str, str]:
    return name, hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _valid_user_name(name: str) -> str:
    """Letters, digits and _.@- only: a user named "system:guard" or "local:x" would read
    in the audit log like the guard itself or a bootstrap administrator."""
    if not isinstance(name, str) or not USER_NAME.match(name):
        raise BadRequest(f"invalid user name {name!r}: 1-64 letters, digits and _.@-")
    return name


def _valid_role(role: str) -> Role:
    try:
        return Role.parse(role)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
