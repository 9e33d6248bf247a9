"""The README's console sessions, typed as shown: each ``$`` line runs in a fresh directory
(with the ``yaml`` block just before the session as ``tg.yaml``), and prints what the README
says it prints.

A shown output line is a pattern: ``...`` stands for anything, and the lines must appear in
the output in order (the README leaves some out, e.g. notes on stderr). ``(exit N)`` at the end
of a line is the exit code the command must end with (else 0). What a reader copies from an
earlier output is written as a placeholder, filled in from what that output really was:
``<cto's code>`` and ``<risk1's token>`` (the last line after "Enrollment code"/"Token"),
``<cfo's share>`` (the requester's or the approver's share of a split code), and ``<id>`` (the
request opened last). In a shown output line, a placeholder matches anything.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
SESSIONS = re.findall(
    r"```yaml\n([^`]*?)```\n\n```console\n(.*?)```", README.read_text(), flags=re.DOTALL
)
BIN = Path(sys.executable).parent
PLACEHOLDER = re.compile(r"<(\w+)'s (code|token|share)>|<id>")
EXIT = re.compile(r"\s+\(exit (\d+)\)$")


def steps(session: str) -> list[tuple[str, list[str]]]:
    """(command, the output lines shown under it), in order."""
    found: list[tuple[str, list[str]]] = []
    for line in session.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        else:
            found[-1][1].append(line)
    return found


def pattern(shown: str) -> re.Pattern[str]:
    """``...`` and a placeholder (a code, a token, an id) match anything."""
    parts = re.split(r"\.\.\.|<[^>]+>", shown.strip())
    return re.compile(".*".join(re.escape(part) for part in parts))


class Session:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEGUARD_")}
        self.env["PATH"] = f"{BIN}{os.pathsep}{self.env['PATH']}"
        self.secrets: dict[tuple[str, str], str] = {}
        self.pending = ""  # the id of the request opened last

    def fill(self, command: str) -> str:
        return PLACEHOLDER.sub(
            lambda m: self.pending if m[0] == "<id>" else self.secrets[(m[1], m[2])], command
        )

    def run(self, command: str, shown: list[str]) -> None:
        command = self.fill(command.split("  #", maxsplit=1)[0].strip())
        if command.startswith("export "):
            name, _, value = command.removeprefix("export ").partition("=")
            self.env[name] = shlex.split(value)[0]
            return
        expected_code = 0
        if shown and (code := EXIT.search(shown[-1])):
            expected_code, shown = int(code[1]), [*shown[:-1], EXIT.sub("", shown[-1])]
        done = subprocess.run(
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.root,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        lines = done.stdout.splitlines() + done.stderr.splitlines()
        assert done.returncode == expected_code, (command, done.stdout, done.stderr)
        at = 0
        for line in shown:
            match = pattern(line)
            while at < len(lines) and not match.fullmatch(lines[at].strip()):
                at += 1
            assert at < len(lines), (command, line, lines)
            at += 1
        self.learn(command, done.stdout)

    def learn(self, command: str, out: str) -> None:
        """What a later command will paste: codes, tokens, shares and request ids."""
        typed = shlex.split(command)
        words = typed[typed.index("tradeguard") + 1 :]
        user = words[words.index("--user") + 1] if "--user" in words else None
        last = out.strip().splitlines()[-1] if out.strip() else ""
        if "Enrollment code, shown only now" in out:
            name = words[words.index("--admin") + 1] if "--admin" in words else words[2]
            self.secrets[(name, "code")] = last
        if "Token, shown only now" in out:
            self.secrets[(words[2], "token")] = last
        if "share of" in out and user is not None:
            self.secrets[(user, "share")] = last
        if opened := re.search(r"request (\w+) opened", out):
            self.pending = opened[1]


@pytest.mark.parametrize(
    ("config", "session"), SESSIONS, ids=[f"session{i}" for i in range(len(SESSIONS))]
)
def test_readme_console_session_when_typed_then_prints_what_it_shows(
    config: str, session: str, tmp_path: Path
) -> None:
    (tmp_path / "tg.yaml").write_text(config)
    typed = Session(tmp_path)
    for command, shown in steps(session):
        typed.run(command, shown)


def test_readme_when_read_then_has_a_console_session() -> None:
    assert SESSIONS, "the README's console session is gone, or lost its tg.yaml block"
