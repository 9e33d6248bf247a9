"""The states table must be what the audit chain says: replaying it is the check.

A hash chain proves its rows were not edited, but the states table is a separate table: an
``UPDATE states SET state='normal'`` writes no audit row and would pass a chain check alone.
Every state write is recorded by exactly one ``state_change`` record for its scope in the same
transaction, and every write moves the scope's version up by one from 0, so the last record per
scope gives the state and the number of records gives the version. :func:`check` replays a
verified chain and names the first scope where the table says anything else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from tradeguard.audit import Verification
from tradeguard.state import ScopeStatus


def replay(entries: Iterable[str]) -> dict[str, tuple[str, int]]:
    """Each scope's state and version as the chain's ``state_change`` records (JSON) leave it."""
    found: dict[str, tuple[str, int]] = {}
    for text in entries:
        entry = json.loads(text)
        if entry.get("action") == "state_change":
            scope = str(entry["scope"])
            found[scope] = (str(entry["after"]), found.get(scope, ("", 0))[1] + 1)
    return found


def check(
    chain: Verification, entries: Iterable[str], states: Mapping[str, ScopeStatus]
) -> Verification:
    """``chain`` (the verified chain), unless the states table differs from its replay."""
    if not chain.ok:
        return chain
    expected = replay(entries)
    for scope in sorted(set(expected) | set(states)):
        want, have = expected.get(scope), states.get(scope)
        table = "no row" if have is None else f"{have.state} at version {have.version}"
        logged = "no state change" if want is None else f"{want[0]} at version {want[1]}"
        if have is None or want != (have.state, have.version):
            problem = (
                f"the states table differs from the audit chain for {scope}: "
                f"the table has {table}, the chain {logged}"
            )
            return Verification(False, chain.checked, None, problem)
    return chain
