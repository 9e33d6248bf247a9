"""Today's changes, attacked: the seals on the rows that grant authority, the read-only guard,
the HTTP halt path and incident episodes. Each test reproduces one way the guard came out less
restrictive than it should be; real guards on real SQLite files, the attacker writing the file
with sqlite3 directly and holding no key."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from contextlib import closing, suppress
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Server, guard_sections, server
from tests.api.test_access import last_change
from tests.conftest import MakeConfig, MakeGuard, MakeParts
from tests.store.support import recovering, rung
from tradeguard import Guard, Order, PortfolioState, auth
from tradeguard.assembly import Parts
from tradeguard.audit import GENESIS
from tradeguard.auth import hash_token, new_token
from tradeguard.errors import PermissionDenied, StoreUnavailable, TradeguardError
from tradeguard.model import PORTFOLIO, Operator
from tradeguard.store import SqliteStore, anchor
from tradeguard.testing import FakeClock, enroll_team

__all__ = ["guard_sections", "server"]  # a real HTTP server in front of a guard

TEAM = {"risk1": "risk_manager", "risk2": "risk_manager", "trader1": "trader"}


def forge(db_path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Write the file as someone with file access and no key does."""
    with closing(sqlite3.connect(db_path)) as db, db:
        for sql, args in statements:
            db.execute(sql, args)


def margin_free(make_parts: MakeParts) -> Parts:
    """A trading process with s1 registered and priced, nothing halted."""
    parts = make_parts()
    parts.intake.update_prices({"BTC": 100.0})
    parts.commands.register_strategy("s1", None, None)
    return parts


@pytest.fixture
def team(make_guard: MakeGuard) -> dict[str, str]:
    guard = make_guard(users=TEAM, auth={"enabled": True})
    tokens = enroll_team(guard, ("risk1", "risk2"))
    guard.close()
    return tokens


def test_schema_rolled_back_to_2_when_a_forged_admin_is_added_then_the_migration_does_not_seal_it(
    make_guard: MakeGuard, db_path: Path, team: dict[str, str]
) -> None:
    """The schema number is a plain meta row: set back to 2, the next guard migrates and seals
    every row it finds, a forged admin with the attacker's token among them. The seal must not
    be handed to a row the key's holder never wrote: mallory stays nobody."""
    token = new_token()
    salt, digest = hash_token(token)
    forge(
        db_path,
        (
            "INSERT INTO users VALUES ('mallory', 'mallory', 'admin', ?, ?, 0.0, '[]', '[]', "
            "NULL, '[]', 'forged')",
            (salt, digest),
        ),
        ("UPDATE meta SET value='2' WHERE key='schema'", ()),
    )
    guard = make_guard(users=TEAM, auth={"enabled": True})
    with pytest.raises(PermissionDenied, match="unknown user"):
        guard.authenticate("mallory", token)
    assert "mallory" not in {u["name"] for u in guard.users()}
    assert guard.portfolio_state is PortfolioState.EMERGENCY
    assert not guard.verify_audit().ok
    assert "the anchor has schema 3, the database says 2" in guard.status_of(PORTFOLIO).reason


@pytest.mark.parametrize("flag", ["0", "x", None])
def test_reader_when_the_keyed_chain_is_emptied_and_called_unkeyed_then_it_does_not_say_normal(
    make_guard: MakeGuard,
    make_config: MakeConfig,
    clock: FakeClock,
    db_path: Path,
    flag: str | None,
) -> None:
    """A keyed store in emergency; the attacker (no key) empties the chain and the states,
    calls the chain unkeyed and writes an anchor to match (an unkeyed store's anchor carries no
    seal). A guard that writes refuses the file (an unkeyed chain beside a key file was
    rewritten without the key); the reader behind `tradeguard status` must not call it normal.
    The flag set to anything but "0" or "1" ("x") did more: the guard that writes, too, read the
    chain and anchor without a key, and came back normal from the emergency."""
    guard = make_guard()
    guard.emergency("risk1", "drill")
    guard.close()
    with closing(sqlite3.connect(db_path)) as db, db:
        store_id = db.execute("SELECT value FROM meta WHERE key='store_id'").fetchone()[0]
        for table in ("audit", "audit_head", "states", "users", "approvals", "recovery"):
            db.execute(f"DELETE FROM {table}")
        if flag is None:
            db.execute("DELETE FROM meta WHERE key='audit_keyed'")
        else:
            db.execute("UPDATE meta SET value=? WHERE key='audit_keyed'", (flag,))
    mark = {"store": store_id, "seq": 0, "hash": GENESIS, "versions": 0, "schema": 3}
    anchor.anchor_path(db_path).write_text(json.dumps(mark))
    reader = Guard(make_config(), clock=clock, read_only=True)
    try:
        assert reader.portfolio_state is PortfolioState.EMERGENCY
    finally:
        reader.close()
    assert make_guard().portfolio_state is PortfolioState.EMERGENCY  # as a writer sees it


def test_halt_when_the_hashing_slot_is_taken_then_carried_out_without_waiting_for_it(
    server: Server,
) -> None:
    """A flood from many addresses (each under its own limit) keeps the one hash slot busy:
    here the test holds it, as the flood's next hash would. A person's first halt over HTTP,
    with their valid token, must be carried out all the same (as claimed, not authenticated:
    its hash is still queued)."""
    with auth._HASHING:  # the slot every admitted attempt's hash takes in turn
        try:
            halted = httpx.post(
                server.url + "/api/emergency",
                headers=server.auth("trader1"),
                json={"reason": "under a flood"},
                timeout=10,
            )
        except httpx.TimeoutException:
            halted = None
        state = server.guard.portfolio_state
    assert halted is not None and halted.status_code == 200
    assert state is PortfolioState.EMERGENCY
    change = last_change(server)
    assert change.actor == "trader1" and change.details["initiator"]["authenticated"] is False


@pytest.mark.xfail(
    strict=True,
    reason="a row put back to an older sealed copy of itself carries a good seal (README: "
    "'not caught by its seal'): a revoked token works again. Fix: bind a row to the chain: "
    "the audit record written with each sealed row names the row's key and its seal, and "
    "verify (and the read) takes a row only if it is the one the latest such record names",
)
def test_token_when_revoked_and_the_old_row_put_back_then_it_still_does_not_work(
    make_guard: MakeGuard, db_path: Path
) -> None:
    """trader1's token is revoked (a new code issued); the attacker kept the old row and puts
    it back: the revoked token must not authenticate."""
    team = {**TEAM, "admin1": "admin"}
    guard = make_guard(users=team, auth={"enabled": True})
    tokens = enroll_team(guard, ("admin1", "risk1", "risk2", "trader1"))
    with closing(sqlite3.connect(db_path)) as db:
        old = db.execute("SELECT * FROM users WHERE key='trader1'").fetchone()
    guard.issue_token("trader1", by=Operator("admin1"))
    guard.close()
    marks = ",".join("?" * len(old))
    forge(db_path, (f"INSERT OR REPLACE INTO users VALUES ({marks})", tuple(old)))
    guard = make_guard(users=team, auth={"enabled": True})
    with pytest.raises(PermissionDenied):
        guard.authenticate("trader1", tokens["trader1"])


def test_user_row_when_copied_from_another_store_under_the_same_key_then_nobody(
    make_guard: MakeGuard, make_config: MakeConfig, db_path: Path, tmp_path: Path
) -> None:
    """Two stores configured with one ``state.audit_key`` (staging and production from one
    secret): mallory, an admin in staging, copies her sealed row into production's file. The
    seal must be the production store's, not the key's: she is nobody there."""
    shared = {"audit_key": "one-secret-for-both"}
    staging = tmp_path / "staging.db"
    staging_guard = make_guard(
        make_config(users={"mallory": "admin"}, state={"path": str(staging), **shared})
    )
    token = enroll_team(staging_guard, ("mallory",))["mallory"]
    staging_guard.close()
    prod = make_config(users=TEAM, state={"path": str(db_path), **shared})
    make_guard(prod).close()
    with closing(sqlite3.connect(staging)) as db:
        row = db.execute("SELECT * FROM users WHERE key='mallory'").fetchone()
    marks = ",".join("?" * len(row))
    forge(db_path, (f"INSERT INTO users VALUES ({marks})", tuple(row)))
    guard = make_guard(prod)
    with pytest.raises(PermissionDenied):
        guard.authenticate("mallory", token)
    assert guard.portfolio_state is PortfolioState.EMERGENCY


def test_reader_when_fed_inputs_then_it_writes_no_file_and_takes_no_journal(
    make_guard: MakeGuard, make_config: MakeConfig, clock: FakeClock, db_path: Path
) -> None:
    """A read-only guard "never writes": fed a portfolio update and a trade (a dashboard
    process given the numbers), it wrote the loss baselines journal beside the store and took
    its writer's lock, which a trading guard started meanwhile then found taken (its journal
    off: a crash would restart it on the last tick's, looser, baselines)."""
    make_guard().close()

    def files() -> dict[str, bytes]:
        companions = (db_path.name + "-wal", db_path.name + "-shm")  # SQLite's, to read
        return {
            f.name: f.read_bytes() for f in db_path.parent.iterdir() if f.name not in companions
        }

    before = files()
    reader = Guard(make_config(), clock=clock, read_only=True)
    try:
        reader.update_portfolio(equity=1_000_000.0)
        reader.record_trade("s1", -10.0)
        assert files() == before
    finally:
        reader.close()
    assert files() == before


def test_rung_when_its_pnl_is_negative_zero_then_it_keeps_its_seal(db_path: Path) -> None:
    """A P&L of -0.0 (a short at its average price: -5 * 0.0) is read back from SQLite as
    0.0: sealed as written, the rung lost its seal on the way back, so it was no rung and the
    store reported tampering (an emergency) over a row tradeguard wrote itself."""
    store = SqliteStore(db_path)
    try:
        recovering(store)
        written = dataclasses.replace(rung(1), pnl_at_start=-0.0)
        store.commit(rungs=[written])
        assert store.rungs().get(written.scope) == written  # sealed: a rung, not left out
    finally:
        store.close()


@pytest.mark.parametrize("value", ["9e999", "x'00'"])  # a REAL overflowing to inf; a BLOB
def test_running_guard_when_a_row_cannot_even_be_sealed_then_it_still_adopts_halts(
    make_parts: MakeParts, make_guard: MakeGuard, db_path: Path, value: str
) -> None:
    """A users row holding a value no seal can be computed over (an infinite time, a BLOB),
    and a states row that looks like a lift: the running guard verifies the store before
    adopting the lift, and the verification raised instead of naming the row. Every adoption
    from then on failed before taking anything, so a halt a person wrote from the CLI never
    reached the guard that trades."""
    trading = margin_free(make_parts)
    forge(
        db_path,
        (
            f"INSERT INTO users VALUES ('x', 'x', 'trader', NULL, NULL, {value}, '[]', '[]', "
            "NULL, '[]', 'forged')",
            (),
        ),
        ("INSERT INTO states VALUES ('strategy:s9', 'active', 'lifted', 0.0, 'x', 1)", ()),
    )
    make_guard().halt_strategy("s1", "trader1", "stop s1")  # the CLI, another process
    with suppress(Exception):  # as the watcher's thread: logged, next interval
        trading.sync.watch()
    assert not trading.orders.check(Order("s1", "BTC", "buy", 1.0, 100.0)).accepted


def test_emergency_when_a_state_version_is_made_infinite_then_published_and_marked(
    make_guard: MakeGuard, db_path: Path
) -> None:
    """A states row's version set to 9e999 (infinite) while a guard runs: the next write's
    anchor mark (the sum of the versions) raised OverflowError, not StoreUnavailable, so a
    person's emergency was in force in memory only: never published (no emergency stop, no
    cancel of the venues' orders), no marker for the next start, and the caller got a crash."""
    guard = make_guard()
    guard.register_strategy("s1")
    guard.halt_strategy("s1", "trader1", "first")
    stops: list[object] = []
    guard.register_callback("emergency_stop", stops.append)
    forge(db_path, ("UPDATE states SET version=9e999 WHERE scope='strategy:s1'", ()))
    with suppress(StoreUnavailable):  # the store failed: said, and the halt carried out
        guard.emergency("risk1", "stop everything")
    guard.flush()
    assert guard.portfolio_state is PortfolioState.EMERGENCY
    assert stops, "the emergency was never published: no emergency stop ran"
    assert db_path.with_name(db_path.name + ".emergency").exists()


def test_running_guard_when_a_state_row_loses_its_scope_then_it_still_adopts_halts(
    make_parts: MakeParts, make_guard: MakeGuard, db_path: Path
) -> None:
    """A states row whose scope is NULL (SQLite lets a TEXT primary key be NULL) made reading
    the states raise AttributeError, not StoreUnavailable: every adoption failed from then on,
    and a halt a person wrote from the CLI never reached the guard that trades."""
    trading = margin_free(make_parts)
    forge(db_path, ("INSERT INTO states VALUES (NULL, 'active', 'x', 0.0, 'x', 1)", ()))
    make_guard().halt_strategy("s1", "trader1", "stop s1")  # the CLI, another process
    with suppress(Exception):  # as the watcher's thread: logged, next interval
        trading.sync.watch()
    assert not trading.orders.check(Order("s1", "BTC", "buy", 1.0, 100.0)).accepted


def test_two_person_administration_when_its_record_is_deleted_from_the_history_then_it_holds(
    make_guard: MakeGuard, db_path: Path
) -> None:
    """Established two-person administration is read from the user history, a table with no
    seal and outside the chain: an admin with write access to the file (not the key) deletes
    the 'established' event, then creates a second lifting user alone, with a plain code she
    redeems herself: two lifting credentials in one hand. The chain recorded the
    establishment; the act must still be a two-person request."""
    team = {**TEAM, "admin1": "admin"}
    guard = make_guard(users=team, auth={"enabled": True})
    enroll_team(guard, ("admin1", "risk1", "risk2"))
    assert guard.two_person_administration
    guard.close()
    forge(
        db_path,
        ("DROP TRIGGER user_history_no_delete", ()),  # a guard's next open puts it back
        ("DELETE FROM user_history WHERE action='established'", ()),
    )
    guard = make_guard(users=team, auth={"enabled": True})
    change = guard.add_user("sidekick", "risk_manager", by=Operator("admin1"))
    assert change.request is not None, "a lifting user created by one person alone"


def test_role_change_when_its_history_event_is_edited_then_what_was_approved_is_done(
    make_guard: MakeGuard, db_path: Path
) -> None:
    """A two-person request keeps the role it asks for in the user history (no seal, outside
    the chain); the approval row the approver sees (sealed) says "role risk2 (trader)". Edited
    to "admin" in the history, the approved demotion was carried out as a promotion."""
    team = {**TEAM, "admin1": "admin"}
    guard = make_guard(users=team, auth={"enabled": True})
    enroll_team(guard, ("admin1", "risk1", "risk2"))
    change = guard.set_role("risk2", "trader", by=Operator("admin1"))
    assert change.request is not None and "(trader)" in change.request.reason
    forge(
        db_path,
        ("DROP TRIGGER user_history_no_update", ()),  # a guard's next open puts it back
        (
            "UPDATE user_history SET details=replace(details, '\"trader\"', '\"admin\"') "
            "WHERE action='requested'",
            (),
        ),
    )
    with suppress(TradeguardError):  # refused as stale: fine
        guard.approve(change.request.id, Operator("risk1"))
    assert {u["name"]: u["role"] for u in guard.users()}["risk2"] != "admin"


def test_promotion_when_its_split_code_is_struck_from_the_history_then_no_lift_for_the_old_token(
    make_guard: MakeGuard, db_path: Path
) -> None:
    """An admin adds a trader alone (a one-person act: she saw the code, so she holds the
    token), then asks to promote it into a lifting role, which ends in a split code so that
    her copy never lifts. Whether it ends in one was read from the history event (its share);
    struck out there, the approved promotion kept the credential she holds: two lifting
    credentials in one hand."""
    team = {**TEAM, "admin1": "admin"}
    guard = make_guard(users=team, auth={"enabled": True})
    enroll_team(guard, ("admin1", "risk1", "risk2"))
    added = guard.add_user("sidekick", "trader", by=Operator("admin1"))
    token = guard.enroll("sidekick", added.code or "")
    change = guard.set_role("sidekick", "risk_manager", by=Operator("admin1"))
    assert change.request is not None
    forge(
        db_path,
        ("DROP TRIGGER user_history_no_update", ()),
        (
            "UPDATE user_history SET details=json_remove(details, '$.share') "
            "WHERE action='requested'",
            (),
        ),
    )
    with suppress(TradeguardError):  # refused as stale: fine
        guard.approve(change.request.id, Operator("risk1"))
    roles = {u["name"]: u["role"] for u in guard.users()}
    held = None
    with suppress(PermissionDenied):
        held = guard.authenticate("sidekick", token)
    assert held is None or roles["sidekick"] == "trader"


@pytest.mark.xfail(
    strict=True,
    reason="the genomes table has no seal: a blacklist flag edited to false (no key) lets the "
    "genome breed and register again. Fix: seal genome rows like users and approvals "
    "(codec.SEALED, a seal column, sealed at the migration), or decide 'blacklisted' from the "
    "chain's genome:blacklisted records (and genome:unblocked, a two-person act)",
)
def test_genome_when_its_blacklist_flag_is_cleared_in_the_file_then_still_blacklisted(
    make_parts: MakeParts, make_guard: MakeGuard, db_path: Path
) -> None:
    """The KillChain blacklisted a genome (an audited act; unblocking it takes two people);
    someone with the file, not the key, sets its row's flag back to false."""
    genome = {"lookback": 20, "threshold": 0.3}
    parts = make_parts()
    parts.commands.register_strategy("s1", None, genome)
    fp = parts.genomes.fingerprint(genome)
    assert parts.genomes.blacklist(fp, "incident-1", "tied to the cause") is not None
    forge(
        db_path,
        ("UPDATE genomes SET data=json_set(data, '$.blacklisted', json('false'))", ()),
    )
    assert make_guard().is_blacklisted(genome)
