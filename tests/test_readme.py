"""The README's Python examples run as written: documentation that cannot drift."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.test_cli import run

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_block_when_run_then_succeeds(
    code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ```python block in the README runs in a fresh directory without error."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRADEGUARD_CONFIG", raising=False)
    exec(compile(code, str(README), "exec"), {"__name__": "__readme__"})


def test_readme_when_read_then_has_python_examples() -> None:
    """The README keeps its runnable examples (this file would test nothing without them)."""
    assert len(BLOCKS) >= 2


def _block(marker: str) -> str:
    (found,) = [b for b in BLOCKS if marker in b]
    return found


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ("(fat finger?)", [r"True", r"bounds price 66500 is \+10\.83% .*\(fat finger\?\)"]),
        ("kill_switch_config.yaml", [r"Strategy my_strategy halted!", r"normal"]),
        (
            "except GenomeBlacklisted",
            [
                r"its strategy_drawdown breach at \S+ started the incident",
                r"disabled halted",
                r"genome e622448cc849 is blacklisted .*",
                r"True",
            ],
        ),
    ],
)
def test_readme_block_when_run_then_prints_what_its_comments_say(
    marker: str,
    expected: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The examples whose comments quote exact output print that output (a refusal is not an
    error, so running without one proves nothing)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRADEGUARD_CONFIG", raising=False)
    exec(compile(_block(marker), str(README), "exec"), {"__name__": "__readme__"})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(expected), lines
    for line, pattern in zip(lines, expected, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)


@pytest.mark.parametrize("attempt", range(3))
def test_quick_start_when_run_verbatim_then_a_fresh_process_reads_normal_and_no_marker(
    attempt: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The quick start ends normal for the next process too (its incident never re-halts the
    book after the two-person reset), and its close() leaves no emergency marker: `status`
    reads normal and opens no incident. Run several times: the KillChain's thread races the
    reset, and every order of the two must end the same."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRADEGUARD_CONFIG", raising=False)
    exec(
        compile(_block("kill_switch_config.yaml"), str(README), "exec"), {"__name__": "__readme__"}
    )
    assert capsys.readouterr().out.splitlines()[-1] == "normal"
    assert list(tmp_path.glob("*.emergency")) == []

    def cli(*args: str) -> object:
        done = run(*args, "-c", "kill_switch_config.yaml", "--json", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    status = cli("status")
    assert isinstance(status, dict) and status["portfolio"]["state"] == "normal", status
    incidents = cli("incidents", "list")
    assert isinstance(incidents, list) and [i["id"] for i in incidents] == ["emergency-v1"]
    assert list(tmp_path.glob("*.emergency")) == []
