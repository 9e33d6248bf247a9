"""The deploy files say what the code does: the systemd unit and the container run a command the
CLI has, with the config shipped beside them, and write only where the store lives.

No container engine runs here, so the Containerfile is read, not built: its last stage must run
as a user other than root, expose the port its command serves on and keep the store's directory
on a volume (its probe is run against a real server in tests/api/test_container_probe.py).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tradeguard import load_config
from tradeguard.cli import app

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "tradeguard-serve.service"
CONTAINERFILE = DEPLOY / "Containerfile"
SHIPPED_CONFIG = DEPLOY / "tradeguard.yaml"
TRADEGUARD = Path(sys.executable).parent / "tradeguard"


def unit_entries(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) in order; a key may repeat, as systemd allows."""
    entries, section = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


def service(key: str) -> list[str]:
    return [v for s, k, v in unit_entries(UNIT.read_text()) if s == "Service" and k == key]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for raw in joined.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    found = instructions(CONTAINERFILE.read_text())
    last = max(i for i, (word, _) in enumerate(found) if word == "FROM")
    return found[last:]


def single(stage: list[tuple[str, str]], word: str) -> str:
    (value,) = [rest for w, rest in stage if w == word]
    return value


def exec_form(arguments: str) -> list[str]:
    """A JSON array (exec form), as CMD and VOLUME are written here."""
    parsed: list[str] = json.loads(arguments)
    return parsed


def cli_accepts(args: list[str]) -> Result:
    """Every command and option name in ``args`` exists (``--help`` stops before any value is
    used: nothing is served and no file is read)."""
    return CliRunner().invoke(app, [*args, "--help"])


def state_dir() -> Path:
    return load_config(SHIPPED_CONFIG).state.path.parent


class TestShippedConfig:
    def test_config_check_when_shipped_config_then_ok(self) -> None:
        done = CliRunner().invoke(app, ["config", "check", str(SHIPPED_CONFIG)])
        assert (done.exit_code, done.stdout.strip()) == (0, "ok")


class TestSystemdUnit:
    def test_exec_start_when_given_to_cli_then_a_real_command(self) -> None:
        """The unit's ExecStart and ExecStartPre name commands and options the CLI has."""
        for key in ("ExecStart", "ExecStartPre"):
            (line,) = service(key)
            done = cli_accepts(shlex.split(line)[1:])
            assert done.exit_code == 0, f"{key}: {done.output}"

    def test_config_when_unit_reads_it_then_the_shipped_one(self) -> None:
        (line,) = service("ExecStart")
        args = shlex.split(line)
        named = Path(args[args.index("-c") + 1])
        assert f"TRADEGUARD_CONFIG={named}" in service("Environment")
        assert named.name == SHIPPED_CONFIG.name

    def test_writable_paths_when_hardened_then_only_the_state_dir(self) -> None:
        """ProtectSystem=strict leaves the store's directory the one writable path."""
        assert service("ProtectSystem") == ["strict"]
        assert service("ReadWritePaths") == [str(state_dir())]
        assert [f"/var/lib/{d}" for d in service("StateDirectory")] == [str(state_dir())]
        assert service("WorkingDirectory") == [str(state_dir())]

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("NoNewPrivileges", "yes"),
            ("PrivateTmp", "yes"),
            ("ProtectHome", "yes"),
            ("Restart", "always"),
            ("CapabilityBoundingSet", ""),
        ],
    )
    def test_hardening_when_unit_read_then_set(self, key: str, value: str) -> None:
        assert service(key) == [value]

    def test_user_when_unit_read_then_not_root(self) -> None:
        assert service("User") not in ([], ["root"], ["0"])

    @pytest.mark.slow
    def test_systemd_analyze_when_verified_then_no_complaint(self, tmp_path: Path) -> None:
        """systemd's own parser: an unknown or misspelt key is a warning on stderr, so any
        output fails. The installed path is put where this venv's command is."""
        analyze = shutil.which("systemd-analyze")
        assert analyze is not None, "systemd-analyze missing: `make system-deps` installs it"
        copy = tmp_path / UNIT.name
        copy.write_text(UNIT.read_text().replace("/opt/tradeguard/bin/tradeguard", str(TRADEGUARD)))
        done = subprocess.run(
            [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
        )
        assert (done.returncode, done.stdout + done.stderr) == (0, "")


class TestContainerfile:
    def test_user_when_final_stage_then_not_root(self) -> None:
        user = single(final_stage(), "USER")
        assert user.split(":")[0] not in ("root", "0")

    def test_cmd_when_given_to_cli_then_a_real_command(self) -> None:
        command = exec_form(single(final_stage(), "CMD"))
        assert command[0] == "tradeguard"
        done = cli_accepts(command[1:])
        assert done.exit_code == 0, done.output

    def test_expose_when_final_stage_then_the_port_served(self) -> None:
        command = exec_form(single(final_stage(), "CMD"))
        port = command[command.index("--port") + 1]
        assert single(final_stage(), "EXPOSE").split() == [port]
        assert f"127.0.0.1:{port}/" in single(final_stage(), "HEALTHCHECK")

    def test_volume_when_final_stage_then_holds_the_store(self) -> None:
        """The database, its anchor and audit key sit together on the volume."""
        assert exec_form(single(final_stage(), "VOLUME")) == [str(state_dir())]
        assert single(final_stage(), "WORKDIR") == str(state_dir())

    def test_config_when_image_reads_it_then_the_shipped_one(self) -> None:
        stage = final_stage()
        copied = {
            Path(dst): ROOT / src
            for w, rest in stage
            if w == "COPY" and not rest.startswith("--from")
            for src, dst in [rest.split()]
        }
        (env,) = re.findall(r"TRADEGUARD_CONFIG=(\S+)", single(stage, "ENV"))
        assert copied[Path(env)] == SHIPPED_CONFIG

    def test_copy_when_built_from_repo_root_then_sources_exist(self) -> None:
        for word, rest in instructions(CONTAINERFILE.read_text()):
            if word == "COPY" and not rest.startswith("--from"):
                *sources, _ = rest.split()
                for source in sources:
                    assert (ROOT / source).exists(), source
