"""`tradeguard demo`: the simulated day ends flat, tells its story, and repeats for a seed."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from tradeguard.demo import run
from tradeguard.errors import TradeguardError


def day(directory: Path, seed: int = 7) -> str:
    out = io.StringIO()
    assert run(Console(file=out, width=200), directory, seed=seed, speed=0)
    return out.getvalue()


class TestDemo:
    def test_demo_when_run_then_story_happens_and_ends_flat(self, tmp_path: Path) -> None:
        """A strategy breaches its drawdown and is halted; the crash soft- then hard-halts the
        book; the stop retries venue faults and ends flat; a report and an audit log are written."""
        text = day(tmp_path / "d")
        assert re.search(r"strategy:churner: active -> halted \(strategy_drawdown", text)
        assert "normal -> soft_halt" in text and "soft_halt -> hard_halt" in text
        assert re.search(r"beta: flat after \d+ orders, \d+ rounds, [1-9]\d* errors retried", text)
        assert "portfolio: FLAT" in text
        assert re.search(r"book flat at the end\s+.\s+yes", text)
        assert re.search(r"audit chain\s+.\s+intact", text)
        report = (tmp_path / "d" / "report.html").read_text()
        assert report.count("<svg") == 3 and "Emergency stop" in report
        assert (tmp_path / "d" / "audit.jsonl").read_text().count("\n") > 10

    def test_demo_when_same_seed_then_same_day(self, tmp_path: Path) -> None:
        """Deterministic: the same seed gives the same timeline (wall-clock figures aside).
        Within one simulated instant the order of lines may differ: the KillChain's thread and
        the actuator's both narrate; what happened, and when, does not."""

        def timeline(text: str) -> list[str]:
            lines = [line for line in text.splitlines() if re.match(r"\d\d:\d\d:\d\d ", line)]
            return sorted(lines)  # by simulated time, then text: order within an instant aside

        assert timeline(day(tmp_path / "a")) == timeline(day(tmp_path / "b"))

    def test_demo_when_directory_not_its_own_then_refuses(self, tmp_path: Path) -> None:
        """The demo never writes over a directory it did not create."""
        (tmp_path / "precious.txt").write_text("keep")
        with pytest.raises(TradeguardError, match="not made by"):
            run(Console(file=io.StringIO()), tmp_path, seed=1, speed=0)
        assert (tmp_path / "precious.txt").read_text() == "keep"
