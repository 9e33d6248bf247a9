"""The runnable examples run and end the way their docstrings say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_integration_example_when_run_then_strategy_halted_by_guard() -> None:
    """The seed's integration example stops its own loop through the halt callback."""
    done = subprocess.run(
        [sys.executable, EXAMPLES / "integration.py"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Strategy my_strategy halted!" in done.stdout
    assert "halted (consecutive_losses" in done.stdout
