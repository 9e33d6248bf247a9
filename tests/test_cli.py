"""The CLI's reading commands: they need a real config and an existing store, and say so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = Path(sys.executable).parent / "tradeguard"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRADEGUARD_CONFIG"}
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60, check=False
    )


class TestReadingCommands:
    def test_status_when_no_config_then_usage_error_and_no_file_created(
        self, tmp_path: Path
    ) -> None:
        """Without a config there is no store to read: exit 2, and nothing is created."""
        done = run("status", cwd=tmp_path)
        assert done.returncode == 2
        assert "no config" in done.stderr
        assert list(tmp_path.iterdir()) == []

    def test_status_when_store_missing_then_error_not_all_clear(self, tmp_path: Path) -> None:
        """A config whose DB does not exist is an error, never a fresh 'normal'."""
        config = tmp_path / "c.yaml"
        config.write_text("users: {a: admin}\n")
        done = run("status", "-c", str(config), cwd=tmp_path)
        assert done.returncode == 1
        assert "no state database" in done.stderr
        assert not (tmp_path / "tradeguard.db").exists()

    def test_config_check_when_no_users_then_ok_with_warning(self, tmp_path: Path) -> None:
        """The seed's file is valid, but a config nobody can act under is flagged."""
        config = tmp_path / "c.yaml"
        config.write_text("triggers: {strategy_drawdown: 0.05}\n")
        done = run("config", "check", str(config), cwd=tmp_path)
        assert done.returncode == 0
        assert done.stdout.strip() == "ok"
        assert "warning: no users" in done.stderr
