"""`tradeguard criticality replay`: the user's CSV and the real histories PyPI packages ship."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.criticality.markets import market
from tradeguard.config import Config
from tradeguard.criticality import data
from tradeguard.criticality.replay import Result, render, replay
from tradeguard.guard import Guard

CLI = Path(sys.executable).parent / "tradeguard"
SMALL = (
    "criticality: {window: 300, long_window: 120, min_observations: 120, percentile_window: 300}\n"
)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRADEGUARD_CONFIG"}
    return subprocess.run(
        [str(CLI), "criticality", "replay", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )


def write_csv(path: Path, calm: int, crash: int) -> list[date]:
    days = [date(2020, 1, 1) + timedelta(days=i) for i in range(calm + crash)]
    lines = ["date,symbol,open,high,low,close,volume"]
    for day, row in zip(days, market(calm, crash), strict=True):
        for symbol, bar in row.items():
            lines.append(
                f"{day},{symbol},{bar.close},{bar.high},{bar.low},{bar.close},{bar.volume}"
            )
    path.write_text("\n".join(lines) + "\n")
    return days


class TestCsv:
    def test_replay_when_csv_has_a_crash_then_json_names_the_crossing_and_the_halt(
        self, tmp_path: Path
    ) -> None:
        """Your own history: the crossing is reported, the guard's soft halt too, and the
        report is written with its plots."""
        days = write_csv(tmp_path / "h.csv", calm=420, crash=12)
        (tmp_path / "c.yaml").write_text(SMALL)
        done = cli("--csv", "h.csv", "--json", "--report", "r.html", "-c", "c.yaml", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert {"threshold", "max_score", "crossings", "daily"} <= set(result)
        assert result["threshold"] == 0.30 and len(result["daily"]) == len(days)
        crash_start = days[420]
        crossed = [date.fromisoformat(c["date"]) for c in result["crossings"]]
        assert any(crash_start <= d <= crash_start + timedelta(days=5) for d in crossed)
        halts = [a for a in result["actions"] if a["after"] == "soft_halt"]
        assert halts and halts[-1]["by"] == "rule:criticality"
        page = (tmp_path / "r.html").read_text()
        assert page.count("<svg") == 3 and "What the guard did" in page

    def test_replay_when_csv_has_bad_lines_then_each_is_named(self, tmp_path: Path) -> None:
        """A history that cannot be trusted is refused line by line, nothing replayed."""
        (tmp_path / "bad.csv").write_text(
            "date,symbol,close\n2020-01-01,A,100\n2020-01-02,A,nan\n2020-01-03,,5\n2020-01-04,A,-1\n"
        )
        done = cli("--csv", "bad.csv", cwd=tmp_path)
        assert done.returncode == 1
        assert "line 3: close must be a finite positive number" in done.stderr
        assert "line 4: empty symbol" in done.stderr and "line 5" in done.stderr

    def test_csv_when_date_or_number_garbled_then_said_in_plain_words(self, tmp_path: Path) -> None:
        """A garbled date or number is named with what was expected, not Python's own text."""
        (tmp_path / "bad.csv").write_text(
            "date,symbol,close\n2020-01-01,A,100\n2020-01-0x,A,101\n2020-01-03,A,1o2\n"
        )
        done = cli("--csv", "bad.csv", cwd=tmp_path)
        assert done.returncode == 1
        assert "line 3: date '2020-01-0x' is neither YYYY-MM-DD nor" in done.stderr
        assert "line 4: close is not a number: '1o2'" in done.stderr
        assert "isoformat" not in done.stderr and "convert string" not in done.stderr

    def test_replay_when_neither_dataset_nor_csv_then_usage_error(self, tmp_path: Path) -> None:
        """One source, and exactly one."""
        assert cli(cwd=tmp_path).returncode == 2

    def test_replay_when_dataset_unknown_then_known_ones_listed(self, tmp_path: Path) -> None:
        """A typo in the dataset name says which names exist."""
        done = cli("sp501", cwd=tmp_path)
        assert done.returncode == 1 and "us-equities" in done.stderr


@pytest.fixture(scope="module")
def history() -> Result:
    """1999 to mid-2009 of the us-equities panel (S&P 500, NASDAQ and 20 large stocks)."""
    return replay(data.load("us-equities"), Config(), Guard, end=date(2009, 6, 30))


class TestRealHistory:
    """The default configuration on real daily data. Figures and misses are in the README."""

    @pytest.mark.parametrize(
        ("event", "onset"),
        [("NASDAQ break", date(2000, 4, 3)), ("Lehman", date(2008, 9, 15))],
    )
    def test_crisis_when_replayed_then_fires_ahead_of_or_at_the_onset(
        self, history: Result, event: str, onset: date
    ) -> None:
        """The score crosses 0.30 in the 90 days before the onset (or at it)."""
        lead = history.lead(onset)
        assert lead is not None and lead >= 0, f"{event}: lead {lead}"

    def test_calm_years_when_replayed_then_quiet(self, history: Result) -> None:
        """2004-2006, a long calm stretch: no day above the threshold."""
        share = history.share_above(date(2004, 1, 1), date(2006, 12, 31))
        assert share is not None and share < 0.01

    def test_scores_when_replayed_then_all_finite_in_unit_interval(self, history: Result) -> None:
        """Every score is a number in [0, 1] once warmed up."""
        known = [s for s in history.scores if s is not None]
        assert len(known) > 2_000
        assert all(math.isfinite(s) and 0 <= s <= 1 for s in known)


class TestCsvReviewFindings:
    @pytest.mark.parametrize(
        ("rows", "words"),
        [
            ("2020-01-01,A,100,90,95\n", "line 2: high 90 is below low 95"),
            ("2020-01-01,A,120,110,100\n", "line 2: close 120 is outside its range [100, 110]"),
            (
                "2020-01-01,A,100,,\n2020-01-01,A,101,,\n",
                "line 3: a second row for A at 2020-01-01",
            ),
        ],
    )
    def test_csv_when_rows_impossible_or_duplicated_then_named_by_line(
        self, tmp_path: Path, rows: str, words: str
    ) -> None:
        """Impossible bars and duplicate rows are refused with their line, not replayed."""
        path = tmp_path / "h.csv"
        path.write_text("date,symbol,close,high,low\n" + rows)
        with pytest.raises(data.DataUnavailable, match=re.escape(words)):
            data.load_csv(path)

    def test_csv_when_saved_by_a_spreadsheet_with_a_bom_then_read(self, tmp_path: Path) -> None:
        """A UTF-8 byte-order mark before the header is not a missing column."""
        path = tmp_path / "h.csv"
        path.write_bytes("\ufeffdate,symbol,close\n2020-01-01,A,100\n".encode())
        assert data.load_csv(path).symbols == ["A"]

    @pytest.mark.parametrize(
        ("args", "words"),
        [
            (("--from", "2010-01-01", "--to", "2009-01-01"), "is after --to"),
            (("--from", "2030-01-01"), "nothing to replay"),
        ],
    )
    def test_replay_when_range_is_empty_then_error_not_an_empty_report(
        self, tmp_path: Path, args: tuple[str, ...], words: str
    ) -> None:
        """A range with no day in it is a mistake to say, not a quiet zero."""
        write_csv(tmp_path / "h.csv", calm=30, crash=0)
        done = cli("--csv", "h.csv", *args, cwd=tmp_path)
        assert done.returncode == 1 and words in done.stderr


class TestReport:
    def test_render_when_days_have_no_score_then_gap_not_zero(self, tmp_path: Path) -> None:
        """A day the monitor could not score (warming up) is left out of the score line, not
        drawn as a calm 0 that looks like a measurement."""
        days = [date(2020, 1, 1) + timedelta(days=i) for i in range(4)]
        result = Result(
            name="gaps",
            threshold=0.5,
            days=days,
            prices=[100.0, 101.0, 99.0, 98.0],
            scores=[None, 0.4, None, 0.6],
        )
        page = render(result, tmp_path / "r.html").read_text()
        score_chart = page.split("criticality score (%) and threshold")[2].split("</svg>")[0]
        lines = re.findall(r'points="([^"]*)"', score_chart)
        assert len(lines) == 1 and len(lines[0].split()) == 4  # the threshold, unbroken
        assert len(re.findall(r"<circle ", score_chart)) == 2  # one dot per lone scored day

    def test_render_when_values_are_small_then_axis_ends_differ(self, tmp_path: Path) -> None:
        """An index that moves between 0.98 and 1.02 is labelled so, not 1 and 1."""
        days = [date(2020, 1, 1) + timedelta(days=i) for i in range(3)]
        result = Result("small", 0.5, days, [0.1, 0.2, 0.3], [0.98, 1.0, 1.02])
        page = render(result, tmp_path / "r.html").read_text()
        index_chart = page.split("equal-weight index of the assets")[2].split("</svg>")[0]
        assert ">1.02</text>" in index_chart and ">0.98</text>" in index_chart
