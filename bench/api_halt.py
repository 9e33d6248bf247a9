"""Halt latency through the real HTTP API, quiet and under a flood of bad tokens.

An authenticated strategy halt, POSTed to uvicorn on 127.0.0.1, timed from the request to its
answer (the halt is durable by then). Then the same while 16 threads of another process send
bad tokens as fast as they can: the failed-login limit answers them 429 without computing
scrypt, so the halts should stay within 2x of quiet. Bounded: a fixed number of halts, the
flood stopped when they are done or after ``FLOOD_SECONDS``; all traffic to 127.0.0.1.
"""

from __future__ import annotations

import collections
import multiprocessing
import socket
import tempfile
import threading
import time
from typing import Any

import httpx
import uvicorn
from rich.table import Table

from tradeguard import Guard
from tradeguard.api import create_app
from tradeguard.config import parse_config
from tradeguard.testing import enroll_team

FLOODERS, FLOOD_SECONDS = 16, 120.0


def latency(samples: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        guard = Guard(parse_config({"users": {"ops": "trader"}, "state": {"path": f"{tmp}/b.db"}}))
        token = enroll_team(guard, ["ops"])["ops"]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else 40 ms delayed ACKs
        sock.bind(("127.0.0.1", 0))
        sock.listen(256)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(guard), log_level="error", lifespan="off", proxy_headers=False
            )
        )
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer ops.{token}"}) as c:
                c.get("/api/status", timeout=30).raise_for_status()  # verified once, cached
                quiet = _halts(c, "quiet", samples)
                context = multiprocessing.get_context("spawn")
                stop, answers = context.Event(), context.Queue()
                flood = context.Process(target=_flood, args=(url, stop, answers), daemon=True)
                flood.start()  # its own process: the server's GIL is not the flood's
                if not answers.get(timeout=60) == "ready":
                    raise RuntimeError("the flood did not start")
                started = time.perf_counter()
                flooded = _halts(c, "flood", samples)
                stop.set()
                elapsed = time.perf_counter() - started
                tally: collections.Counter[int] = answers.get(timeout=60)
                flood.join(timeout=30)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
            guard.close()
    return {
        "quiet": _summary(quiet),
        "flood": _summary(flooded),
        "p50_ratio": _summary(flooded)["p50_ms"] / _summary(quiet)["p50_ms"],
        "p99_ratio": _summary(flooded)["p99_ms"] / _summary(quiet)["p99_ms"],
        "flood_requests_per_second": sum(tally.values()) / elapsed,
        "flood_answers": {str(code): n for code, n in sorted(tally.items())},
        "samples": samples,
    }


def _halts(client: httpx.Client, run: str, samples: int) -> list[float]:
    delays = []
    for i in range(samples):
        start = time.perf_counter()
        response = client.post(f"/api/strategies/{run}{i}/halt", json={"force": True}, timeout=30)
        delays.append(time.perf_counter() - start)
        if response.status_code != 200 or response.json()["change"]["after"] != "halted":
            raise RuntimeError(f"the bench's halt did not halt: {response.text}")
    return delays


def _flood(url: str, stop: Any, answers: Any) -> None:
    """``FLOODERS`` threads sending bad tokens until ``stop`` (or ``FLOOD_SECONDS``); puts
    "ready", then the tally of the status codes they got."""
    tally: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()
    deadline = time.perf_counter() + FLOOD_SECONDS

    def send(k: int) -> None:
        with httpx.Client(base_url=url) as client:
            n = 0
            while not stop.is_set() and time.perf_counter() < deadline:
                n += 1
                headers = {"Authorization": f"Bearer ops.wrong{k}x{n}"}
                try:
                    code = client.get("/api/status", headers=headers, timeout=30).status_code
                except httpx.HTTPError:
                    code = 0
                with lock:
                    tally[code] += 1

    threads = [threading.Thread(target=send, args=(k,), daemon=True) for k in range(FLOODERS)]
    for t in threads:
        t.start()
    answers.put("ready")
    for t in threads:
        t.join()
    answers.put(tally)


def _summary(delays: list[float]) -> dict[str, float]:
    ordered = sorted(delays)
    return {
        "p50_ms": ordered[len(ordered) // 2] * 1e3,
        "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1e3,
    }


def table(found: dict[str, Any]) -> Table:
    shown = Table("authenticated halt through the HTTP API (127.0.0.1)", "p50", "p99", "target")
    for name, label, target in (
        ("quiet", "quiet", ""),
        ("flood", f"{FLOODERS} threads sending bad tokens", "within 2x of quiet"),
    ):
        shown.add_row(
            label, f"{found[name]['p50_ms']:.1f} ms", f"{found[name]['p99_ms']:.1f} ms", target
        )
    return shown


def ratio_line(found: dict[str, Any]) -> str:
    return (
        f"  flood / quiet: p50 {found['p50_ratio']:.1f}x, p99 {found['p99_ratio']:.1f}x; the flood "
        f"got {found['flood_requests_per_second']:.0f} answers/s: {found['flood_answers']}"
    )
