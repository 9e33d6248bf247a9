"""Builders shared by the store tests: audit entries, statuses, approvals and rungs."""

from __future__ import annotations

from tradeguard.audit import AuditEntry
from tradeguard.state import ScopeStatus
from tradeguard.store import Approval, Rung, StateStore, StateWrite

T0 = 1_767_225_600.0


def entry(ts: float = T0, reason: str = "because", scope: str = "portfolio") -> AuditEntry:
    """An audited note: not a ``state_change``, which ``verify_audit`` replays against the
    states table (see :func:`change` for one)."""
    return AuditEntry(ts, "risk1", "note", scope, "normal", "soft_halt", reason, {"k": 1})


def change(scope: str, before: str, after: str, ts: float = T0) -> AuditEntry:
    """The ``state_change`` record a state write is committed with."""
    return AuditEntry(ts, "risk1", "state_change", scope, before, after, "manual")


def status(state: str = "soft_halt", version: int = 1, reason: str = "manual") -> ScopeStatus:
    return ScopeStatus(state, reason, T0 + version, "risk1", version)


def approval(
    request_id: str = "req1", state: str = "pending", requested_at: float = T0
) -> Approval:
    return Approval(
        id=request_id,
        action="reset",
        scope="portfolio",
        requested_by="risk1",
        requested_at=requested_at,
        expires_at=requested_at + 900.0,
        target_version=3,
        status=state,
        approved_by="risk2" if state == "executed" else None,
        decided_at=requested_at + 10.0 if state == "executed" else None,
        reason="lift it",
    )


def rung(stage: int = 0, version: int = 4) -> Rung:
    return Rung("strategy:s1", version, stage, T0 + stage, 3, -12.5, "senior1")


def recovering(store: StateStore, version: int = 4) -> None:
    """The state a rung belongs to: strategy s1 recovering at ``version``."""
    stored = store.load_states().get("strategy:s1")
    expected = 0 if stored is None else stored.version
    resumed = ScopeStatus("recovering", "resumed", T0, "senior1", version)
    store.commit(states=[StateWrite("strategy:s1", resumed, expected)])
