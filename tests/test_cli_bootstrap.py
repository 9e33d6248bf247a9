"""The README's bootstrap, as a new team would type it: the real CLI, a real SQLite file.

Each command runs in a subprocess through the ``tradeguard`` entry point of the Python running
the tests (so it is the code under test, installed or on ``PYTHONPATH``).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

CONFIG = "state: {path: tg.db}\nrecovery: {enabled: false, cooldown_seconds: 0}\n"


class Team:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "tg.yaml"
        self.config.write_text(CONFIG)
        self.tokens: dict[str, str] = {}

    def run(self, *args: str, user: str | None = None, code: str = "") -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEGUARD_")}
        if user is not None:
            env["TRADEGUARD_TOKEN"] = self.tokens[user]
            args = (*args, "--user", user)
        if code:
            env["TRADEGUARD_ENROLLMENT_CODE"] = code
        done = subprocess.run(
            [sys.executable, "-c", "from tradeguard.cli import app; app()", *args, "-c", "tg.yaml"],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.root,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def enroll(self, name: str, code: str) -> None:
        self.tokens[name] = self.run("users", "enroll", name, code=code).strip().splitlines()[-1]


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_readme_bootstrap_when_followed_then_every_pair_of_lifting_users_resets(
    tmp_path: Path,
) -> None:
    """cto and cfo by file access, each enrolling alone; cfo asks for a risk manager and an
    admin, cto approves each; then every pair of different lifting people lifts an emergency."""
    team = Team(tmp_path)
    codes = {
        "cto": last_line(team.run("init", "--admin", "cto")),
        "cfo": last_line(team.run("users", "add", "cfo", "--role", "admin")),
    }
    for name, code in codes.items():
        team.enroll(name, code)
    for name, role in (("risk1", "risk_manager"), ("admin2", "admin")):
        asked = team.run("users", "add", name, "--role", role, user="cfo")
        request = asked.split()[1]
        approved = team.run("approve", request, user="cto")
        team.enroll(name, f"{last_line(asked)} {last_line(approved)}")
    team.enroll(
        "trader1", last_line(team.run("users", "add", "trader1", "--role", "trader", user="cto"))
    )
    for requester, approver in itertools.combinations(["cto", "cfo", "risk1", "admin2"], 2):
        team.run("emergency", user="trader1")
        request = json.loads(team.run("reset", "--json", user=requester))["id"]
        team.run("approve", request, user=approver)
        state = json.loads(team.run("status", "--json"))["portfolio"]["state"]
        assert state == "normal", (requester, approver)
