import type Database from 'better-sqlite3'
import { SteplineError } from '@stepline/core'

/**
 * The schema, one entry per version: `MIGRATIONS[i]` takes a file from `user_version` i to
 * i + 1. Append only — never edit a shipped entry, since files in the field already ran it.
 *
 * `runs` and `steps` have an integer rowid (`seq`) beside their natural key: it is the order
 * rows were first written (listRuns newest first, a journal in first-write order), survives
 * VACUUM, and an upsert keeps it.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE runs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    workflow_id TEXT NOT NULL,
    plan_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    payload TEXT,
    output TEXT,
    error TEXT,
    idempotency_key TEXT,
    attempt INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    ended_at INTEGER,
    wake_at INTEGER,
    wait_event TEXT,
    wait_match TEXT,
    UNIQUE (workflow_id, idempotency_key)
  );
  CREATE INDEX runs_status_wake ON runs (status, wake_at);
  CREATE INDEX runs_wait ON runs (wait_event, wait_match) WHERE wait_event IS NOT NULL;
  CREATE INDEX runs_workflow ON runs (workflow_id, seq);

  CREATE TABLE steps (
    seq INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    node_id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    output TEXT,
    error TEXT,
    recovered INTEGER,
    attempts INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    item TEXT,
    UNIQUE (run_id, key)
  );

  CREATE TABLE events (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    data TEXT,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, name)
  ) WITHOUT ROWID;

  CREATE TABLE cache (
    key TEXT PRIMARY KEY,
    value TEXT,
    expires_at INTEGER
  ) WITHOUT ROWID;
  `,
  // 2: how far the journal log's thread applied each log (see journal-log.ts).
  `
  CREATE TABLE log_applied (
    log TEXT PRIMARY KEY,
    offset INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
]

/** Brings the file at `path` to the latest schema, in one transaction; refuses a newer file. */
export function migrate(db: Database.Database, path: string): void {
  const latest = MIGRATIONS.length
  const current = (): number => db.pragma('user_version', { simple: true }) as number
  if (current() === latest) return
  // IMMEDIATE: two processes opening a fresh file at once migrate it once.
  db.transaction(() => {
    const from = current()
    if (from > latest) {
      throw new SteplineError(
        'STORE_UNAVAILABLE',
        `SQLite store ${path} has schema version ${from}, newer than this @stepline/store-sqlite knows (${latest}): it was written by a newer version. Upgrade @stepline/store-sqlite, or point \`path\` elsewhere.`,
      )
    }
    for (let v = from; v < latest; v++) db.exec(MIGRATIONS[v]!)
    db.pragma(`user_version = ${latest}`)
  }).immediate()
}
