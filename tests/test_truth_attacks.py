"""Issue 15, attacked: ways the guard still came back less restrictive than it should be.

Each test reproduces one finding with real guards on a real SQLite file (and, where the CLI is
the other party, a real CLI process): a lift another process made reaching the order gate
without this guard's judgement, a halt written by a guard that shares its store object (or to
a file put in place of the one a guard has open) never reaching the guard, and a tail cut
from the chain with the anchor rewritten to match.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from contextlib import closing, suppress
from pathlib import Path

import pytest

from tests.conftest import MakeConfig, MakeGuard, MakeParts
from tradeguard import Guard, Order, PortfolioState, StrategyState
from tradeguard.assembly import Parts
from tradeguard.audit import GENESIS, AuditEntry, AuditRecord, chain_hash
from tradeguard.auth import hash_token
from tradeguard.errors import TradeguardError
from tradeguard.model import PORTFOLIO, Scope
from tradeguard.state import Command
from tradeguard.store import Approval, Rung, SqliteStore, StateWrite
from tradeguard.testing import FakeClock, enroll_team

ROOT = Path(__file__).resolve().parent.parent
S1 = Scope.strategy("s1")


def buy(strategy: str = "s1") -> Order:
    return Order(strategy, "BTC", "buy", 1.0, 100.0)


def margin_breached(make_parts: MakeParts) -> Parts:
    """A trading process whose portfolio is soft-halted by margin at 95% (limit 90%)."""
    parts = make_parts()
    parts.intake.update_prices({"BTC": 100.0})
    parts.commands.register_strategy("s1", None, None)
    parts.intake.update_portfolio(equity=1e6, margin_used=95.0, margin_available=5.0)
    assert parts.core.book.portfolio_state is PortfolioState.SOFT_HALT
    return parts


def position_breached(make_parts: MakeParts) -> Parts:
    """A trading process whose s1 is halted by a position of 50% of equity (limit 20%)."""
    parts = make_parts()
    parts.intake.update_prices({"BTC": 100.0})
    parts.commands.register_strategy("s1", None, None)
    parts.intake.update_portfolio(equity=1_000.0)
    parts.intake.update_position("s1", "BTC", 5.0, 100.0)
    assert parts.core.book.status_of(S1).state == StrategyState.HALTED
    return parts


def attempt(act: Callable[[], object]) -> None:
    """A person's act that may well be refused (the lift it asked for was made elsewhere)."""
    with suppress(TradeguardError):
        act()


class TestLiftsMetByALiftHere:
    """A lift made elsewhere, then a person here asks for a lift (or changes a limit): the
    guard looks at the store first. What it adopts there is judged like every adoption."""

    @pytest.mark.parametrize("act", ["reset", "resume_other", "set_limit"])
    def test_reset_elsewhere_when_person_here_acts_then_margin_breach_rehalts_before_any_order(
        self, make_parts: MakeParts, make_guard: MakeGuard, act: str
    ) -> None:
        """Margin stays at 95%, the CLI resets; a second risk manager here resets too (or
        resumes another strategy, or changes a limit): the book must stay halted."""
        trading = margin_breached(make_parts)
        if act == "resume_other":
            trading.commands.halt_strategy("s2", "trader1", "for the resume")
        make_guard().reset("risk1", reason="looked fine from the CLI")
        acts: dict[str, Callable[[], object]] = {
            "reset": lambda: trading.approvals.reset("risk2", "me too"),
            "resume_other": lambda: trading.commands.resume_strategy("s2", "senior1", "ok"),
            "set_limit": lambda: trading.limits.set_limit(
                "daily_loss",
                "risk1",
                limit=0.01,
                action=None,
                enabled=None,
                reason="tighter",
            ),
        }
        attempt(acts[act])
        assert not trading.orders.check(buy()).accepted
        assert trading.core.book.portfolio_state is PortfolioState.SOFT_HALT

    def test_resume_elsewhere_when_person_here_resumes_then_position_breach_rehalts(
        self, make_parts: MakeParts, make_guard: MakeGuard
    ) -> None:
        """A position stays at 50%, the CLI resumes s1; a senior trader here resumes s1 too:
        s1 must be halted again before any order of it is judged."""
        trading = position_breached(make_parts)
        make_guard().resume_strategy("s1", "senior1", reason="looked fine from the CLI")
        attempt(lambda: trading.commands.resume_strategy("s1", "senior1", "me too"))
        assert not trading.orders.check(buy()).accepted
        assert trading.core.book.status_of(S1).state == StrategyState.HALTED


class LiftedMeanwhile(SqliteStore):
    """The trading process's own store on the shared file, where another process makes its
    lift just before this one's next state write (the race a lift loses: a real second guard
    writes to the real file, in between)."""

    other: Callable[[], object] | None = None

    def commit(
        self,
        *,
        states: Sequence[StateWrite] = (),
        audit: Sequence[AuditEntry] = (),
        approvals: Sequence[Approval] = (),
        rungs: Sequence[Rung] = (),
    ) -> list[AuditRecord]:
        if states and self.other is not None:
            other, self.other = self.other, None
            other()
        return super().commit(states=states, audit=audit, approvals=approvals, rungs=rungs)


def test_reset_when_it_loses_the_race_to_a_reset_elsewhere_then_the_lift_is_judged(
    make_guard: MakeGuard, db_path: Path
) -> None:
    """Two risk managers reset at once, one here and one in the CLI, while margin stays at
    95%: this guard's write loses; the reset it takes from the store is still judged."""
    cli = make_guard()
    store = LiftedMeanwhile(db_path)
    trading = make_guard(store=store)
    trading.update_prices({"BTC": 100.0})
    trading.register_strategy("s1")
    trading.update_portfolio(equity=1e6, margin_used=95.0, margin_available=5.0)
    assert trading.portfolio_state is PortfolioState.SOFT_HALT
    cli.tick()
    store.other = lambda: cli.reset("risk1", reason="from the CLI")
    attempt(lambda: trading.reset("risk2", "here"))
    assert not trading.check_order(buy()).accepted
    assert trading.portfolio_state is PortfolioState.SOFT_HALT


def test_halt_when_two_guards_share_one_store_object_then_the_other_adopts_it(
    make_config: MakeConfig, db_path: Path, clock: FakeClock
) -> None:
    """Two guards in one process handed the same store (``store=``): a halt one writes moves
    the store's data version for the other too, or the other never sees it."""
    store = SqliteStore(db_path)
    writer = Guard(make_config(), clock=clock, store=store)
    trading = Guard(make_config(), clock=clock, store=store)
    try:
        trading.update_prices({"BTC": 100.0})
        trading.register_strategy("s1")
        writer.halt_strategy("s1", "trader1", "stop s1")
        assert trading._backstop._sync.watch()  # what its watcher does every interval
        assert trading.strategy_state("s1") is StrategyState.HALTED
        assert not trading.check_order(buy()).accepted
    finally:
        trading.close()
        writer.close()


def cli_halt(config: Path, strategy: str) -> subprocess.CompletedProcess[str]:
    """``tradeguard halt-strategy`` in a real CLI process."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from tradeguard.cli import app; app()",
            "halt-strategy",
            strategy,
            "--force",
            "-c",
            str(config),
            "-u",
            "trader1",
            "-r",
            "from the CLI",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.parametrize("how", ["moved_aside", "removed"])
def test_store_file_when_replaced_under_a_running_guard_then_it_stops_trading(
    make_parts: MakeParts, db_path: Path, tmp_path: Path, how: str
) -> None:
    """The file a guard has open is moved aside (or removed) and the CLI halts s1 in the file
    now at that path: the guard reads an orphan that will never see a halt, so it must stop,
    not go on trading on it."""
    trading = make_parts()
    trading.intake.update_prices({"BTC": 100.0})
    trading.commands.register_strategy("s1", None, None)
    for suffix in ("", "-wal", "-shm"):
        found = db_path.with_name(db_path.name + suffix)
        if found.exists() and how == "moved_aside":
            found.rename(tmp_path / f"aside.db{suffix}")
        elif found.exists():
            found.unlink()
    config = tmp_path / "tradeguard.yaml"
    config.write_text(
        f"users:\n  trader1: trader\nstate:\n  path: {db_path}\nauth:\n  enabled: false\n"
    )
    done = cli_halt(config, "s1")
    assert done.returncode == 0, done.stderr
    trading.sync.watch()  # what its watcher does every interval
    assert not trading.orders.check(buy()).accepted


def test_tail_cut_when_anchor_rewritten_to_match_then_guard_starts_in_emergency(
    make_guard: MakeGuard, db_path: Path
) -> None:
    """An attacker with the file and the anchor but not the key deletes a person's halt (its
    record, its row), rewinds the head and writes an anchor for the cut chain: the anchor
    must be as unforgeable as the chain it vouches for."""
    guard = make_guard()
    guard.halt_strategy("s0", "trader1", "earlier")
    guard.halt_strategy("s1", "trader1", "a person's halt")
    guard.close()
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)")
        db.execute("DELETE FROM states WHERE scope = 'strategy:s1'")
        seq, head = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        db.execute("UPDATE audit_head SET seq=?, hash=?", (seq, head))
    with closing(sqlite3.connect(db_path)) as db:
        store_id = db.execute("SELECT value FROM meta WHERE key='store_id'").fetchone()[0]
        versions = db.execute("SELECT total(version) FROM states").fetchone()[0]
    anchor = db_path.with_name(db_path.name + ".anchor")
    forged = {"store": store_id, "seq": seq, "hash": head, "versions": int(versions)}
    anchor.write_text(json.dumps(forged))
    store = SqliteStore(db_path)
    try:
        assert "not sealed" in (store.trust_problem() or "")
        assert not store.verify_audit().ok
    finally:
        store.close()
    again = make_guard()
    assert again.portfolio_state is PortfolioState.EMERGENCY
    assert "store_untrusted" in again.status()["portfolio"]["reason"]


def test_chain_when_rewritten_unkeyed_beside_its_key_file_then_store_refused(
    make_guard: MakeGuard, db_path: Path
) -> None:
    """Without the key, an attacker rewrites the whole chain unkeyed (plain SHA-256, which
    anyone can compute) without a person's halt, marks the store unkeyed and writes an
    unsealed anchor: a store whose key file exists is keyed, whatever its table says."""
    guard = make_guard()
    guard.halt_strategy("s0", "trader1", "earlier")
    guard.halt_strategy("s1", "trader1", "a person's halt")
    guard.close()
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)")
        db.execute("DELETE FROM states WHERE scope = 'strategy:s1'")
        prev, seq = GENESIS, 0
        for seq, entry in db.execute("SELECT seq, entry FROM audit ORDER BY seq").fetchall():
            digest = chain_hash(prev, seq, entry)
            db.execute("UPDATE audit SET prev_hash=?, hash=? WHERE seq=?", (prev, digest, seq))
            prev = digest
        db.execute("UPDATE audit_head SET seq=?, hash=?", (seq, prev))
        db.execute("UPDATE meta SET value='0' WHERE key='audit_keyed'")
        store_id = db.execute("SELECT value FROM meta WHERE key='store_id'").fetchone()[0]
        versions = db.execute("SELECT total(version) FROM states").fetchone()[0]
    anchor = db_path.with_name(db_path.name + ".anchor")
    anchor.write_text(
        json.dumps({"store": store_id, "seq": seq, "hash": prev, "versions": int(versions)})
    )
    again = make_guard()
    assert again.portfolio_state is PortfolioState.EMERGENCY
    assert not again.check_order(buy()).accepted


class Boasting(float):
    """A float that says it is within every bound and below every limit (and NaN would too)."""

    def __le__(self, other: object) -> bool:
        return True

    def __lt__(self, other: object) -> bool:
        return True

    def __gt__(self, other: object) -> bool:
        return True

    def __ge__(self, other: object) -> bool:
        return True


class BoastingInt(int):
    """An int that says it is within every bound and below every limit."""

    def __le__(self, other: object) -> bool:
        return True

    def __lt__(self, other: object) -> bool:
        return True

    def __gt__(self, other: object) -> bool:
        return True


class EqualToAll(str):
    """An id that claims to equal (and hash like) a registered strategy's."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash("s1")


@pytest.mark.parametrize(
    "order",
    [
        Order("s1", "BTC", "buy", Boasting(1e300), 100.0),
        Order("s1", "BTC", "buy", Boasting("nan"), 100.0),
        Order("s1", "BTC", "buy", 1.0, Boasting("nan")),
        Order("s1", "BTC", "buy", BoastingInt(10**30), 100.0),
        Order(EqualToAll("ghost"), "BTC", "buy", 1.0, 100.0),
    ],
    ids=["float_1e300", "float_nan_quantity", "float_nan_price", "int_1e30", "id_equal_to_all"],
)
def test_order_when_its_numbers_or_id_lie_about_themselves_then_judged_by_value(
    make_guard: MakeGuard, order: Order
) -> None:
    """A subclass whose comparisons say it is within every bound (numpy's float64 is judged by
    value too) is judged as the plain value it holds: 1e300, NaN or an unknown id is refused,
    with no size limit configured (the magnitude bound is the only one left)."""
    unlimited = dict.fromkeys(("max_order_quantity", "max_order_notional", "max_position_notional"))
    guard = make_guard(pretrade={"limits": {**unlimited, "max_gross_exposure": None}})
    guard.update_prices({"BTC": 100.0})
    guard.register_strategy("s1")
    assert not guard.check_order(order).accepted


TEAM = {
    "admin1": "admin",
    "admin2": "admin",
    "risk1": "risk_manager",
    "risk2": "risk_manager",
    "trader1": "trader",
}


def _team(make_guard: MakeGuard) -> None:
    """Four people enrolled as a team is; an emergency declared; the guard closed."""
    guard = make_guard(users=TEAM, auth={"enabled": True})
    enroll_team(guard, ("admin1", "admin2", "risk1", "risk2"))
    guard.emergency("trader1", "a person's emergency")
    guard.close()


def test_users_table_when_tokens_minted_without_the_key_then_no_emergency_is_lifted(
    make_guard: MakeGuard, db_path: Path, clock: FakeClock
) -> None:
    """With the database file alone (no key, no anchor touched), an attacker writes token
    hashes of their own for two risk managers and lifts the emergency as both of them."""
    _team(make_guard)
    with closing(sqlite3.connect(db_path)) as db, db:
        for name in ("risk1", "risk2"):
            salt, digest = hash_token(f"minted-{name}")
            db.execute("UPDATE users SET salt=?, token_hash=? WHERE name=?", (salt, digest, name))
    clock.advance(3600)  # past every cool-down
    guard = make_guard(users=TEAM, auth={"enabled": True})
    with suppress(TradeguardError):
        first = guard.authenticate("risk1", "minted-risk1")
        second = guard.authenticate("risk2", "minted-risk2")
        assert first is not None and second is not None
        guard.approve(guard.reset(first, "minted").id, second)
    assert guard.portfolio_state is PortfolioState.EMERGENCY


def test_approvals_table_when_request_forged_without_the_key_then_one_person_cannot_lift(
    make_guard: MakeGuard, db_path: Path, clock: FakeClock
) -> None:
    """With the database file alone, risk2 writes a pending reset request in risk1's name and
    approves it: one person has lifted an emergency that takes two."""
    _team(make_guard)
    clock.advance(3600)
    with closing(sqlite3.connect(db_path)) as db, db:
        version = db.execute("SELECT version FROM states WHERE scope='portfolio'").fetchone()[0]
        db.execute(
            "INSERT INTO approvals (id, action, scope, requested_by, requested_at, expires_at, "
            "target_version, status, approved_by, decided_at, reason) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                "forged",
                "reset",
                "portfolio",
                "risk1",
                clock.time(),
                clock.time() + 600,
                version,
                "pending",
                None,
                None,
                "forged",
            ),
        )
    guard = make_guard(users=TEAM, auth={"enabled": True})
    with suppress(TradeguardError):
        guard.approve("forged", "risk2")
    assert guard.portfolio_state is PortfolioState.EMERGENCY


def test_guard_when_inherited_by_a_forked_child_then_the_child_refuses_every_order(
    make_guard: MakeGuard,
) -> None:
    """A trading process forks workers after building its guard (multiprocessing's default on
    Linux): the child's copy has no watcher and may not use the store's connection, so a CLI
    halt never reached it and it went on accepting; it must refuse instead."""
    guard = make_guard()
    guard.update_prices({"BTC": 100.0})
    guard.register_strategy("s1")
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe and exits
        verdict = guard.check_order(buy()).accepted
        os.write(write, json.dumps([verdict, guard.status_of(PORTFOLIO).reason]).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        accepted, reason = json.loads(answer.read())
    os.waitpid(child, 0)
    assert not accepted
    assert "forked" in reason
    assert guard.check_order(buy()).accepted  # the parent's own guard is untouched


@pytest.mark.parametrize(
    ("lifted", "emergency_first"),
    [("strategy:s1", False), ("strategy:s1", True), ("portfolio", True)],
    ids=["strategy_halt", "strategy_halt_in_an_emergency", "emergency"],
)
def test_states_row_when_lifted_without_the_key_under_a_running_guard_then_not_adopted(
    make_parts: MakeParts, db_path: Path, lifted: str, emergency_first: bool
) -> None:
    """``UPDATE states SET state=<lifted>, version=version+1``, no audit record, while a guard
    runs: its watcher adopted the row as a lift made elsewhere (a person's halt, or the
    emergency, gone until the next restart's replay). Adopted lifts are checked against the
    chain first; a table the chain does not produce is an untrusted store."""
    trading = make_parts()
    trading.intake.update_prices({"BTC": 100.0})
    trading.commands.halt_strategy("s1", "trader1", "a person's halt")
    if emergency_first:
        trading.commands.manual("risk1", Command.EMERGENCY, PORTFOLIO, "a person's emergency")
    state = "normal" if lifted == "portfolio" else "active"
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("UPDATE states SET state=?, version=version+1 WHERE scope=?", (state, lifted))
    trading.sync.watch()  # what its watcher does every interval
    assert not trading.orders.check(buy()).accepted
    assert trading.core.book.portfolio_state is PortfolioState.EMERGENCY
    assert trading.core.book.status_of(S1).state == StrategyState.HALTED
