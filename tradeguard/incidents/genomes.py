"""Genomes: what a strategy or agent is (its parameters, its code version), as a fingerprint.

A genome is any JSON-serializable description; its fingerprint is the SHA-256 of its canonical
JSON (sorted keys, no whitespace), so the same genome always has the same fingerprint whatever
the key order it was written in. The KillChain blacklists the fingerprint of a strategy the
evidence tied to an incident's cause, when the cause's policy is ``disable`` (or a person said
so): that genome can never register or trade again, and an evolutionary framework can ask
before it breeds.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from tradeguard.clock import to_iso


def canonical(genome: object) -> str:
    """The one JSON text of a genome; refuses what JSON cannot hold exactly (NaN, infinity,
    objects that are not dicts, lists, strings, numbers, booleans or null)."""

    def check(node: object, path: str) -> None:
        if isinstance(node, float) and not math.isfinite(node):
            raise ValueError(f"genome{path} is {node!r}: not JSON")
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise ValueError(f"genome{path} has a key that is not text: {key!r}")
                check(value, f"{path}.{key}")
        elif isinstance(node, list | tuple):
            for i, value in enumerate(node):
                check(value, f"{path}[{i}]")
        elif not (node is None or isinstance(node, str | int | float | bool)):
            raise ValueError(f"genome{path} is a {type(node).__name__}: not JSON")

    check(genome, "")
    return json.dumps(_integral(genome), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _integral(node: Any) -> Any:
    """20.0 and 20 are one number: written either way, the same fingerprint."""
    if isinstance(node, float) and node.is_integer():
        return int(node)
    if isinstance(node, dict):
        return {k: _integral(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_integral(v) for v in node]
    return node


def fingerprint(genome: object) -> str:
    return hashlib.sha256(canonical(genome).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class GenomeRecord:
    """A genome the guard has seen, the strategies that registered with it, and whether it is
    blacklisted (by which incident, why, when)."""

    fingerprint: str
    genome: Any
    strategies: tuple[str, ...]
    blacklisted: bool = False
    incident: str | None = None
    reason: str = ""
    at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "genome": self.genome,
            "strategies": list(self.strategies),
            "blacklisted": self.blacklisted,
            "incident": self.incident,
            "reason": self.reason,
            "at": None if self.at is None else to_iso(self.at),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenomeRecord:
        return cls(
            str(data["fingerprint"]),
            data["genome"],
            tuple(str(s) for s in data["strategies"]),
            bool(data["blacklisted"]),
            None if data.get("incident") is None else str(data["incident"]),
            str(data.get("reason", "")),
            None if data.get("at_epoch") is None else float(data["at_epoch"]),
        )

    def to_row(self) -> dict[str, Any]:
        return {**self.to_dict(), "at_epoch": self.at}
