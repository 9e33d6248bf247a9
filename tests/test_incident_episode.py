"""An incident belongs to its halt episode, close() parks it, and remediation needs evidence.

The KillChain runs on its own thread: these tests fix the order of the chain and the people by
holding the chain in a phase callback (an event the test sets), never by sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeConfig, MakeGuard
from tradeguard import Guard
from tradeguard.errors import BadRequest, ConfigError, StoreUnavailable
from tradeguard.incidents.killchain import (
    PHASES,
    Incident,
    KillChain,
    Phase,
    PhaseWork,
    new_id,
)
from tradeguard.store import SqliteStore, StateStore
from tradeguard.testing import FakeClock

LOSER = {"kind": "momentum", "lookback": 5}
BYSTANDER = {"kind": "carry", "tenor": 3}


def lift(guard: Guard) -> None:
    """The quick start's two-person reset of an emergency."""
    request = guard.reset("risk1", "venue fixed")
    guard.approve(request.id, "risk2")


def phase(incident: Mapping[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in incident["phases"] if p["phase"] == name)
    return found


def held_in(guard: Guard, name: str) -> tuple[threading.Event, threading.Event]:
    """Hold the chain after ``name``'s own work: (reached, release)."""
    reached, release = threading.Event(), threading.Event()

    def hold(_incident: Incident) -> None:
        reached.set()
        release.wait(30)

    guard.on_phase(name, hold)
    return reached, release


def no_killchain_change_after_the_lift(guard: Guard) -> None:
    entries = [r.entry for r in guard.audit_records() if r.entry.action == "state_change"]
    reset = max(i for i, e in enumerate(entries) if e.after == "normal")
    assert [e for e in entries[reset:] if e.actor == "system:killchain"] == []


class TestEpisode:
    def test_contain_when_a_person_lifted_first_then_superseded_and_book_stays_normal(
        self, make_guard: MakeGuard
    ) -> None:
        """The quick start's order: the two-person reset lands before containment runs;
        containment is recorded as superseded and the book ends normal."""
        guard = make_guard(killchain={"callback_timeout_seconds": 60})
        guard.update_portfolio(equity=1_000_000.0)  # a trading guard runs its incidents
        reached, release = held_in(guard, "detect")
        guard.emergency("trader1", "desk says stop")
        assert reached.wait(30)
        lift(guard)
        release.set()
        assert guard.wait_incidents(30)
        (incident,) = guard.incidents()
        assert guard.portfolio_state == "normal"
        assert incident["status"] == "closed" and incident["episode"] == 1
        assert phase(incident, "contain")["notes"][0].startswith("superseded: a person lifted")
        no_killchain_change_after_the_lift(guard)

    def test_remediate_when_lifted_after_containment_then_nothing_more_tightened(
        self, make_guard: MakeGuard
    ) -> None:
        """Containment ran in the episode; the lift came before remediation, which then
        disables nothing even where its policy would (a rule-started incident)."""
        guard = make_guard(
            killchain={"callback_timeout_seconds": 60},
            triggers={"strategy_drawdown": {"limit": 0.05, "action": "emergency"}},
        )
        guard.register_strategy("alpha", genome=LOSER)
        reached, release = held_in(guard, "contain")
        guard.update_equity(100_000.0, strategy_id="alpha")
        guard.update_equity(90_000.0, strategy_id="alpha")  # its breach: an emergency
        assert reached.wait(30)
        guard.update_equity(100_000.0, strategy_id="alpha")  # recovered: no new emergency
        lift(guard)
        release.set()
        assert guard.wait_incidents(30)
        (incident,) = guard.incidents()
        assert guard.portfolio_state == "normal" and guard.strategy_state("alpha") == "halted"
        assert not guard.is_blacklisted(LOSER)
        assert incident["remediation"][0].startswith("superseded: a person lifted")
        no_killchain_change_after_the_lift(guard)

    def test_lift_when_made_in_another_process_then_containment_superseded_here(
        self, make_guard: MakeGuard
    ) -> None:
        """A CLI's reset (another guard on the store) is adopted before containment is
        decided: the running guard does not re-halt the book."""
        running, cli = make_guard(killchain={"callback_timeout_seconds": 60}), make_guard()
        running.update_portfolio(equity=1_000_000.0)
        reached, release = held_in(running, "detect")
        running.emergency("trader1")
        assert reached.wait(30)
        cli.tick()  # the CLI sees the emergency
        lift(cli)
        release.set()
        assert running.wait_incidents(30)
        assert running.portfolio_state == "normal" and cli.portfolio_state == "normal"
        (incident,) = running.incidents()
        assert phase(incident, "contain")["notes"][0].startswith("superseded")


class _Ports:
    """The KillChain's ports over a real store: each phase body notes that it ran."""

    def __init__(self, store: StateStore, clock: FakeClock) -> None:
        self.clock = clock
        self.store = store
        self.ran: list[Phase] = []
        self.on_contain: Callable[[], object] | None = None

    def healthy_store(self) -> StateStore | None:
        return self.store

    def emit(self, event: str, payload: object) -> None:
        """Events go nowhere here."""

    def work(self) -> Mapping[Phase, PhaseWork]:
        def body(p: Phase) -> PhaseWork:
            def run(_incident: Incident) -> list[str]:
                self.ran.append(p)
                if p is Phase.CONTAIN and self.on_contain is not None:
                    self.on_contain()
                return []

            return run

        return {p: body(p) for p in PHASES if p is not Phase.DETECT}


class TestClose:
    def test_close_when_a_phase_is_running_then_parked_and_resumed_at_once_elsewhere(
        self, db_path: Path, clock: FakeClock
    ) -> None:
        """close() lets the running phase finish, parks the chain before the next one with
        its lease released; another process resumes it at once (no lease to wait out)."""
        store = SqliteStore(db_path)
        ports = _Ports(store, clock)
        chain = KillChain(ports, callback_timeout=1.0)
        ports.on_contain = chain.close  # close() from inside a phase: it parks after it
        incident = Incident(new_id("manual"), clock.time(), "manual", "drill", "user:risk1")
        store.open_incident(incident.to_dict())
        chain.launch(incident).result(30)
        parked = store.incident(incident.id)
        assert parked is not None and parked["status"] == "running"
        assert [p["phase"] for p in parked["phases"]] == ["detect", "contain"]
        assert ports.ran == [Phase.CONTAIN]
        actions = [r.entry.action for r in store.audit_records()]
        assert actions[-1] == "incident:preserve:parked"
        restarted = _Ports(store, clock)
        later = KillChain(restarted, callback_timeout=1.0)
        done = later.launch(Incident.from_dict(parked)).result(30)
        later.close()
        store.close()
        assert done is not None and done.status == "closed"
        assert restarted.ran == [Phase.PRESERVE, Phase.DIAGNOSE, Phase.REMEDIATE, Phase.LEARN]

    def test_guard_close_when_it_cuts_a_chain_then_no_marker_and_resumed_after_restart(
        self, make_guard: MakeGuard, db_path: Path, clock: FakeClock
    ) -> None:
        """close() from inside a phase (the worst moment: the store closes under the chain)
        leaves no emergency marker; the next guard starts normal and finishes the incident."""
        guard = make_guard()
        guard.register_strategy("alpha")
        guard.update_portfolio(equity=1_000_000.0)
        guard.on_phase("contain", lambda _incident: guard.close())
        guard.start_incident("drill", "risk1")
        assert guard.wait_incidents(30)
        assert not db_path.with_name(db_path.name + ".emergency").exists()
        clock.advance(301)  # the cut-off chain's lease runs out
        restarted = make_guard()
        assert restarted.portfolio_state == "soft_halt"  # contained before close: its halt
        restarted.start()
        assert restarted.wait_incidents(30)
        (incident,) = restarted.incidents()
        assert incident["status"] == "closed"
        assert [p["phase"] for p in incident["phases"]] == [str(p) for p in PHASES]

    def test_halt_when_it_finds_the_store_closed_by_close_then_no_marker(
        self, make_guard: MakeGuard, db_path: Path
    ) -> None:
        """A write racing the guard's own close() (a phase, a stop, a callback) fails on a
        store closed on purpose: not a store failure, so no marker for the next process."""
        guard = make_guard()
        guard.register_strategy("alpha")
        guard.close()
        with pytest.raises(StoreUnavailable):
            guard.halt_strategy("alpha", "trader1")
        assert not db_path.with_name(db_path.name + ".emergency").exists()
        assert make_guard().portfolio_state == "normal"


class TestRemediation:
    @pytest.fixture
    def desk(self, make_guard: MakeGuard) -> Guard:
        """A loser and a bystander, both registered with genomes; nobody breached a rule."""
        guard = make_guard()
        guard.register_strategy("loser", genome=LOSER)
        guard.register_strategy("bystander", genome=BYSTANDER)
        guard.record_trade("loser", -5_000.0)
        guard.record_trade("bystander", -100.0)
        return guard

    def test_person_emergency_when_no_rule_breached_then_nobody_disabled(self, desk: Guard) -> None:
        """'venue acting up': the biggest loser is contained (halted), not disabled, and its
        genome stays free; the record says why."""
        desk.emergency("trader1", "venue acting up")
        assert desk.wait_incidents(30)
        (incident,) = desk.incidents()
        d = incident["diagnosis"]
        assert (d["responsible"], d["lost_most"], d["cause"], d["remedy"]) == (
            None,
            "loser",
            "person",
            "halt",
        )
        assert "lost most: an outcome, not evidence" in d["evidence"]
        assert desk.strategy_state("loser") == "halted" and not desk.is_blacklisted(LOSER)
        assert incident["remediation"][0].startswith("nothing disabled")

    def test_person_emergency_when_a_rule_halt_stands_then_halted_by_default(
        self, make_guard: MakeGuard
    ) -> None:
        """The evidence ties alpha (its drawdown breach still stands), yet a person's
        emergency is remediated by halting: alpha stays halted, resumable by a person."""
        guard = make_guard()
        guard.register_strategy("alpha", genome=LOSER)
        guard.update_equity(100_000.0, strategy_id="alpha")
        guard.update_equity(90_000.0, strategy_id="alpha")
        guard.emergency("trader1", "venue acting up")
        assert guard.wait_incidents(30)
        (incident,) = guard.incidents()
        d = incident["diagnosis"]
        assert (d["responsible"], d["method"], d["remedy"]) == ("alpha", "breached first", "halt")
        assert guard.strategy_state("alpha") == "halted" and not guard.is_blacklisted(LOSER)

    @pytest.mark.parametrize(("remedy", "state"), [("disable", "disabled"), ("none", "halted")])
    def test_rule_emergency_when_its_breach_started_it_then_the_policy_applies(
        self, make_guard: MakeGuard, remedy: str, state: str
    ) -> None:
        """A strategy whose own breach started the incident is tied to it; the rule policy
        (disable by default) says what follows."""
        guard = make_guard(
            triggers={"strategy_drawdown": {"limit": 0.05, "action": "emergency"}},
            killchain={"remediation": {"rule": remedy}},
        )
        guard.register_strategy("alpha", genome=LOSER)
        guard.update_equity(100_000.0, strategy_id="alpha")
        guard.update_equity(90_000.0, strategy_id="alpha")
        assert guard.wait_incidents(30)
        (incident,) = guard.incidents()
        d = incident["diagnosis"]
        assert (d["responsible"], d["method"], d["cause"]) == ("alpha", "own breach", "rule")
        assert "strategy_drawdown breach" in d["evidence"]
        assert guard.strategy_state("alpha") == state
        assert guard.is_blacklisted(LOSER) is (remedy == "disable")

    def test_person_policy_when_disable_then_only_tied_strategies_disabled(
        self, make_guard: MakeGuard
    ) -> None:
        """An operator may choose disable for people's emergencies: still only with evidence
        (a standing rule halt), never for having lost most."""
        guard = make_guard(killchain={"remediation": {"person": "disable"}})
        guard.register_strategy("alpha", genome=LOSER)
        guard.register_strategy("beta", genome=BYSTANDER)
        guard.update_equity(100_000.0, strategy_id="alpha")
        guard.update_equity(90_000.0, strategy_id="alpha")
        guard.record_trade("beta", -50_000.0)  # lost most, breached nothing
        guard.emergency("trader1")
        assert guard.wait_incidents(30)
        assert guard.strategy_state("alpha") == "disabled" and guard.is_blacklisted(LOSER)
        assert guard.strategy_state("beta") == "halted" and not guard.is_blacklisted(BYSTANDER)

    def test_explicit_disable_when_a_person_names_one_strategy_then_disabled_and_blacklisted(
        self, desk: Guard
    ) -> None:
        """A person can still disable and blacklist on their own word; two undo it."""
        desk.start_incident("it misbehaved", "risk1", strategies=["bystander"], disable=True)
        assert desk.wait_incidents(30)
        (incident,) = desk.incidents()
        assert incident["diagnosis"]["evidence"] == "named by risk1 for disable"
        assert desk.strategy_state("bystander") == "disabled" and desk.is_blacklisted(BYSTANDER)
        fp = next(g["fingerprint"] for g in desk.genomes() if g["blacklisted"])
        desk.approve(desk.unblock_genome(fp, "risk1", "reviewed").id, "risk2")
        assert not desk.is_blacklisted(BYSTANDER)

    def test_explicit_disable_when_the_book_is_lifted_meanwhile_then_still_disabled(
        self, make_guard: MakeGuard
    ) -> None:
        """A person's explicit word is not the chain's tightening: a reset of the book after
        containment does not supersede it."""
        guard = make_guard(killchain={"callback_timeout_seconds": 60})
        guard.register_strategy("bystander", genome=BYSTANDER)
        guard.update_portfolio(equity=1_000_000.0)
        reached, release = held_in(guard, "contain")
        guard.start_incident("it misbehaved", "risk1", strategies=["bystander"], disable=True)
        assert reached.wait(30)
        guard.reset("risk1", "reviewed")
        release.set()
        assert guard.wait_incidents(30)
        assert guard.portfolio_state == "normal" and guard.strategy_state("bystander") == "disabled"
        assert guard.is_blacklisted(BYSTANDER)

    @pytest.mark.parametrize("strategies", [None, ["loser", "bystander"]])
    def test_explicit_disable_when_not_one_strategy_named_then_bad_request(
        self, desk: Guard, strategies: list[str] | None
    ) -> None:
        """Disabling on a person's word names exactly whom."""
        with pytest.raises(BadRequest, match="disable names one strategy"):
            desk.start_incident("drill", "risk1", strategies=strategies, disable=True)

    def test_config_when_remedy_unknown_then_error_names_the_key(
        self, make_config: MakeConfig
    ) -> None:
        """A misspelt policy is refused, with its key path."""
        with pytest.raises(ConfigError, match=r"killchain\.remediation\.person"):
            make_config(killchain={"remediation": {"person": "disabel"}})
