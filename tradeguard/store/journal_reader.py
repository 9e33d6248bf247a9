"""Reading the loss-baselines journal (:mod:`tradeguard.store.journal`) back, never writing
it: at every guard's load, readers' included.

Before the fsynced end the header names, every record must be whole, or the journal is damaged
and :class:`StoreUnavailable` says where (the guard fails closed, the file is left as it is).
Past it, a torn record, or records after a gap of zeros, are what a power cut does to pages
written back out of order: the replay stops at the first of them, logs it, and sets ``torn``
(the guard then takes the stricter of journal and store).
"""

from __future__ import annotations

import logging
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradeguard.errors import StoreUnavailable
from tradeguard.store.journal import MAGIC, NAME, PORTFOLIO, RECORD, SAMPLE, STRATEGY, N, P, S, V, W

log = logging.getLogger("tradeguard")


@dataclass(slots=True)
class Replayed:
    """What a journal holds: the baselines by scope, the velocity window (None when the
    journal never said), whether a power cut tore its tail, how many records it read."""

    scopes: dict[str, dict[str, Any]] = field(default_factory=dict)
    window: list[tuple[float, float]] | None = None
    torn: bool = False
    records: int = 0


def _back(value: float) -> float | None:
    return None if math.isnan(value) else value


def replay(path: Path) -> Replayed | None:
    """Read a journal (never writing it): None when there is none; a damaged one raises
    :class:`StoreUnavailable`; a torn tail past the fsynced end is dropped, ``torn`` set."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreUnavailable(f"{path}: cannot read the baselines journal: {exc}") from exc
    if len(data) < RECORD or data[:8] != MAGIC:
        raise StoreUnavailable(f"{path}: the baselines journal is damaged: no header")
    durable = int.from_bytes(data[8:16], "little")
    if durable < RECORD or durable % RECORD or durable > len(data):
        raise StoreUnavailable(f"{path}: the baselines journal is damaged: bad header")
    return _Reader(path, data, durable).run()


class _Reader:
    def __init__(self, path: Path, data: bytes, durable: int) -> None:
        self.path, self.data, self.durable = path, data, durable
        self.names: dict[int, str] = {}
        self.out = Replayed()

    def run(self) -> Replayed:
        data, pos = self.data, RECORD
        while pos + RECORD <= len(data):
            try:
                step = self._record(pos)
            except (ValueError, KeyError, UnicodeDecodeError, struct.error) as exc:
                if pos < self.durable:
                    raise StoreUnavailable(
                        f"{self.path}: the baselines journal is damaged at byte {pos}: {exc}"
                    ) from exc
                log.error(
                    "%s: torn tail at byte %d (a record cut short, or a power cut before its "
                    "fsync): ignored, the guard starts from the stricter of journal and store",
                    self.path,
                    pos,
                )
                self.out.torn = True
                return self.out
            if step == 0:  # the end, unless a record was cut short or a page went missing
                kinds = data[pos + RECORD :: RECORD]
                if kinds.count(0) < len(kinds):
                    log.error(
                        "%s: torn tail: records after a gap at byte %d (a record cut short, "
                        "or pages a power cut lost): ignored, the guard starts from the "
                        "stricter of journal and store",
                        self.path,
                        pos,
                    )
                    self.out.torn = True
                return self.out
            pos += step
            self.out.records += 1
        return self.out

    def _record(self, pos: int) -> int:
        """Apply the record at ``pos``; the bytes it took, 0 at the end; ValueError when it is
        not a record this journal writes."""
        data = self.data
        kind = data[pos]
        if kind == 0:
            if pos < self.durable:
                raise ValueError("a hole before the fsynced end")
            return 0
        if kind == N:
            _, length, idx = NAME.unpack_from(data, pos)
            slots = -(-int(length) // RECORD)
            if not 0 < length <= 128 or pos + RECORD * (1 + slots) > len(data):
                raise ValueError(f"a name of {length} bytes")
            self.names[idx] = data[pos + RECORD : pos + RECORD + length].decode()
            return RECORD * (1 + slots)
        if kind == S:
            _, idx, trades, wins, losses, pnl, equity, peak = STRATEGY.unpack_from(data, pos)
            if min(trades, wins, losses) < 0 or not math.isfinite(pnl):
                raise ValueError("impossible strategy figures")
            _finite_or_none(equity, peak)
            self.out.scopes[f"strategy:{self.names[idx]}"] = {
                "equity": _back(equity),
                "peak_equity": _back(peak),
                "realized_pnl": pnl,
                "trade_count": trades,
                "wins": wins,
                "consecutive_losses": losses,
            }
        elif kind == P:
            _, day, equity, peak, start, at = PORTFOLIO.unpack_from(data, pos)
            if day < -1:
                raise ValueError("impossible day")
            _finite_or_none(equity, peak, start, at)
            self.out.scopes["portfolio"] = {
                "equity": _back(equity),
                "peak_equity": _back(peak),
                "day": None if day < 0 else day,
                "day_start_equity": _back(start),
            }
            if not math.isnan(at) and not math.isnan(equity):
                self._window().append((at, equity))
        elif kind == W:
            self.out.window = []
        elif kind == V:
            _, at, value = SAMPLE.unpack_from(data, pos)
            if not (math.isfinite(at) and math.isfinite(value)):
                raise ValueError("a velocity sample that is not finite")
            self._window().append((at, value))
        else:
            raise ValueError(f"unknown record kind {kind}")
        return RECORD

    def _window(self) -> list[tuple[float, float]]:
        if self.out.window is None:
            self.out.window = []
        return self.out.window


def _finite_or_none(*values: float) -> None:
    if any(math.isinf(v) for v in values):
        raise ValueError("an infinite baseline")
