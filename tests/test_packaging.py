"""The wheel a user installs: it builds, and in a fresh venv with the runtime dependencies only
(never the dev tools) `tradeguard` starts, checks a config, creates and reads a store, and
serves.

The install must work offline and in CI alike: the wheel is built without an isolated build
environment (the backend is a dev dependency) and its dependencies come from uv's cache, which
`make install` has filled (``--offline``: nothing is fetched, a dependency missing from the
cache fails the test rather than being downloaded).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from uv import find_uv_bin

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Installed:
    """A venv holding the built wheel and what its metadata requires, nothing else."""

    bin: Path
    env: dict[str, str]
    home: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / "tradeguard"), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=self.home,
            env=self.env,
        )


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _dev_only() -> set[str]:
    """The dev extra's distributions that are not runtime dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_requirement_name(r) for r in project["dependencies"]}
    dev = {_requirement_name(r) for r in project["optional-dependencies"]["dev"]}
    return dev - runtime - {"tradeguard"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build from a copy of the sources (the work tree gets no build/ or egg-info), install."""
    work = tmp_path_factory.mktemp("packaging")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "tradeguard", src / "tradeguard", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = work / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, src],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("tradeguard-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    subprocess.run(
        [find_uv_bin(), "pip", "install", "--offline", "--python", venv / "bin" / "python", wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # PYTHONPATH (how the suite is often run) would import the work tree instead of the wheel.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TRADEGUARD_CONFIG")}
    home = work / "home"
    home.mkdir()
    return Installed(venv / "bin", env, home)


@pytest.fixture
def config(installed: Installed) -> Path:
    path = installed.home / "tg.yaml"
    path.write_text(f"state: {{path: {installed.home / 'tg.db'}}}\n")
    return path


def test_help_when_installed_from_wheel_then_lists_commands(installed: Installed) -> None:
    """The console script the wheel declares starts with the runtime dependencies alone."""
    done = installed.run("--help")
    assert done.returncode == 0, done.stderr
    assert "serve" in done.stdout
    assert "emergency" in done.stdout


def test_config_check_when_installed_from_wheel_then_ok(installed: Installed, config: Path) -> None:
    done = installed.run("config", "check", str(config))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_status_when_installed_from_wheel_then_reads_the_store_it_created(
    installed: Installed, config: Path
) -> None:
    """SQLite, the anchor and the audit key work from the installed package, not the tree."""
    created = installed.run("init", "-c", str(config))
    assert created.returncode == 0, created.stderr
    done = installed.run("status", "--json", "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["portfolio"]["state"] == "normal"


def test_dev_tools_when_runtime_installed_then_absent(installed: Installed) -> None:
    """A user who runs the guard gets none of the test and lint tools."""
    listed = subprocess.run(
        [find_uv_bin(), "pip", "list", "--format", "json", "--python", installed.bin / "python"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    names = {_requirement_name(d["name"]) for d in json.loads(listed.stdout)}
    assert "tradeguard" in names
    assert names & _dev_only() == set()


def _healthz(url: str, server: subprocess.Popen[str]) -> object:
    """The probe's answer once the server listens; the server's stderr if it died first."""
    deadline = time.monotonic() + 60  # start-up on a busy machine; not a timing assertion
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=5) as reply:
                return json.load(reply)
        except (urllib.error.URLError, ConnectionError):
            if server.poll() is not None:
                stderr = server.stderr.read() if server.stderr else ""
                pytest.fail(f"serve exited {server.returncode}: {stderr}")
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # polls another process's start, no timer of ours


def test_serve_when_installed_from_wheel_then_healthz_answers(
    installed: Installed, config: Path
) -> None:
    """The API's imports (FastAPI, uvicorn) are runtime dependencies, and the probe path the
    container's HEALTHCHECK uses answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with subprocess.Popen(
        [str(installed.bin / "tradeguard"), "serve", "--port", str(port), "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=installed.home,
        env=installed.env,
    ) as server:
        try:
            body = _healthz(f"http://127.0.0.1:{port}", server)
        finally:
            server.terminate()
            server.communicate(timeout=30)
    assert body == {"ok": True, "portfolio": "normal"}
