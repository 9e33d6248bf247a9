"""The append-only, hash-chained audit log: every state change and every refused attempt.

Each record's hash covers its own fields, its sequence number and the previous record's hash,
so editing, deleting or reordering any row breaks the chain from that row on. A separate head
(last sequence number and hash), written in the same transaction, catches a truncated tail.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from tradeguard.clock import to_iso

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What happened, before the store gives it a place in the chain."""

    ts: float
    actor: str
    action: str
    scope: str
    before: str | None
    after: str | None
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    entry: AuditEntry
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": to_iso(self.entry.ts),
            **asdict(self.entry),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def canonical(entry: AuditEntry) -> str:
    return json.dumps(asdict(entry), sort_keys=True, separators=(",", ":"), allow_nan=False)


def chain_hash(prev_hash: str, seq: int, entry_json: str, key: bytes | None = None) -> str:
    """SHA-256, or HMAC-SHA256 with a key: without the key nobody can rewrite the chain and
    recompute it, even with write access to the database."""
    message = f"{prev_hash}|{seq}|{entry_json}".encode()
    if key is not None:
        return hmac.new(key, message, hashlib.sha256).hexdigest()
    return hashlib.sha256(message).hexdigest()


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""


def verify(
    rows: list[tuple[int, str, str, str, float]],
    head: tuple[int, str] | None,
    key: bytes | None = None,
) -> Verification:
    """Check ``(seq, entry_json, prev_hash, hash, ts)`` rows in order against the head; ``ts``
    is the store's copy of the entry's time, kept for queries, and must match it."""
    prev_hash, expected_seq = GENESIS, 1
    for seq, entry_json, stored_prev, stored_hash, ts in rows:
        if seq != expected_seq:
            return Verification(
                False,
                expected_seq - 1,
                expected_seq,
                f"record {expected_seq} is missing (next stored is {seq})",
            )
        if stored_prev != prev_hash:
            return Verification(
                False,
                seq - 1,
                seq,
                f"record {seq} does not follow record {seq - 1} (reordered or replaced)",
            )
        if (
            chain_hash(prev_hash, seq, entry_json, key) != stored_hash
            or _entry_ts(entry_json) != ts
        ):
            return Verification(
                False, seq - 1, seq, f"record {seq} was altered after it was written"
            )
        prev_hash, expected_seq = stored_hash, seq + 1
    last = expected_seq - 1
    if head is None:
        if last:
            return Verification(False, last, None, "the audit head is missing")
        return Verification(True, 0)
    head_seq, head_hash = head
    if head_seq != last or head_hash != prev_hash:
        return Verification(
            False,
            last,
            last + 1,
            f"the log ends at record {last} but its head says {head_seq}: "
            "records were removed from the end",
        )
    return Verification(True, last)


def _entry_ts(entry_json: str) -> object:
    try:
        return json.loads(entry_json).get("ts")
    except (ValueError, AttributeError):
        return None
