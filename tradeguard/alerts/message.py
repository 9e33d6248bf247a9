"""What an alert says: short, and always with what happened, where, who, and what to do next.

Every breach, halt, resume, emergency, reset, refused attempt and escalation becomes one
alert. A halt a rule caused is announced by that rule's breach alert (value against limit and
the action taken), so one incident is one message, not two.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from typing import Any

from tradeguard.clock import to_iso
from tradeguard.config import AlertPriority
from tradeguard.model import Action, Breach, PortfolioState, StateChange, StrategyState

P = AlertPriority


@dataclass(frozen=True, slots=True)
class Alert:
    id: str  # unique: the idempotency key receivers see
    key: str  # what repeats fold on: the same rule on the same scope, and so on
    priority: AlertPriority
    kind: str
    scope: str
    title: str
    text: str
    created_at: float
    resolve: bool = False  # PagerDuty: this closes the scope's incident

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "priority": str(self.priority), "time": to_iso(self.created_at)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        fields = {k: v for k, v in data.items() if k != "time"}
        return cls(**{**fields, "priority": AlertPriority(fields["priority"])})


def _alert(  # noqa: PLR0917  # an alert's fields, in order
    kind: str,
    key: str,
    priority: AlertPriority,
    scope: str,
    title: str,
    lines: list[str],
    at: float,
    link: str | None,
    *,
    resolve: bool = False,
) -> Alert:
    if link:
        lines = [*lines, f"Dashboard: {link}"]
    return Alert(
        secrets.token_hex(8), key, priority, kind, scope, title, "\n".join(lines), at, resolve
    )


_NEXT = {
    PortfolioState.SOFT_HALT: "no new risk is accepted; positions are kept. Lift with "
    "`tradeguard reset` (risk_manager) once the cause is understood.",
    PortfolioState.HARD_HALT: "every order is cancelled and every position closed. Watch the "
    "stop's progress; lift with `tradeguard reset` (risk_manager) once flat and reviewed.",
    PortfolioState.EMERGENCY: "lockdown: the book is being taken flat and limits are frozen. "
    "Lifting needs two people: `tradeguard reset`, then `tradeguard approve` by another.",
    StrategyState.HALTED: "its orders are cancelled. Resume with `tradeguard resume {id}` "
    "(senior_trader) once it is understood.",
}


def from_change(change: StateChange, link: str | None) -> Alert | None:
    """A state change by a person or by the guard itself; a rule's is its breach's alert."""
    if change.breach is not None:
        return None
    scope, after = str(change.scope), change.after
    who = str(change.actor)
    if after == PortfolioState.NORMAL:
        return _alert(
            "reset",
            f"state:{scope}",
            P.INFO,
            scope,
            f"portfolio back to normal ({change.before} lifted by {who})",
            [f"Why: {change.reason}"],
            change.at,
            link,
            resolve=True,
        )
    if after == StrategyState.ACTIVE:
        return _alert(
            "resume",
            f"state:{scope}",
            P.INFO,
            scope,
            f"{scope} resumed by {who}",
            [f"Why: {change.reason}"],
            change.at,
            link,
        )
    priority = (
        P.CRITICAL if after in (PortfolioState.HARD_HALT, PortfolioState.EMERGENCY) else (P.WARNING)
    )
    next_step = _NEXT.get(after, "see `tradeguard status`.").format(id=change.scope.id)  # type: ignore[call-overload]
    kind = "emergency" if after == PortfolioState.EMERGENCY else "halt"
    return _alert(
        kind,
        f"state:{scope}:{after}",
        priority,
        scope,
        f"{f'PORTFOLIO {after.upper()}' if scope == 'portfolio' else scope}: "
        f"{change.before} -> {after} by {who}",
        [f"Why: {change.reason}", f"Next: {next_step}"],
        change.at,
        link,
    )


def from_breach(breach: Breach, link: str | None) -> Alert:
    severe = breach.action in (Action.HARD_HALT, Action.EMERGENCY)
    target = "the strategy" if breach.action is Action.HALT_STRATEGY else "the portfolio"
    return _alert(
        "breach",
        f"breach:{breach.rule}:{breach.scope}",
        P.CRITICAL if severe else P.WARNING,
        str(breach.scope),
        f"{breach.rule} breached on {breach.scope}: {breach.message}",
        [
            f"Action: {breach.action} ({target})",
            "Next: `tradeguard status` shows "
            "the state and metrics; the halt stays until a person lifts it.",
        ],
        breach.at,
        link,
    )


def from_escalation(breach: Breach, link: str | None) -> Alert:
    return _alert(
        "escalation",
        f"escalation:{breach.scope}",
        P.CRITICAL,
        str(breach.scope),
        f"ESCALATION: emergency stop not flat: {breach.message}",
        [
            "The stop keeps retrying. Check the venue and its open positions now "
            "(`tradeguard status`, the stop's report in the audit log)."
        ],
        breach.at,
        link,
    )


def from_refusal(entry: dict[str, Any], link: str | None) -> Alert:
    return _alert(
        "refused",
        f"refused:{entry['actor']}:{entry['action']}",
        P.WARNING,
        entry["scope"],
        f"refused: {entry['actor']} tried "
        f"{entry['action'].removeprefix('refused:')} on {entry['scope']}",
        [f"Why: {entry['reason']}"],
        entry["ts"],
        link,
    )


def test_alert(priority: AlertPriority, at: float, link: str | None) -> Alert:
    return _alert(
        "test",
        f"test:{secrets.token_hex(4)}",
        priority,
        "portfolio",
        f"tradeguard test alert ({priority})",
        ["This is a test of the alert channels; nothing happened."],
        at,
        link,
    )


def folded(alert: Alert, more: int, at: float, link: str | None) -> Alert:
    """The follow-up for repeats held back by the cooldown: never silently dropped."""
    return _alert(
        "folded",
        alert.key,
        alert.priority,
        alert.scope,
        f"{more} more like this: {alert.title}",
        [f"{more} repeat(s) of this alert were held back by the cooldown."],
        at,
        link,
    )
