"""Who is calling the HTTP API: the bearer credential, checked, and failed ones bounded.

Reading and loosening need a valid credential: none or a malformed one is 401 with the Bearer
challenge (``error="invalid_token"`` for a token that is wrong, unknown or malformed, RFC 6750);
a known user without the role is 403, decided by the command. A halt never needs one: stopping
is never refused, so a halt endpoint takes whatever it is given, and the audit says whether it
was authenticated.

Failed credentials are bounded per client address (``auth.failed_logins_per_second``, counted in
this process, from an attempt's admission): beyond the limit, a credential not verified before
is answered 429 before its hash is computed, because scrypt costs 45-100 ms and a flood of bad
tokens must not eat the CPU the guard needs. Those answers are given on the event loop, without
a worker thread or a store read. A credential verified before is never slowed, and a halt is
never 429'd: it skips the check and is carried out as not authenticated. These are HTTP's
concerns (status codes, challenges, addresses), which is why they live here and not in
``control``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from fastapi.security import HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

from tradeguard.clock import Clock
from tradeguard.errors import PermissionDenied, TradeguardError
from tradeguard.guard import Guard
from tradeguard.model import Operator

log = logging.getLogger("tradeguard.api")

CHALLENGE = 'Bearer realm="tradeguard"'
ANONYMOUS = "(anonymous)"


class Unauthenticated(TradeguardError):
    """No valid credential came with the request (HTTP 401); nothing was done. ``claimed``:
    the user the credential named, if it named one."""

    def __init__(self, message: str, *, invalid: bool, claimed: str | None = None) -> None:
        super().__init__(message)
        self.challenge = CHALLENGE + (', error="invalid_token"' if invalid else "")
        self.claimed = claimed


class TooManyFailures(TradeguardError):
    """Too many failed credentials from this address this second (HTTP 429): this one was
    not checked and nothing was done; try again in a second."""

    def __init__(self, claimed: str | None) -> None:
        super().__init__("too many failed credentials from this address: retry in a second")
        self.claimed = claimed


class FailedLogins:
    """Attempts with a credential not verified before, per source, in the current second of
    the clock; only the current second is kept, so an address that stops costs no memory.

    An attempt is counted when it is admitted, before its hash is computed, and given back if
    the credential holds: counted only once it had failed, the requests of a flood that
    arrive while the first hashes are still running would all pass the check, and each would
    compute one (three times the limit, measured under 16 threads)."""

    def __init__(self, clock: Clock, limit: Callable[[], int]) -> None:
        self._clock = clock
        self._limit = limit
        self._lock = threading.Lock()
        self._second = -1
        self._counts: dict[str, int] = {}

    def admit(self, source: str) -> int | None:
        """Take one of ``source``'s attempts this second: the second it was counted in
        (for ``refund``), or None when none is left."""
        with self._lock:
            counts = self._current()
            if counts.get(source, 0) >= self._limit():
                return None
            counts[source] = counts.get(source, 0) + 1
            return self._second

    def refund(self, source: str, second: int) -> None:
        """Give back an attempt whose credential held: only failures count. An attempt of a
        second now past is not given to this one."""
        with self._lock:
            counts = self._current()
            if second == self._second and counts.get(source, 0) > 0:
                counts[source] -= 1

    def _current(self) -> dict[str, int]:
        second = int(self._clock.time())
        if second != self._second:
            self._second, self._counts = second, {}
        return self._counts


def _finished(check: asyncio.Future[str | Operator]) -> None:
    """Retrieve the outcome of a halt's credential check the halt stopped waiting for (its
    refusal is audited by the check itself)."""
    if not check.cancelled():
        check.exception()


class Access:
    """The credential checks of one app; ``caller`` for reads and lifts, ``initiator`` for
    halts."""

    def __init__(self, guard: Guard, clock: Clock) -> None:
        self._guard = guard
        self.failures = FailedLogins(clock, lambda: guard.config.auth.failed_logins_per_second)

    async def caller(
        self, source: str, credentials: HTTPAuthorizationCredentials | None
    ) -> str | Operator:
        """The authenticated operator (a bare name when auth is off); raises
        ``Unauthenticated`` or ``TooManyFailures``, each refusal audited."""
        if credentials is None:
            self._guard.refuse(
                ANONYMOUS, "authenticate", "no Authorization: Bearer header", source=source
            )
            raise Unauthenticated("send Authorization: Bearer <user>.<token>", invalid=False)
        try:
            return await self._checked(source, credentials.credentials, halting=False)
        except TooManyFailures:
            why = "too many failed credentials from this address"
            self._guard.refuse("(rate-limited)", "authenticate", why, source=source)
            raise

    async def initiator(
        self, source: str, credentials: HTTPAuthorizationCredentials | None, claimed: str | None
    ) -> str | Operator:
        """Who halts: the authenticated operator if the credential holds, else the name it
        (or the body) claims, not authenticated. Never raises: stopping is never refused, nor
        held back: a credential whose hash is not done in ``auth.halt_credential_wait_seconds``
        (queued behind a flood's: one hash at a time) is taken as claimed."""
        if credentials is not None:
            check = asyncio.ensure_future(
                self._checked(source, credentials.credentials, halting=True)
            )
            check.add_done_callback(_finished)
            wait = self._guard.config.auth.halt_credential_wait_seconds
            try:  # shielded: a check overtaken by the halt still ends (audited, refunded)
                return await asyncio.wait_for(asyncio.shield(check), wait)
            except (Unauthenticated, TooManyFailures) as exc:
                claimed = exc.claimed or claimed
            except TimeoutError:  # its hash is queued behind a flood's: the halt goes first
                named = credentials.credentials.rpartition(".")[0]
                log.warning("a halt's credential not checked within %ss: as claimed", wait)
                claimed = named or claimed
            except Exception:  # whatever the credential does to its check, the halt goes on
                log.exception("checking a halt's credential failed; carried out as claimed")
        return claimed or ANONYMOUS

    async def _checked(self, source: str, credential: str, *, halting: bool) -> str | Operator:
        """Runs on the event loop. What needs neither the store nor a hash is decided there,
        which is every answer a flood of bad tokens gets: no worker thread is woken for it,
        so none holds the interpreter lock a halt needs. A verified credential's store read
        goes to a worker thread, but a halt's stays on the loop, where its write runs too;
        the hash always goes to a worker (45-100 ms)."""
        user, sep, token = credential.rpartition(".")
        well_formed = bool(sep and user)
        if well_formed and self._guard.recognized(user, token):  # verified before: no hash
            read = self._guard.verified
            known = read(user, token) if halting else await run_in_threadpool(read, user, token)
            if known is not None:
                return known
        elif well_formed and not self._guard.auth_enabled:
            return user  # nothing to hash, so nothing to bound
        second = self.failures.admit(source)
        if second is None:
            raise TooManyFailures(user or None)
        if not well_formed:
            why = "a bearer token is <user>.<token>"
            self._guard.refuse("(malformed)", "authenticate", why, source=source)
            raise Unauthenticated("the bearer token is <user>.<token>", invalid=True)
        try:
            found = await run_in_threadpool(self._guard.authenticate, user, token, source=source)
        except PermissionDenied as exc:
            raise Unauthenticated(str(exc), invalid=True, claimed=user) from None
        self.failures.refund(source, second)
        return found or user
