"""Users: who someone is, what role they hold, and whether two of them are two people.

A user's role comes from the store's record where one exists (made by ``tradeguard users``),
else from the config's ``users:``. A person is identified by :func:`user_key` (NFKC, then
casefold): ``Alice`` and ``alice`` are one person everywhere, and are shown as first created.
Tokens are redeemed by their owner from an enrollment code (:mod:`.enrollment`); the store
keeps hashes only. An automated principal's name never has a human role, whatever the store
says.

**Lifting roles** are those that may reset an emergency or approve a two-person request
(risk_manager and admin). Once two enrolled users hold them, two-person administration is
*established*: recorded in the append-only user history, it never reverts, and from then on any
change to who can lift is itself a two-person act (:mod:`.enrollment`).
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any

from tradeguard.auth import token_matches
from tradeguard.engine.core import Core
from tradeguard.errors import PermissionDenied, StoreUnavailable
from tradeguard.model import PORTFOLIO, Operator, Role, user_key
from tradeguard.state import REQUIRED_ROLE, Command
from tradeguard.store import UserRecord

LIFTING = REQUIRED_ROLE[Command.RESET]  # the least role that lifts an emergency or approves


ESTABLISHED = "user:established"  # the audit action that records it (see enrollment)


class Users:
    def __init__(self, core: Core) -> None:
        self._book = core.book
        self._storage = core.storage
        self._transitions = core.transitions
        self._clock = core.clock
        self._verified: dict[tuple[str, str], str] = {}  # (user, sha256(token)) -> its hash

    def record(self, name: str) -> UserRecord | None:
        """The stored user who is ``name`` (compared by :func:`user_key`)."""
        key = user_key(name)
        users = self._storage.require().users()
        return next((r for r in users.values() if user_key(r.name) == key), None)

    def configured(self, name: str) -> tuple[str, Role] | None:
        """The config's ``users:`` entry who is ``name``: its name as written, and its role."""
        key = user_key(name)
        found = ((n, r) for n, r in self._book.config.users.items() if user_key(n) == key)
        return next(found, None)

    def role_of(self, name: str) -> Role | None:
        """If the store cannot be read, the config still lets people halt (stopping is
        cheap); lifting needs the store anyway."""
        config = self._book.config
        if not isinstance(name, str) or any(
            user_key(name) == user_key(p) for p in config.autonomy.principals
        ):
            return None
        with contextlib.suppress(StoreUnavailable):
            if self._storage.healthy() is not None and (record := self.record(name)):
                return Role.parse(record.role)
        configured = self.configured(name)
        return None if configured is None else configured[1]

    def authenticate(
        self, user: object, token: str | None, *, source: str | None = None
    ) -> Operator | None:
        """Check ``token`` is ``user``'s (CLI and HTTP); refusals are audited, with the
        ``source`` they came from. The operator it returns (named as the user was created),
        passed to a command, records the act as authenticated. With auth off in the config it
        returns None: anyone the roles know may act, and callers say so."""
        if not self._book.config.auth.enabled:
            return None
        name = user if isinstance(user, str) else ""
        record = self._record(name)
        if record is None or record.salt is None or record.token_hash is None:
            known = record is not None or self.configured(name) is not None
            why = (
                f"{user!r} has no token: an admin issues an enrollment code "
                f"(`tradeguard users token {name}`), redeemed with `tradeguard users enroll`"
                if known
                else f"unknown user {user!r}"
            )
            self._transitions.refuse(user, "authenticate", PORTFOLIO, why, source=source)
            raise PermissionDenied(why)
        if not isinstance(token, str) or not token.isascii():
            token = ""  # tokens are ASCII: anything else (a mis-pasted byte) is a wrong one
        if self._seen(name, token, record.token_hash):
            return Operator(record.name)
        if not token or not token_matches(token, record.salt, record.token_hash):
            self._transitions.refuse(user, "authenticate", PORTFOLIO, "wrong token", source=source)
            raise PermissionDenied(f"wrong token for {name}")
        self._verified[_cache_key(name, token)] = record.token_hash
        return Operator(record.name)

    def verified(self, user: str, token: str) -> Operator | None:
        """``user``, if this very token was verified here before and is still theirs; no
        hash is computed and nothing is audited (a cheap check for the failed-login limit).
        A token never verified here is answered without reading the store: a flood of
        guesses costs a dictionary look-up each."""
        if not self.recognized(user, token):
            return None
        record = self._record(user)
        if record is None or record.token_hash is None:
            return None
        return Operator(record.name) if self._seen(user, token, record.token_hash) else None

    def recognized(self, user: str, token: str) -> bool:
        """This token was verified here once (it may have been revoked since: ``verified``
        says). Memory only, so the HTTP API asks it on its event loop."""
        return self._book.config.auth.enabled and _cache_key(user, token) in self._verified

    def _seen(self, name: str, token: str, token_hash: str) -> bool:
        return self._verified.get(_cache_key(name, token)) == token_hash

    def _record(self, name: str) -> UserRecord | None:
        """The stored user who is ``name``; None also when the store cannot say."""
        if self._storage.healthy() is None:
            return None
        with contextlib.suppress(StoreUnavailable):
            return self.record(name)
        return None

    def listed(self) -> list[dict[str, Any]]:
        """Every user: the store's records and the config's ``users:``; the store's role wins."""
        stored = {user_key(n): r for n, r in self._storage.require().users().items()}
        listed = [
            {
                "name": r.name,
                "role": r.role,
                "has_token": r.enrolled,
                "enrolling": bool(r.code),
                "source": "store",
            }
            for r in stored.values()
        ]
        listed += [
            {
                "name": name,
                "role": role.label,
                "has_token": False,
                "enrolling": False,
                "source": "config",
            }
            for name, role in self._book.config.users.items()
            if user_key(name) not in stored
        ]
        return sorted(listed, key=lambda u: user_key(u["name"]))

    def established(self) -> bool:
        """Whether two-person administration is in force: recorded once two enrolled users
        held lifting roles, and never undone (a later removal does not bring back the
        bootstrap, when one person with file access administered alone). The history has no
        seal: an event deleted from it (by someone with the file, not the key) must not bring
        the bootstrap back, so without it the chain decides, which loses no record unseen: a
        chain that does not verify cannot vouch for a bootstrap (two people, fail closed)."""
        store = self._storage.require()
        if any(e.action == "established" for e in store.user_history()):
            return True
        if not store.verify_audit().ok:
            return True
        return any(r.entry.action == ESTABLISHED for r in store.audit_records())

    def lifting_enrolled(self) -> list[str]:
        """The enrolled users who hold a lifting role now."""
        users = self._storage.require().users().values()
        return [r.name for r in users if r.enrolled and Role.parse(r.role) >= LIFTING]

    def dependence(self, one: str, other: str) -> str:
        """Why ``one`` and ``other`` are not two independent people, or "" if they are: the
        same person by normalized name, or credentials that one person could hold both of
        (their ``holder``s are the same). Under the enrollment rules no lifting credential
        made after the bootstrap has one holder other than its owner; this is what still holds
        for a credential carried over from schema 1 (its issuer became its sponsor), and what
        would catch a rule that let one slip through."""
        if user_key(one) == user_key(other):
            return "the second approver must be a different person from the requester"
        sponsors = self._sponsors()
        held_one, held_other = _holder(user_key(one), sponsors), _holder(user_key(other), sponsors)
        if held_one == held_other:
            return (
                f"{one}'s and {other}'s credentials could both be held by {held_one}, who saw "
                "the codes they were enrolled with: the second approver must hold credentials "
                "of their own"
            )
        return ""

    def _sponsors(self) -> dict[str, tuple[str, ...]]:
        """Who saw the code each user's current credential came from, by user key: the
        stored users', and for users since removed their last enrollment in the history."""
        found: dict[str, tuple[str, ...]] = {}
        for event in self._storage.require().user_history():
            if event.action == "enrolled":
                found[user_key(event.user)] = tuple(event.details.get("sponsors", ()))
        for record in self._storage.require().users().values():
            found[user_key(record.name)] = record.sponsors
        return found


def _holder(
    key: str, sponsors: dict[str, tuple[str, ...]], seen: frozenset[str] = frozenset()
) -> str:
    """Who could hold the credential of the user ``key``: the one person all the sponsors of
    the code it came from lead back to, or its owner when there is no such person (a
    bootstrap code, or a split code seen by two people who are not one)."""
    if key in seen:  # a loop of sponsors: stop at the owner
        return key
    holders = {_holder(user_key(s), sponsors, seen | {key}) for s in sponsors.get(key, ())}
    return holders.pop() if len(holders) == 1 else key


def _cache_key(name: str, token: str) -> tuple[str, str]:
    return user_key(name), hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
