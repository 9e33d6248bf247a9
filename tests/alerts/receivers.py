"""Real receivers on 127.0.0.1: an HTTP server for Slack, PagerDuty and webhooks, an SMTP
server for email. Each records what it got and can be told to fail, throttle or hang."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, Session


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.perf_counter)  # arrival, for the bench

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Scripted per path: each request takes the next behaviour, then falls back to OK."""

    requests: list[Request] = field(default_factory=list)
    script: dict[str, deque[tuple[Any, ...]]] = field(default_factory=dict)
    hold: threading.Event = field(default_factory=threading.Event)
    holding: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None
    port: int = 0

    def start(self, port: int = 0) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(Request(self.path, dict(self.headers), body))
                steps = receiver.script.get(self.path)
                step = steps.popleft() if steps else ("ok",)
                if step[0] == "hang":
                    receiver.holding.set()
                    receiver.hold.wait(timeout=30)
                    step = ("ok",)
                if step[0] == "status":
                    self.send_response(step[1])
                    if len(step) > 2:
                        self.send_header("Retry-After", str(step[2]))
                    self.end_headers()
                    self.wfile.write(b"no")
                    return
                code = 202 if self.path.startswith("/pagerduty") else 200
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok")

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        self.server, self.port = server, server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.arrivals: list[float] = []

    async def handle_DATA(self, server: object, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        content = envelope.original_content or b""
        self.messages.append(message_from_bytes(content))
        self.arrivals.append(time.perf_counter())
        return "250 OK"


class SmtpReceiver:
    """aiosmtpd on 127.0.0.1, with a login it checks."""

    def __init__(self, password: str = "s3cret") -> None:
        self.mailbox = _Mailbox()
        self.password = password

        def authenticate(
            server: object, session: object, envelope: object, mechanism: str, auth_data: Any
        ) -> AuthResult:
            ok = getattr(auth_data, "password", b"") == self.password.encode()
            return AuthResult(success=ok, handled=False)

        self.port = free_port()
        self.controller = Controller(
            self.mailbox,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticate,
            auth_require_tls=False,
        )

    @property
    def messages(self) -> list[Message]:
        return self.mailbox.messages

    def start(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
