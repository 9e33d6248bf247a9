"""The SQLite schema: one table per kind of row, created on open; ``meta`` holds its version.

A file written by an older schema is migrated in place, in one transaction, on open
(:data:`MIGRATIONS`); one written by a newer schema is refused rather than read as this one.
"""

from __future__ import annotations

SCHEMA_VERSION = 3

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS states (
    scope TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT NOT NULL,
    since REAL NOT NULL, actor TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, ts REAL NOT NULL, entry TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY, action TEXT NOT NULL, scope TEXT NOT NULL, requested_by TEXT NOT NULL,
    requested_at REAL NOT NULL, expires_at REAL NOT NULL, target_version INTEGER NOT NULL,
    status TEXT NOT NULL, approved_by TEXT, decided_at REAL, reason TEXT NOT NULL, seal TEXT);
CREATE TABLE IF NOT EXISTS flatten_runs (
    id TEXT PRIMARY KEY, scope TEXT NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL,
    started_at REAL NOT NULL, report TEXT);
CREATE TABLE IF NOT EXISTS users (
    key TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, salt TEXT, token_hash TEXT,
    updated_at REAL NOT NULL, sponsors TEXT NOT NULL, code TEXT NOT NULL, code_expires_at REAL,
    code_sponsors TEXT NOT NULL, seal TEXT);
CREATE TABLE IF NOT EXISTS user_history (
    seq INTEGER PRIMARY KEY, at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    user TEXT NOT NULL, details TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS user_history_no_update BEFORE UPDATE ON user_history
    BEGIN SELECT RAISE(ABORT, 'user_history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS user_history_no_delete BEFORE DELETE ON user_history
    BEGIN SELECT RAISE(ABORT, 'user_history is append-only'); END;
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT NOT NULL, channel TEXT NOT NULL, priority TEXT NOT NULL, payload TEXT NOT NULL,
    status TEXT NOT NULL, attempts INTEGER NOT NULL, next_attempt REAL NOT NULL,
    created_at REAL NOT NULL, last_error TEXT, delivered_at REAL, latency_ms REAL,
    PRIMARY KEY (id, channel));
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt);
CREATE TABLE IF NOT EXISTS metrics (scope TEXT PRIMARY KEY, data TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY, opened_at REAL NOT NULL, status TEXT NOT NULL, owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS genomes (fingerprint TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recovery (
    scope TEXT PRIMARY KEY, version INTEGER NOT NULL, stage INTEGER NOT NULL, since REAL NOT NULL,
    trades_at_start INTEGER NOT NULL, pnl_at_start REAL NOT NULL, authorized_by TEXT NOT NULL,
    seal TEXT);
"""

# Schema 1 -> 2: users are keyed by their normalized name and carry enrollment codes and
# sponsors; the issuer of a schema-1 token becomes its one sponsor, so the two-person rule
# still refuses a pair where one minted the other's token. Two users whose names collide
# make the copy fail (the key is unique): the store is refused until one is removed.
# A store that already had two lifting users with tokens is marked established.
_V1_TO_V2 = """
ALTER TABLE users RENAME TO users_v1;
CREATE TABLE users (
    key TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, salt TEXT, token_hash TEXT,
    updated_at REAL NOT NULL, sponsors TEXT NOT NULL, code TEXT NOT NULL, code_expires_at REAL,
    code_sponsors TEXT NOT NULL);
INSERT INTO users SELECT
    lower(name), name, role, salt, token_hash, updated_at,
    CASE WHEN issued_by IS NULL THEN '[]' ELSE json_array(lower(issued_by)) END,
    '[]', NULL, '[]'
    FROM users_v1;
DROP TABLE users_v1;
INSERT INTO user_history (at, actor, action, user, details)
    SELECT max(updated_at), 'system:migration', 'established', '', '{}' FROM users
    WHERE token_hash IS NOT NULL AND role IN ('risk_manager', 'admin')
    HAVING count(*) >= 2;
"""

# Schema 2 -> 3: the rows that grant authority carry a seal (see codec.seal). No script: the
# migrating guard adds the column where it is missing (a table the old file lacked was made
# with it) and seals the rows it finds, in the same transaction (SqliteConnection._migrate).
_V2_TO_V3 = ""

SEALS_SINCE = 3  # the first schema whose users, approvals and rungs are sealed
MIGRATIONS = {1: _V1_TO_V2, 2: _V2_TO_V3}  # from version -> the script to the next
