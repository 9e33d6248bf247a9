"""Loss baselines survive a crash: every change an update reported is in the journal beside
the store the moment the update returns (a SIGKILL loses none of them), started guard or not;
a power cut's torn tail is ignored conservatively; a damaged journal starts in emergency."""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import USERS, MakeGuard, reading
from tradeguard import Guard, PortfolioState, StrategyState
from tradeguard.config import parse_config
from tradeguard.ledger import StrategyMetrics
from tradeguard.model import PORTFOLIO, Scope
from tradeguard.store.journal import RECORD, BaselineJournal, Snapshot, journal_path
from tradeguard.store.journal_reader import replay
from tradeguard.testing import FakeClock, MemoryStore

P, S = PortfolioState, StrategyState
CHILD_TIMEOUT = 60.0

# Peak 1.0M saved; then a new peak of 1.2M and four losses that no tick saves; then SIGKILL.
CHILD = """
import sys
from tradeguard import Guard
from tradeguard.config import parse_config
from tradeguard.testing import FakeClock

path, started = sys.argv[1], sys.argv[2] == "started"
config = parse_config({"state": {"path": path}, "breaker": {"interval_seconds": 3600}})
guard = Guard(config, clock=FakeClock())
if started:
    guard.start()  # its first tick runs at once; the next one an hour later
guard.update_portfolio(equity=1_000_000.0)
guard.save_baselines()
guard.update_portfolio(equity=1_200_000.0)
for _ in range(4):
    guard.record_trade("alpha", -10.0)
print("ready", flush=True)
sys.stdin.read()  # block until killed
"""


def _crash(db_path: Path, started: bool) -> None:
    """Run CHILD on ``db_path`` and SIGKILL it once it reported its updates."""
    env = {k: v for k, v in os.environ.items() if k != "TRADEGUARD_CONFIG"}
    arg = "started" if started else "idle"
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db_path), arg],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as child:
        assert child.stdout is not None
        readable, _, _ = select.select([child.stdout], [], [], CHILD_TIMEOUT)
        line = child.stdout.readline() if readable else ""
        child.kill()
        _out, err = child.communicate(timeout=CHILD_TIMEOUT)
    assert line.strip() == "ready", f"child did not get ready: {err}"
    assert child.returncode == -signal.SIGKILL


def _durable_end(path: Path) -> int:
    """Where the journal's header says its fsynced records end."""
    return int.from_bytes(path.read_bytes()[8:16], "little")


class TestCrash:
    @pytest.mark.parametrize("started", [True, False], ids=["started", "never-started"])
    def test_baselines_when_process_killed_then_restart_measures_from_real_peak_and_streak(
        self, make_guard: MakeGuard, db_path: Path, started: bool
    ) -> None:
        """The issue's scenario: after the SIGKILL the peak is 1.2M, not the saved 1.0M, so
        1.06M (11.7% below it) hard-halts; the streak is 4, so a 5th loss halts."""
        _crash(db_path, started)
        with reading(db_path) as store:
            assert store.load_metrics()["portfolio"]["peak_equity"] == 1_000_000.0
        guard = make_guard()
        assert guard.status()["portfolio"]["metrics"]["peak_equity"] == 1_200_000.0
        guard.record_trade("alpha", -10.0)
        assert guard.strategy_state("alpha") is S.HALTED
        assert guard.status_of(Scope.strategy("alpha")).reason.startswith("consecutive_losses")
        guard.update_portfolio(equity=1_060_000.0)
        assert guard.portfolio_state is P.HARD_HALT
        assert guard.status_of(PORTFOLIO).reason.startswith("portfolio_drawdown")

    def test_torn_tail_when_power_cut_then_ignored_logged_and_store_peak_kept(
        self, make_guard: MakeGuard, db_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Records past the last fsync that a power cut tore are ignored (and said so); the
        guard then takes the stricter of the journal and the store: the store's later peak."""
        _crash(db_path, started=False)
        path = journal_path(db_path)
        end = _durable_end(path)
        torn = bytearray(path.read_bytes())
        assert any(torn[end:]), "the unsynced records must be in the file after a SIGKILL"
        torn[end : end + RECORD] = b"\xff" * RECORD  # the first unsynced record, torn
        path.write_bytes(bytes(torn))
        with reading(db_path) as store:  # a tick saved the store after the last fsync
            saved = store.load_metrics()["portfolio"]
            store.save_metrics({"portfolio": {**saved, "peak_equity": 1_200_000.0}}, 0.0)
        with caplog.at_level(logging.ERROR, logger="tradeguard"):
            guard = make_guard()
        assert guard.portfolio_state is P.NORMAL
        assert "torn" in caplog.text
        assert guard.status()["portfolio"]["metrics"]["peak_equity"] == 1_200_000.0

    def test_journal_when_garbage_then_guard_starts_in_emergency_and_keeps_the_file(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """A journal that is not merely torn cannot be trusted: emergency, with the reason;
        the damaged file stays as it was for the operator."""
        first = make_guard()
        first.update_portfolio(equity=1_000_000.0)
        first.close()
        path = journal_path(db_path)
        damaged = bytearray(path.read_bytes())
        damaged[RECORD : 2 * RECORD] = b"\x00" * RECORD  # inside the fsynced part
        path.write_bytes(bytes(damaged))
        guard = make_guard()
        assert guard.portfolio_state is P.EMERGENCY
        assert "baselines journal" in guard.status_of(PORTFOLIO).reason
        guard.update_portfolio(equity=900_000.0)
        guard.close()
        assert path.read_bytes() == bytes(damaged)

    def test_journal_when_not_ours_then_emergency(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """Text where the journal should be (not even its header) is garbage too."""
        make_guard().close()
        journal_path(db_path).write_text("peak=1000000\n")
        assert make_guard().portfolio_state is P.EMERGENCY


class TestRestart:
    def test_velocity_when_guard_restarts_then_window_measured_from_high_before_restart(
        self, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """The equity samples in the velocity window survive: a fall within the window that
        straddles the restart is still measured from the high before it."""
        first = make_guard()
        first.update_portfolio(equity=1_000_000.0)
        clock.advance(10)
        first.update_portfolio(equity=990_000.0)
        first.close()
        clock.advance(10)
        second = make_guard()
        second.update_portfolio(equity=975_000.0)  # 2.5% below the high 20 s ago (limit 2%)
        assert second.portfolio_state is P.SOFT_HALT
        assert second.status_of(PORTFOLIO).reason.startswith("pnl_velocity")

    def test_status_when_reader_opens_store_then_journal_untouched(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """A reader (the CLI's status) loads the baselines but never writes the journal."""
        first = make_guard()
        first.update_portfolio(equity=1_000_000.0)
        first.record_trade("alpha", -10.0)
        first.close()
        path = journal_path(db_path)
        before = (path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_ino)
        reader = make_guard()
        assert reader.status()["portfolio"]["metrics"]["peak_equity"] == 1_000_000.0
        reader.tick()
        reader.close()
        assert (path.read_bytes(), path.stat().st_mtime_ns, path.stat().st_ino) == before

    def test_writer_when_it_begins_then_removes_what_a_killed_compaction_left(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """A compaction's new file that a kill left unrenamed is removed by the next writer."""
        stale = journal_path(db_path).with_name(db_path.name + ".baselines.999.0.tmp")
        stale.write_bytes(b"\0" * RECORD)
        guard = make_guard()
        assert stale.exists()  # loading reads, never writes
        guard.update_portfolio(equity=1_000_000.0)
        assert not stale.exists()

    def test_memory_store_when_updated_then_no_journal(self, db_path: Path) -> None:
        """A MemoryStore keeps nothing on disk: no journal is made beside the config's path."""
        config = parse_config({"users": USERS, "state": {"path": str(db_path)}})
        guard = Guard(config, clock=FakeClock(), store=MemoryStore())
        guard.update_portfolio(equity=1_000_000.0)
        guard.close()
        assert not journal_path(db_path).exists()

    def test_second_guard_on_same_store_when_first_holds_journal_then_first_still_journals(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """One writer at a time: a second guard sharing the store leaves the journal to the
        first (it keeps its baselines in the store); the first's records are all there."""
        first, second = make_guard(), make_guard()
        first.record_trade("alpha", -10.0)
        second.record_trade("beta", -10.0)
        first.record_trade("alpha", -10.0)
        found = replay(journal_path(db_path))
        assert found is not None
        assert found.scopes["strategy:alpha"]["consecutive_losses"] == 2


class _Ledgerish:
    """A stand-in for the ledger's snapshot: what the journal's compaction rewrites."""

    def __init__(self) -> None:
        self.losses: dict[str, int] = {}

    def snapshot(self) -> Snapshot:
        scopes = {
            f"strategy:{sid}": {
                "equity": None,
                "peak_equity": None,
                "realized_pnl": -10.0 * n,
                "trade_count": n,
                "wins": 0,
                "consecutive_losses": n,
            }
            for sid, n in self.losses.items()
        }
        return Snapshot(scopes, [])

    def loss(self, journal: BaselineJournal, sid: str) -> None:
        n = self.losses[sid] = self.losses.get(sid, 0) + 1
        figures = StrategyMetrics(
            Scope.strategy(sid), realized_pnl=-10.0 * n, trade_count=n, consecutive_losses=n
        )
        journal.strategy(sid, figures)


class TestCompaction:
    def test_compaction_when_records_written_meanwhile_then_none_lost(self, tmp_path: Path) -> None:
        """Records written between the compaction's snapshot and its rename (while the new
        file is fsynced, outside the lock) are carried into the new file."""
        ledger, lock = _Ledgerish(), threading.RLock()
        journal = BaselineJournal(tmp_path / "x.db", ledger.snapshot, lock)
        ledger.loss(journal, "a")
        pending = journal.prepare_compaction()
        ledger.loss(journal, "a")  # after the snapshot
        ledger.loss(journal, "b")  # a name first seen after the snapshot
        journal.finish_compaction(pending)
        ledger.loss(journal, "b")
        journal.close()
        found = replay(journal_path(tmp_path / "x.db"))
        assert found is not None and not found.torn
        assert found.scopes["strategy:a"]["consecutive_losses"] == 2
        assert found.scopes["strategy:b"]["consecutive_losses"] == 2

    def test_sync_when_records_past_threshold_then_compacts_and_replay_equal(
        self, tmp_path: Path
    ) -> None:
        """Compaction rewrites the journal as one snapshot: what it replays to is unchanged,
        and the file no longer holds every record ever written."""
        ledger, lock = _Ledgerish(), threading.RLock()
        db = tmp_path / "x.db"
        journal = BaselineJournal(db, ledger.snapshot, lock, compact_after=10 * RECORD)
        for _ in range(50):
            ledger.loss(journal, "a")
        before = replay(journal_path(db))
        journal.sync()
        after = replay(journal_path(db))
        journal.close()
        assert before is not None and after is not None
        assert after.scopes == before.scopes
        assert after.records < before.records

    def test_record_when_file_full_then_compacted_on_the_spot_and_nothing_lost(
        self, tmp_path: Path
    ) -> None:
        """A file filled before its timer compacted it is compacted by the write that found
        it full: every change is still there, in a file no larger than it was given."""
        ledger, lock = _Ledgerish(), threading.RLock()
        db = tmp_path / "x.db"
        journal = BaselineJournal(db, ledger.snapshot, lock, segment=16 * RECORD)
        for n in range(40):
            ledger.loss(journal, "ab" if n % 2 else "cd")
        journal.close()
        found = replay(journal_path(db))
        assert found is not None
        assert found.scopes["strategy:ab"]["consecutive_losses"] == 20
        assert found.scopes["strategy:cd"]["consecutive_losses"] == 20
        assert found.records < 40  # a snapshot and the records since, not all 40

    def test_compaction_when_file_filled_meanwhile_then_dropped_and_none_lost(
        self, tmp_path: Path
    ) -> None:
        """A write that finds the file full replaces it while the timer's compaction is
        being fsynced: that compaction is then dropped, not installed over newer records."""
        ledger, lock = _Ledgerish(), threading.RLock()
        db = tmp_path / "x.db"
        journal = BaselineJournal(db, ledger.snapshot, lock, segment=16 * RECORD)
        ledger.loss(journal, "a")
        pending = journal.prepare_compaction()
        for _ in range(40):  # fills the file: replaced on the spot, more than once
            ledger.loss(journal, "a")
        journal.finish_compaction(pending)
        journal.close()
        found = replay(journal_path(db))
        assert found is not None
        assert found.scopes["strategy:a"]["consecutive_losses"] == 41
        assert not list(tmp_path.glob("*.tmp"))


class TestTornTail:
    def _journal(self, tmp_path: Path) -> Path:
        ledger, lock = _Ledgerish(), threading.RLock()
        journal = BaselineJournal(tmp_path / "x.db", ledger.snapshot, lock)
        ledger.loss(journal, "a")
        journal.sync()
        ledger.loss(journal, "a")  # past the fsynced end
        ledger.loss(journal, "a")
        journal.close()
        path = journal_path(tmp_path / "x.db")
        # close() fsynced everything: put the durable end back to before the last two
        data = bytearray(path.read_bytes())
        end = int.from_bytes(data[8:16], "little")
        data[8:16] = (end - 2 * RECORD).to_bytes(8, "little")
        path.write_bytes(bytes(data))
        return path

    def test_replay_when_gap_before_last_record_then_stops_at_gap_and_says_torn(
        self, tmp_path: Path
    ) -> None:
        """Pages written back out of order leave a hole before later records: the replay
        stops at the hole (the later record is after a loss it cannot see) and says torn."""
        path = self._journal(tmp_path)
        data = bytearray(path.read_bytes())
        end = int.from_bytes(data[8:16], "little")
        data[end : end + RECORD] = bytes(RECORD)
        path.write_bytes(bytes(data))
        found = replay(path)
        assert found is not None and found.torn
        assert found.scopes["strategy:a"]["consecutive_losses"] == 1

    def test_replay_when_tail_intact_then_past_the_durable_end_read_too(
        self, tmp_path: Path
    ) -> None:
        """Records past the fsynced end that are whole (a SIGKILL, no power cut) count."""
        found = replay(self._journal(tmp_path))
        assert found is not None and not found.torn
        assert found.scopes["strategy:a"]["consecutive_losses"] == 3


class TestJournalFailure:
    def test_journal_when_it_cannot_be_written_then_guard_fails_closed(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """A journal that cannot be opened for writing is a store that cannot keep what it
        must: the next tick puts the guard in emergency and says why."""
        guard = make_guard()
        journal_path(db_path).with_name(db_path.name + ".baselines.lock").mkdir()
        guard.update_portfolio(equity=1_000_000.0)
        guard.tick()
        assert guard.portfolio_state is P.EMERGENCY
        assert "baselines journal" in guard.status_of(PORTFOLIO).reason
