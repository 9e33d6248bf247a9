"""The KillChain: six phases that always run, diagnosis, remediation, genomes, the reserve,
and the automated principals who may only tighten."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeGuard
from tradeguard import Guard, Order, PermissionDenied
from tradeguard.errors import ApprovalRefused, BadRequest, GenomeBlacklisted
from tradeguard.incidents.killchain import PHASES, Incident
from tradeguard.store import SqliteStore
from tradeguard.testing import FakeClock

MOMENTUM = {"kind": "momentum", "lookback": 20, "version": "1.4.2"}
MEAN_REV = {"kind": "mean_reversion", "z": 2.0, "version": "0.9.0"}


@pytest.fixture
def book_store(db_path: Path) -> SqliteStore:
    """The store the book runs on, held by the test (the book closes it)."""
    return SqliteStore(db_path)


@pytest.fixture
def book(make_guard: MakeGuard, clock: FakeClock, book_store: SqliteStore) -> Guard:
    """Two registered strategies with genomes; alpha breaches its drawdown first, beta then
    loses less; the book is priced and fed. Its operator disables on evidence even for a
    person's emergency (the default there is to halt)."""
    guard = make_guard(
        store=book_store,
        killchain={"callback_timeout_seconds": 0.5, "remediation": {"person": "disable"}},
    )
    guard.register_strategy("alpha", genome=MOMENTUM)
    guard.register_strategy("beta", genome=MEAN_REV)
    guard.update_portfolio(equity=1_000_000.0)
    guard.update_prices({"BTC": 100.0})
    guard.update_equity(100_000.0, strategy_id="alpha")
    guard.update_equity(100_000.0, strategy_id="beta")
    clock.advance(10)
    guard.update_equity(94_000.0, strategy_id="alpha")  # halted by strategy_drawdown
    clock.advance(10)
    guard.update_equity(97_000.0, strategy_id="beta")
    return guard


def only_incident(guard: Guard) -> dict[str, Any]:
    assert guard.wait_incidents(30)
    (incident,) = guard.incidents()
    return incident


class TestPhases:
    def test_emergency_when_declared_then_all_six_phases_run_in_order(self, book: Guard) -> None:
        """An emergency is an incident: detect, contain, preserve, diagnose, remediate, learn,
        each recorded with its notes and duration, then closed."""
        book.emergency("trader1", "desk says stop")
        incident = only_incident(book)
        assert [p["phase"] for p in incident["phases"]] == [str(p) for p in PHASES]
        assert all(p["finished"] is not None and p["seconds"] >= 0 for p in incident["phases"])
        assert (incident["status"], incident["severity"], incident["trigger"]) == (
            "closed",
            "critical",
            "emergency",
        )
        actions = [r.entry.action for r in book.audit_records()]
        assert [a for a in actions if a.startswith("incident:") and ":started" not in a] == [
            "incident:opened",
            *(f"incident:{p}" for p in PHASES),
        ]

    def test_contain_when_incident_then_every_strategy_halted_and_no_new_orders(
        self, book: Guard
    ) -> None:
        """Containment halts the innocent too (halted, not disabled) and refuses new risk."""
        book.start_incident("venue reports odd fills", "risk1")
        only_incident(book)
        assert book.strategy_state("beta") == "halted"
        assert book.portfolio_state == "soft_halt"
        assert not book.check_order(Order("beta", "BTC", "buy", 1.0, 100.0)).accepted

    def test_preserve_when_incident_then_snapshot_holds_states_and_audit_head(
        self, book: Guard
    ) -> None:
        """The post-mortem snapshot: states, metrics, recent events, the audit head's hash."""
        book.start_incident("drill", "risk1")
        snapshot = only_incident(book)["snapshot"]
        assert set(snapshot["status"]["strategies"]) == {"alpha", "beta"}
        assert snapshot["recent_audit"] and len(snapshot["audit_head"]["hash"]) == 64

    def test_diagnose_when_one_breached_first_then_named_with_its_rule(self, book: Guard) -> None:
        """The strategy whose rule breached first is responsible; losses are listed."""
        book.start_incident("drill", "risk1")
        diagnosis = only_incident(book)["diagnosis"]
        assert (diagnosis["responsible"], diagnosis["rule"], diagnosis["method"]) == (
            "alpha",
            "strategy_drawdown",
            "breached first",
        )
        assert [x["strategy"] for x in diagnosis["losses"]] == ["alpha", "beta"]

    def test_diagnose_when_nothing_breached_then_the_biggest_loser_listed_not_blamed(
        self, make_guard: MakeGuard
    ) -> None:
        """No breach in the look-back: who lost most is listed, and nobody is responsible."""
        guard = make_guard(killchain={"remediation": {"person": "disable"}})
        guard.record_trade("alpha", -500.0)
        guard.record_trade("beta", -2_000.0)
        guard.start_incident("drill", "risk1")
        diagnosis = only_incident(guard)["diagnosis"]
        assert (diagnosis["responsible"], diagnosis["method"], diagnosis["lost_most"]) == (
            None,
            "no evidence",
            "beta",
        )
        assert guard.strategy_state("beta") == "halted"

    def test_remediate_when_responsible_found_then_disabled_and_genome_blacklisted(
        self, book: Guard
    ) -> None:
        """The responsible strategy is disabled for good and its genome blacklisted; the
        innocent one stays merely halted."""
        book.emergency("trader1")
        incident = only_incident(book)
        assert book.strategy_state("alpha") == "disabled"
        assert book.strategy_state("beta") == "halted"
        assert book.is_blacklisted(MOMENTUM) and not book.is_blacklisted(MEAN_REV)
        assert any("blacklisted genome" in n for n in incident["remediation"])

    def test_incident_when_no_strategy_to_blame_then_nothing_disabled(
        self, make_guard: MakeGuard
    ) -> None:
        """No evidence, no punishment: the chain still runs to the end."""
        guard = make_guard()
        guard.register_strategy("gamma")
        guard.update_portfolio(equity=1.0)
        guard.start_incident("drill", "risk1")
        incident = only_incident(guard)
        assert incident["status"] == "closed" and incident["diagnosis"]["responsible"] is None
        assert guard.strategy_state("gamma") == "halted"


class TestCallbacks:
    def test_callback_when_it_raises_then_logged_and_chain_goes_on(self, book: Guard) -> None:
        """A raising callback is noted in its phase; the later phases still run."""

        def broken(incident: Incident) -> None:
            raise RuntimeError("pager down")

        book.on_phase("contain", broken)
        seen: list[str] = []
        book.on_phase("learn", lambda incident: seen.append(incident.id))
        book.start_incident("drill", "risk1")
        incident = only_incident(book)
        contain = next(p for p in incident["phases"] if p["phase"] == "contain")
        assert any("raised RuntimeError('pager down')" in n for n in contain["notes"])
        assert seen == [incident["id"]] and incident["status"] == "closed"

    def test_callback_when_it_hangs_then_timed_out_and_chain_goes_on(self, book: Guard) -> None:
        """A callback that never returns is cut off after callback_timeout_seconds."""
        release = threading.Event()
        book.on_phase("preserve", lambda incident: release.wait())
        try:
            book.start_incident("drill", "risk1")
            incident = only_incident(book)
        finally:
            release.set()
        preserve = next(p for p in incident["phases"] if p["phase"] == "preserve")
        assert any("timed out after 0.5s" in n for n in preserve["notes"])
        assert incident["status"] == "closed"

    def test_callback_when_another_hangs_for_good_then_still_called(self, book: Guard) -> None:
        """A callback hung since earlier incidents never keeps a healthy one from running."""
        release = threading.Event()
        seen: list[str] = []
        book.on_phase("contain", lambda incident: release.wait())
        book.on_phase("contain", lambda incident: seen.append(incident.id))
        try:
            for n in range(5):  # more incidents than a shared pool of four threads
                book.start_incident(f"drill {n}", "risk1")
                assert book.wait_incidents(timeout=30)
        finally:
            release.set()
        assert len(seen) == 5

    def test_callback_when_async_then_awaited(self, book: Guard) -> None:
        """Callbacks may be coroutines."""
        seen: list[str] = []

        async def note(incident: Incident) -> None:
            seen.append(incident.kind or "")

        book.on_phase("detect", note)
        book.start_incident("drill", "risk1")
        only_incident(book)
        assert seen == ["manual"]

    def test_on_phase_when_unknown_phase_then_refused(self, book: Guard) -> None:
        """A misspelt phase is an error at registration, not a callback that never runs."""
        with pytest.raises(ValueError, match="unknown phase 'contian'"):
            book.on_phase("contian", print)


CRASHING_CHILD = textwrap.dedent(
    """
    import os, sys
    from tradeguard import Guard
    from tradeguard.config import parse_config
    from tradeguard.testing import FakeClock
    config = parse_config({"users": {"t": "risk_manager"}, "state": {"path": sys.argv[1]},
                           "recovery": {"enabled": False, "cooldown_seconds": 0}})
    guard = Guard(config, clock=FakeClock())
    guard.register_strategy("alpha", genome={"kind": "momentum"})
    guard.record_trade("alpha", -100.0)
    guard.tick()  # the breaker saves the loss baselines, as it does every 2 s
    guard.on_phase("preserve", lambda incident: os._exit(9))  # the process dies mid-chain
    guard.start_incident("crash drill", "t", strategies=["alpha"], disable=True)
    guard.wait_incidents(30)
    """
)


class TestCrash:
    def test_crash_when_between_phases_then_restart_resumes_where_it_stopped(
        self, tmp_path: Path, make_guard: MakeGuard, clock: FakeClock
    ) -> None:
        """SIGKILL-like death during preserve: after a restart (and the dead owner's lease),
        the chain resumes at preserve, does not redo contain, and finishes."""
        db = tmp_path / "state.db"
        child = subprocess.run(
            [sys.executable, "-c", CRASHING_CHILD, str(db)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )
        assert child.returncode == 9, child.stderr
        clock.advance(301)  # the dead process's lease on the incident runs out
        guard = make_guard()
        (before,) = guard.incidents()
        assert before["status"] == "running"
        assert [p["phase"] for p in before["phases"]] == ["detect", "contain", "preserve"]
        guard.start()
        incident = only_incident(guard)
        guard.stop()
        phases = incident["phases"]
        assert [p["phase"] for p in phases] == [str(p) for p in PHASES]
        assert any("resumed" in n for n in phases[2]["notes"])
        assert incident["status"] == "closed"
        assert guard.strategy_state("alpha") == "disabled"


class TestGenomes:
    def test_register_when_genome_blacklisted_then_refused_and_audited(self, book: Guard) -> None:
        """A blacklisted genome cannot come back under another name, whatever its key order."""
        book.emergency("trader1")
        only_incident(book)
        reordered = {"version": "1.4.2", "lookback": 20, "kind": "momentum"}
        with pytest.raises(GenomeBlacklisted, match="is blacklisted"):
            book.register_strategy("alpha_v2", genome=reordered)
        assert book.audit_records()[-1].entry.action == "refused:register"

    def test_pretrade_when_genome_blacklisted_then_every_order_refused(
        self, make_guard: MakeGuard, book: Guard
    ) -> None:
        """Another process that shares the genome's strategy refuses its orders too."""
        book.emergency("trader1")
        only_incident(book)
        other = make_guard()
        other.update_prices({"BTC": 100.0})
        decision = other.check_order(Order("alpha", "BTC", "sell", 1.0, 100.0))
        assert decision.check == "kill_switch"

    def test_genome_when_not_json_then_bad_request(self, book: Guard) -> None:
        """A genome must be plain JSON: the fingerprint must mean the same thing everywhere."""
        with pytest.raises(Exception, match="not JSON"):
            book.register_strategy("delta", genome={"x": float("nan")})

    def test_unblock_when_two_people_then_genome_may_register_again(self, book: Guard) -> None:
        """Unblocking takes two different risk managers; the disabled strategy stays disabled."""
        book.emergency("trader1")
        only_incident(book)
        fp = next(g["fingerprint"] for g in book.genomes() if g["blacklisted"])
        request = book.unblock_genome(fp, "risk1", "fixed and reviewed")
        with pytest.raises(ApprovalRefused, match="different person"):
            book.approve(request.id, "risk1")
        book.approve(request.id, "risk2")
        assert not book.is_blacklisted(MOMENTUM)
        book.register_strategy("alpha_v2", genome=MOMENTUM)
        assert book.strategy_state("alpha") == "disabled"

    def test_unblock_when_trader_then_denied(self, book: Guard) -> None:
        """Starting is guarded: a trader cannot even ask."""
        book.emergency("trader1")
        only_incident(book)
        fp = next(g["fingerprint"] for g in book.genomes() if g["blacklisted"])
        with pytest.raises(PermissionDenied):
            book.unblock_genome(fp, "trader1")


class TestReserve:
    def test_allocate_when_fitness_given_then_weighted_capped_and_reserve_held_back(
        self, make_guard: MakeGuard
    ) -> None:
        """85% is allocated by fitness, no agent over 25%; 15% stays back; the allocations
        become each agent's allocated capital."""
        guard = make_guard()
        fitness = {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0, "e": 4.0, "f": -2.0}
        shares = guard.allocate(1_000_000.0, fitness)
        # e's 4/8 of 850,000 is capped at 250,000; the 175,000 over goes to a-d by weight
        expected = {
            "a": 150_000.0,
            "b": 150_000.0,
            "c": 150_000.0,
            "d": 150_000.0,
            "e": 250_000.0,
            "f": 0.0,
        }
        assert shares == pytest.approx(expected)
        assert guard.status()["strategies"]["e"]["metrics"]["allocated_capital"] == 250_000.0

    def test_criticality_when_crossed_twice_then_reserve_released_once_and_incident_started(
        self, make_guard: MakeGuard
    ) -> None:
        """The first crossing releases the reserve to the handler and starts the KillChain; a
        second crossing in the same halt is the same incident; after a reset, a new crossing
        is a new incident, and the reserve, spent, is not released again."""
        guard = make_guard()
        guard.allocate(1_000_000.0, {"a": 1.0})
        released: list[dict[str, Any]] = []
        guard.on_reserve_release(released.append)
        guard.update_portfolio(equity=1_000_000.0)
        guard.update_portfolio_metrics(criticality=0.5)
        guard.update_portfolio_metrics(criticality=0.1)
        guard.update_portfolio_metrics(criticality=0.6)
        assert guard.wait_incidents(30)
        assert len(guard.incidents()) == 1
        guard.update_portfolio_metrics(criticality=0.1)
        guard.reset("risk1")
        guard.update_portfolio_metrics(criticality=0.7)
        assert guard.flush(10) and guard.wait_incidents(30)
        assert len(released) == 1 and released[0]["amount"] == pytest.approx(150_000.0)
        assert released[0]["incident"] == guard.incidents()[0]["id"]
        triggers = [i["trigger"] for i in guard.incidents()]
        assert triggers == ["criticality", "criticality"]
        assert [r.entry.action for r in guard.audit_records()].count("reserve:released") == 1


class TestAutonomy:
    @pytest.fixture
    def hive(self, make_guard: MakeGuard) -> Guard:
        guard = make_guard(autonomy={"principals": {"hive": {"trust": 3}, "scout": {"trust": 1}}})
        guard.register_strategy("s1")
        return guard

    @pytest.mark.parametrize(
        "action", ["resume", "reset", "approve", "unblock_genome", "set_limit"]
    )
    def test_agent_when_asking_to_lift_then_refused_at_any_trust_and_audited(
        self, hive: Guard, action: str
    ) -> None:
        """No automated principal may loosen anything, whatever its trust."""
        with pytest.raises(PermissionDenied, match=f"may never {action}"):
            hive.agent_request("hive", action, "s1")
        last = hive.audit_records()[-1].entry
        assert (last.actor, last.action) == ("agent:hive", f"refused:{action}")

    def test_agent_when_trust_too_low_then_refused_and_audited(self, hive: Guard) -> None:
        """Trust 1 may halt a strategy, not the portfolio."""
        with pytest.raises(PermissionDenied, match="scout has trust 1; emergency needs 3"):
            hive.agent_request("scout", "emergency")
        assert hive.audit_records()[-1].entry.action == "refused:emergency"

    def test_agent_when_unknown_then_refused(self, hive: Guard) -> None:
        """A principal nobody declared has no trust at all."""
        with pytest.raises(PermissionDenied, match="not a known automated principal"):
            hive.agent_request("rogue", "halt_strategy", "s1")

    def test_agent_when_allowed_then_tightens_in_its_own_name(self, hive: Guard) -> None:
        """Within its trust, an agent halts: recorded as agent:NAME, lifted only by a person."""
        change = hive.agent_request("scout", "halt_strategy", "s1", "drift detected")
        assert change is not None and str(change.actor) == "agent:scout"
        hive.resume_strategy("s1", "senior1")
        assert hive.strategy_state("s1") == "active"

    def test_agent_when_it_poses_as_a_user_then_unknown(self, hive: Guard) -> None:
        """An automated principal's name is not a user: it cannot resume by the human door."""
        hive.halt_strategy("s1", "trader1")
        with pytest.raises(PermissionDenied):
            hive.resume_strategy("s1", "hive")


class TestResumeDuringIncident:
    def test_resume_when_incident_still_running_then_refused_naming_it(
        self, make_guard: MakeGuard
    ) -> None:
        """Nothing comes back while an incident is still being handled."""
        guard = make_guard(killchain={"callback_timeout_seconds": 60})
        guard.update_portfolio(equity=1_000_000.0)
        guard.register_strategy("s1")
        entered, release = threading.Event(), threading.Event()

        def slow(incident: Incident) -> None:
            entered.set()
            release.wait()

        guard.on_phase("diagnose", slow)
        incident = guard.start_incident("drill", "risk1")
        assert entered.wait(30)
        try:
            with pytest.raises(Exception, match=f"incident {incident.id} is still running"):
                guard.resume_strategy("s1", "senior1")
        finally:
            release.set()
        assert guard.wait_incidents(30)
        guard.update_portfolio(equity=1_000_000.0)
        guard.resume_strategy("s1", "senior1")


class TestReviewFindings:
    def test_diagnose_when_first_breacher_was_resumed_then_not_blamed(
        self, book: Guard, clock: FakeClock
    ) -> None:
        """A strategy that breached, was reviewed and resumed, is not blamed for what another
        does twenty minutes later: only strategies still halted count."""
        clock.advance(300)
        book.update_portfolio(equity=1_000_000.0)
        book.update_prices({"BTC": 100.0})
        book.update_equity(94_000.0, strategy_id="alpha")
        book.resume_strategy("alpha", "senior1")  # reviewed: back to work
        clock.advance(1_200)
        book.update_equity(100_000.0, strategy_id="beta")
        book.update_equity(90_000.0, strategy_id="beta")  # beta breaches now
        book.emergency("trader1")
        diagnosis = only_incident(book)["diagnosis"]
        assert diagnosis["responsible"] == "beta"
        assert book.strategy_state("alpha") == "halted"  # contained, not disabled

    def test_blacklist_when_made_in_another_process_then_orders_refused_here_at_once(
        self, book: Guard, make_guard: MakeGuard
    ) -> None:
        """A running guard adopts a blacklisting made elsewhere with the store's next change."""
        other = make_guard()
        other.update_prices({"BTC": 100.0})
        book.emergency("trader1")
        only_incident(book)
        assert (
            "blacklisted" not in other.check_order(Order("alpha", "BTC", "sell", 1.0, 100.0)).reason
        )
        other.tick()  # the store changed: adopted
        assert "blacklisted" in other.check_order(Order("alpha", "BTC", "sell", 1.0, 100.0)).reason

    def test_phase_when_its_work_keeps_failing_then_incident_waits_and_a_tick_finishes_it(
        self, book: Guard, book_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A blacklist the store refuses three times leaves the incident open at remediate
        (not closed with the genome free); the next tick runs the phase again."""
        store = book_store
        real = store.update_genome
        failures = iter(range(3))

        def flaky(*args: Any, **kwargs: Any) -> Any:
            if next(failures, None) is not None:
                raise RuntimeError("disk full")
            return real(*args, **kwargs)

        monkeypatch.setattr(store, "update_genome", flaky)
        book.emergency("trader1")
        assert book.wait_incidents(30)
        (waiting,) = book.incidents()
        assert waiting["status"] == "running" and not book.is_blacklisted(MOMENTUM)
        assert "will be retried" in waiting["phases"][-1]["notes"][-1]
        book.tick()
        incident = only_incident(book)
        assert incident["status"] == "closed" and book.is_blacklisted(MOMENTUM)

    def test_reserve_when_two_guards_cross_then_released_once(self, make_guard: MakeGuard) -> None:
        """Two processes seeing the same crossing release the reserve once between them."""
        a, b = make_guard(), make_guard()
        a.allocate(1_000_000.0, {"x": 1.0})
        released: list[Any] = []
        a.on_reserve_release(released.append)
        b.on_reserve_release(released.append)
        a.update_portfolio_metrics(criticality=0.9)
        b.update_portfolio_metrics(criticality=0.9)
        assert a.flush(10) and b.flush(10)
        assert len(released) == 1

    def test_register_when_strategy_belongs_to_blacklisted_genome_then_new_genome_refused(
        self, book: Guard, make_guard: MakeGuard
    ) -> None:
        """A blocked strategy id cannot slip out under a new genome, before or after a restart."""
        book.emergency("trader1")
        only_incident(book)
        with pytest.raises(GenomeBlacklisted, match="new id"):
            book.register_strategy("alpha", genome={"kind": "momentum", "lookback": 21})
        restarted = make_guard()
        restarted.update_prices({"BTC": 100.0})
        assert (
            restarted.check_order(Order("alpha", "BTC", "sell", 1.0, 100.0)).check == "kill_switch"
        )

    def test_fingerprint_when_integral_float_then_same_as_int(self, book: Guard) -> None:
        """20.0 and 20 are one genome: a float cannot smuggle a blacklisted genome back."""
        book.emergency("trader1")
        only_incident(book)
        assert book.is_blacklisted({"kind": "momentum", "lookback": 20.0, "version": "1.4.2"})

    def test_start_incident_when_trader_then_denied(self, book: Guard) -> None:
        """Opening an incident (which disables a strategy for good) takes a risk manager."""
        with pytest.raises(PermissionDenied, match="needs risk_manager"):
            book.start_incident("drill", "trader1")

    def test_start_incident_when_strategies_is_a_string_then_bad_request(self, book: Guard) -> None:
        """One id passed as a string is refused, not split into letters."""
        with pytest.raises(BadRequest, match="not one string"):
            book.start_incident("drill", "risk1", strategies="alpha")

    def test_user_when_named_like_an_automated_principal_then_refused(
        self, make_guard: MakeGuard
    ) -> None:
        """An agent's name can never become a person's, so it never gets a human's door."""
        guard = make_guard(autonomy={"principals": {"hive": {"trust": 1}}})
        with pytest.raises(BadRequest, match="automated principal"):
            guard.add_user("hive", "risk_manager", by="admin1")

    def test_allocate_when_all_fitness_negative_then_nothing_allocated(
        self, make_guard: MakeGuard
    ) -> None:
        """Negative fitness earns no capital, even when everyone is negative."""
        assert make_guard().allocate(1_000_000.0, {"a": -1.0, "b": -2.0}) == {"a": 0.0, "b": 0.0}

    def test_unblock_when_genome_blacklisted_again_since_then_old_request_refused(
        self, book: Guard
    ) -> None:
        """A request is tied to the blacklisting it was opened for."""
        book.emergency("trader1")
        only_incident(book)
        fp = next(g["fingerprint"] for g in book.genomes() if g["blacklisted"])
        first = book.unblock_genome(fp, "risk1", "reviewed")
        second = book.unblock_genome(fp, "risk1", "again")
        book.approve(first.id, "risk2")
        book.register_strategy("alpha_v2", genome=MOMENTUM)
        book.record_trade("alpha_v2", -500.0)  # it did it again: a later incident blames it
        book.start_incident("it did it again", "risk1", strategies=["alpha_v2"], disable=True)
        assert book.wait_incidents(30)
        with pytest.raises(ApprovalRefused, match="blacklisting changed"):
            book.approve(second.id, "risk2")
        assert book.is_blacklisted(MOMENTUM)

    def test_agent_when_action_not_text_then_refused_and_audited(
        self, make_guard: MakeGuard
    ) -> None:
        """Garbage from an agent layer is refused on record, not raised as a TypeError."""
        guard = make_guard(autonomy={"principals": {"hive": {"trust": 3}}})
        with pytest.raises(PermissionDenied, match="action must be text"):
            guard.agent_request("hive", ["emergency"])  # type: ignore[arg-type]
        assert guard.audit_records()[-1].entry.action.startswith("refused:")
