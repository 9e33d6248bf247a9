"""What an attacker tried against the HTTP API's promises (stopping is never refused; refusals
are bounded; the client address is the TCP peer's; a strategy live elsewhere can be halted),
each kept as a test."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import Server
from tests.conftest import MakeGuard
from tradeguard.audit import AuditEntry
from tradeguard.testing import FakeClock


def post(server: Server, path: str, **kw: Any) -> httpx.Response:
    return httpx.post(server.url + path, timeout=30, **kw)


def refusals(server: Server, action: str | None = None) -> list[AuditEntry]:
    return [
        r.entry
        for r in server.guard.audit_records()
        if r.entry.action.startswith("refused:") and (action is None or r.entry.action == action)
    ]


JSON = {"content-type": "application/json"}

BODIES: list[tuple[str, dict[str, Any]]] = [
    ("initiator-65-chars", {"json": {"initiator": "x" * 65}}),
    ("initiator-number", {"json": {"initiator": 7}}),
    ("initiator-object", {"json": {"initiator": {"name": "desk"}}}),
    ("reason-501-chars", {"json": {"reason": "r" * 501}}),
    ("extra-field", {"json": {"who": "night desk"}}),
    ("not-json", {"content": b"STOP NOW", "headers": JSON}),
    ("json-null", {"content": b"null", "headers": JSON}),
    ("json-string", {"json": "stop"}),
    ("text-plain", {"content": b"{}", "headers": {"content-type": "text/plain"}}),
    ("form", {"data": {"initiator": "desk"}}),
    ("lone-surrogate", {"content": b'{"initiator": "\\ud800"}', "headers": JSON}),
    ("invalid-utf8", {"content": b'{"initiator": "\xff"}', "headers": JSON}),
]


@pytest.mark.parametrize(("name", "kw"), BODIES, ids=[b[0] for b in BODIES])
def test_emergency_when_body_malformed_then_still_carried_out(
    server: Server, name: str, kw: dict[str, Any]
) -> None:
    """A stop's body can be anything: it never makes the emergency a 422."""
    response = post(server, "/api/emergency", **kw)
    assert server.guard.portfolio_state == "emergency", (response.status_code, response.text)
    assert response.status_code == 200


@pytest.mark.parametrize(("name", "kw"), BODIES[:6], ids=[b[0] for b in BODIES[:6]])
def test_strategy_halt_when_body_malformed_then_still_carried_out(
    server: Server, name: str, kw: dict[str, Any]
) -> None:
    """Likewise for a strategy's halt."""
    response = post(server, "/api/strategies/mom/halt", **kw)
    assert server.guard.strategy_state("mom") == "halted", (response.status_code, response.text)


def get(server: Server, path: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(server.url + path, headers=headers, timeout=30)


def test_bad_tokens_when_forwarded_for_varies_then_still_limited(
    server: Server, hashed: list[str]
) -> None:
    """X-Forwarded-For does not make a new client: the bad-token limit holds (no hash past it)."""
    codes = []
    for i in range(20):
        headers = {"Authorization": "Bearer trader1.wrong", "X-Forwarded-For": f"10.9.{i}.1"}
        codes.append(get(server, "/api/status", headers).status_code)
    assert len(hashed) <= 5, f"scrypt ran {len(hashed)} times in one second from one peer"
    assert 429 in codes


def test_refusal_source_when_forwarded_for_sent_then_peer_recorded(server: Server) -> None:
    """The audit records the TCP peer, not what a header claims."""
    get(server, "/api/status", {"X-Forwarded-For": "203.0.113.66"})
    (refused,) = refusals(server)
    assert refused.details == {"source": "127.0.0.1"}, refused.details


def test_refusals_when_forwarded_for_varies_then_one_record_and_alert(server: Server) -> None:
    """Refusals stay folded however X-Forwarded-For varies."""
    alerts: list[dict[str, Any]] = []
    server.guard.register_callback("refused", alerts.append)
    for i in range(30):
        assert get(server, "/api/status", {"X-Forwarded-For": f"10.8.{i}.1"}).status_code == 401
    server.guard.flush()
    assert len(refusals(server)) <= 2 and len(alerts) <= 1, (len(refusals(server)), len(alerts))


N = 30


def test_unknown_strategy_halts_when_initiator_varies_then_still_one_record(
    server: Server,
) -> None:
    """The names an unauthenticated caller claims are not a new kind of refusal each."""
    alerts: list[dict[str, Any]] = []
    server.guard.register_callback("refused", alerts.append)
    for i in range(N):
        assert (
            post(server, "/api/strategies/nosuch/halt", json={"initiator": f"x{i}"}).status_code
            == 404
        )
    server.guard.flush()
    written = refusals(server, "refused:halt")
    assert len(written) <= 2, f"{len(written)} audit records for {N} refusals"
    assert len(alerts) <= 1, f"{len(alerts)} alerts for {N} refusals"


def test_unknown_strategy_halts_when_strategy_and_initiator_vary_then_bounded(
    server: Server,
) -> None:
    """Varying the strategy id as well folds into the same count."""
    for i in range(N):
        post(server, f"/api/strategies/s{i}/halt", json={"initiator": f"{i}x"})
    assert len(refusals(server, "refused:halt")) <= 2


def test_failed_logins_when_claimed_names_vary_then_one_alert_per_window(
    server: Server, clock: FakeClock
) -> None:
    """A bearer name per failed login is not a new alert each: one per window."""
    alerts: list[dict[str, Any]] = []
    server.guard.register_callback("refused", alerts.append)
    n = 0
    for _second in range(12):
        for _ in range(5):
            n += 1
            r = httpx.get(
                server.url + "/api/status",
                headers={"Authorization": f"Bearer ghost{n}.x"},
                timeout=30,
            )
            assert r.status_code == 401
        clock.advance(1.0)
    server.guard.flush()
    assert len(alerts) <= 2 and len(refusals(server)) <= 3, (len(alerts), len(refusals(server)))


def test_halt_when_strategy_live_in_the_trading_process_then_carried_out(
    server: Server, make_guard: MakeGuard
) -> None:
    """An API server knows a strategy another process trades, once that process's tick saved it."""
    trading = make_guard()  # the trading process, on the same store
    trading.register_strategy("late")
    trading.record_trade("late", -5.0)
    trading.tick()  # its baselines are in the store now
    response = httpx.post(
        server.url + "/api/strategies/late/halt", headers=server.auth("trader1"), timeout=30
    )
    assert response.status_code == 200, response.text
