"""The SQLite connection every aggregate shares: WAL, ``synchronous=FULL``, one lock.

Every write is ``BEGIN IMMEDIATE`` so two processes sharing the file serialize their writes and
never fork the audit chain. Any SQLite failure surfaces as :class:`StoreUnavailable`; the guard
decides what that means (fail closed), never this module. The per-aggregate classes beside this
one add their tables' methods on top of :class:`SqliteConnection`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import quote

from tradeguard.audit import GENESIS, AuditEntry, AuditRecord
from tradeguard.errors import StoreUnavailable
from tradeguard.store import anchor, codec, keyfile
from tradeguard.store.sqlite.schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION


class SqliteConnection:
    def __init__(
        self,
        path: str | Path,
        *,
        timeout: float = 5.0,
        audit_key: bytes | None = None,
        read_only: bool = False,
    ) -> None:
        """``read_only``: for looking (``tradeguard status``, ``audit verify``): the file is
        opened read-only, nothing is created, migrated, keyed or anchored, and every write
        raises. SQLite may still create its empty ``-wal``/``-shm`` companions to read a WAL
        file; the database, its anchor and its key are left byte for byte."""
        self.path = Path(path)
        self.read_only = read_only
        self._key = audit_key
        self._lock = threading.Lock()
        self._anchor = anchor.anchor_path(self.path)
        self._problem: str | None = None  # why the file is not the anchored store
        self._moved = False  # the open write transaction appended to the chain
        try:
            self._db = sqlite3.connect(
                f"file:{quote(str(self.path.absolute()))}?mode=ro" if read_only else self.path,
                timeout=timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=read_only,
            )
        except sqlite3.Error as exc:
            raise _unopened(self.path, exc) from exc
        try:
            self._look() if read_only else self._open()
        except BaseException:
            self._db.close()
            raise

    def _open(self) -> None:
        try:
            if self._db.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise StoreUnavailable(f"{self.path}: integrity check failed")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self._db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,)
                )
            elif int(row[0]) in MIGRATIONS:
                self._migrate()
            elif int(row[0]) != SCHEMA_VERSION:
                raise StoreUnavailable(f"{self.path}: schema {row[0]}, expected {SCHEMA_VERSION}")
            self._check_audit_key()
            self._check_anchor()
        except sqlite3.Error as exc:
            raise _unopened(self.path, exc) from exc

    def _look(self) -> None:
        """Open for reading only: the schema must be this version already (a writer migrates),
        the key is read, never made, and the anchor compared, never advanced."""
        try:
            if self._db.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise StoreUnavailable(f"{self.path}: integrity check failed")
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None or int(row[0]) != SCHEMA_VERSION:
                found = "no schema" if row is None else f"schema {row[0]}"
                raise StoreUnavailable(
                    f"{self.path}: {found}, expected {SCHEMA_VERSION}: a guard (or "
                    "`tradeguard init`) must open it for writing first"
                )
            keyed = self._db.execute("SELECT value FROM meta WHERE key='audit_keyed'").fetchone()
            if keyed is not None and keyed[0] == "1" and self._key is None:
                self._key = keyfile.load(keyfile.key_path(self.path))
                if self._key is None:
                    raise StoreUnavailable(
                        f"{self.path}: its audit chain is keyed and "
                        f"{keyfile.key_path(self.path).name} is missing"
                    )
            self._problem = self._anchor_problem(self._db)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.path}: {exc}") from exc

    def _check_anchor(self) -> None:
        """Is this file the store the anchor names, at least as far on? A new store (neither
        an identity nor an anchor) is given both; a store from before anchors is adopted."""
        self._problem = self._anchor_problem(self._db)
        found = self._mark(self._db)
        if self._problem is not None:
            return
        if not found.store:  # new, or from before anchors: give it an identity
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (_new_id(),))
            found = self._mark(self._db)
        if anchor.read(self._anchor) != found:  # new, or a crash came between commit and anchor
            anchor.advance(self._anchor, found)

    def _anchor_problem(self, db: sqlite3.Connection) -> str | None:
        """How the file differs from its anchor now (None: it is the store, as far on)."""
        anchored = anchor.read(self._anchor)
        found = self._mark(db)
        if anchored is None:
            if not found.store:
                return None
            return (
                f"the anchor {self._anchor.name} is missing, yet the database is store "
                f"{found.store}: it was removed or the database was copied here"
            )
        at = db.execute("SELECT hash FROM audit WHERE seq=?", (anchored.seq,)).fetchone()
        return anchor.compare(anchored, found, None if at is None else str(at[0]))

    @staticmethod
    def _mark(db: sqlite3.Connection) -> anchor.Mark:
        store = db.execute("SELECT value FROM meta WHERE key='store_id'").fetchone()
        head = db.execute("SELECT seq, hash FROM audit_head WHERE id=1").fetchone()
        versions = db.execute("SELECT total(version) FROM states").fetchone()[0]
        return anchor.Mark(
            "" if store is None else str(store[0]),
            0 if head is None else int(head[0]),
            GENESIS if head is None else str(head[1]),
            int(versions),
        )

    def trust_problem(self) -> str | None:
        """Why this file is not the store its anchor names (None when it is)."""
        return self._problem

    def accept(self) -> None:
        """Anchor the file as it is now, once its problem is recorded in it (an emergency):
        until then commits leave the anchor alone, so the mismatch stays visible."""
        if self.read_only:
            raise StoreUnavailable(f"{self.path}: opened read-only: its anchor is left as is")
        with self._read() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (_new_id(),))
            mark = self._mark(db)
        anchor.advance(self._anchor, mark, force=True)
        self._problem = None

    def _migrate(self) -> None:
        """Bring an older file to this schema in one transaction: a second process opening it
        at the same time waits, then finds it migrated. A failed step leaves it as it was."""
        with self._write() as db:
            version = int(db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0])
            while version in MIGRATIONS:
                for statement in MIGRATIONS[version].split(";\n"):
                    if statement.strip():
                        db.execute(statement)
                version += 1
            db.execute("UPDATE meta SET value=? WHERE key='schema'", (str(version),))

    def _check_audit_key(self) -> None:
        """A chain is keyed or not from its first record on; the key must match that. Without
        ``state.audit_key`` a new store is keyed all the same, by the key file beside it
        (:mod:`tradeguard.store.keyfile`); a store begun unkeyed stays unkeyed."""
        row = self._db.execute("SELECT value FROM meta WHERE key='audit_keyed'").fetchone()
        if row is None:
            empty = self._db.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 0
            if self._key is None and empty:
                self._key = keyfile.load_or_create(keyfile.key_path(self.path))
            keyed = self._key is not None and empty
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('audit_keyed', ?)", ("1" if keyed else "0",)
            )
            row = self._db.execute("SELECT value FROM meta WHERE key='audit_keyed'").fetchone()
        if row[0] == "1" and self._key is None:
            self._key = keyfile.load(keyfile.key_path(self.path))
        if row[0] == "1" and self._key is None:
            raise StoreUnavailable(
                f"{self.path}: its audit chain is keyed: set state.audit_key "
                f"(e.g. ${{TRADEGUARD_AUDIT_KEY}}) or restore {keyfile.key_path(self.path).name}"
            )
        if row[0] == "0" and self._key is not None:
            raise StoreUnavailable(
                f"{self.path}: its audit chain was started without a key; a "
                "key cannot be added later: remove state.audit_key or start "
                "a new store"
            )

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"{self.path}: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self.read_only:
            raise StoreUnavailable(f"{self.path}: opened read-only, to look: nothing is written")
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"{self.path}: {exc}") from exc
            self._moved = False
            try:
                yield self._db
                mark = self._mark(self._db) if self._moved and self._problem is None else None
                self._db.execute("COMMIT")
            except BaseException as exc:
                with suppress(sqlite3.Error):  # SQLite may have rolled back already (disk full)
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreUnavailable(f"{self.path}: {exc}") from exc
                raise
            if mark is not None:
                anchor.advance(self._anchor, mark)

    def _append(self, db: sqlite3.Connection, entry: AuditEntry) -> AuditRecord:
        """Link ``entry`` onto the chain inside the caller's write transaction."""
        head = db.execute("SELECT seq, hash FROM audit_head WHERE id=1").fetchone()
        row = codec.chain(None if head is None else (head[0], head[1]), entry, self._key)
        db.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?)", row)
        db.execute("INSERT OR REPLACE INTO audit_head VALUES (1, ?, ?)", (row.seq, row.hash))
        self._moved = True
        return row.record(entry)

    def data_version(self) -> int:
        """Changes whenever another connection commits: how a guard notices, cheaply, that a
        CLI or another process wrote to the store."""
        with self._read() as db:
            row = db.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _new_id() -> str:
    return uuid.uuid4().hex


def _unopened(path: Path, exc: sqlite3.Error) -> StoreUnavailable:
    """Opening failed: SQLite says "unable to open database file"; say what is in the way."""
    why = _in_the_way(path)
    return StoreUnavailable(f"{path}: {exc}" + ("" if why is None else f" ({why})"))


def _in_the_way(path: Path) -> str | None:
    parent = path.parent
    if not parent.exists():
        return f"the directory {parent} does not exist"
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if path.is_dir():
        return f"{path} is a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"this user cannot write in {parent} (SQLite keeps its journal files there)"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"this user cannot read and write {path}"
    return None
