"""One exception tree, rooted in :class:`TradeguardError`.

::

    TradeguardError
    ├── ConfigError            the configuration is invalid; nothing starts until it is fixed
    ├── InvalidInput           an input was refused; its scope has been halted (fail closed)
    │   └── UnknownStrategy    a strategy the guard does not know (strict mode)
    ├── PermissionDenied       the user may not do this; the attempt is in the audit log
    ├── Unauthenticated        an HTTP request came without a valid credential (401); nothing done
    ├── TooManyFailures        too many failed credentials from that address (429); nothing done
    │                          (the two: tradeguard.api.access, HTTP's own)
    ├── UnknownRequest         no pending two-person request with that id
    ├── ApprovalRefused        the request exists but cannot be approved (expired, same person, ...)
    ├── BadRequest             an operator's request is malformed; nothing changed (audited)
    ├── GenomeBlacklisted      the genome caused an incident: it may not register or trade
    ├── InvalidTransition      the state machine does not allow this move
    │   └── ResumeRefused      the halt may not be lifted yet (cool-down, validation failed)
    ├── StoreUnavailable       the state store cannot be read or written; the guard fails closed
    ├── StateConflict          another process changed the scope first; reload and decide again
    │                          (tradeguard.store.base, beside the protocol that raises it)
    ├── SourceTimeout          a metrics source or callback did not answer in time, or too many
    │                          of its calls still hang; a source that times out halts the book
    ├── DeliveryFailed         an alert was not delivered; the outbox retries it unless permanent
    ├── DataUnavailable        a replay history cannot be loaded; nothing was replayed
    │                          (tradeguard.criticality.data, which callers catch it from)
    ├── NaiveTime              an ISO time without a zone; also a ValueError (tradeguard.clock)
    └── VenueError             a venue call failed; the emergency stop retries it with backoff
        ├── VenueTimeout       no answer in time: the request may or may not have been applied
        ├── OrderRejected      the venue refused the order; nothing was applied
        └── VenueDown          disconnected or unavailable; nothing was applied
                               (the four venue errors: tradeguard.venues.base, with the protocol)

Each class's docstring states what has already happened when it is raised, because the caller
of a kill switch needs to know whether trading is stopped, not just that something went wrong.
"""

from __future__ import annotations


class TradeguardError(Exception):
    """Root of every error tradeguard raises on purpose."""


class ConfigError(TradeguardError):
    """The configuration is invalid. ``errors`` lists every problem as ``"key.path: message"``."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("invalid configuration:\n" + "\n".join(f"  {e}" for e in errors))


class InvalidInput(TradeguardError):
    """An input was refused. The scope it concerns has already been halted (``invalid_input``)."""

    def __init__(self, message: str, *, scope: str) -> None:
        self.scope = scope
        super().__init__(message)


class UnknownStrategy(InvalidInput):
    """The strategy is not registered and the guard runs in strict mode; it is now halted."""


class PermissionDenied(TradeguardError):
    """The user is unknown or lacks the role. Nothing changed; the refusal is audited."""


class UnknownRequest(TradeguardError):
    """No two-person request has this id. Nothing changed."""


class ApprovalRefused(TradeguardError):
    """The request cannot be approved (expired, superseded, already used, same person)."""


class BadRequest(TradeguardError):
    """An operator's request is malformed (e.g. not a valid strategy id). Nothing changed;
    the attempt is in the audit log. Unlike InvalidInput, no scope was halted: a typo at the
    console must not stop the book."""


class InvalidTransition(TradeguardError):
    """The state machine does not allow this move from the current state. Nothing changed."""


class StoreUnavailable(TradeguardError):
    """The state store failed. Halts stay in force in memory; nothing was lifted."""


class ResumeRefused(InvalidTransition):
    """The halt stays: its cool-down has not run out, or the strategy is not fit to trade.
    ``problems`` names each failed check. The refusal is audited."""

    def __init__(self, message: str, *, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(message)


class GenomeBlacklisted(TradeguardError):
    """The strategy's genome was blacklisted by an incident. Nothing was registered; the
    attempt is audited. Only a two-person unblock lets it back."""

    def __init__(self, message: str, *, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        super().__init__(message)


class SourceTimeout(TradeguardError):
    """A metrics source or callback did not answer within its timeout, or earlier calls to it
    still hang and hold every thread allowed for them, so it was not called again. The call
    may still be running; the guard treats the source as failed and halts the book."""


class DeliveryFailed(TradeguardError):
    """Not delivered. ``permanent``: retrying cannot help (a 4xx); ``retry_after``: the
    receiver said when to come back (a 429). Unless permanent, the outbox retries it."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
