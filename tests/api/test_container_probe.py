"""The container's HEALTHCHECK, run as written against a real server: its path and the field it
reads are the API's."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.api.conftest import Server

CONTAINERFILE = Path(__file__).resolve().parents[2] / "deploy" / "Containerfile"


def probe_command() -> list[str]:
    joined = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    (arguments,) = re.findall(r"^HEALTHCHECK .*?CMD (\[.*\])$", joined, re.MULTILINE)
    command: list[str] = json.loads(arguments)
    return command


def test_healthcheck_when_guard_serves_then_healthy(server: Server) -> None:
    """The probe, pointed at this server instead of the container's port, exits 0."""
    python, *args = probe_command()
    assert python == "python"
    aimed = [re.sub(r"http://127\.0\.0\.1:\d+", server.url, a) for a in args]
    assert aimed != args, "the probe names no http://127.0.0.1:PORT address"
    done = subprocess.run(
        [sys.executable, *aimed], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
