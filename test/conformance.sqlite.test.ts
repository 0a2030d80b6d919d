import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inlineExecutor } from '@stepline/core'
import { sqliteStore, type SqliteStore } from '@stepline/store-sqlite'
import { defineConformanceSuite } from './conformance/suite'

// A fresh database file per store, in one temp directory removed after the suite.
const dir = mkdtempSync(join(tmpdir(), 'stepline-sqlite-'))
const stores: SqliteStore[] = []
let n = 0

for (const groupCommit of [true, false]) {
  defineConformanceSuite({
    name: `sqlite (group commit ${groupCommit ? 'on, the default' : 'off'}) + inline`,
    createStore: () => {
      const store = sqliteStore({ path: join(dir, `conformance-${++n}.db`), groupCommit })
      stores.push(store)
      return store
    },
    executor: () => inlineExecutor(),
    cleanup: async () => {
      for (const store of stores.splice(0)) store.close()
    },
  })
}

// As `stepline serve` writes: through the journal log, which a store starts after 100 group
// commits, so each store makes them first; reads then catch the tables up with the log.
defineConformanceSuite({
  name: "sqlite (journal log) + inline",
  createStore: async () => {
    const store = sqliteStore({ path: join(dir, `conformance-${++n}.db`), writes: 'log' })
    stores.push(store)
    for (let i = 0; i < 100; i++) await store.updateRun('warm-up', {})
    return store
  },
  executor: () => inlineExecutor(),
  cleanup: async () => {
    for (const store of stores.splice(0)) store.close()
    rmSync(dir, { recursive: true, force: true })
  },
})
