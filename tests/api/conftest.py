"""A real HTTP server on 127.0.0.1 in front of a real guard, for the API and browser tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from tests.conftest import MakeGuard
from tradeguard import Guard
from tradeguard.api import create_app
from tradeguard.control import users
from tradeguard.testing import FakeClock, enroll_team


@dataclass
class Server:
    url: str
    guard: Guard
    tokens: dict[str, str]

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {user}.{self.tokens[user]}"}


@pytest.fixture
def guard_sections() -> dict[str, Any]:
    """Config sections for the server's guard: the defaults, unless a test overrides this."""
    return {}


@pytest.fixture
def server(
    make_guard: MakeGuard, clock: FakeClock, guard_sections: dict[str, Any]
) -> Iterator[Server]:
    """The guard's fake clock is the API's too: the failed-login limit's second moves only
    when the test says."""
    guard = make_guard(**guard_sections)
    guard.record_trade("mom", 1.0)
    tokens = enroll_team(guard, ("viewer1", "trader1", "senior1", "risk1", "risk2", "admin1"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else 40 ms per request
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # listening before the server starts: requests queue, no wait needed
    port = sock.getsockname()[1]
    app = uvicorn.Server(
        uvicorn.Config(
            create_app(guard, clock=clock),
            log_level="warning",
            lifespan="off",
            proxy_headers=False,  # as `tradeguard serve`: X-Forwarded-For is not the peer
        )
    )
    thread = threading.Thread(target=app.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{port}", guard, tokens)
    finally:
        app.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens whose hash was computed (scrypt: what a flood must not buy), in order."""
    seen: list[str] = []
    real = users.token_matches

    def counting(token: str, salt: str, digest: str) -> bool:
        seen.append(token)
        return real(token, salt, digest)

    monkeypatch.setattr(users, "token_matches", counting)
    return seen
