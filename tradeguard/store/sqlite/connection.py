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
from tradeguard.store.sqlite.schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION, SEALS_SINCE


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
        self._commits = 0  # this connection's own commits (data_version counts others' only)
        self._file: tuple[int, int] | None = None  # (device, inode) of the file opened
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
            self._file = _identity(self.path)
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
            self._check_audit_key()  # before a migration: it seals rows with the key
            schema = self._schema()
            if schema is None:
                self._db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,)
                )
            elif schema not in MIGRATIONS and schema != SCHEMA_VERSION:
                raise StoreUnavailable(f"{self.path}: schema {schema}, expected {SCHEMA_VERSION}")
            # anchored (and given its identity) as found, before a migration seals its rows
            self._check_anchor()
            if schema in MIGRATIONS:
                self._migrate(trusted=self._problem is None)
        except sqlite3.Error as exc:
            raise _unopened(self.path, exc) from exc

    def _look(self) -> None:
        """Open for reading only: the schema must be this version already (a writer migrates),
        the key is read, never made, and the anchor compared, never advanced."""
        try:
            if self._db.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise StoreUnavailable(f"{self.path}: integrity check failed")
            schema = self._schema()
            if schema != SCHEMA_VERSION:
                found = "no schema" if schema is None else f"schema {schema}"
                raise StoreUnavailable(
                    f"{self.path}: {found}, expected {SCHEMA_VERSION}: a guard (or "
                    "`tradeguard init`) must open it for writing first"
                )
            keyed = self._db.execute("SELECT value FROM meta WHERE key='audit_keyed'").fetchone()
            # a writer records it at every open: missing, the chain is not keyed as far as the
            # file says, which a key beside it (or in the config) contradicts
            self._settle_key("0" if keyed is None else str(keyed[0]))
            self._problem = self._anchor_problem(self._db)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.path}: {exc}") from exc

    def _schema(self) -> int | None:
        """The file's schema number (None: a new file); one that is no number is corruption."""
        row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            return None
        with codec.reading(str(self.path), "schema number"):
            return int(row[0])

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
        if anchor.read(self._anchor, self._key) != found:  # new, or a crash after a commit
            anchor.advance(self._anchor, found, self._key)

    def _anchor_problem(self, db: sqlite3.Connection) -> str | None:
        """How the file differs from its anchor now (None: it is the store, as far on)."""
        try:
            anchored = anchor.read(self._anchor, self._key)
        except StoreUnavailable as exc:  # unreadable, or not sealed with the key: untrusted
            return str(exc)
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

    def _mark(self, db: sqlite3.Connection) -> anchor.Mark:
        """How far the file got; a head or a version that is no number is corruption."""
        store = db.execute("SELECT value FROM meta WHERE key='store_id'").fetchone()
        head = db.execute("SELECT seq, hash FROM audit_head WHERE id=1").fetchone()
        versions = db.execute("SELECT total(version) FROM states").fetchone()[0]
        schema = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        with codec.reading(str(self.path), "anchor mark (audit head, state versions, schema)"):
            return anchor.Mark(
                "" if store is None else str(store[0]),
                0 if head is None else int(head[0]),
                GENESIS if head is None else str(head[1]),
                int(versions),
                SCHEMA_VERSION if schema is None else int(schema[0]),
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
        anchor.advance(self._anchor, mark, self._key, force=True)
        self._problem = None

    def _migrate(self, *, trusted: bool) -> None:
        """Bring an older file to this schema in one transaction: a second process opening it
        at the same time waits, then finds it migrated. A failed step leaves it as it was.
        The rows found are sealed only in a file that is the anchored store (``trusted``): the
        schema number is a plain row, and one set back in a sealed store (the anchor says how
        far it got) would have every row sealed, those written without the key among them.
        Untrusted, the columns are added and nothing sealed: its rows grant nothing."""
        with self._write() as db:
            version = int(db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0])
            unsealed = version < SEALS_SINCE
            while version in MIGRATIONS:
                for statement in MIGRATIONS[version].split(";\n"):
                    if statement.strip():
                        db.execute(statement)
                version += 1
            if unsealed:  # the rows as found are sealed once, by the guard that migrates them
                self._seal_found(db, trusted)
            db.execute("UPDATE meta SET value=? WHERE key='schema'", (str(version),))
            mark = self._mark(db)
        if trusted:  # from now on, a schema set back is behind the anchor
            anchor.advance(self._anchor, mark, self._key)

    def _seal_found(self, db: sqlite3.Connection, trusted: bool) -> None:
        key = self._seal_key(db)
        for table in codec.SEALED:
            columns = {c[1] for c in db.execute(f"PRAGMA table_info({table})")}
            if "seal" not in columns:
                db.execute(f"ALTER TABLE {table} ADD COLUMN seal TEXT")
            if not trusted:
                continue
            for row in db.execute(f"SELECT rowid, * FROM {table}").fetchall():
                db.execute(
                    f"UPDATE {table} SET seal=? WHERE rowid=?",
                    (codec.found_seal(key, table, tuple(row[1:-1])), row[0]),
                )

    def _seal_key(self, db: sqlite3.Connection) -> bytes | None:
        """The key of this store's seals (:func:`codec.seal_key`), read in ``db``'s
        transaction: a store is given its identity once, when it is anchored."""
        store = db.execute("SELECT value FROM meta WHERE key='store_id'").fetchone()
        return codec.seal_key(self._key, "" if store is None else str(store[0]))

    def unsealed_row(self, db: sqlite3.Connection) -> str | None:
        """The first row of the sealed tables whose seal is not this store's, said (None when
        every row carries it): for ``verify``, which checks the whole file."""
        key = self._seal_key(db)
        for table in codec.SEALED:
            for row in db.execute(f"SELECT * FROM {table}"):
                problem = codec.seal_problem(key, table, tuple(row), str(self.path))
                if problem is not None:
                    return problem
        return None

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
        self._settle_key(str(row[0]))

    def _settle_key(self, keyed: str) -> None:
        """Take the key the file says its chain has (``keyed``: its ``audit_keyed`` flag), or
        refuse the file. Readers too: an unkeyed chain and anchor are checked with no key at
        all, so a keyed store emptied and called unkeyed by someone without the key would read
        as whatever they wrote (``tradeguard status`` saying normal). Any flag but "0" is
        keyed: an unknown one must not leave a chain checked without a key."""
        if keyed != "0" and self._key is None:
            self._key = keyfile.load(keyfile.key_path(self.path))
        if keyed != "0" and self._key is None:
            raise StoreUnavailable(
                f"{self.path}: its audit chain is keyed: set state.audit_key "
                f"(e.g. ${{TRADEGUARD_AUDIT_KEY}}) or restore {keyfile.key_path(self.path).name}"
            )
        if keyed == "0" and self._key is not None:
            raise StoreUnavailable(
                f"{self.path}: its audit chain was started without a key; a "
                "key cannot be added later: remove state.audit_key or start "
                "a new store"
            )
        if keyed == "0" and keyfile.load(keyfile.key_path(self.path)) is not None:
            # only a keyed store's creator makes a key file: an unkeyed chain beside one was
            # rewritten by someone without the key (and its anchor with it)
            raise StoreUnavailable(
                f"{self.path}: its audit chain says it is unkeyed, yet "
                f"{keyfile.key_path(self.path).name} exists: the chain was rewritten "
                "without the key"
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
            self._commits += 1
            if mark is not None:
                anchor.advance(self._anchor, mark, self._key)

    def _append(self, db: sqlite3.Connection, entry: AuditEntry) -> AuditRecord:
        """Link ``entry`` onto the chain inside the caller's write transaction."""
        head = db.execute("SELECT seq, hash FROM audit_head WHERE id=1").fetchone()
        row = codec.chain(None if head is None else (head[0], head[1]), entry, self._key)
        db.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?)", row)
        db.execute("INSERT OR REPLACE INTO audit_head VALUES (1, ?, ?)", (row.seq, row.hash))
        self._moved = True
        return row.record(entry)

    def data_version(self) -> int:
        """Changes whenever anyone commits: how a guard notices, cheaply, that a CLI or another
        process wrote to the store. SQLite's own counter moves on other connections' commits
        only, so this connection's are added: two guards handed one store object see each
        other's halts. A file no longer at the path (moved aside, removed, replaced) will never
        see another process's write again: that raises, as a store that cannot say."""
        with self._read() as db:
            row = db.execute("PRAGMA data_version").fetchone()
            version = int(row[0]) + self._commits
        try:
            moved = _identity(self.path) != self._file
        except OSError:
            moved = True
        if moved:
            raise StoreUnavailable(
                f"{self.path}: the database file open here is no longer the one at its path "
                "(moved, removed or replaced): nothing written there reaches this process"
            )
        return version

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _identity(path: Path) -> tuple[int, int]:
    """Which file is at ``path`` (device, inode); raises ``OSError`` when there is none."""
    found = os.stat(path)
    return found.st_dev, found.st_ino


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
