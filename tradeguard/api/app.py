"""The JSON HTTP API, the dashboard and /metrics: a thin layer over the Guard.

Every endpoint but ``/healthz`` and the dashboard page itself (static, no data) takes
``Authorization: Bearer <user>.<token>``. Each call goes through the same Guard methods as the
CLI, so roles, two-person rules and the audit log are the same whichever way people come in.
"""

# No `from __future__ import annotations`: FastAPI must see the closure's dependency types.
import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware

from tradeguard.api.hub import EventHub
from tradeguard.api.metrics import Metrics
from tradeguard.errors import (
    ApprovalRefused,
    BadRequest,
    InvalidInput,
    InvalidTransition,
    PermissionDenied,
    StoreUnavailable,
    TradeguardError,
    UnknownRequest,
)
from tradeguard.guard import Guard
from tradeguard.model import Operator, StateChange
from tradeguard.store import Approval

_STATUS = {
    PermissionDenied: 403,
    UnknownRequest: 404,
    BadRequest: 400,
    InvalidInput: 400,
    InvalidTransition: 409,
    ApprovalRefused: 409,
    StoreUnavailable: 503,
}


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=500)


class HaltRequest(Reason):
    force: bool = False  # halt a strategy no guard has seen yet


def _change(change: StateChange | None) -> dict[str, Any]:
    return {"changed": change is not None, "change": None if change is None else change.to_dict()}


def create_app(  # noqa: PLR0915  # one statement per route
    guard: Guard, hosts: Sequence[str] = ("127.0.0.1", "localhost")
) -> FastAPI:
    """``hosts``: the Host headers accepted (a DNS-rebinding page cannot reach the API)."""
    app = FastAPI(
        title="tradeguard",
        version="0.1.0",
        description="Kill switch and circuit breakers: status, halts, two-person "
        "resets, audit, events.",
    )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))
    hub = EventHub(guard)
    metrics = Metrics(guard)
    bearer = HTTPBearer(auto_error=False)

    def operator(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str | Operator:
        """``Bearer <user>.<token>``: the user acting, authenticated (refusals audited)."""
        if credentials is None:
            guard.refuse("(anonymous)", "authenticate", "no Authorization: Bearer header")
            raise PermissionDenied("send Authorization: Bearer <user>.<token>")
        user, sep, token = credentials.credentials.rpartition(".")
        if not sep or not user:
            guard.refuse("(malformed)", "authenticate", "a bearer token is <user>.<token>")
            raise PermissionDenied("the bearer token is <user>.<token>")
        return guard.authenticate(user, token) or user  # a bare name: auth is off

    User = Annotated[str | Operator, Depends(operator)]  # noqa: N806  # a type, for the signatures

    @app.exception_handler(RequestValidationError)
    async def malformed(_request: Request, exc: RequestValidationError) -> JSONResponse:
        """Say what is wrong and where, never echo the input (it may not even be encodable)."""
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        return JSONResponse(
            {"error": "RequestValidationError", "detail": problems}, status_code=422
        )

    @app.exception_handler(TradeguardError)
    async def refused(_request: Request, exc: TradeguardError) -> JSONResponse:
        code = next((c for kind, c in _STATUS.items() if isinstance(exc, kind)), 500)
        return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=code)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Liveness for load balancers and probes; no authentication, no detail."""
        return guard.health()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> str:
        return resources.files("tradeguard.api").joinpath("dashboard.html").read_text("utf-8")

    @app.get("/metrics", response_class=Response)
    def prometheus(user: User) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/api/status")
    def status(user: User) -> dict[str, Any]:
        """The same JSON as `tradeguard status --json`."""
        return guard.status()

    @app.post("/api/strategies/{strategy_id}/halt")
    def halt_strategy(strategy_id: str, body: HaltRequest, user: User) -> dict[str, Any]:
        if not body.force and not guard.has_strategy(strategy_id):
            guard.refuse(user, "halt", f"unknown strategy {strategy_id!r}")
            raise UnknownRequest(
                f"unknown strategy {strategy_id!r}; send force=true to halt it "
                "before it first reports"
            )
        return _change(guard.halt_strategy(strategy_id, user, body.reason or "halted via API"))

    @app.post("/api/strategies/{strategy_id}/resume")
    def resume_strategy(strategy_id: str, body: Reason, user: User) -> dict[str, Any]:
        if not guard.has_strategy(strategy_id):
            guard.refuse(user, "resume", f"unknown strategy {strategy_id!r}")
            raise UnknownRequest(f"unknown strategy {strategy_id!r}")
        return _change(guard.resume_strategy(strategy_id, user, body.reason or "resumed via API"))

    @app.post("/api/portfolio/halt")
    def portfolio_halt(body: Reason, user: User) -> dict[str, Any]:
        return _change(guard.portfolio_halt(user, body.reason or "soft halt via API"))

    @app.post("/api/portfolio/close")
    def portfolio_close(body: Reason, user: User) -> dict[str, Any]:
        return _change(guard.portfolio_close(user, body.reason or "hard halt via API"))

    @app.post("/api/emergency")
    def emergency(body: Reason, user: User) -> dict[str, Any]:
        return _change(guard.emergency(user, body.reason or "emergency via API"))

    @app.post("/api/reset")
    def reset(body: Reason, user: User) -> dict[str, Any]:
        return guard.reset(user, body.reason or "reset via API").to_dict()

    @app.post("/api/approvals/{request_id}/approve")
    def approve(request_id: str, user: User) -> dict[str, Any]:
        done = guard.approve(request_id, user)
        if isinstance(done, Approval):  # a genome unblock: no state moved
            return {"changed": True, "change": None, "request": done.to_dict()}
        return _change(done)

    @app.get("/api/audit")
    def audit(
        user: User,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> list[dict[str, Any]]:
        """The most recent records, oldest first."""
        return [r.to_dict() for r in guard.audit_records(limit=limit)]

    @app.get("/api/incidents")
    def incidents(user: User) -> list[dict[str, Any]]:
        return guard.incidents(snapshots=False)

    @app.get("/api/incidents/{incident_id}")
    def incident(incident_id: str, user: User) -> dict[str, Any]:
        found = guard.incident(incident_id)
        if found is None:
            raise UnknownRequest(f"no incident {incident_id!r}")
        return found

    @app.get("/api/genomes")
    def genomes(user: User) -> list[dict[str, Any]]:
        return guard.genomes()

    @app.get("/api/audit/verify")
    def verify(user: User) -> dict[str, Any]:
        result = guard.verify_audit()
        return {
            "ok": result.ok,
            "checked": result.checked,
            "first_bad_seq": result.first_bad_seq,
            "problem": result.problem,
        }

    @app.get("/api/events")
    async def events(user: User) -> StreamingResponse:
        """Server-Sent Events: state changes, breaches and stop steps as they happen."""
        queue = hub.subscribe(asyncio.get_running_loop())

        async def stream() -> AsyncIterator[str]:
            try:
                yield ": connected\n\n"
                while True:
                    kind, payload = await queue.get()
                    yield f"event: {kind}\ndata: {json.dumps(payload)}\n\n"
            finally:
                hub.unsubscribe(queue)

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app
