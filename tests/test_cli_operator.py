"""The seed's operator commands, run as a real CLI against a real store, with real tokens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tradeguard import Guard, PortfolioState, load_config
from tradeguard.emergency import FlattenReport
from tradeguard.testing import enroll_team
from tradeguard.venues import SimulatedVenue

CLI = Path(sys.executable).parent / "tradeguard"
CONFIG = "users: {trader1: trader, senior1: senior_trader, risk1: risk_manager, boss: admin, viewer1: viewer, risk2: risk_manager}\nstate: {path: tg.db}\nrecovery: {enabled: false, cooldown_seconds: 0}\n"


class Desk:
    """A config, a store with one known strategy, and tokens for everyone."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "c.yaml"
        self.config.write_text(CONFIG)
        guard = Guard(load_config(self.config))
        guard.record_trade("mom", 1.0)  # the store now knows strategy "mom"
        # Tokens through the same control layer the CLI uses, in-process: one CLI call costs
        # a third of a second, and the user commands have tests of their own below.
        users = ("trader1", "senior1", "risk1", "viewer1", "boss", "risk2")
        self.tokens = enroll_team(guard, users)
        guard.close()

    def cli(
        self, *args: str, user: str | None = None, token: str | None = None, code: str = ""
    ) -> subprocess.CompletedProcess[str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("TRADEGUARD_CONFIG", "TRADEGUARD_TOKEN", "TRADEGUARD_ENROLLMENT_CODE")
        }
        if code:
            env["TRADEGUARD_ENROLLMENT_CODE"] = code
        if user is not None:
            env["TRADEGUARD_TOKEN"] = token if token is not None else self.tokens.get(user, "")
        extra = ["--user", user] if user is not None else []
        return subprocess.run(
            [str(CLI), *args, *extra, "-c", str(self.config)],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.root,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    return Desk(tmp_path)


class TestSeedCommands:
    def test_halt_when_reason_is_long_and_output_piped_then_one_line(self, desk: Desk) -> None:
        """Piped output (a log, a grep) keeps each message on one line, however long."""
        reason = "desk call: " + "fills look wrong on every venue " * 8
        done = desk.cli("halt-strategy", "mom", "--reason", reason.strip(), user="trader1")
        assert done.returncode == 0, done.stderr
        (line,) = [x for x in done.stdout.splitlines() if "active -> halted" in x]
        assert line.endswith(f"({reason.strip()})")

    def test_halt_strategy_when_authenticated_trader_then_halted_and_audited(
        self, desk: Desk
    ) -> None:
        """`halt-strategy my_strategy --user trader1` as in the seed README."""
        done = desk.cli("halt-strategy", "mom", "--reason", "desk call", user="trader1")
        assert done.returncode == 0, done.stderr
        assert "strategy:mom: active -> halted by trader1 (desk call)" in done.stdout
        status = json.loads(desk.cli("status", "--json").stdout)
        assert status["strategies"]["mom"]["state"] == "halted"

    @pytest.mark.parametrize(
        ("command", "user", "state"),
        [
            (["portfolio-halt"], "viewer1", "soft_halt"),
            (["portfolio-close"], "trader1", "hard_halt"),
            (["emergency"], "trader1", "emergency"),
        ],
    )
    def test_portfolio_halts_when_any_user_then_applied(
        self, desk: Desk, command: list[str], user: str, state: str
    ) -> None:
        """Stopping is cheap: any authenticated user may soft-halt, hard-halt or lock down."""
        done = desk.cli(*command, "--json", user=user)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["after"] == state

    def test_resume_when_senior_then_active_when_trader_then_exit_3(self, desk: Desk) -> None:
        """Starting is guarded: a trader is refused (exit 3), a senior trader resumes."""
        desk.cli("halt-strategy", "mom", user="trader1")
        refused = desk.cli("resume", "mom", user="trader1")
        assert refused.returncode == 3 and "needs senior_trader" in refused.stderr
        assert desk.cli("resume", "mom", user="senior1").returncode == 0

    def test_reset_when_emergency_then_two_people_complete_it(self, desk: Desk) -> None:
        """`reset` opens a request and prints its id; `approve` by someone else completes it."""
        desk.cli("emergency", user="trader1")
        opened = desk.cli("reset", "--json", user="risk1")
        request = json.loads(opened.stdout)["id"]
        same = desk.cli("approve", request, user="risk1")
        assert same.returncode == 1 and "different person" in same.stderr
        done = desk.cli("approve", request, "--json", user="boss")
        assert done.returncode == 0 and json.loads(done.stdout)["after"] == "normal"
        replay = desk.cli("approve", request, user="boss")
        assert replay.returncode == 1 and "cannot be used again" in replay.stderr

    @pytest.mark.parametrize(
        ("args", "user", "token", "code", "message"),
        [
            (["resume", "mom"], "senior1", "wrong", 3, "wrong token"),
            (["reset"], "mallory", "x", 3, "unknown user"),
            (["halt-strategy", "mmo"], "trader1", None, 4, "unknown strategy 'mmo'"),
            (["approve", "nope"], "boss", None, 4, "no two-person request"),
            (["reset"], "senior1", None, 3, "needs risk_manager"),
            (["halt-strategy", "bad id!", "--force"], "trader1", None, 2, "strategy_id must be"),
        ],
    )
    def test_command_when_refused_then_exit_code_and_message_say_why(
        self, desk: Desk, args: list[str], user: str, token: str | None, code: int, message: str
    ) -> None:
        """Exit codes: 2 usage, 3 permission denied, 4 unknown strategy or request."""
        done = desk.cli(*args, user=user, token=token)
        assert done.returncode == code, (done.stdout, done.stderr)
        assert message in done.stderr

    @pytest.mark.parametrize(
        ("user", "token", "why"),
        [("trader1", "wrong", "wrong token for trader1"), ("mallory", "x", "unknown user")],
    )
    def test_halt_when_not_authenticated_then_carried_out_and_on_record_as_such(
        self, desk: Desk, user: str, token: str, why: str
    ) -> None:
        """Stopping is never refused: a halt whose token fails goes through, says so, and is
        recorded as not authenticated; the failed authentication is on record too."""
        done = desk.cli("halt-strategy", "mom", user=user, token=token)
        assert done.returncode == 0, done.stderr
        assert f"not authenticated ({why}" in done.stderr
        records = [json.loads(line) for line in desk.cli("audit", "export").stdout.splitlines()]
        (halt,) = [r for r in records if r["action"] == "state_change"]
        assert (halt["actor"], halt["after"]) == (user, "halted")
        assert halt["details"]["initiator"]["authenticated"] is False
        assert (user, "refused:authenticate") in [(r["actor"], r["action"]) for r in records]

    def test_emergency_when_token_not_utf8_then_still_carried_out(self, desk: Desk) -> None:
        """A stray byte in TRADEGUARD_TOKEN (a Latin-1 terminal) is a wrong token, not a crash
        that leaves the book running."""
        done = desk.cli("emergency", user="trader1", token="bad\udcff")
        assert done.returncode == 0, done.stderr
        status = json.loads(desk.cli("status", "--json").stdout)
        assert status["portfolio"]["state"] == "emergency"

    def test_halt_when_authenticated_then_on_record_as_authenticated(self, desk: Desk) -> None:
        """A CLI halt with the operator's own token is recorded as authenticated."""
        assert desk.cli("halt-strategy", "mom", user="trader1").returncode == 0
        records = [json.loads(line) for line in desk.cli("audit", "export").stdout.splitlines()]
        (halt,) = [r for r in records if r["action"] == "state_change"]
        assert halt["details"]["initiator"] == {"authenticated": True}

    def test_refusals_when_made_then_all_in_the_audit_log(self, desk: Desk) -> None:
        """Every refused attempt, authentication included, is on record."""
        desk.cli("halt-strategy", "mom", user="trader1", token="wrong")
        desk.cli("resume", "mom", user="viewer1")
        records = [json.loads(line) for line in desk.cli("audit", "export").stdout.splitlines()]
        refused = [(r["actor"], r["action"]) for r in records if r["action"].startswith("refused:")]
        assert ("trader1", "refused:authenticate") in refused and (
            "viewer1",
            "refused:resume",
        ) in refused

    def test_auth_off_when_configured_then_every_command_says_so(self, desk: Desk) -> None:
        """With authentication off (demos), the CLI warns on every command."""
        desk.config.write_text(CONFIG + "auth: {enabled: false}\n")
        done = desk.cli("portfolio-halt", user="trader1", token="anything")
        assert done.returncode == 0 and "authentication is off" in done.stderr


class TestUsers:
    def test_users_when_admin_exists_then_only_admins_manage_them(self, desk: Desk) -> None:
        """After bootstrap, adding a user needs an authenticated admin."""
        assert desk.cli("users", "add", "eve", "--role", "admin").returncode == 2
        assert desk.cli("users", "add", "eve", "--role", "admin", user="risk1").returncode == 3
        added = desk.cli("users", "add", "carol", "--role", "trader", user="boss")
        code = added.stdout.strip().splitlines()[-1]
        assert added.returncode == 0 and len(code) == 32
        enrolled = desk.cli("users", "enroll", "carol", code=code)
        token = enrolled.stdout.strip().splitlines()[-1]
        assert enrolled.returncode == 0 and len(token) >= 30
        halted = desk.cli("portfolio-halt", user="carol", token=token)
        assert halted.returncode == 0 and "not authenticated" not in halted.stderr

    def test_set_role_when_lowered_then_takes_effect_at_once(self, desk: Desk) -> None:
        """A role change in the store applies to the next command of every process."""
        desk.cli("halt-strategy", "mom", user="trader1")
        assert desk.cli("users", "set-role", "senior1", "viewer", user="boss").returncode == 0
        assert desk.cli("resume", "mom", user="senior1").returncode == 3

    def test_token_when_reissued_then_old_one_stops_working(self, desk: Desk) -> None:
        """Re-enrolling someone ends their token at once; the code gives a new one."""
        old = desk.tokens["trader1"]
        code = desk.cli("users", "token", "trader1", user="boss").stdout.strip().splitlines()[-1]
        halted = desk.cli("portfolio-halt", user="trader1", token=old)
        assert "not authenticated ('trader1' has no token" in halted.stderr
        assert desk.cli("users", "enroll", "trader1", code=code).returncode == 0
        assert desk.cli("users", "enroll", "trader1", code=code).returncode == 3  # one-time

    def test_token_when_owner_renews_then_only_the_owner_sees_the_new_one(self, desk: Desk) -> None:
        """`users token NAME --user NAME` is the owner's own renewal, authenticated by the
        current token: no admin involved, and the old token stops working."""
        renewed = desk.cli("users", "token", "risk1", user="risk1")
        token = renewed.stdout.strip().splitlines()[-1]
        assert renewed.returncode == 0 and token != desk.tokens["risk1"]
        assert desk.cli("users", "token", "risk1", user="risk1").returncode == 3  # old token
        assert desk.cli("users", "token", "risk1", user="risk1", token=token).returncode == 0

    def test_list_when_json_then_no_secrets(self, desk: Desk) -> None:
        """Listing shows roles and whether a token exists, never a token or its hash."""
        listing = desk.cli("users", "list", "--json").stdout
        users = {u["name"]: u for u in json.loads(listing)}
        assert users["trader1"] == {
            "name": "trader1",
            "role": "trader",
            "has_token": True,
            "enrolling": False,
            "source": "store",
        }
        assert all(t not in listing for t in desk.tokens.values())


class TestOutOfBand:
    def test_cli_halt_when_guard_running_then_adopted_and_callback_fires(self, desk: Desk) -> None:
        """A wedged or busy trading process is still stopped: the CLI writes the store, the
        running guard's watcher adopts it and fires the trading process's own callback."""
        guard = Guard(load_config(desk.config))
        halted = threading.Event()
        guard.register_callback("strategy_halt", lambda sid: halted.set() if sid == "mom" else None)
        guard.start()
        try:
            assert desk.cli("halt-strategy", "mom", user="trader1").returncode == 0
            assert halted.wait(timeout=10)
            assert guard.strategy_state("mom") == "halted"
        finally:
            guard.close()

    def test_cli_emergency_when_guard_has_venues_then_it_flattens_them(self, desk: Desk) -> None:
        """`tradeguard emergency` from another process makes the trading process go flat."""
        guard = Guard(load_config(desk.config))
        venue = SimulatedVenue("v", prices={"BTC": 100.0})
        venue.set_position("BTC", 3.0, strategy_id="mom")
        guard.add_venue(venue)
        done: list[FlattenReport] = []
        finished = threading.Event()

        def on_done(report: Any) -> None:
            done.append(report)
            finished.set()

        guard.register_callback("flatten_done", on_done)
        guard.start()
        try:
            assert desk.cli("emergency", user="trader1").returncode == 0
            assert finished.wait(timeout=10)
            assert done[0].flat and guard.portfolio_state is PortfolioState.EMERGENCY
        finally:
            guard.close()

    def test_status_when_a_stop_kept_positions_then_cli_says_kept_not_flat(
        self, desk: Desk
    ) -> None:
        """Another process's `status` shows the last stop's verdict as the store recorded it:
        a cancel-only stop kept the position, and the CLI says so."""
        guard = Guard(load_config(desk.config))
        venue = SimulatedVenue("v", prices={"BTC": 100.0})
        venue.set_position("BTC", 2.0, strategy_id="mom")
        guard.add_venue(venue)
        try:
            guard.halt_strategy("mom", user="trader1")
            assert guard.flush(timeout=10)
        finally:
            guard.close()
        shown = desk.cli("status").stdout
        assert "last stop: strategy:mom: orders cancelled; positions kept: 1 open (BTC)" in shown
        assert "FLAT" not in shown
        last = json.loads(desk.cli("status", "--json").stdout)["emergency_stop"]["last"]
        assert last["flat"] is False and last["venues"][0]["open_positions"] == [
            ["mom", "BTC", 2.0]
        ]


class TestTwoPeopleMeansTwoPeople:
    def test_token_when_admin_reissues_a_lifting_users_then_a_request_and_half_a_code(
        self, desk: Desk
    ) -> None:
        """An admin re-enrolling a risk manager gets a request and one share, never a usable
        credential: the share is no token, and risk1's own token still works."""
        desk.cli("emergency", user="trader1")
        asked = json.loads(desk.cli("users", "token", "risk1", "--json", user="boss").stdout)
        assert asked["split"] and asked["request"]["status"] == "pending"
        request = json.loads(desk.cli("reset", "--json", user="boss").stdout)["id"]
        refused = desk.cli("approve", request, user="risk1", token=asked["code"])
        assert refused.returncode == 3
        assert desk.cli("users", "enroll", "risk1", code=asked["code"]).returncode == 3
        assert json.loads(desk.cli("status", "--json").stdout)["portfolio"]["state"] == "emergency"

    def test_approve_when_requester_demoted_meanwhile_then_refused(self, desk: Desk) -> None:
        """A request is only as good as its requester's current role; demoting a lifting user
        is itself a two-person act (here risk1 approves their own demotion)."""
        desk.cli("emergency", user="trader1")
        request = json.loads(desk.cli("reset", "--json", user="risk1").stdout)["id"]
        demotion = desk.cli("users", "set-role", "risk1", "viewer", user="boss")
        demotion_id = demotion.stdout.split()[1]
        assert demotion.returncode == 0 and "tradeguard approve" in demotion.stdout
        assert desk.cli("approve", demotion_id, user="risk1").returncode == 0
        refused = desk.cli("approve", request, user="boss")
        assert refused.returncode == 1 and "may no longer reset" in refused.stderr

    def test_reason_when_it_looks_like_markup_then_printed_as_written(self, desk: Desk) -> None:
        """A reason is data: '[/x]' neither breaks the output nor the status shown to others."""
        done = desk.cli("halt-strategy", "mom", "--reason", "[/x] see [bps] desk", user="viewer1")
        assert done.returncode == 0 and "[/x] see [bps] desk" in done.stdout
        shown = desk.cli("status")
        assert shown.returncode == 0 and "[/x] see [bps] desk" in shown.stdout
        assert desk.cli("audit", "show").returncode == 0


class TestJson:
    def test_users_token_when_json_then_code_and_token_as_data(self, desk: Desk) -> None:
        """Output that is data comes as JSON on request; the code enrolls, the token works."""
        done = desk.cli("users", "token", "trader1", "--json", user="boss")
        issued = json.loads(done.stdout)
        assert issued["user"] == "trader1" and issued["request"] is None
        enrolled = desk.cli("users", "enroll", "trader1", "--json", code=issued["code"])
        token = json.loads(enrolled.stdout)["token"]
        halted = desk.cli("portfolio-halt", user="trader1", token=token)
        assert halted.returncode == 0 and "not authenticated" not in halted.stderr

    def test_audit_verify_when_json_then_result_as_data(self, desk: Desk) -> None:
        """`audit verify --json` gives the verdict as JSON, exit 0 when intact."""
        done = desk.cli("audit", "verify", "--json")
        assert done.returncode == 0 and json.loads(done.stdout)["ok"] is True


class TestRecoveryAtTheConsole:
    def test_resume_when_ladder_on_then_refused_in_cooldown_and_status_shows_the_stage(
        self, desk: Desk
    ) -> None:
        """A resume inside the cool-down says how long is left (exit 1); once served, `status`
        shows the stage, the time in it and the next gate."""
        desk.config.write_text(
            CONFIG.replace("enabled: false, cooldown_seconds: 0", "cooldown_seconds: 600")
        )
        desk.cli("halt-strategy", "mom", user="trader1")
        refused = desk.cli("resume", "mom", user="senior1")
        assert refused.returncode == 1
        assert (
            "cannot resume mom yet: cool-down:" in refused.stderr
            and "left of 10m 00s" in refused.stderr
        )
        desk.config.write_text(CONFIG.replace("enabled: false, ", ""))
        done = desk.cli("resume", "mom", user="senior1")
        assert done.returncode == 0, done.stderr
        assert "strategy:mom: halted -> recovering by senior1" in done.stdout
        shown = desk.cli("status").stdout
        assert (
            "recovery paper for" in shown
            and "to 25%:" in shown
            and "more in paper" in " ".join(shown.split())
        )
        recovery = json.loads(desk.cli("status", "--json").stdout)["strategies"]["mom"]["recovery"]
        assert (recovery["stage"], recovery["next_stage"], recovery["resumed_by"]) == (
            "paper",
            "25%",
            "senior1",
        )


class TestIncidentsAtTheConsole:
    def test_incidents_and_genomes_when_an_incident_ran_then_listed_shown_and_unblocked(
        self, desk: Desk
    ) -> None:
        """`incidents list|show`, `genomes list`, and a two-person `genomes unblock`."""
        guard = Guard(load_config(desk.config))
        guard.register_strategy("mom", genome={"kind": "momentum", "v": 1})
        guard.record_trade("mom", -75.0)
        incident = guard.start_incident("console drill", "risk1", strategies=["mom"], disable=True)
        assert guard.wait_incidents(30)
        guard.close()
        listed = json.loads(desk.cli("incidents", "list", "--json").stdout)
        assert [(i["id"], i["status"]) for i in listed] == [(incident.id, "closed")]
        shown = desk.cli("incidents", "show", incident.id)
        assert shown.returncode == 0 and "remediate" in shown.stdout and "mom" in shown.stdout
        assert desk.cli("incidents", "show", "nope").returncode == 4
        genomes = json.loads(desk.cli("genomes", "list", "--json").stdout)
        assert genomes[0]["blacklisted"] and genomes[0]["strategies"] == ["mom"]
        opened = desk.cli("genomes", "unblock", genomes[0]["fingerprint"][:10], user="risk1")
        assert opened.returncode == 0, opened.stderr
        request = opened.stdout.split()[2]
        assert desk.cli("approve", request, user="risk1").returncode == 1  # same person
        done = desk.cli("approve", request, user="boss")
        assert done.returncode == 0 and "unblocked by boss" in done.stdout
        assert not json.loads(desk.cli("genomes", "list", "--json").stdout)[0]["blacklisted"]
