"""Loss baselines after a power cut: how a torn journal is merged with the store's saved
baselines, so that a lost record never loosens a limit."""

from __future__ import annotations

from typing import Any


def stricter(saved: dict[str, dict[str, Any]], journal: dict[str, dict[str, Any]]) -> None:
    """After a power cut tore the journal's tail (its last records lost): take, scope by
    scope, the stricter of the journal and the store's saved baselines, in place in
    ``journal``: the higher peak, the longer loss streak, the lower equity and realized P&L,
    the higher day start (of the same day). A lost record never loosens a limit."""
    for key, found in journal.items():
        other = saved.get(key)
        if not isinstance(other, dict):
            continue
        for name, pick in _STRICTER.items():
            mine, theirs = found.get(name), other.get(name)
            if name == "day_start_equity" and found.get("day") != other.get("day"):
                continue
            if mine is not None and theirs is not None:
                found[name] = pick(mine, theirs)


_STRICTER = {
    "peak_equity": max,
    "consecutive_losses": max,
    "day_start_equity": max,
    "equity": min,
    "realized_pnl": min,
}
