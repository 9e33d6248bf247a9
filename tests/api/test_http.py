"""The JSON API over real HTTP: authentication, each role, each refusal, metrics, events."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.conftest import Server


def post(
    server: Server, path: str, user: str, body: dict[str, object] | None = None
) -> httpx.Response:
    return httpx.post(server.url + path, headers=server.auth(user), json=body or {}, timeout=30)


class TestAuthentication:
    def test_healthz_when_no_token_then_ok(self, server: Server) -> None:
        """The health check is the one endpoint without authentication."""
        response = httpx.get(server.url + "/healthz", timeout=30)
        assert response.status_code == 200 and response.json() == {
            "ok": True,
            "portfolio": "normal",
        }

    @pytest.mark.parametrize(
        "header", [None, "Bearer nobody.x", "Bearer trader1.wrong", "Bearer nodot", "Basic abc"]
    )
    def test_api_when_not_authenticated_then_401_and_nothing_loosened(
        self, server: Server, header: str | None
    ) -> None:
        """Every endpoint that reads or loosens needs Bearer <user>.<token>: 401 with the
        Bearer challenge."""
        headers = {} if header is None else {"Authorization": header}
        for path in ("/api/status", "/metrics", "/api/audit"):
            response = httpx.get(server.url + path, headers=headers, timeout=30)
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"].startswith('Bearer realm="tradeguard"')
        server.guard.portfolio_close("risk1", "closed")
        assert (
            httpx.post(server.url + "/api/reset", headers=headers, json={}, timeout=30).status_code
            == 401
        )
        assert server.guard.portfolio_state == "hard_halt"

    def test_status_when_authenticated_then_same_json_as_cli(self, server: Server) -> None:
        """/api/status is guard.status(), the JSON of `tradeguard status --json`."""
        body = httpx.get(
            server.url + "/api/status", headers=server.auth("viewer1"), timeout=30
        ).json()
        assert body["portfolio"]["state"] == "normal" and "mom" in body["strategies"]


class TestControl:
    def test_halt_and_resume_when_roles_allow_then_applied(self, server: Server) -> None:
        """Any user halts; resuming needs a senior trader (403 for a trader)."""
        assert (
            post(server, "/api/strategies/mom/halt", "viewer1", {"reason": "web"}).json()["change"][
                "after"
            ]
            == "halted"
        )
        assert post(server, "/api/strategies/mom/resume", "trader1").status_code == 403
        assert (
            post(server, "/api/strategies/mom/resume", "senior1").json()["change"]["after"]
            == "active"
        )

    def test_emergency_when_reset_by_two_people_then_normal(self, server: Server) -> None:
        """The two-person rule over HTTP: same person 409, second person completes."""
        assert post(server, "/api/emergency", "trader1").json()["change"]["after"] == "emergency"
        request = post(server, "/api/reset", "risk1").json()
        assert request["status"] == "pending"
        assert post(server, f"/api/approvals/{request['id']}/approve", "risk1").status_code == 409
        assert (
            post(server, f"/api/approvals/{request['id']}/approve", "risk2").json()["change"][
                "after"
            ]
            == "normal"
        )

    @pytest.mark.parametrize(
        ("path", "user", "code"),
        [
            ("/api/strategies/nosuch/halt", "trader1", 404),
            ("/api/strategies/nosuch/resume", "senior1", 404),
            ("/api/approvals/nope/approve", "risk1", 404),
            ("/api/reset", "risk1", 409),  # nothing to reset
            ("/api/reset", "trader1", 403),
        ],
    )
    def test_request_when_refused_then_status_code_says_why(
        self, server: Server, path: str, user: str, code: int
    ) -> None:
        """404 unknown, 409 not possible now, 403 not allowed; never a 500."""
        response = post(server, path, user)
        assert response.status_code == code, response.text
        assert response.json()["detail"]

    def test_body_when_unknown_field_then_422(self, server: Server) -> None:
        """Bodies of lifts are validated: a misspelt field is refused, not ignored (a halt's
        body never refuses the halt: see test_hardening)."""
        server.guard.portfolio_halt("trader1")
        assert post(server, "/api/reset", "risk1", {"reasn": "typo"}).status_code == 422
        assert server.guard.portfolio_state == "soft_halt"


class TestObservability:
    def test_metrics_when_scraped_then_states_and_counts(self, server: Server) -> None:
        """Prometheus text: portfolio state, strategy states, transitions and halt latency."""
        post(server, "/api/portfolio/close", "trader1")
        server.guard.flush()
        text = httpx.get(server.url + "/metrics", headers=server.auth("viewer1"), timeout=30).text
        assert 'tradeguard_portfolio_state{state="hard_halt"} 1.0' in text
        assert 'tradeguard_strategy_state{state="active",strategy="mom"} 1.0' in text
        assert 'tradeguard_transitions_total{after="hard_halt",scope="portfolio"} 1.0' in text
        assert "tradeguard_transition_durable_seconds_count 1.0" in text

    def test_events_when_streamed_then_state_changes_arrive(self, server: Server) -> None:
        """Server-Sent Events carry each state change as it happens."""
        with httpx.stream(
            "GET", server.url + "/api/events", headers=server.auth("viewer1"), timeout=30
        ) as stream:
            lines = stream.iter_lines()
            assert next(lines) == ": connected"
            post(server, "/api/portfolio/halt", "trader1", {"reason": "sse"})
            event = next(line for line in lines if line.startswith("event:"))
            data = json.loads(next(lines).removeprefix("data: "))
        assert event == "event: state_change" and data["after"] == "soft_halt"

    def test_audit_when_read_then_recent_records_and_verify(self, server: Server) -> None:
        """The audit trail and its verification, over the API."""
        post(server, "/api/portfolio/halt", "trader1", {"reason": "audited"})
        records = httpx.get(
            server.url + "/api/audit?limit=5", headers=server.auth("viewer1"), timeout=30
        ).json()
        assert records[-1]["reason"] == "audited"
        verify = httpx.get(
            server.url + "/api/audit/verify", headers=server.auth("viewer1"), timeout=30
        ).json()
        assert verify["ok"] is True


class TestEdges:
    def test_host_when_not_trusted_then_refused(self, server: Server) -> None:
        """A page on another origin that rebinds DNS to 127.0.0.1 is turned away by Host."""
        response = httpx.post(
            server.url + "/api/emergency",
            headers={**server.auth("trader1"), "Host": "rebind.attacker.example"},
            json={},
            timeout=30,
        )
        assert response.status_code == 400 and server.guard.portfolio_state == "normal"

    def test_unauthenticated_when_refused_then_audited(self, server: Server) -> None:
        """Even a request with no credentials at all leaves a trace."""
        httpx.get(server.url + "/api/status", timeout=30)
        refused = [
            r for r in server.guard.audit_records() if r.entry.action == "refused:authenticate"
        ]
        assert refused and refused[-1].entry.actor == "(anonymous)"

    def test_reason_when_not_encodable_then_422_not_500(self, server: Server) -> None:
        """A lone surrogate in a body is refused cleanly (it used to crash the error handler)."""
        body = '{"reason": "bad \\ud800 reason"}'
        response = httpx.post(
            server.url + "/api/reset",
            headers={**server.auth("risk1"), "Content-Type": "application/json"},
            content=body,
            timeout=30,
        )
        assert response.status_code == 422, response.text
        assert "ud800" not in response.text

    def test_validation_error_when_returned_then_input_not_echoed(self, server: Server) -> None:
        """A refused body is described, not repeated back."""
        response = post(server, "/api/reset", "risk1", {"reason": 5, "secret-ish": "do-not-echo"})
        assert response.status_code == 422 and "do-not-echo" not in response.text


class TestIncidents:
    def test_incidents_when_one_ran_then_listed_and_shown_with_its_timeline(
        self, server: Server
    ) -> None:
        """/api/incidents lists incidents (without the bulky snapshot); /api/incidents/ID has
        the timeline, the snapshot and the diagnosis; an unknown id is 404."""
        server.guard.record_trade("mom", -50.0)
        incident = server.guard.start_incident(
            "drill from a test", "risk1", strategies=["mom"], disable=True
        )
        assert server.guard.wait_incidents(30)
        listed = httpx.get(
            server.url + "/api/incidents", headers=server.auth("viewer1"), timeout=30
        )
        assert [i["id"] for i in listed.json()] == [incident.id]
        assert "snapshot" not in listed.json()[0]
        shown = httpx.get(
            server.url + f"/api/incidents/{incident.id}", headers=server.auth("viewer1"), timeout=30
        ).json()
        assert [p["phase"] for p in shown["phases"]][-1] == "learn"
        assert shown["diagnosis"]["responsible"] == "mom" and shown["snapshot"]["audit_head"]
        missing = httpx.get(
            server.url + "/api/incidents/nope", headers=server.auth("viewer1"), timeout=30
        )
        assert missing.status_code == 404
