"""The audit key a store makes for itself: ``<db>.key``, mode 0600, outside the database.

A plain SHA-256 chain stops nobody who can write the database: they edit a row and recompute
every hash after it. Keyed (HMAC-SHA256), the chain can be extended or rewritten only by a
holder of the key, so a store is keyed from its first record whenever it can be: with
``state.audit_key`` from the environment when one is given, else with a random key its
creator writes beside the database, readable by the owner alone. Whoever holds the database
but not this file cannot forge a record; whoever holds both can (ship the anchor and the
audit off the host to be out of their reach).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from tradeguard.errors import StoreUnavailable

KEY_BYTES = 32


def key_path(db: Path) -> Path:
    return db.with_name(db.name + ".key")


def load(path: Path) -> bytes | None:
    """The key in ``path``, or None when there is none; an unreadable or empty one raises."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreUnavailable(f"{path}: {exc}") from exc
    if not text:
        raise StoreUnavailable(f"{path}: the audit key file is empty")
    return text.encode()


def load_or_create(path: Path) -> bytes:
    """The key in ``path``, made first (random, mode 0600, fsynced) when there is none."""
    found = load(path)
    if found is not None:
        return found
    text = secrets.token_hex(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        raced = load(path)
        if raced is None:
            raise StoreUnavailable(f"{path}: the audit key vanished as it was made") from None
        return raced
    except OSError as exc:
        raise StoreUnavailable(f"{path}: cannot create the audit key: {exc}") from exc
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return text.encode()
