"""The SQLite schema: one table per kind of row, created on open; ``meta`` holds its version.

A file written by another schema version is refused on open rather than read as this one.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

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
    status TEXT NOT NULL, approved_by TEXT, decided_at REAL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS flatten_runs (
    id TEXT PRIMARY KEY, scope TEXT NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL,
    started_at REAL NOT NULL, report TEXT);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, salt TEXT, token_hash TEXT,
    updated_at REAL NOT NULL, issued_by TEXT);
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
    trades_at_start INTEGER NOT NULL, pnl_at_start REAL NOT NULL, authorized_by TEXT NOT NULL);
"""
