"""The hash-chained audit log: intact chains verify, every kind of tampering is caught, and the
CLI reads the store on its own, with no guard running."""

from __future__ import annotations

import itertools
import json
import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from tests.conftest import USERS, MakeGuard
from tradeguard import audit
from tradeguard.audit import Verification
from tradeguard.store import SqliteStore, keyfile

CLI = Path(sys.executable).parent / "tradeguard"
RECORDS = 6


def _write_log(make_guard: MakeGuard) -> None:
    """Five state changes through a real guard (the emergency also opens its incident: a sixth
    record), then close it so the file is all that's left."""
    guard = make_guard()
    guard.halt_strategy("alpha", "trader1", "alpha misbehaves")
    guard.halt_strategy("beta", "trader1", "beta misbehaves")
    guard.portfolio_halt("risk1", "slow down")
    guard.portfolio_close("risk1", "flatten")
    guard.emergency("risk1", "lock it all")
    guard.close()


def _verify(db_path: Path) -> Verification:
    store = SqliteStore(db_path)
    try:
        return store.verify_audit()
    finally:
        store.close()


def _execute(db_path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Tamper with the file directly, in one transaction, as an attacker with the file would."""
    with closing(sqlite3.connect(db_path)) as db, db:
        for sql, params in statements:
            db.execute(sql, params)


def _row(db_path: Path, seq: int) -> tuple[float, str, str, str]:
    with closing(sqlite3.connect(db_path)) as db:
        row = db.execute("SELECT ts, entry, prev_hash, hash FROM audit WHERE seq=?", (seq,))
        found = row.fetchone()
    assert found is not None
    return found[0], found[1], found[2], found[3]


def _edited_entry(db_path: Path, seq: int, reason: str) -> str:
    entry = json.loads(_row(db_path, seq)[1])
    entry["reason"] = reason
    return json.dumps(entry, sort_keys=True, separators=(",", ":"))


def _unkeyed(db_path: Path) -> None:
    """A store begun before stores were keyed by default: its chain says it is unkeyed."""
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('audit_keyed', '0')")


@pytest.fixture
def log_path(make_guard: MakeGuard, db_path: Path) -> Path:
    _write_log(make_guard)
    return db_path


@pytest.fixture
def config_file(tmp_path: Path, db_path: Path) -> Path:
    path = tmp_path / "tradeguard.yaml"
    path.write_text(yaml.safe_dump({"users": USERS, "state": {"path": str(db_path)}}))
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRADEGUARD_CONFIG"}
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


class TestVerifyChain:
    def test_verify_when_log_intact_then_ok_with_every_record_counted(self, log_path: Path) -> None:
        """An untouched log verifies and counts every record."""
        result = _verify(log_path)
        assert (result.ok, result.checked, result.first_bad_seq) == (True, RECORDS, None)

    def test_verify_when_entry_reason_edited_then_names_that_record(self, log_path: Path) -> None:
        """Rewriting a row's entry JSON breaks that row's hash."""
        forged = _edited_entry(log_path, 3, "nothing to see here")
        _execute(log_path, ("UPDATE audit SET entry=? WHERE seq=3", (forged,)))
        result = _verify(log_path)
        assert not result.ok
        assert result.first_bad_seq == 3
        assert result.checked == 2
        assert "altered" in result.problem

    def test_verify_when_edited_row_rehashed_then_names_the_next_record(
        self, log_path: Path
    ) -> None:
        """Recomputing the edited row's own hash moves the break to the row after it."""
        _ts, _entry, prev, _hash = _row(log_path, 3)
        forged = _edited_entry(log_path, 3, "nothing to see here")
        rehashed = audit.chain_hash(prev, 3, forged, keyfile.load(keyfile.key_path(log_path)))
        _execute(log_path, ("UPDATE audit SET entry=?, hash=? WHERE seq=3", (forged, rehashed)))
        result = _verify(log_path)
        assert (result.ok, result.first_bad_seq) == (False, 4)

    def test_verify_when_middle_row_deleted_then_names_the_missing_record(
        self, log_path: Path
    ) -> None:
        """A gap in the sequence is reported at the first missing number."""
        _execute(log_path, ("DELETE FROM audit WHERE seq=3", ()))
        result = _verify(log_path)
        assert (result.ok, result.first_bad_seq, result.checked) == (False, 3, 2)
        assert "missing" in result.problem

    def test_verify_when_two_rows_swapped_then_names_the_first_of_them(
        self, log_path: Path
    ) -> None:
        """Exchanging the contents of records 2 and 3 (a reorder) is caught at record 2."""
        two, three = _row(log_path, 2), _row(log_path, 3)
        swap = "UPDATE audit SET ts=?, entry=?, prev_hash=?, hash=? WHERE seq=?"
        _execute(log_path, (swap, (*three, 2)), (swap, (*two, 3)))
        result = _verify(log_path)
        assert (result.ok, result.first_bad_seq) == (False, 2)
        assert "reordered" in result.problem

    def test_verify_when_only_entries_swapped_then_names_the_first_of_them(
        self, log_path: Path
    ) -> None:
        """Exchanging just the entry JSON of two rows is caught at the earlier one."""
        two, four = _row(log_path, 2), _row(log_path, 4)
        swap = "UPDATE audit SET entry=? WHERE seq=?"
        _execute(log_path, (swap, (four[1], 2)), (swap, (two[1], 4)))
        result = _verify(log_path)
        assert (result.ok, result.first_bad_seq) == (False, 2)

    @pytest.mark.parametrize("kept", [0, 1, 3, 4])
    def test_verify_when_tail_deleted_then_head_names_first_removed_record(
        self, log_path: Path, kept: int
    ) -> None:
        """Deleting the last records leaves a valid-looking chain that the head still catches."""
        _execute(log_path, ("DELETE FROM audit WHERE seq>?", (kept,)))
        result = _verify(log_path)
        assert (result.ok, result.checked, result.first_bad_seq) == (False, kept, kept + 1)
        assert "removed from the end" in result.problem

    def test_verify_when_head_deleted_while_records_exist_then_fails(self, log_path: Path) -> None:
        """Records without a head cannot be trusted to be complete."""
        _execute(log_path, ("DELETE FROM audit_head", ()))
        result = _verify(log_path)
        assert not result.ok
        assert result.checked == RECORDS
        assert "head is missing" in result.problem

    def test_verify_when_ts_column_edited_then_fails_or_record_still_listed(
        self, log_path: Path
    ) -> None:
        """Backdating a row's ts column must not silently hide it from a ``since`` listing."""
        ts = _row(log_path, 3)[0]
        _execute(log_path, ("UPDATE audit SET ts=? WHERE seq=3", (ts - 86_400.0,)))
        store = SqliteStore(log_path)
        try:
            result = store.verify_audit()
            listed = [r.seq for r in store.audit_records(since=ts)]
        finally:
            store.close()
        assert not result.ok or 3 in listed, f"verify ok={result.ok}, since-listing {listed}"

    def test_verify_when_head_rewound_then_fails(self, log_path: Path) -> None:
        """A head that points at an earlier record than the last stored one is caught."""
        _ts, _entry, _prev, digest = _row(log_path, 2)
        _execute(log_path, ("UPDATE audit_head SET seq=2, hash=?", (digest,)))
        result = _verify(log_path)
        assert not result.ok
        assert result.checked == RECORDS

    def test_verify_when_guard_reopens_tampered_file_then_guard_reports_it(
        self, log_path: Path, make_guard: MakeGuard
    ) -> None:
        """Guard.verify_audit reads the same chain the store checks."""
        forged = _edited_entry(log_path, 1, "edited")
        _execute(log_path, ("UPDATE audit SET entry=? WHERE seq=1", (forged,)))
        result = make_guard().verify_audit()
        assert (result.ok, result.first_bad_seq) == (False, 1)


class TestAuditVerifyCommand:
    def test_audit_verify_when_log_intact_then_exits_zero_with_ok(
        self, log_path: Path, config_file: Path
    ) -> None:
        """`tradeguard audit verify` prints ok and the record count on an intact chain."""
        done = _cli("audit", "verify", "-c", str(config_file))
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("ok")
        assert f"{RECORDS} records" in done.stdout

    def test_audit_verify_when_entry_edited_then_fails_naming_record(
        self, log_path: Path, config_file: Path
    ) -> None:
        """After an edit the command exits non-zero and names record 4 on stderr."""
        forged = _edited_entry(log_path, 4, "all fine")
        _execute(log_path, ("UPDATE audit SET entry=? WHERE seq=4", (forged,)))
        done = _cli("audit", "verify", "-c", str(config_file))
        assert done.returncode != 0
        assert re.search(r"record 4\b", done.stderr), done.stderr
        assert not done.stdout.startswith("ok")

    def test_audit_verify_when_tail_truncated_then_fails_naming_record(
        self, log_path: Path, config_file: Path
    ) -> None:
        """A truncated log makes the command fail, naming the first removed record."""
        _execute(log_path, ("DELETE FROM audit WHERE seq>=?", (RECORDS,)))
        done = _cli("audit", "verify", "-c", str(config_file))
        assert done.returncode != 0
        assert re.search(rf"record {RECORDS}\b", done.stderr), done.stderr


class TestAuditShowCommand:
    def test_audit_show_when_json_then_lists_every_record_in_order(
        self, log_path: Path, config_file: Path
    ) -> None:
        """`audit show --json` prints all records, oldest first, with their chain hashes."""
        done = _cli("audit", "show", "--json", "-c", str(config_file))
        assert done.returncode == 0, done.stderr
        records = json.loads(done.stdout)
        assert [r["seq"] for r in records] == list(range(1, RECORDS + 1))
        assert [r["reason"] for r in records] == [
            "alpha misbehaves",
            "beta misbehaves",
            "slow down",
            "flatten",
            "lock it all",
            "lock it all",  # the emergency's incident, opened with the same reason
        ]
        assert records[-2]["after"] == "emergency" and records[-1]["action"] == "incident:opened"
        assert records[0]["prev_hash"] == audit.GENESIS
        assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(records))


class TestStatusCommand:
    def test_status_when_other_guard_halted_and_closed_then_shows_halt(
        self, make_guard: MakeGuard, config_file: Path
    ) -> None:
        """`status --json` reads halts written by a guard that is no longer running."""
        writer = make_guard()
        writer.halt_strategy("alpha", "trader1", "alpha misbehaves")
        writer.portfolio_close("risk1", "flatten everything")
        writer.close()
        done = _cli("status", "--json", "-c", str(config_file))
        assert done.returncode == 0, done.stderr
        snapshot = json.loads(done.stdout)
        portfolio = snapshot["portfolio"]
        assert (portfolio["state"], portfolio["reason"]) == ("hard_halt", "flatten everything")
        assert (portfolio["actor"], portfolio["version"]) == ("risk1", 1)
        assert snapshot["strategies"]["alpha"]["state"] == "halted"
        assert snapshot["store"]["ok"] is True

    def test_status_when_store_is_garbage_then_reports_emergency(
        self, db_path: Path, config_file: Path
    ) -> None:
        """The CLI fails closed too: an unreadable store shows as emergency, store not ok."""
        db_path.write_bytes(b"not a database at all " * 200)
        done = _cli("status", "--json", "-c", str(config_file))
        assert done.returncode == 1, done.stderr  # a script can tell the store is broken
        snapshot = json.loads(done.stdout)
        assert snapshot["portfolio"]["state"] == "emergency"
        assert snapshot["portfolio"]["reason"].startswith("store_unavailable")
        assert snapshot["store"]["ok"] is False


class TestKeyedChain:
    """With state.audit_key the chain is HMAC-SHA256: rewriting it needs the key."""

    def test_keyed_chain_when_rewritten_without_key_then_detected(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """An attacker who edits a record and recomputes plain SHA-256 hashes and the head is caught."""
        import hashlib

        guard = make_guard(state={"path": str(db_path), "audit_key": "k3y"})
        guard.halt_strategy("s1", user="trader1", reason="genuine")
        guard.portfolio_halt("trader1")
        assert guard.verify_audit().ok
        with sqlite3.connect(db_path) as db:
            rows = db.execute("SELECT seq, entry FROM audit ORDER BY seq").fetchall()
            prev = "0" * 64
            for seq, original in rows:
                entry = original.replace("genuine", "forged")
                digest = hashlib.sha256(f"{prev}|{seq}|{entry}".encode()).hexdigest()
                db.execute(
                    "UPDATE audit SET entry=?, prev_hash=?, hash=? WHERE seq=?",
                    (entry, prev, digest, seq),
                )
                prev = digest
            db.execute("UPDATE audit_head SET hash=? WHERE id=1", (prev,))
        db.close()
        result = guard.verify_audit()
        assert not result.ok and result.first_bad_seq == 1

    def test_keyed_store_when_opened_without_key_then_fails_closed(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """A keyed store opened without its key cannot be trusted: emergency, and it says why."""
        first = make_guard(state={"path": str(db_path), "audit_key": "k3y"})
        first.halt_strategy("s1", user="trader1")
        first.close()
        second = make_guard()
        assert second.portfolio_state == "emergency"
        assert "audit chain is keyed" in second.status()["store"]["error"]

    def test_unkeyed_store_when_key_added_later_then_refused(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """A key cannot be added to a chain begun without one (its records would not verify)."""
        _unkeyed(db_path)
        first = make_guard()
        first.halt_strategy("s1", user="trader1")
        first.close()
        second = make_guard(state={"path": str(db_path), "audit_key": "k3y"})
        assert "started without a key" in second.status()["store"]["error"]


class TestKeyedByDefault:
    def test_new_store_when_no_audit_key_given_then_key_file_made_owner_only_and_chain_keyed(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """Whoever creates the store makes <db>.key (0600); a plain SHA-256 rehash is caught."""
        guard = make_guard()
        guard.halt_strategy("s1", user="trader1")
        key = keyfile.key_path(db_path)
        assert key.stat().st_mode & 0o777 == 0o600
        _ts, _entry, prev, _hash = _row(db_path, 1)
        forged = _edited_entry(db_path, 1, "nothing to see here")
        _execute(
            db_path,
            (
                "UPDATE audit SET entry=?, hash=? WHERE seq=1",
                (forged, audit.chain_hash(prev, 1, forged)),
            ),
        )
        assert (guard.verify_audit().ok, guard.verify_audit().first_bad_seq) == (False, 1)

    def test_unkeyed_store_when_opened_without_key_then_keeps_working_unkeyed(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """A store begun unkeyed opens and verifies as before, and no key file is made for it."""
        _unkeyed(db_path)
        guard = make_guard()
        guard.halt_strategy("s1", user="trader1")
        assert guard.verify_audit().ok
        assert guard.portfolio_state == "normal"
        assert not keyfile.key_path(db_path).exists()
