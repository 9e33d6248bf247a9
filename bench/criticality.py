"""The CriticalityMonitor's cycle on 100 assets x 2,000 observations, in steady state: one new
observation per cycle (BOCPD, VPIN and CUSUM then process only it), BLAS on one thread. Also the
cost of each indicator on the same window, and of the shared moments they read."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from tradeguard.config import CriticalityConfig
from tradeguard.criticality.monitor import _BLAS, Bar, CriticalityMonitor
from tradeguard.criticality.window import Window

ASSETS, OBSERVATIONS = 100, 2_000


def _rows(count: int, seed: int = 5) -> list[dict[str, Bar]]:
    rng = np.random.default_rng(seed)
    factor = rng.normal(0, 0.006, (count, 1))
    moves = factor + rng.normal(0, 0.01, (count, ASSETS))
    prices = 100 * np.exp(np.cumsum(moves, axis=0))
    volume = rng.uniform(1e5, 1e6, (count, ASSETS))
    return [
        {
            f"A{j}": Bar(p[j], p[j] * 1.005, p[j] * 0.995, v[j], p[j] * 0.9995, p[j] * 1.0005)
            for j in range(ASSETS)
        }
        for p, v in zip(prices, volume, strict=True)
    ]


def cycle(cycles: int = 30) -> dict[str, Any]:
    config = CriticalityConfig(
        window=OBSERVATIONS, long_window=250, min_observations=120, percentile_window=500
    )
    monitor = CriticalityMonitor(config)
    rows = _rows(OBSERVATIONS + cycles + 1)
    for i, bars in enumerate(rows[:OBSERVATIONS]):
        monitor.observe(float(i), bars)
    started = time.perf_counter()
    monitor.evaluate(float(OBSERVATIONS))  # the first cycle fills BOCPD, VPIN and CUSUM
    first = time.perf_counter() - started
    totals = []
    for i, bars in enumerate(rows[OBSERVATIONS : OBSERVATIONS + cycles]):
        monitor.observe(float(OBSERVATIONS + i), bars)
        started = time.perf_counter()
        reading = monitor.evaluate(float(OBSERVATIONS + i))
        totals.append(time.perf_counter() - started)
    assert reading.assets == ASSETS
    per = _per_indicator(monitor, rows[-1], repeats=cycles)
    totals.sort()
    return {
        "assets": ASSETS,
        "observations": OBSERVATIONS,
        "first_cycle_ms": first * 1e3,
        "p50_ms": totals[len(totals) // 2] * 1e3,
        "p99_ms": totals[int(0.99 * (len(totals) - 1))] * 1e3,
        "per_indicator_ms": per,
    }


def _per_indicator(
    monitor: CriticalityMonitor, last: dict[str, Bar], repeats: int
) -> dict[str, float]:
    """Median milliseconds of each indicator on the monitor's current window, with the shared
    moments computed before (they are timed on their own)."""
    monitor.observe(0.0, last)
    base = monitor.panel.window(monitor.config.short_window, 1)
    assert base is not None
    out: dict[str, list[float]] = {"shared moments (mean, covariance, lag-1)": []}
    with _BLAS.limit(limits=1, user_api="blas"):
        for _ in range(repeats):
            window = Window(
                *[getattr(base, f) for f in ("close", "high", "low", "volume", "bid", "ask")],
                base.symbols,
                base.short,
                1,
            )
            started = time.perf_counter()
            _ = window.moments
            out["shared moments (mean, covariance, lag-1)"].append(time.perf_counter() - started)
            for indicator in monitor.indicators:
                started = time.perf_counter()
                indicator.compute(window)
                out.setdefault(indicator.name, []).append(time.perf_counter() - started)
    return {name: float(np.median(v)) * 1e3 for name, v in out.items()}
