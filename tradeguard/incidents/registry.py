"""The genome registry: which genome each strategy registered with, and which are blacklisted.

Every change is one store transaction with its audit; the blocked set the order gate reads is
adopted from the store after each change here and on every change another process makes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tradeguard.audit import AuditEntry
from tradeguard.engine.book import KILLCHAIN, SYSTEM
from tradeguard.engine.core import Core
from tradeguard.errors import BadRequest, GenomeBlacklisted
from tradeguard.incidents.genomes import GenomeRecord, fingerprint
from tradeguard.model import Actor, Scope
from tradeguard.store import Approval


class GenomeRegistry:
    def __init__(self, core: Core, *, adopt: Callable[[], None]) -> None:
        self._book = core.book
        self._storage = core.storage
        self._transitions = core.transitions
        self._clock = core.clock
        self._adopt = adopt  # re-read the blocked set from the store

    def register(self, sid: str, genome: object) -> None:
        """Record ``sid`` under its genome; a blacklisted one raises ``GenomeBlacklisted``."""
        fp = self.fingerprint(genome)
        if sid in self._book.blocked:
            why = f"{sid} belongs to a blacklisted genome: register the new one under a new id"
            self._transitions.refuse(SYSTEM, "register", Scope.strategy(sid), why)
            raise GenomeBlacklisted(why, fingerprint=fp)
        now = self._clock.time()

        def add(row: dict[str, Any] | None) -> dict[str, Any] | None:
            if row is None:
                return GenomeRecord(fp, genome, (sid,)).to_row()
            if row["blacklisted"] or sid in row["strategies"]:
                return None  # refused below, or nothing to add
            return {**row, "strategies": [*row["strategies"], sid]}

        def registered(row: dict[str, Any]) -> list[AuditEntry]:
            why = f"{sid} registered with genome {fp[:12]}"
            return [
                AuditEntry(now, str(SYSTEM), "genome:registered", f"strategy:{sid}", None, fp, why)
            ]

        row = self._storage.require().update_genome(fp, add, registered)
        assert row is not None
        record = GenomeRecord.from_dict(row)
        if record.blacklisted:
            why = f"genome {fp[:12]} is blacklisted ({record.reason}); {sid} may not register"
            self._transitions.refuse(SYSTEM, "register", Scope.strategy(sid), why)
            raise GenomeBlacklisted(why, fingerprint=fp)

    @staticmethod
    def fingerprint(genome: object) -> str:
        try:
            return fingerprint(genome)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    def record(self, fp: str) -> GenomeRecord | None:
        data = self._storage.require().genomes().get(fp)
        return None if data is None else GenomeRecord.from_dict(data)

    def of(self, sid: str) -> GenomeRecord | None:
        """The genome a strategy registered with, from the store (whichever process it was)."""
        for data in self._storage.require().genomes().values():
            if sid in data["strategies"]:
                return GenomeRecord.from_dict(data)
        return None

    def is_blacklisted(self, genome: object) -> bool:
        record = self.record(self.fingerprint(genome))
        return record is not None and record.blacklisted

    def listed(self) -> list[dict[str, Any]]:
        return [
            GenomeRecord.from_dict(d).to_dict() for d in self._storage.require().genomes().values()
        ]

    def blacklist(self, fp: str, incident: str, why: str) -> GenomeRecord | None:
        now = self._clock.time()

        def mark(row: dict[str, Any] | None) -> dict[str, Any] | None:
            if row is None or row["blacklisted"]:
                return None
            return {
                **row,
                "blacklisted": True,
                "incident": incident,
                "reason": why,
                "at_epoch": now,
            }

        def audit(row: dict[str, Any]) -> list[AuditEntry]:
            details = {"incident": incident, "strategies": row["strategies"]}
            scope = f"genome:{fp}"
            return [
                AuditEntry(
                    now, str(KILLCHAIN), "genome:blacklisted", scope, None, None, why, details
                )
            ]

        row = self._storage.require().update_genome(fp, mark, audit)
        self._adopt()
        return None if row is None else GenomeRecord.from_dict(row)

    def unblock(self, actor: Actor, request: Approval) -> None:
        """The second person approved: lift this blacklisting (not a newer one)."""
        fp, incident = unblock_target(request)
        now = self._clock.time()

        def lift(row: dict[str, Any] | None) -> dict[str, Any] | None:
            if row is None or not row["blacklisted"] or row.get("incident") != incident:
                return None
            return {**row, "blacklisted": False}

        def audit(row: dict[str, Any]) -> list[AuditEntry]:
            details = {
                "request": request.id,
                "requested_by": request.requested_by,
                "approved_by": str(actor),
            }
            return [
                AuditEntry(
                    now,
                    str(actor),
                    "genome:unblocked",
                    f"genome:{fp}",
                    None,
                    None,
                    request.reason,
                    details,
                )
            ]

        store = self._storage.require()
        store.update_genome(fp, lift, audit)
        store.commit(approvals=[request])
        self._adopt()  # the strategies it disabled stay disabled: their state says so


def unblock_target(request: Approval) -> tuple[str, str]:
    """The fingerprint and the blacklisting incident an unblock request was opened for."""
    _kind, fp, incident = request.scope.split(":", 2)
    return fp, incident
