"""Safety rule 10, searched for counterexamples: one attacker, any sequence, never two people.

An honestly bootstrapped team (h1 admin, h2 risk_manager, and the attacker mallory, admin)
each redeemed their own code. Then the attacker alone drives random user administration
(create, enroll, re-issue, renew, role change, removal, names in any case or full width),
emergencies, resets, genome unblocks and approvals, holding only the tokens, codes and shares
handed to them. The honest people are as gullible as can be: they approve every user
administration request the attacker opens (keeping their share of any code to themselves),
but never a reset or an unblock. The property: the attacker never completes a two-person act.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tradeguard import Guard, PortfolioState, TradeguardError
from tradeguard.config import parse_config
from tradeguard.incidents.genomes import fingerprint
from tradeguard.model import Operator, user_key
from tradeguard.store import Approval
from tradeguard.testing import FakeClock, MemoryStore

GENOME = {"kind": "momentum", "lookback": 20}
FP = fingerprint(GENOME)
HONEST = ("h1", "h2")
NAMES = ("mallory", "h1", "h2", "x", "y", "z")
ROLES = ("viewer", "trader", "risk_manager", "admin")


def full_width(name: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in name)


VARIANT = st.sampled_from([str.lower, str.upper, str.title, full_width])
NAME = st.builds(lambda n, v: v(n), st.sampled_from(NAMES), VARIANT)


class OneAttacker(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.store = MemoryStore()
        config = parse_config({"recovery": {"enabled": False, "cooldown_seconds": 0}})
        self.guard = Guard(config, clock=self.clock, store=self.store)
        self.guard.register_strategy("s1", genome=GENOME)
        self.store.update_genome(
            FP, lambda row: {**(row or {}), "blacklisted": True, "incident": "i"}
        )
        # the README's bootstrap: two admins, each redeeming their own code; then the
        # risk_manager by two people, the attacker approving (and so shown one share)
        tokens = {
            n: self.guard.enroll(n, self.guard.add_user(n, "admin", by="local:root").code or "")
            for n in ("h1", "mallory")
        }
        asked = self.guard.add_user("h2", "risk_manager", by=self.operator("h1", tokens["h1"]))
        assert asked.request is not None
        approval = self.guard.approve(asked.request.id, self.operator("mallory", tokens["mallory"]))
        assert isinstance(approval, Approval) and approval.share is not None
        tokens["h2"] = self.guard.enroll("h2", (asked.code or "") + approval.share)
        self.honest = {n: self.operator(n, tokens[n]) for n in HONEST}
        self.tokens = {"mallory": tokens["mallory"]}  # what the attacker holds, by user_key
        self.codes: dict[str, list[str]] = {"h2": [approval.share]}  # codes and shares seen
        self.unblocked = False

    def operator(self, name: str, token: str) -> Operator:
        who = self.guard.authenticate(name, token)
        assert isinstance(who, Operator)
        return who

    def me(self, pick: int) -> Operator | None:
        """One of the identities the attacker holds a working token for."""
        held = sorted(self.tokens.items())
        name, token = held[pick % len(held)]
        try:
            return self.operator(name, token)
        except TradeguardError:
            return None

    def keep(self, name: str, code: str | None) -> None:
        if code:
            self.codes.setdefault(user_key(name), []).append(code)

    def teardown(self) -> None:
        self.guard.close()

    # -- user administration, by the attacker ----------------------------------------------

    @rule(pick=st.integers(0, 9), name=NAME, role=st.sampled_from(ROLES))
    def add_user(self, pick: int, name: str, role: str) -> None:
        if (me := self.me(pick)) is not None:
            self.attempt(lambda: self.keep(name, self.guard.add_user(name, role, by=me).code))

    @rule(pick=st.integers(0, 9), name=NAME)
    def reissue(self, pick: int, name: str) -> None:
        if (me := self.me(pick)) is not None:
            self.attempt(lambda: self.keep(name, self.guard.issue_token(name, by=me).code))

    @rule(pick=st.integers(0, 9))
    def renew(self, pick: int) -> None:
        if (me := self.me(pick)) is not None:
            self.tokens[user_key(me.name)] = self.guard.renew_token(me)

    @rule(pick=st.integers(0, 9), name=NAME, role=st.sampled_from(ROLES))
    def set_role(self, pick: int, name: str, role: str) -> None:
        if (me := self.me(pick)) is not None:
            self.attempt(lambda: self.guard.set_role(name, role, by=me))

    @rule(pick=st.integers(0, 9), name=NAME)
    def remove(self, pick: int, name: str) -> None:
        if (me := self.me(pick)) is not None:
            self.attempt(lambda: self.guard.remove_user(name, by=me))

    @rule(name=NAME)
    def enroll(self, name: str) -> None:
        """Every code and share held for ``name``, alone and in pairs."""
        held = self.codes.get(user_key(name), [])
        tries = held + ["".join(p) for p in itertools.permutations(held, 2)]
        for code in tries[:6]:
            try:
                self.tokens[user_key(name)] = self.guard.enroll(name, code)
                return
            except TradeguardError:
                continue

    @precondition(lambda self: bool(self.pending("user:")))
    @rule(honest=st.sampled_from(HONEST))
    def gullible_approval(self, honest: str) -> None:
        """A second person approves an administration request; their share stays theirs."""
        for request in self.pending("user:"):
            self.attempt(lambda r=request: self.guard.approve(r.id, self.honest[honest]))

    # -- two-person acts, by the attacker --------------------------------------------------

    @rule(pick=st.integers(0, 9))
    def emergency(self, pick: int) -> None:
        if (me := self.me(pick)) is not None:
            self.guard.emergency(me)

    @rule(pick=st.integers(0, 9))
    def reset(self, pick: int) -> None:
        if (me := self.me(pick)) is not None:
            self.attempt(lambda: self.guard.reset(me))

    @rule(pick=st.integers(0, 9))
    def unblock(self, pick: int) -> None:
        if (me := self.me(pick)) is not None:
            self.attempt(lambda: self.guard.unblock_genome(FP, me))

    @rule(pick=st.integers(0, 9))
    def approve(self, pick: int) -> None:
        if (me := self.me(pick)) is None:
            return
        for request in self.pending(""):
            done = self.attempt(lambda r=request: self.guard.approve(r.id, me))
            if isinstance(done, Approval) and done.action == "unblock_genome":
                self.unblocked = True

    def pending(self, prefix: str) -> list[Approval]:
        return [a for a in self.store.approvals() if a.action.startswith(prefix)]

    @staticmethod
    def attempt(act: object) -> object:
        try:
            return act()  # type: ignore[operator]
        except TradeguardError:
            return None

    @invariant()
    def never_two_people(self) -> None:
        """An emergency the attacker raised is never lifted, a genome never unblocked."""
        state = self.guard.portfolio_state
        lifted = any(
            r.entry.action == "state_change" and r.entry.after == "normal"
            for r in self.store.audit_records()
        )
        assert not lifted, f"lifted by one person (state {state})"
        assert not self.unblocked
        assert state in (PortfolioState.NORMAL, PortfolioState.EMERGENCY)


OneAttacker.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOneAttacker = OneAttacker.TestCase
