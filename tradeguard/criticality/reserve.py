"""Capital per agent, and the avalanche reserve held back from it.

A simple fitness-weighted allocator with a cap per agent: each agent gets capital in
proportion to its fitness (negative fitness counts as none), no agent more than
``max_agent_share`` of the capital, and ``share`` of it is never allocated: that is the
avalanche reserve, released once when the CriticalityMonitor's score crosses its threshold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping


def allocate(
    capital: float, fitness: Mapping[str, float], *, reserve_share: float, max_share: float
) -> dict[str, float]:
    """Water-filling: weights by fitness, capped, the excess of capped agents redistributed to
    the others by weight; what cannot be placed under the caps stays unallocated."""
    if not (math.isfinite(capital) and capital > 0):
        raise ValueError(f"capital must be a finite number > 0, got {capital!r}")
    if not fitness:
        return {}
    for name, value in fitness.items():
        if not math.isfinite(value):
            raise ValueError(f"fitness of {name} must be finite, got {value!r}")
    budget = capital * (1 - reserve_share)
    cap = capital * max_share
    weights = {k: max(0.0, v) for k, v in fitness.items()}
    if all(v == 0 for v in fitness.values()):  # no information at all: equal shares
        weights = dict.fromkeys(fitness, 1.0)
    out = dict.fromkeys(fitness, 0.0)
    open_ = {k for k, w in weights.items() if w > 0}
    left = budget
    while open_ and left > 1e-9 * capital:
        total = sum(weights[k] for k in open_)
        share = {k: left * weights[k] / total for k in open_}
        left = 0.0
        for k in list(open_):
            room = cap - out[k]
            if share[k] >= room:
                out[k] = cap
                left += share[k] - room
                open_.discard(k)
            else:
                out[k] += share[k]
    return out
