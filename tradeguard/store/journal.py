"""The loss-baseline journal beside the store, ``<db>.baselines``: no baseline an update
reported is lost in a crash.

The store gets the baselines (peaks, day start, loss streaks) only at a breaker tick; a crash
between two ticks would restart the guard on older, looser ones. So the ledger hands every
change to this journal as it makes it, and the journal writes it at once into a shared memory
map of the file: a store into the page cache, which a SIGKILL cannot take back, and no system
call on the hot path (a ``write()`` per update cost more than the update itself). A timer
fsyncs at most every ``state.baseline_fsync_seconds``, so a power cut loses at most that much.

The file is a run of 64-byte records (a record never straddles a page or a sector):

* record 0, the header: the magic ``TGBASEL1``, then where the fsynced records end;
* ``N`` a strategy's name and number (its bytes in the records after it), ``S`` a strategy's
  baselines, ``P`` the portfolio's (with the equity sample the velocity window takes), ``W``
  the velocity window emptied, ``V`` one sample in it.

Each record's kind byte is written after its body: a record cut short by a kill reads as the
end. Records are states, not deltas: replaying one twice changes nothing. Before the fsynced
end every record must be whole, or the journal is damaged (:class:`StoreUnavailable`: the
guard fails closed); past it, a torn or missing record is what a power cut does: the replay
stops there and says so (``torn``). The file is self-contained: compaction writes a snapshot
of every baseline to a new file (fsynced outside the guard's lock), copies in the records
written meanwhile, and renames it over the old one. One process writes it at a time (a lock on
``<db>.baselines.lock``); a process opens it for writing only when it first changes a baseline,
so readers (``tradeguard status``) never touch it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import mmap
import os
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradeguard.errors import StoreUnavailable

log = logging.getLogger("tradeguard")

RECORD = 64
MAGIC = b"TGBASEL1"
SEGMENT = 16 << 20  # allocated up front: a write into a mapped hole on a full disk is SIGBUS
_HEADER = struct.Struct("<8sQ48x")
_NAME = struct.Struct("<BxHI56x")
_STRATEGY = struct.Struct("<BxxxIqqqddd8x")
_PORTFOLIO = struct.Struct("<Bxxxxxxxqdddd16x")
_SAMPLE = struct.Struct("<Bxxxxxxxdd40x")
_EMPTY = struct.Struct("<B63x")
N, S, P, W, V = (ord(c) for c in "NSPWV")
NONE = math.nan  # an optional figure that is not known (NaN is never a valid baseline)


def journal_path(db: Path) -> Path:
    return db.with_name(db.name + ".baselines")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every baseline, as :meth:`tradeguard.ledger.Ledger.baselines` gives them, and the
    velocity window's samples (oldest first)."""

    scopes: dict[str, dict[str, Any]]
    window: list[tuple[float, float]]


@dataclass(slots=True)
class Replayed:
    """What a journal holds: the baselines by scope, the velocity window (None when the
    journal never said), whether a power cut tore its tail, how many records it read."""

    scopes: dict[str, dict[str, Any]] = field(default_factory=dict)
    window: list[tuple[float, float]] | None = None
    torn: bool = False
    records: int = 0


def _opt(value: float | None) -> float:
    return NONE if value is None else value


def _back(value: float) -> float | None:
    return None if math.isnan(value) else value


class BaselineJournal:
    """The writer. Its record methods are called by the ledger under the guard's ``lock``;
    :meth:`sync` by a timer thread; ``snapshot`` gives every baseline (under the lock)."""

    def __init__(
        self,
        db: Path,
        snapshot: Callable[[], Snapshot],
        lock: threading.RLock,
        *,
        compact_after: int = SEGMENT // 4,
        on_failure: Callable[[str], None] = lambda _why: None,
    ) -> None:
        self.path = journal_path(db)
        self._snapshot = snapshot
        self._lock = lock  # the guard's: every record is written under it
        self._sync_lock = threading.Lock()  # one sync or compaction at a time
        self._compact_after = compact_after
        self._on_failure = on_failure
        self._state = "idle"  # -> "live" at the first change, "off" (another writer), "failed"
        self._failure: str | None = None
        self._lockfd = -1
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._pos = self._end = self._base = 0  # write position, capacity, snapshot's end
        self._ids: dict[str, int] = {}
        self._retired: list[tuple[int, mmap.mmap]] = []  # closed by the next sync

    # -- the hot path (under the guard's lock) ------------------------------------------

    def strategy(
        self,
        sid: str,
        trade_count: int,
        wins: int,
        losses: int,
        realized_pnl: float,
        equity: float | None,
        peak: float | None,
    ) -> None:
        if self._state != "live" and not self._begin():
            return
        idx = self._ids.get(sid)
        if idx is None:
            idx = self._name(sid)
            if idx < 0:
                return
        p = self._room()
        if p < 0:
            return
        m = self._map
        assert m is not None
        _STRATEGY.pack_into(
            m, p, 0, idx, trade_count, wins, losses, realized_pnl, _opt(equity), _opt(peak)
        )
        m[p] = S  # the kind last: a record cut short reads as the end
        self._pos = p + RECORD

    def portfolio(
        self,
        day: int | None,
        equity: float | None,
        peak: float | None,
        day_start: float | None,
        at: float | None,
    ) -> None:
        if self._state != "live" and not self._begin():
            return
        p = self._room()
        if p < 0:
            return
        m = self._map
        assert m is not None
        _PORTFOLIO.pack_into(
            m, p, 0, -1 if day is None else day, _opt(equity), _opt(peak), _opt(day_start), _opt(at)
        )
        m[p] = P
        self._pos = p + RECORD

    def window_reset(self) -> None:
        if self._state != "live" and not self._begin():
            return
        p = self._room()
        if p < 0:
            return
        assert self._map is not None
        self._map[p] = W
        self._pos = p + RECORD

    def _name(self, sid: str) -> int:
        data = sid.encode()
        slots = -(-len(data) // RECORD)
        p = self._room(1 + slots)
        if p < 0:
            return p
        idx = self._ids[sid] = len(self._ids)
        m = self._map
        assert m is not None
        m[p + RECORD : p + RECORD + len(data)] = data
        _NAME.pack_into(m, p, 0, len(data), idx)
        m[p] = N
        self._pos = p + RECORD * (1 + slots)
        return idx

    def _room(self, records: int = 1) -> int:
        """Where the next ``records`` go; a full file is compacted first (rare: the timer
        compacts long before). -1 when the journal cannot be written (its next sync reports
        it, and the guard fails closed)."""
        if self._pos + records * RECORD > self._end:
            try:
                self._install(self._create(self._image()), b"")
                _fsync_directory(self.path)
            except OSError as exc:
                self._fail(f"cannot compact the baselines journal: {exc}")
                return -1
        return self._pos

    # -- opening, syncing, compacting -----------------------------------------------------

    def _begin(self) -> bool:
        """At the first change: take the writer's lock and start a new file from a snapshot
        (the baselines this guard loaded, with the change). False when another process
        writes the journal or it cannot be written (then the tick's store save is all)."""
        if self._state != "idle":
            return False
        try:
            fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            self._fail(f"cannot open the baselines journal's lock: {exc}")
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            log.warning(
                "%s is written by another guard sharing the store: this one saves its "
                "baselines to the store at each tick only",
                self.path.name,
            )
            self._state = "off"
            return False
        self._lockfd = fd
        try:
            self._install(self._create(self._image()), b"")
            _fsync_directory(self.path)
        except OSError as exc:
            self._fail(f"cannot write the baselines journal: {exc}")
            return False
        self._state = "live"
        return True

    def _fail(self, why: str) -> None:
        log.error("%s: %s", self.path, why)
        self._state, self._failure = "failed", why

    def _image(self) -> bytes:
        """Header and snapshot records: every name this journal numbered, every baseline,
        the velocity window. Under the lock."""
        snap = self._snapshot()
        out = bytearray(_HEADER.pack(MAGIC, 0))
        for sid, idx in self._ids.items():
            data = sid.encode()
            out += _NAME.pack(N, len(data), idx) + data.ljust(-(-len(data) // RECORD) * RECORD)
        for key, data in snap.scopes.items():
            if key == "portfolio":
                continue
            sid = key.partition(":")[2]
            idx = self._ids.get(sid)
            if idx is None:
                idx = self._ids[sid] = len(self._ids)
                name = sid.encode()
                out += _NAME.pack(N, len(name), idx) + name.ljust(-(-len(name) // RECORD) * RECORD)
            out += _STRATEGY.pack(
                S,
                idx,
                data["trade_count"],
                data["wins"],
                data["consecutive_losses"],
                data["realized_pnl"],
                _opt(data["equity"]),
                _opt(data["peak_equity"]),
            )
        out += _EMPTY.pack(W)
        for at, value in snap.window:
            out += _SAMPLE.pack(V, at, value)
        p = snap.scopes.get("portfolio", {})
        day = p.get("day")
        out += _PORTFOLIO.pack(
            P,
            -1 if day is None else day,
            _opt(p.get("equity")),
            _opt(p.get("peak_equity")),
            _opt(p.get("day_start_equity")),
            NONE,
        )
        out[8:16] = len(out).to_bytes(8, "little")  # the snapshot is fsynced with the file
        return bytes(out)

    def _create(self, image: bytes) -> tuple[Path, int, mmap.mmap, int]:
        """A new file holding ``image``, allocated and fsynced, not yet in place."""
        size = max(SEGMENT, 4 * len(image))
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)
            os.pwrite(fd, image, 0)
            os.fsync(fd)
            return temporary, fd, mmap.mmap(fd, size), len(image)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise

    def _install(self, fresh: tuple[Path, int, mmap.mmap, int], tail: bytes) -> None:
        """Under the lock: the records written since the image after it, then the new file
        in place of the old (the old one is closed by the next sync)."""
        temporary, fd, m, used = fresh
        if used + len(tail) > len(m):
            raise OSError("the records written during a compaction do not fit")
        m[used : used + len(tail)] = tail
        os.replace(temporary, self.path)
        if self._map is not None:
            self._retired.append((self._fd, self._map))
        self._fd, self._map, self._base = fd, m, used
        self._pos, self._end = used + len(tail), len(m)

    def prepare_compaction(self) -> tuple[tuple[Path, int, mmap.mmap, int], int]:
        """Compaction, first half: a snapshot under the lock, written and fsynced to a new
        file outside it. Returns it, with where the records written since then begin."""
        with self._lock:
            image, start = self._image(), self._pos
        return self._create(image), start

    def finish_compaction(self, pending: tuple[tuple[Path, int, mmap.mmap, int], int]) -> None:
        """Second half: the records written since the snapshot copied in, the file renamed in
        place, all of it fsynced."""
        fresh, start = pending
        with self._lock:
            assert self._map is not None
            self._install(fresh, self._map[start : self._pos])
        _fsync_directory(self.path)
        self._flush()

    def sync(self) -> None:
        """The timer's call: fsync what was written (then it survives a power cut), and
        compact once the records since the last snapshot outgrow ``compact_after``. A
        failure is reported once through ``on_failure`` (the guard fails closed)."""
        with self._sync_lock:
            if self._state == "live":
                try:
                    if self._pos - self._base > self._compact_after:
                        self.finish_compaction(self.prepare_compaction())
                    else:
                        self._flush()
                except OSError as exc:
                    self._fail(f"cannot sync the baselines journal: {exc}")
            failure, self._failure = self._failure, None
        if failure is not None:
            self._on_failure(failure)

    def _flush(self) -> None:
        """fsync the file (mapped pages included), then move the header's durable end."""
        with self._lock:
            fd, end, retired, self._retired = self._fd, self._pos, self._retired, []
        for old_fd, old_map in retired:
            old_map.close()
            os.close(old_fd)
        os.fsync(fd)
        os.pwrite(fd, end.to_bytes(8, "little"), 8)
        os.fdatasync(fd)

    def close(self) -> None:
        """Sync, release the file and the writer's lock; later changes are not journaled."""
        self.sync()
        with self._sync_lock, self._lock:
            if self._map is not None:
                self._retired.append((self._fd, self._map))
                self._map = None
            for old_fd, old_map in self._retired:
                old_map.close()
                os.close(old_fd)
            self._retired = []
            if self._lockfd >= 0:
                os.close(self._lockfd)
                self._lockfd = -1
            if self._state == "live":
                self._state = "off"


def _fsync_directory(path: Path) -> None:
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
                    "%s: torn tail at byte %d (a power cut lost the last records before their "
                    "fsync): ignored, the guard starts from the stricter of journal and store",
                    self.path,
                    pos,
                )
                self.out.torn = True
                return self.out
            if step == 0:  # the end
                if data.count(0, pos) < len(data) - pos:
                    log.error("%s: torn tail: records after a gap at byte %d", self.path, pos)
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
            _, length, idx = _NAME.unpack_from(data, pos)
            slots = -(-length // RECORD)
            if not 0 < length <= 128 or pos + RECORD * (1 + slots) > len(data):
                raise ValueError(f"a name of {length} bytes")
            self.names[idx] = data[pos + RECORD : pos + RECORD + length].decode()
            return RECORD * (1 + slots)
        if kind == S:
            _, idx, trades, wins, losses, pnl, equity, peak = _STRATEGY.unpack_from(data, pos)
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
            _, day, equity, peak, start, at = _PORTFOLIO.unpack_from(data, pos)
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
            _, at, value = _SAMPLE.unpack_from(data, pos)
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
