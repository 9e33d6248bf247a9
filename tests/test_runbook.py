"""Every `tradeguard ...` command the runbook and the README's deployment section show is one
the CLI has, with options it accepts: documentation for the worst day must not drift."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tradeguard.cli import app

ROOT = Path(__file__).resolve().parent.parent


def _readme_deployment() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Installing and running it")
    return readme[start : readme.index("\n## ", start + 1)]


def commands(text: str) -> list[str]:
    """Each `tradeguard SUBCOMMAND ...` in a fenced line or an inline code span (spans may wrap
    lines), up to a comment, a pipe or a redirection; ``$(...)`` stands for one word."""
    fenced = re.findall(r"```\w*\n(.*?)```", text, re.DOTALL)
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    spans = [re.sub(r"\s*\n\s*", " ", span) for span in re.findall(r"`([^`]+)`", prose)]
    found = []
    lines = [line for block in fenced for line in block.splitlines()] + spans
    for line in (line for line in lines if "tradeguard " in line):
        words = shlex.split(re.sub(r"\$\([^)]*\)", "X", line), comments=True)
        for i, word in enumerate(words[:-1]):
            if word.split("/")[-1] == "tradeguard" and re.fullmatch(r"[a-z][a-z-]*", words[i + 1]):
                rest = words[i + 1 :]
                ends = [j for j, w in enumerate(rest) if w in ("|", ">", "&&", ";")]
                args = rest[: ends[0]] if ends else rest
                if args[0] != "tradeguard":  # `docker run ... IMAGE tradeguard init`
                    found.append(shlex.join(args))
    return found


DOCS = {
    "runbook": commands((ROOT / "docs" / "runbook.md").read_text()),
    "readme": commands(_readme_deployment()),
}
CASES = [(where, command) for where, found in DOCS.items() for command in found]


def test_docs_when_read_then_show_commands() -> None:
    """The extraction finds the runbook's commands (this file would test nothing otherwise)."""
    assert len(DOCS["runbook"]) >= 20
    assert DOCS["readme"]


@pytest.mark.parametrize(("where", "command"), CASES, ids=[c for _, c in CASES])
def test_command_when_given_to_cli_then_accepted(where: str, command: str) -> None:
    """``--help`` after the arguments: every command and option name is checked, no value is
    used (placeholders like ID and NAME stay as written)."""
    args = shlex.split(command)
    done = CliRunner().invoke(app, [*args, "--help"])
    assert done.exit_code == 0, f"{where}: tradeguard {command}: {done.output}"
