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
