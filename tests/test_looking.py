"""Looking never changes the book: the commands that only read open the store read-only and
leave its files byte for byte, whatever they find (a cut-off incident, an emergency marker,
a distrusted store). Real CLI, real SQLite files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli_first_steps import cli
from tradeguard import Guard, load_config
from tradeguard.errors import InvalidTransition
from tradeguard.testing import enroll_team

CONFIG = "state: {path: tg.db}\nusers: {risk1: risk_manager}\n"
LOOKING = [
    ["status"],
    ["status", "--json"],
    ["monitor", "--iterations", "1"],
    ["audit", "show"],
    ["audit", "show", "--json", "--since", "1d"],
    ["audit", "verify"],
    ["audit", "export"],
    ["incidents", "list"],
    ["users", "list"],
    ["users", "history"],
    ["genomes", "list"],
]


def store_files(root: Path) -> dict[str, bytes]:
    """The store as a restart would find it. SQLite's ``-shm`` index is rebuilt by whoever
    opens the file next, and an empty ``-wal`` holds nothing: a reader may leave both."""
    return {
        p.name: p.read_bytes()
        for p in sorted(root.iterdir())
        if p.name != "tg.yaml"
        and not p.name.endswith("-shm")
        and not (p.name.endswith("-wal") and p.stat().st_size == 0)
    }


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "tg.yaml").write_text(CONFIG)
    with Guard(load_config(tmp_path / "tg.yaml")) as guard:
        enroll_team(guard, ["risk1"])
        guard.record_trade("mom", -5.0)
        guard.halt_strategy("mom", "risk1", "look at it")
    return tmp_path


@pytest.mark.parametrize("args", LOOKING, ids=" ".join)
def test_reading_command_when_run_then_store_files_unchanged(root: Path, args: list[str]) -> None:
    before = store_files(root)
    done = cli(root, *args)
    assert done.returncode == 0, done.stderr
    assert store_files(root) == before


@pytest.mark.parametrize("args", LOOKING, ids=" ".join)
def test_reading_command_when_incident_left_running_then_not_resumed_and_nothing_written(
    root: Path, args: list[str]
) -> None:
    """An incident opened by a process that never ran its phases (a CLI, or a crash) is
    listed as it stands; only a started guard resumes it."""
    with Guard(load_config(root / "tg.yaml")) as guard:
        incident = guard.start_incident("drill", "risk1")
    before = store_files(root)
    assert cli(root, *args).returncode == 0
    assert store_files(root) == before
    with Guard(load_config(root / "tg.yaml"), read_only=True) as reader:
        assert reader.incident(incident.id) is not None


@pytest.mark.parametrize("args", [["status", "--json"], ["audit", "verify"], ["incidents", "list"]])
def test_reading_command_when_emergency_marker_left_then_shown_not_adopted(
    root: Path, args: list[str]
) -> None:
    """A marker left by a process that lost its store is the next writing guard's to adopt;
    a look shows the emergency it stands for and leaves the marker where it is."""
    marker = root / "tg.db.emergency"
    marker.write_text(json.dumps({"at": 0, "reason": "disk gone"}))
    before = store_files(root)
    done = cli(root, *args)
    assert store_files(root) == before
    if args == ["status", "--json"]:
        portfolio = json.loads(done.stdout)["portfolio"]
        assert portfolio["state"] == "emergency"
        assert "disk gone" in portfolio["reason"]


def test_status_when_store_distrusted_then_emergency_shown_and_nothing_written(
    root: Path,
) -> None:
    """A states table changed behind the chain's back reads as an emergency to a reader too,
    and the reader records nothing: the first guard that writes does."""
    import sqlite3

    with sqlite3.connect(root / "tg.db") as db:
        db.execute("UPDATE states SET state='active' WHERE scope='strategy:mom'")
    before = store_files(root)
    done = cli(root, "status", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["portfolio"]["state"] == "emergency"
    assert store_files(root) == before
    verify = cli(root, "audit", "verify")
    assert verify.returncode == 1 and "strategy:mom" in verify.stderr
    assert store_files(root) == before


def test_reader_when_asked_to_change_a_state_then_refused_and_nothing_written(
    root: Path,
) -> None:
    before = store_files(root)
    with Guard(load_config(root / "tg.yaml"), read_only=True) as reader:
        with pytest.raises(InvalidTransition, match="read-only"):
            reader.portfolio_halt("risk1", "from a reader")
        with pytest.raises(InvalidTransition, match="read-only"):
            reader.start()
        assert reader.strategy_state("mom") == "halted"
    assert store_files(root) == before


def test_reader_when_no_store_then_unavailable_and_none_created(tmp_path: Path) -> None:
    (tmp_path / "tg.yaml").write_text(CONFIG)
    with Guard(load_config(tmp_path / "tg.yaml"), read_only=True) as reader:
        assert reader.status()["store"]["ok"] is False
        assert reader.portfolio_state == "emergency"
    assert [p.name for p in tmp_path.iterdir()] == ["tg.yaml"]
