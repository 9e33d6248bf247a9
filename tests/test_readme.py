"""The README's Python examples run as written: documentation that cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
        (
            "except GenomeBlacklisted",
            [r"alpha", r"disabled halted", r"genome e622448cc849 is blacklisted .*", r"True"],
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
