"""The JSON HTTP API, the dashboard and /metrics: a thin layer over the Guard.

Every endpoint that reads or loosens takes ``Authorization: Bearer <user>.<token>``; the halts
take it too, but never require it (stopping is never refused: see ``api.access``), and
``/healthz`` and the dashboard page itself (static, no data) need none. Each call goes through
the same Guard methods as the CLI, so roles, two-person rules and the audit log are the same
whichever way people come in.

The halts run on the event loop, the guard's write included, and so does every refusal that
needs no store read and no hash (``api.access``): a flood of bad tokens then wakes no worker
thread, and a halt never waits for the interpreter lock behind one, which it did after each
of its commit's blocking calls and on its way to and from a worker (measured under 16 flooding
threads: 10 ms of waiting around a 6 ms write). A halt is rare and short; while it is written
nothing else runs, which is what it should get.
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

from tradeguard import inputs
from tradeguard.api.access import Access, TooManyFailures, Unauthenticated
from tradeguard.api.hub import EventHub
from tradeguard.api.metrics import Metrics
from tradeguard.clock import Clock, SystemClock
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
    Unauthenticated: 401,
    TooManyFailures: 429,
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


class StrategyHaltRequest(Reason):
    """A halt's body, all of it optional. It is documented by this model but read leniently
    (``halt_body``): whatever a halt's body holds, the halt goes through."""

    # who halts, when no valid credential says: recorded as claimed, not authenticated
    initiator: str | None = Field(default=None, max_length=64)
    force: bool = False  # a strategy halt: halt a strategy no guard has seen yet


async def halt_body(request: Request) -> StrategyHaltRequest:
    """A halt's body, never a refusal: not JSON, not an object, fields of the wrong type or
    size are ignored or cut to size, so a stop is never answered 422."""
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:  # not JSON, or not UTF-8
        data = {}
    if not isinstance(data, dict):
        data = {}
    reason, claimed = data.get("reason"), data.get("initiator")
    return StrategyHaltRequest.model_construct(
        reason=inputs.text(reason) if isinstance(reason, str) and reason else None,
        initiator=inputs.text(claimed, 64) if isinstance(claimed, str) and claimed else None,
        force=data.get("force") is True,
    )


HaltBody = Annotated[StrategyHaltRequest, Depends(halt_body)]
_HALT_DOC: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": StrategyHaltRequest.model_json_schema()}},
    }
}

_PROBLEM = {"description": "the error's type and detail", "content": {"application/json": {}}}
_SIGNED_IN: dict[int | str, dict[str, Any]] = {
    401: {**_PROBLEM, "description": "no valid bearer credential (WWW-Authenticate says why)"},
    429: {**_PROBLEM, "description": "too many failed credentials from this address"},
}
_ROLE: dict[int | str, dict[str, Any]] = {
    **_SIGNED_IN,
    403: {**_PROBLEM, "description": "authenticated, without the role this needs"},
}


def _change(change: StateChange | None) -> dict[str, Any]:
    return {"changed": change is not None, "change": None if change is None else change.to_dict()}


def _source(request: Request) -> str:
    """The client's address: behind a proxy, the proxy's."""
    return request.client.host if request.client is not None else "unknown"


def create_app(  # noqa: PLR0915  # one statement per route
    guard: Guard,
    hosts: Sequence[str] = ("127.0.0.1", "localhost"),
    *,
    clock: Clock | None = None,
) -> FastAPI:
    """``hosts``: the Host headers accepted (a DNS-rebinding page cannot reach the API);
    ``clock``: the failed-login limit's (tests pass a fake one)."""
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
    access = Access(guard, clock if clock is not None else SystemClock())
    Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]  # noqa: N806

    async def operator(request: Request, credentials: Credentials) -> str | Operator:
        """``Bearer <user>.<token>``: the user acting, authenticated (refusals audited)."""
        return await access.caller(_source(request), credentials)

    User = Annotated[str | Operator, Depends(operator)]  # noqa: N806  # a type, for the signatures

    async def initiator(
        request: Request, credentials: Credentials, body: StrategyHaltRequest
    ) -> str | Operator:
        """Who halts: the operator if the credential holds, else who it or the body claims."""
        return await access.initiator(_source(request), credentials, body.initiator)

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
        headers = (
            {"WWW-Authenticate": exc.challenge}
            if isinstance(exc, Unauthenticated)
            else {"Retry-After": "1"}
            if isinstance(exc, TooManyFailures)
            else None
        )
        return JSONResponse(
            {"error": type(exc).__name__, "detail": str(exc)}, status_code=code, headers=headers
        )

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Liveness for load balancers and probes; no authentication, no detail."""
        return guard.health()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> str:
        return resources.files("tradeguard.api").joinpath("dashboard.html").read_text("utf-8")

    @app.get("/metrics", response_class=Response, responses=_SIGNED_IN)
    def prometheus(user: User) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/api/status", responses=_SIGNED_IN)
    def status(user: User) -> dict[str, Any]:
        """The same JSON as `tradeguard status --json`."""
        return guard.status()

    @app.post("/api/strategies/{strategy_id}/halt", openapi_extra=_HALT_DOC)
    async def halt_strategy(
        request: Request,
        strategy_id: str,
        credentials: Credentials,
        body: HaltBody,
    ) -> dict[str, Any]:
        """Any credential or none: stopping is never refused (the audit says who, and
        whether authenticated). An unknown strategy is 404 unless ``force``."""
        user = await initiator(request, credentials, body)
        if not body.force and not guard.has_strategy(strategy_id):
            why = f"unknown strategy {strategy_id!r}"
            guard.refuse(user, "halt", why, source=_source(request))
            raise UnknownRequest(f"{why}; send force=true to halt it before it first reports")
        return _change(guard.halt_strategy(strategy_id, user, body.reason or "halted via API"))

    @app.post("/api/strategies/{strategy_id}/resume", responses=_ROLE)
    def resume_strategy(
        request: Request, strategy_id: str, body: Reason, user: User
    ) -> dict[str, Any]:
        if not guard.has_strategy(strategy_id):
            guard.refuse(
                user, "resume", f"unknown strategy {strategy_id!r}", source=_source(request)
            )
            raise UnknownRequest(f"unknown strategy {strategy_id!r}")
        return _change(guard.resume_strategy(strategy_id, user, body.reason or "resumed via API"))

    @app.post("/api/portfolio/halt", openapi_extra=_HALT_DOC)
    async def portfolio_halt(
        request: Request,
        credentials: Credentials,
        body: HaltBody,
    ) -> dict[str, Any]:
        """Soft halt. Any credential or none, as for every halt."""
        user = await initiator(request, credentials, body)
        return _change(guard.portfolio_halt(user, body.reason or "soft halt via API"))

    @app.post("/api/portfolio/close", openapi_extra=_HALT_DOC)
    async def portfolio_close(
        request: Request,
        credentials: Credentials,
        body: HaltBody,
    ) -> dict[str, Any]:
        """Hard halt: cancel and close everything. Any credential or none."""
        user = await initiator(request, credentials, body)
        return _change(guard.portfolio_close(user, body.reason or "hard halt via API"))

    @app.post("/api/emergency", openapi_extra=_HALT_DOC)
    async def emergency(
        request: Request,
        credentials: Credentials,
        body: HaltBody,
    ) -> dict[str, Any]:
        """Lockdown; only a two-person reset lifts it. Any credential or none."""
        user = await initiator(request, credentials, body)
        return _change(guard.emergency(user, body.reason or "emergency via API"))

    @app.post("/api/reset", responses=_ROLE)
    def reset(body: Reason, user: User) -> dict[str, Any]:
        return guard.reset(user, body.reason or "reset via API").to_dict()

    @app.post("/api/approvals/{request_id}/approve", responses=_ROLE)
    def approve(request_id: str, user: User) -> dict[str, Any]:
        done = guard.approve(request_id, user)
        if isinstance(done, Approval):  # a genome unblock: no state moved
            return {"changed": True, "change": None, "request": done.to_dict()}
        return _change(done)

    @app.get("/api/audit", responses=_SIGNED_IN)
    def audit(
        user: User,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> list[dict[str, Any]]:
        """The most recent records, oldest first."""
        return [r.to_dict() for r in guard.audit_records(limit=limit)]

    @app.get("/api/incidents", responses=_SIGNED_IN)
    def incidents(user: User) -> list[dict[str, Any]]:
        return guard.incidents(snapshots=False)

    @app.get("/api/incidents/{incident_id}", responses=_SIGNED_IN)
    def incident(incident_id: str, user: User) -> dict[str, Any]:
        found = guard.incident(incident_id)
        if found is None:
            raise UnknownRequest(f"no incident {incident_id!r}")
        return found

    @app.get("/api/genomes", responses=_SIGNED_IN)
    def genomes(user: User) -> list[dict[str, Any]]:
        return guard.genomes()

    @app.get("/api/audit/verify", responses=_SIGNED_IN)
    def verify(user: User) -> dict[str, Any]:
        result = guard.verify_audit()
        return {
            "ok": result.ok,
            "checked": result.checked,
            "first_bad_seq": result.first_bad_seq,
            "problem": result.problem,
        }

    @app.get("/api/events", responses=_SIGNED_IN)
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
