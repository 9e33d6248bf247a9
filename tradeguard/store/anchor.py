"""The store's anchor: who the store is and how far it got, kept outside the database file.

A database cannot vouch for itself: a file that lost its ``-wal``, was cut to 0 bytes, rolled
back to a copy or replaced by another store opens as a healthy SQLite file and says "normal".
So every commit that moves the audit chain also writes a small file beside the database,
``<db>.anchor``: the store's identity, the audit sequence and head hash it reached, and the
sum of its state versions (which only ever grow). At every open the database must still be that
store and at least that far; :func:`compare` says what is wrong when it is not.

A keyed store's anchor is sealed with its audit key (HMAC-SHA256 over the mark): without the
seal, whoever holds the database and the anchor but not the key could cut the chain's tail,
rewind its head and write an anchor that says the cut chain is as far as the store got. An
anchor whose seal is missing or wrong is refused. What stays out of reach is named in the
README: a copy of an older database and its anchor put back together (both genuine), or
every file removed at once (a new store), are told apart only by a copy kept off the host.

The file is replaced atomically (temporary file, fsync, rename, fsync of the directory) under
an exclusive lock on the directory, and only ever moves forward: two processes sharing the
store cannot put it back. A crash between the database commit and the anchor leaves the
database ahead of it, which is accepted (the chain still passes through the anchored record).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from tradeguard.errors import StoreUnavailable

# Anchors written before the schema was anchored name none: they were written at schema 2,
# and their seal covers the other four fields only.
BEFORE_SEALS = 2


@dataclass(frozen=True, slots=True)
class Mark:
    """How far a store got: its identity, its audit head, the sum of its state versions, and
    its schema (which only ever grows: a file whose schema number was set back would be
    migrated again, and a migration to sealed rows seals every row it finds, forged or not)."""

    store: str
    seq: int
    hash: str
    versions: int
    schema: int = BEFORE_SEALS


def anchor_path(db: Path) -> Path:
    return db.with_name(db.name + ".anchor")


def read(path: Path, key: bytes | None = None) -> Mark | None:
    """The anchored mark, or None when there is no anchor; an unreadable one raises, and so
    does one not sealed with ``key`` (a keyed store's anchor written without its key)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreUnavailable(f"{path}: {exc}") from exc
    try:
        data = json.loads(text)
        mark = Mark(
            str(data["store"]),
            int(data["seq"]),
            str(data["hash"]),
            int(data["versions"]),
            int(data.get("schema", BEFORE_SEALS)),
        )
        seal = data.get("seal")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreUnavailable(f"{path}: the anchor is unreadable ({exc!r})") from exc
    if key is not None and not (
        isinstance(seal, str) and hmac.compare_digest(seal, _seal(mark, key))
    ):
        raise StoreUnavailable(
            f"{path}: the anchor is not sealed with the store's audit key: "
            "it was written by someone who does not hold the key"
        )
    return mark


def _fields(mark: Mark) -> dict[str, object]:
    """What the anchor file holds: an anchor at the schema before seals is written as it was
    then (no schema), so the anchors of stores not yet migrated keep their seal."""
    record = asdict(mark)
    if mark.schema == BEFORE_SEALS:
        del record["schema"]
    return record


def _seal(mark: Mark, key: bytes) -> str:
    message = json.dumps(_fields(mark), sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def compare(anchored: Mark, found: Mark, hash_at_seq: str | None) -> str | None:
    """What is wrong with the database (``found``, and the hash of its record at the anchored
    sequence) against the anchor; None when it is the same store, at least as far on."""
    if found.store != anchored.store:
        what = "an empty or unknown database" if not found.store else f"store {found.store}"
        return f"the anchor names store {anchored.store} but the file is {what}"
    if found.seq < anchored.seq or (anchored.seq and hash_at_seq != anchored.hash):
        return (
            f"rolled back or cut: the anchor has audit record {anchored.seq} "
            f"({anchored.hash[:12]}), the database ends at record {found.seq}"
        )
    if found.versions < anchored.versions:
        return (
            f"rolled back: the anchor has state versions summing to {anchored.versions}, "
            f"the database {found.versions}"
        )
    if found.schema < anchored.schema:
        return (
            f"rolled back: the anchor has schema {anchored.schema}, the database says "
            f"{found.schema} (set back so that a migration would seal rows written without "
            "the key)"
        )
    return None


def advance(path: Path, mark: Mark, key: bytes | None, *, force: bool = False) -> None:
    """Write ``mark`` (sealed with ``key``, when the store is keyed) unless the anchor is
    already as far on for this store (another process sharing it wrote a later one):
    atomically, durably, under the directory's lock. ``force`` writes it regardless: an
    operator's store replaces the anchored one."""
    record = _fields(mark)
    if key is not None:
        record["seal"] = _seal(mark, key)
    with _locked(path.parent) as directory:
        current = None if force else read(path, key)
        if (
            current is not None
            and current.store == mark.store
            and current.seq >= mark.seq
            and current.versions >= mark.versions
            and current.schema >= mark.schema
        ):
            return
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            with open(temporary, "w") as out:
                out.write(json.dumps(record))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
            os.fsync(directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise StoreUnavailable(f"{path}: cannot write the anchor: {exc}") from exc


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[int]:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise StoreUnavailable(f"{directory}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)
