"""The store contract, run against every backend: SQLite on a real file, and memory.

States and atomic commits, approvals, rungs, the audit chain, incidents and their leases,
genomes, values, the outbox, users, metric baselines, flatten runs, data_version and close.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.store.conftest import OpenStore
from tests.store.support import T0, approval, change, entry, recovering, rung, status
from tradeguard.audit import GENESIS
from tradeguard.errors import StoreUnavailable
from tradeguard.state import ScopeStatus
from tradeguard.store import (
    FlattenRun,
    OutboxRow,
    StateConflict,
    StateStore,
    StateWrite,
    UserEvent,
    UserRecord,
)


class TestLoadStates:
    def test_load_states_when_empty_then_returns_nothing(self, store: StateStore) -> None:
        """A fresh store holds no scope states."""
        assert store.load_states() == {}

    def test_load_states_when_written_then_round_trips_every_field(self, store: StateStore) -> None:
        """Each committed status comes back exactly as written, keyed by scope."""
        portfolio = status("hard_halt", 1, "drawdown")
        alpha = ScopeStatus("halted", "manual", T0 + 5.5, "trader1", 1)
        store.commit(
            states=[StateWrite("portfolio", portfolio, 0), StateWrite("strategy:alpha", alpha, 0)]
        )
        assert store.load_states() == {"portfolio": portfolio, "strategy:alpha": alpha}

    def test_load_states_when_another_writer_committed_then_sees_it(
        self, open_store: OpenStore
    ) -> None:
        """What one handle commits, another handle on the same store reads."""
        reader, writer = open_store(), open_store()
        writer.commit(states=[StateWrite("portfolio", status("emergency", 1), 0)])
        assert reader.load_states()["portfolio"] == status("emergency", 1)


class TestCommit:
    def test_commit_when_expected_version_matches_then_replaces_state(
        self, store: StateStore
    ) -> None:
        """A write expecting the stored version replaces the row."""
        store.commit(states=[StateWrite("portfolio", status("soft_halt", 1), 0)])
        store.commit(states=[StateWrite("portfolio", status("hard_halt", 2), 1)])
        assert store.load_states()["portfolio"] == status("hard_halt", 2)

    @pytest.mark.parametrize("expected", [0, 2, 7])
    def test_commit_when_expected_version_is_wrong_then_raises_state_conflict(
        self, store: StateStore, expected: int
    ) -> None:
        """A write expecting any version but the stored one is refused and changes nothing."""
        store.commit(states=[StateWrite("portfolio", status("soft_halt", 1), 0)])
        with pytest.raises(StateConflict, match="version 1"):
            store.commit(states=[StateWrite("portfolio", status("normal", expected + 1), expected)])
        assert store.load_states()["portfolio"] == status("soft_halt", 1)

    def test_commit_when_never_stored_scope_expects_nonzero_then_raises_state_conflict(
        self, store: StateStore
    ) -> None:
        """A scope that was never stored is at version 0, not whatever the writer assumed."""
        with pytest.raises(StateConflict):
            store.commit(states=[StateWrite("strategy:alpha", status("halted", 4), 3)])
        assert store.load_states() == {}

    def test_commit_when_a_state_write_conflicts_then_whole_transaction_rolls_back(
        self, store: StateStore
    ) -> None:
        """An earlier state write, the audit entry and the approval in the same call vanish."""
        halt = change("portfolio", "normal", "soft_halt")
        store.commit(states=[StateWrite("portfolio", status("soft_halt", 1), 0)], audit=[halt])
        with pytest.raises(StateConflict):
            store.commit(
                states=[
                    StateWrite("strategy:alpha", status("halted", 1), 0),
                    StateWrite("portfolio", status("normal", 2), 0),  # stale: stored is 1
                ],
                audit=[entry(T0 + 1, "should not land")],
                approvals=[approval()],
            )
        assert store.load_states() == {"portfolio": status("soft_halt", 1)}
        assert [r.entry.reason for r in store.audit_records()] == ["manual"]
        assert store.approvals(pending_only=False) == []
        assert store.verify_audit().ok

    def test_commit_when_audit_entries_given_then_chains_them_from_genesis(
        self, store: StateStore
    ) -> None:
        """Returned records are numbered from 1 and each links to the previous hash."""
        first = store.commit(audit=[entry(T0, "one"), entry(T0 + 1, "two")])
        second = store.commit(audit=[entry(T0 + 2, "three")])
        records = first + second
        assert [r.seq for r in records] == [1, 2, 3]
        assert records[0].prev_hash == GENESIS
        assert records[1].prev_hash == records[0].hash
        assert records[2].prev_hash == records[1].hash
        assert store.audit_records() == records

    def test_commit_when_store_closed_then_raises_store_unavailable(
        self, open_store: OpenStore
    ) -> None:
        """A write on a closed store surfaces as StoreUnavailable, not a backend's own error."""
        closed = open_store()
        closed.close()
        with pytest.raises(StoreUnavailable):
            closed.commit(audit=[entry()])


class TestApprovals:
    def test_approval_when_committed_then_round_trips_every_field(self, store: StateStore) -> None:
        """A stored request reads back equal to what was written, decided fields included."""
        pending, executed = approval("a1"), approval("a2", "executed", T0 + 1)
        store.commit(approvals=[pending, executed])
        assert store.approval("a1") == pending
        assert store.approval("a2") == executed

    def test_approval_when_id_unknown_then_returns_none(self, store: StateStore) -> None:
        """Looking up a request that was never stored gives None."""
        store.commit(approvals=[approval("a1")])
        assert store.approval("nope") is None

    def test_approvals_when_pending_only_then_omits_decided_requests(
        self, store: StateStore
    ) -> None:
        """The default listing holds only pending requests."""
        store.commit(
            approvals=[
                approval("a1", "pending", T0),
                approval("a2", "executed", T0 + 1),
                approval("a3", "expired", T0 + 2),
                approval("a4", "pending", T0 + 3),
            ]
        )
        assert [a.id for a in store.approvals()] == ["a1", "a4"]

    def test_approvals_when_not_pending_only_then_lists_all_oldest_first(
        self, store: StateStore
    ) -> None:
        """Every request comes back, ordered by when it was requested."""
        store.commit(
            approvals=[
                approval("late", "superseded", T0 + 9),
                approval("early", "pending", T0),
                approval("mid", "executed", T0 + 4),
            ]
        )
        assert [a.id for a in store.approvals(pending_only=False)] == ["early", "mid", "late"]

    def test_approval_when_rewritten_then_latest_status_wins(self, store: StateStore) -> None:
        """Committing a request again with a new status replaces it (pending -> executed)."""
        store.commit(approvals=[approval("a1")])
        store.commit(approvals=[approval("a1", "executed")])
        assert store.approvals() == []
        assert store.approval("a1") == approval("a1", "executed")


class TestAuditRecords:
    def test_audit_records_when_since_given_then_returns_records_at_or_after_it(
        self, store: StateStore
    ) -> None:
        """``since`` is inclusive and filters on the entry time."""
        store.commit(audit=[entry(T0, "a"), entry(T0 + 100, "b"), entry(T0 + 200, "c")])
        assert [r.entry.reason for r in store.audit_records(since=T0 + 100)] == ["b", "c"]
        assert [r.seq for r in store.audit_records(since=T0 + 100)] == [2, 3]
        assert store.audit_records(since=T0 + 201) == []
        assert len(store.audit_records()) == 3

    def test_audit_records_when_limit_given_then_only_the_most_recent_oldest_first(
        self, store: StateStore
    ) -> None:
        """``limit`` keeps the newest records, still in chain order."""
        store.commit(audit=[entry(T0 + i, str(i)) for i in range(5)])
        assert [r.seq for r in store.audit_records(limit=2)] == [4, 5]
        assert [r.seq for r in store.audit_records(limit=9)] == [1, 2, 3, 4, 5]
        assert store.audit_records(limit=0) == []

    def test_audit_records_when_read_then_entry_round_trips(self, store: StateStore) -> None:
        """The stored entry, details included, reads back equal to the one committed."""
        written = entry(T0 + 0.25, "with details")
        store.commit(audit=[written])
        assert store.audit_records()[0].entry == written

    def test_verify_audit_when_empty_then_ok_with_no_records(self, store: StateStore) -> None:
        """An empty log is intact and counts zero records."""
        result = store.verify_audit()
        assert (result.ok, result.checked, result.first_bad_seq) == (True, 0, None)

    def test_verify_audit_when_every_aggregate_wrote_then_one_intact_chain(
        self, store: StateStore
    ) -> None:
        """Audited writes of states, incidents, genomes, values and users share one chain."""
        store.commit(audit=[entry(T0, "state")])
        store.open_incident(incident("i1"), [entry(T0 + 1, "incident")])
        store.update_genome("fp", lambda _row: {"n": 1}, lambda _row: [entry(T0 + 2, "genome")])
        store.update_value("k", lambda _old: 1, lambda _new: [entry(T0 + 3, "value")])
        store.put_user(user("ops"), entry(T0 + 4, "user"))
        records = store.audit_records()
        assert [r.entry.reason for r in records] == ["state", "incident", "genome", "value", "user"]
        assert [r.seq for r in records] == [1, 2, 3, 4, 5]
        assert (store.verify_audit().ok, store.verify_audit().checked) == (True, 5)

    def test_verify_audit_when_states_follow_their_records_then_ok(self, store: StateStore) -> None:
        """Each state write with its state_change record replays to the table: intact."""
        store.commit(
            states=[StateWrite("portfolio", status("soft_halt", 1), 0)],
            audit=[change("portfolio", "normal", "soft_halt")],
        )
        store.commit(
            states=[StateWrite("portfolio", status("normal", 2), 1)],
            audit=[change("portfolio", "soft_halt", "normal")],
        )
        assert store.verify_audit().ok

    def test_verify_audit_when_state_written_without_its_record_then_names_the_scope(
        self, store: StateStore
    ) -> None:
        """A state the chain does not record (a bypass of the audit) fails verify by scope."""
        store.commit(
            states=[StateWrite("portfolio", status("soft_halt", 1), 0)],
            audit=[change("portfolio", "normal", "soft_halt")],
        )
        store.commit(states=[StateWrite("strategy:alpha", status("active", 1), 0)])
        result = store.verify_audit()
        assert not result.ok
        assert "strategy:alpha" in result.problem


class TestMetrics:
    def test_load_metrics_when_saved_then_round_trips(self, store: StateStore) -> None:
        """Saved baselines come back per scope, None values included."""
        snapshot: dict[str, dict[str, Any]] = {
            "portfolio": {"equity": 100.0, "peak_equity": 120.5, "day": 20454},
            "strategy:alpha": {"equity": None, "consecutive_losses": 3},
        }
        store.save_metrics(snapshot, T0)
        assert store.load_metrics() == snapshot

    def test_save_metrics_when_scope_saved_again_then_latest_wins(self, store: StateStore) -> None:
        """A later snapshot replaces a scope's baseline and keeps scopes it does not mention."""
        store.save_metrics({"portfolio": {"peak_equity": 1.0}, "strategy:a": {"x": 1}}, T0)
        store.save_metrics({"portfolio": {"peak_equity": 2.0}}, T0 + 1)
        assert store.load_metrics() == {
            "portfolio": {"peak_equity": 2.0},
            "strategy:a": {"x": 1},
        }

    def test_load_metrics_when_nothing_saved_then_empty(self, store: StateStore) -> None:
        """A fresh store has no baselines."""
        assert store.load_metrics() == {}

    def test_save_metrics_when_a_value_is_nan_then_refused_and_nothing_written(
        self, store: StateStore
    ) -> None:
        """A baseline that is not JSON is refused whole, never stored as non-JSON text."""
        with pytest.raises(ValueError, match="JSON"):
            store.save_metrics({"portfolio": {"x": 1.0}, "strategy:a": {"x": float("nan")}}, T0)
        assert store.load_metrics() == {}


class TestRungs:
    @pytest.fixture(autouse=True)
    def _state(self, store: StateStore) -> None:
        recovering(store)

    def test_rungs_when_committed_then_round_trip_every_field(self, store: StateStore) -> None:
        """A rung written with a commit reads back exactly."""
        store.commit(rungs=[rung(1)])
        assert store.rungs() == {"strategy:s1": rung(1)}

    def test_commit_when_rung_not_above_stored_one_then_conflict_and_rollback(
        self, store: StateStore
    ) -> None:
        """Two guards climbing the same ladder: the second write of a stage is refused, with
        the rest of its transaction."""
        store.commit(rungs=[rung(1)])
        with pytest.raises(StateConflict, match="already at recovery stage 1"):
            store.commit(rungs=[rung(1)], audit=[entry()])
        assert store.audit_records() == []
        assert store.rungs()["strategy:s1"].stage == 1

    def test_commit_when_rung_belongs_to_a_newer_resume_then_replaces_a_higher_stage(
        self, store: StateStore
    ) -> None:
        """A new resume (a newer state version) starts from the bottom again."""
        store.commit(rungs=[rung(2, version=4)])
        recovering(store, version=7)
        store.commit(rungs=[rung(0, version=7)])
        assert store.rungs()["strategy:s1"] == rung(0, version=7)

    def test_commit_when_rung_is_from_an_older_resume_then_conflict(
        self, store: StateStore
    ) -> None:
        """A slow guard climbing a ladder that a newer resume replaced changes nothing."""
        recovering(store, version=7)
        store.commit(rungs=[rung(0, version=7)])
        with pytest.raises(StateConflict, match="not recovering at version 4"):
            store.commit(rungs=[rung(1, version=4)])
        assert store.rungs()["strategy:s1"] == rung(0, version=7)

    def test_commit_when_scope_not_recovering_then_conflict(self, store: StateStore) -> None:
        """A rung never lands for a strategy that was halted meanwhile."""
        halted = ScopeStatus("halted", "breach", T0, "rule:x", 5)
        store.commit(states=[StateWrite("strategy:s1", halted, 4)])
        with pytest.raises(StateConflict, match="not recovering"):
            store.commit(rungs=[rung(1, version=4)])


def incident(incident_id: str, opened_at: float = T0, state: str = "running") -> dict[str, Any]:
    return {"id": incident_id, "opened_at": opened_at, "status": state, "phases": []}


class TestIncidents:
    def test_open_incident_when_new_then_stored_with_its_audit(self, store: StateStore) -> None:
        """A new incident reads back as written, and its audit entry is on the chain."""
        assert store.open_incident(incident("i1"), [entry(reason="opened")])
        assert store.incident("i1") == incident("i1")
        assert [r.entry.reason for r in store.audit_records()] == ["opened"]

    def test_open_incident_when_id_exists_then_false_and_nothing_written(
        self, store: StateStore
    ) -> None:
        """Opening an id twice keeps the first incident and records nothing for the second."""
        store.open_incident(incident("i1"))
        again = {**incident("i1"), "phases": ["other"]}
        assert store.open_incident(again, [entry()]) is False
        assert store.incident("i1") == incident("i1")
        assert store.audit_records() == []

    def test_incidents_when_listed_then_oldest_first_and_filtered_by_status(
        self, store: StateStore
    ) -> None:
        """Listing orders by opening time; ``status`` keeps only incidents in that status."""
        store.open_incident(incident("late", T0 + 9))
        store.open_incident(incident("early", T0, "closed"))
        store.open_incident(incident("mid", T0 + 4))
        assert [i["id"] for i in store.incidents()] == ["early", "mid", "late"]
        assert [i["id"] for i in store.incidents(status="running")] == ["mid", "late"]
        assert store.incident("nope") is None

    def test_claim_incident_when_free_or_ours_then_granted(self, store: StateStore) -> None:
        """An unowned running incident can be claimed, and its owner can renew the lease."""
        store.open_incident(incident("i1"))
        assert store.claim_incident("i1", "p1", T0, 30.0)
        assert store.claim_incident("i1", "p1", T0 + 10, 30.0)

    def test_claim_incident_when_another_holds_a_live_lease_then_refused(
        self, store: StateStore
    ) -> None:
        """A second process cannot take an incident whose owner's lease still runs."""
        store.open_incident(incident("i1"))
        store.claim_incident("i1", "p1", T0, 30.0)
        assert store.claim_incident("i1", "p2", T0 + 30.0, 30.0) is False

    def test_claim_incident_when_lease_ran_out_then_taken_over(self, store: StateStore) -> None:
        """A crashed owner's incident is taken over once its lease has run out."""
        store.open_incident(incident("i1"))
        store.claim_incident("i1", "p1", T0, 30.0)
        assert store.claim_incident("i1", "p2", T0 + 30.5, 30.0)
        with pytest.raises(StateConflict, match="not held"):
            store.save_incident(incident("i1"), "p1", T0 + 60, [])

    def test_claim_incident_when_not_running_or_unknown_then_refused(
        self, store: StateStore
    ) -> None:
        """Closed and missing incidents cannot be claimed."""
        store.open_incident(incident("done", state="closed"))
        assert store.claim_incident("done", "p1", T0, 30.0) is False
        assert store.claim_incident("nope", "p1", T0, 30.0) is False

    def test_save_incident_when_held_then_written_with_its_audit(self, store: StateStore) -> None:
        """The holder's progress replaces the stored incident, status included."""
        store.open_incident(incident("i1"))
        store.claim_incident("i1", "p1", T0, 30.0)
        closed = {**incident("i1", state="closed"), "phases": ["detect"]}
        store.save_incident(closed, "p1", T0 + 30, [entry(reason="closed")])
        assert store.incident("i1") == closed
        assert store.incidents(status="running") == []
        assert [r.entry.reason for r in store.audit_records()] == ["closed"]

    def test_save_incident_when_not_held_then_conflict_and_nothing_written(
        self, store: StateStore
    ) -> None:
        """A process that does not hold the incident cannot write it, nor its audit entry."""
        store.open_incident(incident("i1"))
        with pytest.raises(StateConflict, match="not held by this process"):
            store.save_incident(incident("i1", state="closed"), "p1", T0, [entry()])
        assert store.incident("i1") == incident("i1")
        assert store.audit_records() == []


class TestGenomesAndValues:
    def test_update_genome_when_changed_then_stored_and_audited(self, store: StateStore) -> None:
        """``change`` sees the stored row (None at first) and its result is written."""
        seen: list[dict[str, Any] | None] = []

        def change(row: dict[str, Any] | None) -> dict[str, Any]:
            seen.append(row)
            return {"blacklisted": row is not None}

        assert store.update_genome("fp", change, lambda _row: [entry()]) == {"blacklisted": False}
        assert store.update_genome("fp", change) == {"blacklisted": True}
        assert seen == [None, {"blacklisted": False}]
        assert store.genomes() == {"fp": {"blacklisted": True}}
        assert len(store.audit_records()) == 1

    def test_update_genome_when_change_returns_none_then_row_left_as_it_was(
        self, store: StateStore
    ) -> None:
        """None from ``change`` writes nothing and audits nothing; the stored row is returned."""
        store.update_genome("fp", lambda _row: {"n": 1})
        assert store.update_genome("fp", lambda _row: None, lambda _row: [entry()]) == {"n": 1}
        assert store.update_genome("other", lambda _row: None) is None
        assert store.genomes() == {"fp": {"n": 1}}
        assert store.audit_records() == []

    def test_update_genome_when_change_raises_then_nothing_written(self, store: StateStore) -> None:
        """An exception inside the read-modify-write rolls it back."""

        def broken(_row: dict[str, Any] | None) -> dict[str, Any]:
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            store.update_genome("fp", broken)
        assert store.genomes() == {}

    def test_update_value_when_changed_then_returns_new_value_and_true(
        self, store: StateStore
    ) -> None:
        """A value is read, changed and written; ``value`` reads it back."""
        assert store.value("reserve") is None
        assert store.update_value("reserve", lambda old: (old or 0) + 5) == (5, True)
        assert store.update_value("reserve", lambda old: old + 5, lambda _v: [entry()]) == (
            10,
            True,
        )
        assert store.value("reserve") == 10
        assert len(store.audit_records()) == 1

    def test_update_value_when_change_returns_none_then_unchanged_and_false(
        self, store: StateStore
    ) -> None:
        """None from ``change`` leaves the value and says nothing changed."""
        store.update_value("k", lambda _old: {"a": 1})
        assert store.update_value("k", lambda _old: None) == ({"a": 1}, False)

    def test_update_value_when_not_json_then_refused_and_nothing_written(
        self, store: StateStore
    ) -> None:
        """NaN is not JSON: refused, and the audit entry does not land either."""
        with pytest.raises(ValueError, match="JSON"):
            store.update_value("k", lambda _old: float("nan"), lambda _v: [entry()])
        assert store.value("k") is None
        assert store.audit_records() == []


def alert(alert_id: str, channel: str = "slack", created: float = T0, **kw: Any) -> OutboxRow:
    fields: dict[str, Any] = {
        "id": alert_id,
        "channel": channel,
        "priority": "critical",
        "payload": {"title": alert_id},
        "status": "pending",
        "attempts": 0,
        "next_attempt": created,
        "created_at": created,
    }
    return OutboxRow(**{**fields, **kw})


class TestOutbox:
    def test_enqueue_alerts_when_id_and_channel_exist_then_first_row_kept(
        self, store: StateStore
    ) -> None:
        """Enqueueing is idempotent per (id, channel): a repeat never resets a row."""
        store.enqueue_alerts([alert("a1"), alert("a1", "email")])
        store.enqueue_alerts([alert("a1", attempts=7)])
        assert [(r.id, r.channel, r.attempts) for r in store.outbox()] == [
            ("a1", "email", 0),
            ("a1", "slack", 0),
        ]

    def test_update_alert_when_delivered_then_replaced_and_no_longer_due(
        self, store: StateStore
    ) -> None:
        """A delivered row reads back with its delivery fields and leaves the due list."""
        store.enqueue_alerts([alert("a1")])
        done = alert("a1", status="delivered", attempts=1, delivered_at=T0 + 1, latency_ms=12.5)
        store.update_alert(done)
        assert store.outbox() == [done]
        assert store.outbox(status="pending") == []
        assert store.due_alerts(T0 + 100) == []

    def test_due_alerts_when_some_wait_for_backoff_then_only_due_oldest_first(
        self, store: StateStore
    ) -> None:
        """Only pending rows whose next attempt has come, oldest first, up to ``limit``."""
        store.enqueue_alerts(
            [
                alert("late", created=T0 + 2),
                alert("early", created=T0),
                alert("waiting", created=T0 + 1, next_attempt=T0 + 60),
            ]
        )
        assert [r.id for r in store.due_alerts(T0 + 10)] == ["early", "late"]
        assert [r.id for r in store.due_alerts(T0 + 10, limit=1)] == ["early"]
        assert [r.id for r in store.due_alerts(T0 + 60)] == ["early", "waiting", "late"]


def user(name: str, role: str = "admin") -> UserRecord:
    return UserRecord(name, role, "salt", "hash", T0, ("root",), ("s:h",), T0 + 9, ("a", "b"))


class TestUsers:
    def test_put_user_when_written_then_round_trips_and_audited(self, store: StateStore) -> None:
        """A stored user reads back exactly, and the change is on the audit chain."""
        store.put_user(user("ops"), entry(reason="added"))
        store.put_user(user("ops", "viewer"), entry(reason="demoted"))
        assert store.users() == {"ops": user("ops", "viewer")}
        assert [r.entry.reason for r in store.audit_records()] == ["added", "demoted"]

    def test_remove_user_when_present_or_not_then_says_so_and_audits_only_a_removal(
        self, store: StateStore
    ) -> None:
        """Removing a user is audited; removing a stranger is False and records nothing."""
        store.put_user(user("ops"), entry(reason="added"))
        assert store.remove_user("ops", entry(reason="removed"))
        assert store.remove_user("ops", entry(reason="again")) is False
        assert store.users() == {}
        assert [r.entry.reason for r in store.audit_records()] == ["added", "removed"]

    def test_put_user_when_name_differs_only_in_case_or_form_then_state_conflict(
        self, store: StateStore
    ) -> None:
        """One person, one record: ``OPS`` or its full-width twin is the stored ``ops``, so
        creating it is refused and nothing is written."""
        store.put_user(user("ops"), entry(reason="added"))
        for twin in ("OPS", "\uff4f\uff50\uff53"):
            with pytest.raises(StateConflict, match="taken by 'ops'"):
                store.put_user(user(twin), entry(reason="twin"))
        assert list(store.users()) == ["ops"]
        assert [r.entry.reason for r in store.audit_records()] == ["added"]

    def test_remove_user_when_named_in_another_case_then_removes_the_one_person(
        self, store: StateStore
    ) -> None:
        """Removal finds the user by normalized name."""
        store.put_user(user("Ops"), entry(reason="added"))
        assert store.remove_user("oPS", entry(reason="removed"))
        assert store.users() == {}

    def test_user_history_when_user_removed_then_kept_in_order_and_audited(
        self, store: StateStore
    ) -> None:
        """The history is appended with the change it describes and outlives the user."""
        added = UserEvent(T0, "root", "added", "ops", {"role": "admin"})
        removed = UserEvent(T0 + 1, "boss", "removed", "ops")
        store.put_user(user("ops"), entry(reason="added"), [added])
        store.append_user_history([UserEvent(T0, "boss", "requested", "x")], entry(reason="req"))
        store.remove_user("ops", entry(reason="removed"), [removed])
        assert [e.action for e in store.user_history()] == ["added", "requested", "removed"]
        assert store.user_history()[0] == added
        assert [r.entry.reason for r in store.audit_records()] == ["added", "req", "removed"]


class TestFlattenRuns:
    def test_flatten_runs_when_recorded_then_latest_per_id_oldest_first(
        self, store: StateStore
    ) -> None:
        """A run is recorded before it acts and replaced as it ends; ``status`` filters."""
        store.record_flatten(FlattenRun("r2", "portfolio", "again", "running", T0 + 5))
        store.record_flatten(FlattenRun("r1", "portfolio", "drill", "running", T0))
        done = FlattenRun("r1", "portfolio", "drill", "flat", T0, {"venues": [], "flat": True})
        store.record_flatten(done)
        assert [r.id for r in store.flatten_runs()] == ["r1", "r2"]
        assert store.flatten_runs()[0] == done
        assert [r.id for r in store.flatten_runs(status="running")] == ["r2"]

    def test_latest_flatten_when_several_then_most_recent_in_the_statuses_asked(
        self, store: StateStore
    ) -> None:
        """The last finished stop without reading every run: the newest of those statuses."""
        assert store.latest_flatten(("flat", "incomplete")) is None
        for i, kind in enumerate(["flat", "incomplete", "flat", "running"]):
            store.record_flatten(FlattenRun(f"r{i}", "portfolio", "x", kind, T0 + i))
        found = store.latest_flatten(("flat", "incomplete"))
        assert found is not None and found.id == "r2"
        assert store.latest_flatten(("incomplete",)) == store.flatten_runs(status="incomplete")[0]


class TestStoreLifecycle:
    def test_data_version_when_another_writer_commits_then_moves(
        self, open_store: OpenStore
    ) -> None:
        """A reader notices another writer's commit without reading the data."""
        reader, writer = open_store(), open_store()
        before = reader.data_version()
        writer.commit(states=[StateWrite("portfolio", status(), 0)])
        assert reader.data_version() != before

    @pytest.mark.parametrize(
        "call",
        [
            lambda s: s.load_states(),
            lambda s: s.audit_records(),
            lambda s: s.verify_audit(),
            lambda s: s.approvals(),
            lambda s: s.incidents(),
            lambda s: s.genomes(),
            lambda s: s.value("k"),
            lambda s: s.users(),
            lambda s: s.outbox(),
            lambda s: s.load_metrics(),
            lambda s: s.save_metrics({}, T0),
            lambda s: s.flatten_runs(),
            lambda s: s.latest_flatten(("flat",)),
            lambda s: s.data_version(),
        ],
    )
    def test_any_call_when_closed_then_store_unavailable(
        self, open_store: OpenStore, call: Callable[[StateStore], object]
    ) -> None:
        """After close every read and write fails closed, never with an empty answer."""
        closed = open_store()
        closed.close()
        with pytest.raises(StoreUnavailable):
            call(closed)
