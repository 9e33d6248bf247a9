"""Synthetic markets for the monitor's tests (calm, then a crash that moves everything
together), and windows built from given returns for the indicators' tests."""

from __future__ import annotations

import numpy as np

from tradeguard.criticality.monitor import Bar
from tradeguard.criticality.window import Matrix, Window


def market(calm: int, crash: int, assets: int = 12, seed: int = 3) -> list[dict[str, Bar]]:
    """``calm`` observations of independent assets with 1% moves, then ``crash`` observations
    where one falling, volatile factor drives them all, with volume surging and ranges wide."""
    rng = np.random.default_rng(seed)
    rows = []
    price = np.full(assets, 100.0)
    for t in range(calm + crash):
        stressed = t >= calm
        if stressed:
            factor = rng.normal(-0.02, 0.04)
            moves = 0.9 * factor + rng.normal(0, 0.01, assets)
        else:
            moves = rng.normal(0, 0.01, assets)
        price = price * np.exp(moves)
        span = np.abs(moves) + (0.03 if stressed else 0.01)
        volume = rng.uniform(1e6, 2e6, assets) * (4 if stressed else 1)
        rows.append(
            {
                f"A{j}": Bar(
                    float(price[j]),
                    float(price[j] * (1 + span[j])),
                    float(price[j] * (1 - span[j])),
                    float(volume[j]),
                )
                for j in range(assets)
            }
        )
    return rows


def window_from_returns(returns: Matrix, short: int = 20) -> Window:
    """A window whose log returns are exactly ``returns`` (closes start at 100)."""
    n = returns.shape[1]
    log_prices = np.vstack([np.zeros((1, n)), np.cumsum(returns, axis=0)])
    close = 100.0 * np.exp(log_prices)
    nan = np.full_like(close, np.nan)
    return Window(close, nan, nan, nan, nan, nan, tuple(f"A{i}" for i in range(n)), short)
