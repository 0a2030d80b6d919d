// Shared by this package's tests: temporary stores closed after each test, and records to write.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach } from 'vitest'
import type { RunRecord, StepRecord } from '@stepline/core'
import { sqliteStore, type SqliteStore, type SqliteStoreOptions } from './sqlite-store'

/** A temporary directory for this test file, `file()` for a fresh path in it, `make()` for a store closed after each test. */
export function tempStores(prefix: string, defaults: Omit<SqliteStoreOptions, 'path'> = {}) {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  let n = 0
  const open: SqliteStore[] = []
  afterEach(() => {
    for (const s of open.splice(0)) s.close()
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  return {
    dir,
    file: (): string => join(dir, `t${++n}.db`),
    make: (path: string, options: Omit<SqliteStoreOptions, 'path'> = {}): SqliteStore => {
      const s = sqliteStore({ path, ...defaults, ...options })
      open.push(s)
      return s
    },
  }
}

export function run(id: string, over: Partial<RunRecord> = {}): RunRecord {
  return { id, workflowId: 'wf', planHash: 'h1', status: 'running', payload: { n: 1 }, attempt: 1, createdAt: 1000, ...over }
}

export function step(key: string, over: Partial<StepRecord> = {}): StepRecord {
  return { key, nodeId: key, name: `step-${key}`, kind: 'step', status: 'completed', output: key, attempts: 1, startedAt: 1, endedAt: 2, durationMs: 1, ...over }
}
