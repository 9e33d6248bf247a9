"""`tradeguard demo`: the simulated day ends flat, tells its story, and repeats for a seed."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from tests.emergency_support import fake_sleep, venue
from tradeguard.demo import run
from tradeguard.emergency import EmergencyStop
from tradeguard.errors import TradeguardError
from tradeguard.report import Session, render
from tradeguard.testing import FakeClock


def day(directory: Path, seed: int = 7) -> str:
    out = io.StringIO()
    assert run(Console(file=out, width=200), directory, seed=seed, speed=0)
    return out.getvalue()


@pytest.fixture(scope="module")
def seven(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Seed 7's day, run once for the tests that only read it: where, and what it printed."""
    directory = tmp_path_factory.mktemp("seven") / "d"
    return directory, day(directory)


class TestDemo:
    def test_demo_when_run_then_story_happens_and_ends_flat(self, seven: tuple[Path, str]) -> None:
        """A strategy breaches its drawdown and is halted; the crash soft- then hard-halts the
        book; the stop retries venue faults and ends flat; a report and an audit log are written."""
        directory, text = seven
        assert re.search(r"strategy:churner: active -> halted \(strategy_drawdown", text)
        assert "normal -> soft_halt" in text and "soft_halt -> hard_halt" in text
        assert re.search(
            r"beta: flat after \d+ orders?, \d+ rounds?, [1-9]\d* errors? retried", text
        )
        assert "portfolio: FLAT" in text
        assert re.search(r"book flat at the end\s+.\s+yes", text)
        assert re.search(r"audit chain\s+.\s+intact", text)
        report = (directory / "report.html").read_text()
        assert report.count("<svg") == 3 and "Emergency stop" in report
        assert (directory / "audit.jsonl").read_text().count("\n") > 10

    def test_demo_when_run_then_story_in_columns_and_counts_in_words(
        self, seven: tuple[Path, str]
    ) -> None:
        """Every line's text starts in the same column, after a space however long its kind,
        and a count of one is singular ("1 order", never "1 orders")."""
        lines = [x for x in seven[1].splitlines() if re.match(r"\d\d:\d\d:\d\d ", x)]
        starts = {re.match(r"\S+ \S+ +", line).end() for line in lines}  # type: ignore[union-attr]
        kinds = {line.split()[1] for line in lines}
        assert len(starts) == 1 and {"reserve", "incident", "stop"} <= kinds
        assert not re.search(r"\b1 (order|round|error)s\b", "\n".join(lines))

    def test_demo_when_a_strategy_stop_keeps_positions_then_never_said_flat(
        self, seven: tuple[Path, str]
    ) -> None:
        """carry's halt cancels its orders and keeps its position (`on_halt: cancel_orders`):
        the story says so, and says FLAT only for the stops that closed everything."""
        text = seven[1]
        assert re.search(
            r"strategy:carry: orders cancelled; positions kept: \d+ open \(AVAX\)", text
        )
        assert "strategy:carry: FLAT" not in text
        assert "strategy:churner: FLAT" in text  # its policy is flatten

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


class TestReport:
    def test_report_when_stop_kept_positions_then_page_says_kept_not_flat(
        self, tmp_path: Path, clock: FakeClock
    ) -> None:
        """The report's stop section shows the stop's own verdict, venue by venue."""
        v = venue("sim", clock)
        v.set_position("BTC", 2.0, strategy_id="carry")
        stopper = EmergencyStop([v], clock=clock, sleep=fake_sleep(clock))
        stop = asyncio.run(
            stopper.run(run_id="r", reason="t", strategy_id="carry", close_positions=False)
        )
        page = render(Session("t", stop=stop.to_dict()), tmp_path / "r.html").read_text()
        kept = "orders cancelled; positions kept: 1 open (BTC)"
        assert f"strategy:carry: <strong>{kept}</strong>" in page
        assert f"<td>sim</td><td>{kept}</td>" in page
