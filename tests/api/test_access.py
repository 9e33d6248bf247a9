"""Who may call the API: halts from anyone, reads and lifts with a credential, failures bounded."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import anyio
import httpx
import pytest
from anyio import to_thread

from tests.api.conftest import Server
from tests.conftest import MakeConfig
from tradeguard.api.access import FailedLogins
from tradeguard.audit import AuditEntry
from tradeguard.control import users
from tradeguard.errors import ConfigError
from tradeguard.testing import FakeClock

HALTS = [
    ("/api/strategies/mom/halt", "halted"),
    ("/api/portfolio/halt", "soft_halt"),
    ("/api/portfolio/close", "hard_halt"),
    ("/api/emergency", "emergency"),
]
BAD = ["Bearer nobody.x", "Bearer trader1.wrong", "Bearer nodot"]


def call(
    server: Server, method: str, path: str, header: str | None = None, body: Any = None
) -> httpx.Response:
    headers = {} if header is None else {"Authorization": header}
    return httpx.request(method, server.url + path, headers=headers, json=body, timeout=30)


def last_change(server: Server) -> AuditEntry:
    """The last state change a person made (an emergency's incident makes its own after)."""
    return [
        r.entry
        for r in server.guard.audit_records()
        if r.entry.action == "state_change" and "initiator" in r.entry.details
    ][-1]


def refusals(server: Server) -> list[AuditEntry]:
    return [r.entry for r in server.guard.audit_records() if r.entry.action.startswith("refused:")]


def fail_logins(server: Server, times: int) -> None:
    for _ in range(times):
        assert call(server, "GET", "/api/status", "Bearer trader1.wrong").status_code == 401


class TestHaltsNeverRefused:
    @pytest.mark.parametrize(("path", "after"), HALTS)
    def test_halt_when_no_credential_then_carried_out_as_anonymous(
        self, server: Server, path: str, after: str
    ) -> None:
        """Stopping is never refused: without any credential the halt is carried out, and
        the audit says it was not authenticated."""
        response = call(server, "POST", path, body={"reason": "smoke"})
        assert response.status_code == 200 and response.json()["change"]["after"] == after
        initiator = last_change(server).details["initiator"]
        assert initiator["authenticated"] is False and initiator["claimed"] == "(anonymous)"

    def test_halt_when_body_names_initiator_then_recorded_as_claimed(self, server: Server) -> None:
        """The body's ``initiator`` is recorded as claimed, not authenticated."""
        response = call(server, "POST", "/api/emergency", body={"initiator": "night-desk"})
        assert response.status_code == 200
        change = last_change(server)
        assert change.actor == "night-desk"
        assert change.details["initiator"] == {
            "authenticated": False,
            "known": False,
            "claimed": "night-desk",
        }

    @pytest.mark.parametrize("header", BAD)
    def test_halt_when_credential_fails_then_carried_out_not_authenticated(
        self, server: Server, header: str
    ) -> None:
        """A malformed, unknown or wrong credential still halts; the record says not
        authenticated, and the failed credential is on record too."""
        response = call(server, "POST", "/api/portfolio/close", header, {})
        assert response.status_code == 200 and server.guard.portfolio_state == "hard_halt"
        assert last_change(server).details["initiator"]["authenticated"] is False
        assert refusals(server)[-1].action == "refused:authenticate"

    def test_halt_when_credential_valid_then_authenticated(self, server: Server) -> None:
        """A valid credential is recorded as authenticated, and wins over a claimed name."""
        response = httpx.post(
            server.url + "/api/strategies/mom/halt",
            headers=server.auth("viewer1"),
            json={"initiator": "someone-else"},
            timeout=30,
        )
        assert response.status_code == 200
        change = last_change(server)
        assert change.actor == "viewer1" and change.details["initiator"] == {"authenticated": True}

    def test_strategy_halt_when_unknown_and_not_forced_then_404(self, server: Server) -> None:
        """An unknown strategy is still 404 unless forced, with or without a credential."""
        assert call(server, "POST", "/api/strategies/nosuch/halt", body={}).status_code == 404
        forced = call(server, "POST", "/api/strategies/nosuch/halt", body={"force": True})
        assert forced.status_code == 200 and server.guard.strategy_state("nosuch") == "halted"


@pytest.fixture
def workers() -> int:
    """The worker threads a server runs its sync endpoints on (anyio's default limit)."""

    async def limit() -> int:
        return int(to_thread.current_default_thread_limiter().total_tokens)

    return anyio.run(limit)


class TestHaltsUnderAFlood:
    @pytest.fixture
    def guard_sections(self, workers: int) -> dict[str, Any]:
        """A limit that admits one bad token per worker thread, so a flood can hold them all."""
        return {"auth": {"failed_logins_per_second": workers}}

    def test_halt_when_every_worker_held_by_bad_tokens_then_carried_out_and_audited(
        self, server: Server, workers: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A halt needs no worker thread: while a flood of bad tokens from the same address
        holds every one of them in its hash, an authenticated halt is carried out and
        recorded as authenticated, and the flood leaves one refusal on record."""
        assert httpx.get(server.url + "/api/status", headers=server.auth("trader1")).is_success
        release, hashing, real = threading.Event(), threading.Semaphore(0), users.token_matches

        def held(token: str, salt: str, digest: str) -> bool:
            hashing.release()
            release.wait(60)
            return real(token, salt, digest)

        monkeypatch.setattr(users, "token_matches", held)
        with ThreadPoolExecutor(workers) as pool:
            flood = [
                pool.submit(call, server, "GET", "/api/status", "Bearer trader1.wrong")
                for _ in range(workers)
            ]
            try:
                for _ in range(workers):
                    assert hashing.acquire(timeout=60)
                halted = httpx.post(
                    server.url + "/api/strategies/mom/halt",
                    headers=server.auth("trader1"),
                    json={"reason": "under a flood"},
                    timeout=30,
                )
            finally:
                release.set()
            codes = {f.result().status_code for f in flood}
        assert halted.status_code == 200 and server.guard.strategy_state("mom") == "halted"
        change = last_change(server)
        assert change.actor == "trader1" and change.details["initiator"] == {"authenticated": True}
        assert codes == {401}
        assert [r.actor for r in refusals(server)] == ["trader1"]


class TestStatusCodes:
    def test_status_when_no_credential_then_401_with_bearer_challenge(self, server: Server) -> None:
        """No credential: 401 and the bare challenge (RFC 6750: no error code)."""
        response = call(server, "GET", "/api/status")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="tradeguard"'

    @pytest.mark.parametrize("header", BAD)
    def test_status_when_credential_invalid_then_401_invalid_token(
        self, server: Server, header: str
    ) -> None:
        """A wrong, unknown or malformed token: 401 with ``error="invalid_token"``."""
        response = call(server, "GET", "/api/status", header)
        assert response.status_code == 401
        assert (
            response.headers["WWW-Authenticate"]
            == 'Bearer realm="tradeguard", error="invalid_token"'
        )

    def test_reset_when_authenticated_without_role_then_403(self, server: Server) -> None:
        """A known, authenticated user without the role: 403, no challenge."""
        server.guard.portfolio_close("risk1", "closed")
        response = httpx.post(
            server.url + "/api/reset", headers=server.auth("trader1"), json={}, timeout=30
        )
        assert response.status_code == 403 and "WWW-Authenticate" not in response.headers

    def test_openapi_when_read_then_documents_401_403_and_429(self, server: Server) -> None:
        """The schema says which endpoints answer 401, 403 and 429, and that halts do not."""
        paths = httpx.get(server.url + "/openapi.json", timeout=30).json()["paths"]
        assert {"401", "403", "429"} <= set(paths["/api/reset"]["post"]["responses"])
        assert {"401", "429"} <= set(paths["/api/status"]["get"]["responses"])
        assert not {"401", "403", "429"} & set(paths["/api/emergency"]["post"]["responses"])

    def test_refusals_when_repeated_then_one_record_with_source(self, server: Server) -> None:
        """Twenty requests without a credential leave one refusal, naming the address."""
        for _ in range(20):
            call(server, "GET", "/api/status")
        (refused,) = refusals(server)
        assert refused.actor == "(anonymous)" and refused.details == {"source": "127.0.0.1"}


class TestFailedLoginLimit:
    def test_bad_token_when_source_over_limit_then_429_without_hashing(
        self, server: Server, hashed: list[str]
    ) -> None:
        """After 5 failures in a second, a credential not yet verified gets 429 with
        Retry-After, and its hash is never computed."""
        fail_logins(server, 5)
        assert len(hashed) == 5
        response = call(server, "GET", "/api/status", f"Bearer risk2.{server.tokens['risk2']}")
        assert response.status_code == 429 and response.headers["Retry-After"] == "1"
        assert len(hashed) == 5

    def test_bad_tokens_when_sent_at_once_then_at_most_limit_hashed(
        self, server: Server, hashed: list[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Ten bad tokens at once: while the first 5 hashes still run, the other 5 are
        answered 429 without one (counted only on failing, all 10 were hashed)."""
        release, counting = threading.Event(), users.token_matches

        def held(token: str, salt: str, digest: str) -> bool:
            release.wait(60)
            return counting(token, salt, digest)

        monkeypatch.setattr(users, "token_matches", held)
        with ThreadPoolExecutor(10) as pool:
            sent = [
                pool.submit(call, server, "GET", "/api/status", "Bearer trader1.wrong")
                for _ in range(10)
            ]
            answered = as_completed(sent, timeout=60)
            early = [next(answered).result().status_code for _ in range(5)]
            release.set()
            codes = early + [f.result().status_code for f in answered]
        assert early == [429] * 5 and sorted(codes) == [401] * 5 + [429] * 5
        assert len(hashed) == 5

    def test_verified_credential_when_source_over_limit_then_served(
        self, server: Server, hashed: list[str]
    ) -> None:
        """A credential verified before is never slowed by the limit."""
        assert httpx.get(server.url + "/api/status", headers=server.auth("viewer1")).is_success
        fail_logins(server, 5)
        response = httpx.get(server.url + "/api/status", headers=server.auth("viewer1"))
        assert response.status_code == 200 and hashed.count(server.tokens["viewer1"]) == 1

    def test_halt_when_source_over_limit_then_carried_out_unauthenticated(
        self, server: Server, hashed: list[str]
    ) -> None:
        """Halts are never 429'd: over the limit the credential is not checked and the halt
        is carried out as not authenticated."""
        fail_logins(server, 5)
        response = call(server, "POST", "/api/emergency", f"Bearer risk2.{server.tokens['risk2']}")
        assert response.status_code == 200 and server.guard.portfolio_state == "emergency"
        change = last_change(server)
        assert change.actor == "risk2" and change.details["initiator"] == {"authenticated": False}
        assert server.tokens["risk2"] not in hashed

    def test_limit_when_next_second_then_credentials_checked_again(
        self, server: Server, clock: FakeClock
    ) -> None:
        """The limit counts per second: the next second, a valid credential is served."""
        fail_logins(server, 5)
        assert call(server, "GET", "/api/status", "Bearer trader1.wrong").status_code == 429
        clock.advance(1.0)
        assert httpx.get(server.url + "/api/status", headers=server.auth("risk2")).is_success


class TestFailedLogins:
    def test_admit_when_limit_reached_then_only_for_that_source(self, clock: FakeClock) -> None:
        """Attempts are counted per source: one address over its limit slows no other."""
        limit = FailedLogins(clock, lambda: 2)
        assert limit.admit("10.0.0.1") is not None and limit.admit("10.0.0.1") is not None
        assert limit.admit("10.0.0.1") is None and limit.admit("10.0.0.2") is not None

    def test_admit_when_attempts_still_running_then_counted_already(self, clock: FakeClock) -> None:
        """An attempt counts from its admission, before its hash is known to fail: requests
        arriving while the first hashes run cannot each start one."""
        limit = FailedLogins(clock, lambda: 1)
        assert limit.admit("10.0.0.1") is not None
        assert limit.admit("10.0.0.1") is None

    def test_refund_when_credential_held_then_attempt_given_back(self, clock: FakeClock) -> None:
        """Only failures count: an attempt whose credential held is given back."""
        limit = FailedLogins(clock, lambda: 1)
        second = limit.admit("10.0.0.1")
        assert second is not None
        limit.refund("10.0.0.1", second)
        assert limit.admit("10.0.0.1") is not None

    def test_refund_when_second_passed_then_not_given_to_the_next(self, clock: FakeClock) -> None:
        """An attempt admitted in a past second is not given back to the current one."""
        limit = FailedLogins(clock, lambda: 1)
        first = limit.admit("10.0.0.1")
        assert first is not None
        clock.advance(1.0)
        assert limit.admit("10.0.0.1") is not None
        limit.refund("10.0.0.1", first)
        assert limit.admit("10.0.0.1") is None

    def test_admit_when_second_passed_then_counting_starts_again(self, clock: FakeClock) -> None:
        """A new second starts a new count."""
        limit = FailedLogins(clock, lambda: 1)
        limit.admit("10.0.0.1")
        clock.advance(1.0)
        assert limit.admit("10.0.0.1") is not None

    @pytest.mark.parametrize("bad", [0, -3])
    def test_limit_when_not_positive_then_config_error(
        self, make_config: MakeConfig, bad: int
    ) -> None:
        """``auth.failed_logins_per_second`` must be at least one."""
        with pytest.raises(ConfigError, match="failed_logins_per_second"):
            make_config(auth={"failed_logins_per_second": bad})
