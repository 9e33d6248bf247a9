"""Out-of-band halt: another process's write to the store (the CLI's path) until a running
guard has adopted it and fired its own callback. The watcher polls every 100 ms by default."""

from __future__ import annotations

import tempfile
import threading
import time
from typing import Any

from tradeguard import Guard
from tradeguard.config import parse_config


def adoption(samples: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config({"users": {"ops": "admin"}, "state": {"path": f"{tmp}/b.db"}})
        running, operator = Guard(config), Guard(config)  # two connections, as two processes
        seen = threading.Event()
        running.register_callback("strategy_halt", lambda _sid: seen.set())
        running.start()
        delays = []
        for i in range(samples):
            running.record_trade(f"s{i}", 1.0)
            seen.clear()
            start = time.perf_counter()
            operator.halt_strategy(f"s{i}", "ops", "bench")
            if not seen.wait(timeout=5):
                raise RuntimeError("the running guard did not adopt the halt within 5 s")
            delays.append(time.perf_counter() - start)
        running.close()
        operator.close()
    delays.sort()
    return {
        "p50_ms": delays[len(delays) // 2] * 1e3,
        "p99_ms": delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))] * 1e3,
        "samples": samples,
    }
