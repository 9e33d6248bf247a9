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
import itertools
import logging
import math
import mmap
import os
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("tradeguard")

RECORD = 64
MAGIC = b"TGBASEL1"
# A file's bytes are allocated up front (a write into a mapped hole on a full disk is SIGBUS,
# which kills the process): 1 MiB at first, twice as much each time one fills up between two
# syncs (a fast writer), at most 64 MiB.
SEGMENT = 1 << 20
MAX_SEGMENT = 64 << 20
HEADER = struct.Struct("<8sQ48x")
NAME = struct.Struct("<BxHI56x")
STRATEGY = struct.Struct("<BxxxIqqqddd8x")
PORTFOLIO = struct.Struct("<Bxxxxxxxqdddd16x")
SAMPLE = struct.Struct("<Bxxxxxxxdd40x")
EMPTY = struct.Struct("<B63x")
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


class StrategyFigures(Protocol):
    """What the journal keeps of a strategy (the ledger's ``StrategyMetrics``)."""

    trade_count: int
    wins: int
    consecutive_losses: int
    realized_pnl: float
    equity: float | None
    peak_equity: float | None


class PortfolioFigures(Protocol):
    """What the journal keeps of the portfolio (the ledger's ``PortfolioMetrics``)."""

    day: int | None
    equity: float | None
    peak_equity: float | None
    day_start_equity: float | None


@dataclass(frozen=True, slots=True)
class _Image:
    """A snapshot as records, the numbers it gave, where the live file stood when taken
    (which file: its generation, and how far it was written)."""

    data: bytes
    names: dict[str, int]
    generation: int
    start: int


@dataclass(frozen=True, slots=True)
class _Fresh:
    """A new journal file, fsynced with its image, not yet renamed in place."""

    image: _Image
    temporary: Path
    fd: int
    map: mmap.mmap


def _name_records(sid: str, idx: int) -> bytes:
    data = sid.encode()
    return NAME.pack(N, len(data), idx) + data.ljust(-(-len(data) // RECORD) * RECORD)


def _opt(value: float | None) -> float:
    return NONE if value is None else value


class BaselineJournal:
    """The writer. Its record methods are called by the ledger under the guard's ``lock``;
    :meth:`sync` by a timer thread; ``snapshot`` gives every baseline (under the lock)."""

    def __init__(
        self,
        db: Path,
        snapshot: Callable[[], Snapshot],
        lock: threading.RLock,
        *,
        segment: int = SEGMENT,
        compact_after: int | None = None,
        on_failure: Callable[[str], None] = lambda _why: None,
    ) -> None:
        self.path = journal_path(db)
        self._snapshot = snapshot
        self._lock = lock  # the guard's: every record is written under it
        self._sync_lock = threading.Lock()  # one sync or compaction at a time
        self._segment = segment  # bytes allocated per file (at least 4x its snapshot)
        self._compact_after = compact_after  # None: once the records fill half the room
        self._on_failure = on_failure
        self._state = "idle"  # -> "live" at the first change, "off" (another writer), "failed"
        self._live = False  # _state == "live", read on every record
        self._failure: str | None = None
        self._lockfd = -1
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._pos = self._end = self._base = 0  # write position, capacity, snapshot's end
        self._ids: dict[str, int] = {}  # the strategies the live file named, their numbers
        self._next = 0
        self._generation = 0  # which file is live: moves at every install
        self._made = itertools.count()
        self._retired: list[tuple[int, mmap.mmap]] = []  # closed by the next sync

    # -- the hot path (under the guard's lock) ------------------------------------------

    def strategy(self, sid: str, m: StrategyFigures) -> None:
        if not self._live and not self._begin():
            return
        idx = self._ids.get(sid)
        if idx is None:
            idx = self._name(sid)
            if idx < 0:
                return
        p = self._pos
        if p + RECORD > self._end and (p := self._room()) < 0:
            return
        mm, equity, peak = self._map, m.equity, m.peak_equity
        assert mm is not None
        STRATEGY.pack_into(
            mm,
            p,
            0,
            idx,
            m.trade_count,
            m.wins,
            m.consecutive_losses,
            m.realized_pnl,
            NONE if equity is None else equity,
            NONE if peak is None else peak,
        )
        mm[p] = S  # the kind last: a record cut short reads as the end
        self._pos = p + RECORD

    def portfolio(self, p: PortfolioFigures, at: float | None) -> None:
        """``at``: when the equity was sampled for the velocity window (None: not)."""
        if not self._live and not self._begin():
            return
        pos = self._room()
        if pos < 0:
            return
        mm = self._map
        assert mm is not None
        day = -1 if p.day is None else p.day
        start = _opt(p.day_start_equity)
        PORTFOLIO.pack_into(mm, pos, 0, day, _opt(p.equity), _opt(p.peak_equity), start, _opt(at))
        mm[pos] = P
        self._pos = pos + RECORD

    def window_reset(self) -> None:
        if not self._live and not self._begin():
            return
        p = self._room()
        if p < 0:
            return
        assert self._map is not None
        self._map[p] = W
        self._pos = p + RECORD

    def _name(self, sid: str) -> int:
        """Number a strategy in the live file (its name record first); -1 on failure."""
        p = self._room(1 + -(-len(sid.encode()) // RECORD))
        if p < 0:
            return p
        record = _name_records(sid, self._next)
        idx = self._ids[sid] = self._next
        self._next += 1
        m = self._map
        assert m is not None
        m[p + 1 : p + len(record)] = record[1:]
        m[p] = N
        self._pos = p + len(record)
        return idx

    def _room(self, records: int = 1) -> int:
        """Where the next ``records`` go; a full file is compacted first (rare: the timer
        compacts long before). -1 when the journal cannot be written (its next sync reports
        it, and the guard fails closed)."""
        if self._pos + records * RECORD > self._end:
            self._segment = min(2 * self._segment, MAX_SEGMENT)
            try:
                self._install(self._create(self._image()), b"")
                _fsync_directory(self.path)
            except (OSError, ValueError) as exc:
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
            self._move("off")
            return False
        self._lockfd = fd
        for stale in self.path.parent.glob(f"{self.path.name}.*.tmp"):  # a writer killed
            stale.unlink(missing_ok=True)  # mid-compaction left it; only a writer makes them
        try:
            self._install(self._create(self._image()), b"")
            _fsync_directory(self.path)
        except (OSError, ValueError) as exc:
            self._fail(f"cannot write the baselines journal: {exc}")
            return False
        self._move("live")
        return True

    def _fail(self, why: str) -> None:
        log.error("%s: %s", self.path, why)
        self._move("failed")
        self._failure = why

    def _move(self, state: str) -> None:
        self._state, self._live = state, state == "live"

    def _image(self) -> _Image:
        """Under the lock: header and snapshot records (every strategy named, every baseline,
        the velocity window). Strategies the live file never named are numbered for the new
        file only (from the shared counter: no number is ever given twice)."""
        snap = self._snapshot()
        names = dict(self._ids)
        strategies = {k.partition(":")[2]: d for k, d in snap.scopes.items() if k != "portfolio"}
        for sid in strategies.keys() - names.keys():
            names[sid] = self._next
            self._next += 1
        out = bytearray(HEADER.pack(MAGIC, 0))
        for sid, idx in names.items():
            out += _name_records(sid, idx)
        for sid, data in strategies.items():
            out += STRATEGY.pack(
                S,
                names[sid],
                data["trade_count"],
                data["wins"],
                data["consecutive_losses"],
                data["realized_pnl"],
                _opt(data["equity"]),
                _opt(data["peak_equity"]),
            )
        out += EMPTY.pack(W)
        for at, value in snap.window:
            out += SAMPLE.pack(V, at, value)
        p = snap.scopes.get("portfolio", {})
        day = p.get("day")
        out += PORTFOLIO.pack(
            P,
            -1 if day is None else day,
            _opt(p.get("equity")),
            _opt(p.get("peak_equity")),
            _opt(p.get("day_start_equity")),
            NONE,
        )
        out[8:16] = len(out).to_bytes(8, "little")  # the snapshot is fsynced with the file
        return _Image(bytes(out), names, self._generation, self._pos)

    def _create(self, image: _Image) -> _Fresh:
        """A new file holding ``image``, allocated and fsynced, not yet in place."""
        size = max(self._segment, 4 * len(image.data))
        made = next(self._made)  # the hot path and the timer may each be making one
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.{made}.tmp")
        fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _allocate(fd, size)
            os.pwrite(fd, image.data, 0)
            os.fsync(fd)
            return _Fresh(image, temporary, fd, mmap.mmap(fd, size))
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise

    def _install(self, fresh: _Fresh, tail: bytes) -> None:
        """Under the lock: the records written since the image after it, then the new file
        in place of the old (the old one is closed by the next sync)."""
        m, used = fresh.map, len(fresh.image.data)
        if used + len(tail) > len(m):
            raise OSError("the records written during a compaction do not fit")
        m[used : used + len(tail)] = tail
        os.replace(fresh.temporary, self.path)
        if self._map is not None:
            self._retired.append((self._fd, self._map))
        self._fd, self._map, self._base = fresh.fd, m, used
        self._generation += 1
        self._pos, self._end = used + len(tail), len(m)
        self._ids = {**fresh.image.names, **self._ids}  # the tail's own numbers win

    def prepare_compaction(self) -> _Fresh:
        """Compaction, first half: a snapshot under the lock, written and fsynced to a new
        file outside it."""
        with self._lock:
            image = self._image()
        return self._create(image)

    def finish_compaction(self, fresh: _Fresh) -> None:
        """Second half: the records written since the snapshot copied in, the file renamed in
        place, all of it fsynced. A file that filled up meanwhile was replaced by the write
        that found it full: then this one is dropped (the next sync compacts again)."""
        with self._lock:
            current = fresh.image.generation == self._generation
            if current:
                assert self._map is not None
                self._install(fresh, self._map[fresh.image.start : self._pos])
        if not current:
            fresh.map.close()
            os.close(fresh.fd)
            fresh.temporary.unlink()
            return
        _fsync_directory(self.path)
        self._flush()

    def sync(self) -> None:
        """The timer's call: fsync what was written (then it survives a power cut), and
        compact once the records since the last snapshot outgrow ``compact_after``. A
        failure is reported once through ``on_failure`` (the guard fails closed)."""
        with self._sync_lock:
            if self._live:
                try:
                    room = self._end - self._base
                    limit = room // 2 if self._compact_after is None else self._compact_after
                    if self._pos - self._base > limit:
                        self.finish_compaction(self.prepare_compaction())
                    else:
                        self._flush()
                except (OSError, ValueError) as exc:  # (ValueError: a map that cannot be made)
                    self._fail(f"cannot sync the baselines journal: {exc}")
            failure, self._failure = self._failure, None
        if failure is not None:
            self._on_failure(failure)

    def _flush(self) -> None:
        """Write the mapped pages back, then move the header's durable end. On Linux an
        fsync of the file does both without the interpreter's lock (``mmap.flush`` would
        hold it, and every update with it, for the whole write)."""
        with self._lock:
            fd, m, end, retired, self._retired = (
                self._fd,
                self._map,
                self._pos,
                self._retired,
                [],
            )
        for old_fd, old_map in retired:
            old_map.close()
            os.close(old_fd)
        if sys.platform != "linux" and m is not None:
            m.flush()
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
            if self._live:
                self._move("off")


def _allocate(fd: int, size: int) -> None:
    """Give the file its blocks now (zeros where the system has no ``posix_fallocate``)."""
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, size)
        return
    chunk = bytes(1 << 20)
    for at in range(0, size, len(chunk)):
        os.pwrite(fd, chunk[: size - at], at)


def _fsync_directory(path: Path) -> None:
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
