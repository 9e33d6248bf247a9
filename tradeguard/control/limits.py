"""Limits: trigger changes at run time, and capital allocation with the avalanche reserve.

A limit change needs risk_manager, is audited, and is not persisted across restarts (the
config file stays the source of truth). During an emergency the limits are frozen: only a
change that makes the trigger stricter is accepted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn

from pydantic import ValidationError

from tradeguard import inputs
from tradeguard.audit import AuditEntry
from tradeguard.config import Trigger, Triggers
from tradeguard.control.commands import Commands
from tradeguard.engine.core import Core
from tradeguard.engine.intake import ACTION_SEVERITY, Intake
from tradeguard.engine.orders import OrderGate
from tradeguard.errors import BadRequest, PermissionDenied
from tradeguard.model import PORTFOLIO, PortfolioState, User
from tradeguard.rules import RuleSet
from tradeguard.state import Command


class Limits:
    def __init__(
        self, core: Core, *, commands: Commands, intake: Intake, orders: OrderGate
    ) -> None:
        self._book = core.book
        self._storage = core.storage
        self._transitions = core.transitions
        self._commands = commands
        self._intake = intake
        self._orders = orders
        self._clock = core.clock

    def set_limit(
        self,
        trigger: str,
        user: User,
        *,
        limit: float | None,
        action: str | None,
        enabled: bool | None,
        reason: str,
    ) -> None:
        actor = self._commands.authorize(user, Command.CONFIGURE, PORTFOLIO)
        book = self._book
        with book.lock:
            self._transitions.refresh()  # an emergency declared elsewhere freezes
            current = getattr(book.config.triggers, trigger, None)
            if trigger not in Triggers.model_fields or not isinstance(current, Trigger):
                self._refuse(
                    user, f"unknown trigger {trigger!r}; known: {sorted(Triggers.model_fields)}"
                )
            changes = {
                k: v
                for k, v in (("limit", limit), ("action", action), ("enabled", enabled))
                if v is not None
            }
            if not changes:
                self._refuse(user, "nothing to change: give limit, action or enabled")
            try:
                new = type(current).model_validate({**current.model_dump(), **changes})
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or trigger}: {e['msg']}" for e in exc.errors()
                )
                self._refuse(user, f"triggers.{trigger}: {problems}")
            if book.portfolio_state is PortfolioState.EMERGENCY and not stricter(
                trigger, current, new
            ):
                why = (
                    "lockdown: limits are frozen during an emergency; only a stricter "
                    "limit is accepted until the two-person reset"
                )
                self._transitions.refuse(user, Command.CONFIGURE, PORTFOLIO, why)
                raise PermissionDenied(why)
            before, after = current.model_dump(mode="json"), new.model_dump(mode="json")
            self._storage.require().commit(
                audit=[
                    AuditEntry(
                        self._clock.time(),
                        str(actor),
                        "configure",
                        f"trigger:{trigger}",
                        json.dumps(before, sort_keys=True),
                        json.dumps(after, sort_keys=True),
                        reason,
                    )
                ]
            )
            triggers = book.config.triggers.model_copy(update={trigger: new})
            book.config = book.config.model_copy(update={"triggers": triggers})
            self._intake.rules = RuleSet(book.config)
            self._orders.limits_changed()
            self._intake.evaluate_everything()  # a tightened limit may already be crossed

    def allocate(self, capital: float, fitness: Mapping[str, float]) -> dict[str, float]:
        from tradeguard.criticality.reserve import allocate

        try:
            amount = inputs.positive("capital", capital)
            if not isinstance(fitness, Mapping):
                raise ValueError(f"fitness must be a mapping of strategy to score, got {fitness!r}")
            scores = {
                inputs.identifier("strategy", k): inputs.number(f"fitness of {k}", v)
                for k, v in fitness.items()
            }
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        r = self._book.config.reserve
        shares = allocate(amount, scores, reserve_share=r.share, max_share=r.max_agent_share)
        now = self._clock.time()

        def held_back(current: Any) -> dict[str, Any]:
            if isinstance(current, dict) and current.get("released"):  # spent stays spent
                return {**current, "capital": amount}
            return {"capital": amount, "amount": amount * r.share, "released": False}

        def audit(_value: Any) -> list[AuditEntry]:
            why = f"capital {amount:,.2f}: reserve {amount * r.share:,.2f}, " + ", ".join(
                f"{k} {v:,.2f}" for k, v in shares.items()
            )
            scope, details = str(PORTFOLIO), {"allocations": shares}
            return [
                AuditEntry(now, "system:allocator", "allocation", scope, None, None, why, details)
            ]

        self._storage.require().update_value("avalanche_reserve", held_back, audit)
        with self._book.lock:
            for sid, value in shares.items():
                self._book.registered.add(sid)
                self._intake.ledger.strategy(sid).allocated_capital = value if value > 0 else None
            self._intake.evaluate_everything()
        return shares

    def _refuse(self, user: object, why: str) -> NoReturn:
        self._transitions.refuse(user, Command.CONFIGURE, PORTFOLIO, why)
        raise BadRequest(why)


def stricter(name: str, old: Trigger, new: Trigger) -> bool:
    """Whether ``new`` stops trading at least as early and as hard as ``old``."""
    if old.enabled and not new.enabled:
        return False
    if ACTION_SEVERITY[new.action] < ACTION_SEVERITY[old.action]:
        return False
    return new.limit >= old.limit if name == "win_rate" else new.limit <= old.limit
