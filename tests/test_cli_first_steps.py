"""An operator's first steps and daily looks: `init`, `status`'s times, `audit show --since`,
`monitor` into a pipe, and which pending requests a view lists. Real CLI, real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tradeguard import Guard, load_config
from tradeguard.cli.audit import since_time
from tradeguard.testing import FakeClock, enroll_team

CLI = Path(sys.executable).parent / "tradeguard"


def cli(root: Path, *args: str, code: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEGUARD_")}
    if code:
        env["TRADEGUARD_ENROLLMENT_CODE"] = code
    return subprocess.run(
        [str(CLI), *args, "-c", "tg.yaml"],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "tg.yaml").write_text("state: {path: tg.db}\n")
    return tmp_path


def files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.name != "tg.yaml"}


class TestInit:
    def test_init_when_fresh_then_store_anchor_and_key_and_the_first_admin_enrolls(
        self, root: Path
    ) -> None:
        """The README's first command: the store with its anchor and key, and a code the first
        admin redeems alone for a token."""
        done = cli(root, "init", "--admin", "cto")
        assert done.returncode == 0, done.stderr
        assert {"tg.db", "tg.db.anchor", "tg.db.key"} <= set(files(root))
        assert (root / "tg.db.key").stat().st_mode & 0o077 == 0
        code = done.stdout.strip().splitlines()[-1]
        enrolled = cli(root, "users", "enroll", "cto", code=code)
        assert enrolled.returncode == 0, enrolled.stderr
        listed = json.loads(cli(root, "users", "list", "--json").stdout)
        assert [(u["name"], u["role"], u["has_token"]) for u in listed] == [("cto", "admin", True)]

    def test_init_when_store_exists_then_refused_and_nothing_changed(self, root: Path) -> None:
        """init never overwrites: a second run names what is there and leaves it byte for byte."""
        assert cli(root, "init").returncode == 0
        before = files(root)
        again = cli(root, "init", "--admin", "mallory")
        assert again.returncode == 1
        assert "already there" in again.stderr and "tg.db" in again.stderr
        assert files(root) == before

    @pytest.mark.parametrize("left", ["tg.db.anchor", "tg.db.key", "tg.db-wal"])
    def test_init_when_only_a_stores_companion_is_left_then_refused(
        self, root: Path, left: str
    ) -> None:
        """An anchor (or key, or WAL) without its database is a store that went missing, not a
        place to start afresh: init refuses rather than bless the loss."""
        (root / left).write_text("x")
        done = cli(root, "init")
        assert done.returncode == 1 and left in done.stderr
        assert not (root / "tg.db").exists()

    def test_init_when_directory_missing_then_error_and_nothing_created(self, root: Path) -> None:
        (root / "tg.yaml").write_text("state: {path: nowhere/tg.db}\n")
        done = cli(root, "init")
        assert done.returncode == 1 and "no directory" in done.stderr
        assert not (root / "nowhere").exists()


class TestTimes:
    def test_status_when_never_changed_then_no_since_when_halted_then_the_halts_time(
        self, root: Path
    ) -> None:
        """`since` is when the state changed: nothing for a book never changed (not the time of
        the query), and the halt's own time once halted."""
        assert cli(root, "init").returncode == 0
        fresh = json.loads(cli(root, "status", "--json").stdout)
        assert fresh["portfolio"]["since"] is None
        assert "since" not in cli(root, "status").stdout
        clock = FakeClock(1_790_000_000.0)
        with Guard(load_config(root / "tg.yaml"), clock=clock) as guard:
            guard.portfolio_halt("ops", "look")
        halted = json.loads(cli(root, "status", "--json").stdout)["portfolio"]
        assert halted["state"] == "soft_halt"
        assert halted["since"].startswith("2026-09-21T")  # 1_790_000_000 in UTC

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("2h", 1_790_000_000.0 - 7200),
            ("90s", 1_790_000_000.0 - 90),
            ("1.5d", 1_790_000_000.0 - 129_600),
            ("1w", 1_790_000_000.0 - 604_800),
            ("2026-11-21T09:00", 1_795_251_600.0),  # no zone: UTC
            ("2026-11-21T10:00+01:00", 1_795_251_600.0),
            ("2026-11-21T09:00Z", 1_795_251_600.0),
            ("2026-11-21", 1_795_219_200.0),
        ],
    )
    def test_since_when_duration_or_iso_then_the_instant_it_names(
        self, text: str, expected: float
    ) -> None:
        assert since_time(text, 1_790_000_000.0) == expected

    @pytest.mark.parametrize("text", ["yesterday", "2x", "-2h", "2026-13-01T00:00"])
    def test_audit_show_when_since_unreadable_then_usage_error(self, root: Path, text: str) -> None:
        assert cli(root, "init").returncode == 0
        done = cli(root, "audit", "show", "--since", text)
        assert done.returncode == 2 and "neither a duration" in done.stderr

    def test_audit_show_when_since_relative_then_only_recent_records(self, root: Path) -> None:
        """Records are timed by the guard's clock: one a day old, one now; `--since 2h` lists
        the recent one only."""
        assert cli(root, "init").returncode == 0
        clock = FakeClock(time.time() - 86_400)
        with Guard(load_config(root / "tg.yaml"), clock=clock) as guard:
            guard.portfolio_halt("ops", "yesterday's")
            clock.advance(86_400)
            guard.portfolio_close("ops", "today's")
        shown = json.loads(cli(root, "audit", "show", "--since", "2h", "--json").stdout)
        assert [r["reason"] for r in shown] == ["today's"]


def test_monitor_when_piped_then_each_snapshot_is_printed_as_it_is_taken(root: Path) -> None:
    """Piped, `monitor` streams: the first snapshot arrives while the command still runs (it
    never stops by itself here), instead of everything at exit."""
    assert cli(root, "init").returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEGUARD_")}
    with subprocess.Popen(
        [str(CLI), "monitor", "--interval", "3600", "-c", "tg.yaml"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=root,
        env=env,
        text=True,
    ) as running:
        try:
            assert running.stdout is not None
            first = running.stdout.readline()  # blocks until the snapshot is flushed
            assert first.strip(), running.stderr.read() if running.stderr else ""
            assert running.poll() is None
        finally:
            running.kill()


def test_status_when_pending_reset_overtaken_then_not_listed(root: Path) -> None:
    """A reset request opened on an emergency that another request has since lifted can no
    longer be approved: no view lists it (it offered an Approve button on a normal book)."""
    (root / "tg.yaml").write_text(
        "state: {path: tg.db}\nusers: {risk1: risk_manager, risk2: risk_manager}\n"
        "recovery: {enabled: false, cooldown_seconds: 0}\n"
    )
    with Guard(load_config(root / "tg.yaml")) as guard:
        enroll_team(guard, ["risk1", "risk2"])
        guard.emergency("risk1", "drill")
        stale = guard.reset("risk1", "first")
        fresh = guard.reset("risk2", "second")
        assert {a["id"] for a in guard.status()["pending_approvals"]} == {stale.id, fresh.id}
        guard.approve(fresh.id, "risk1")
        assert guard.status()["portfolio"]["state"] == "normal"
        assert guard.status()["pending_approvals"] == []
    shown = json.loads(cli(root, "status", "--json").stdout)
    assert shown["pending_approvals"] == []
