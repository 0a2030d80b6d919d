// A second process on one SQLite file, for multi-process.test.ts: it opens a store (and an
// engine) as the test asks over the IPC channel, runs what it is told, and answers each command
// with its result or its error's code and message. Started with `--import tsx`, so it runs the
// sources as vitest does (the root tsconfig's paths map @stepline/*).
import Database from 'better-sqlite3'
import { createEngine } from '@stepline/core'
import { sqliteStore } from '@stepline/store-sqlite'
import { workflows as define } from './multi-process.workflows.ts'

const workflows = define((exec) => process.send({ exec }))

let store
let engine
let locker

/** Busy-waits until the wall clock reaches `at`: two processes told the same moment start together. */
const until = (at) => {
  while (Date.now() < at);
}

const errorOf = (e) => ({ code: e?.code, name: e?.name, message: String(e?.message ?? e) })

const commands = {
  /** Nothing: its answer comes after every message this process sent before it (step executions). */
  ping() {},
  open({ at, path, options = {}, register = [], recover = true }) {
    if (at !== undefined) until(at)
    store = sqliteStore({ path, ...options })
    engine = createEngine({ store, workflows: register.map((w) => workflows[w]), recover })
    return process.pid
  },
  /** `count` group commits of plain runs (`fill-<i>`), each awaited: past 100 a store with `writes: 'log'` uses its log. */
  async fill({ from = 0, count }) {
    for (let i = from; i < from + count; i++) {
      await store.createRun({ id: `fill-${process.pid}-${i}`, workflowId: 'fill', planHash: 'h', status: 'completed', payload: i, attempt: 1, createdAt: 1, endedAt: 1 })
    }
  },
  /** Starts runs at the moment `at`, one after another (each awaited); per start its id or its error. */
  async starts({ at, workflow: wf, starts }) {
    until(at)
    const results = []
    for (const options of starts) {
      try {
        results.push({ id: (await engine.start(wf, {}, options)).id })
      } catch (e) {
        results.push({ error: errorOf(e) })
      }
    }
    return results
  },
  /** Starts `count` runs of `workflow` at once and waits for their outcomes: their ids and statuses. */
  async runMany({ workflow: wf, count }) {
    const handles = await Promise.all(Array.from({ length: count }, (_, n) => engine.start(wf, { n })))
    return Promise.all(handles.map(async (h) => ({ id: h.id, status: (await h.outcome()).status })))
  },
  async start({ workflow: wf, payload, options }) {
    return (await engine.start(wf, payload, options)).id
  },
  async send({ at, target, name, data }) {
    if (at !== undefined) until(at)
    return engine.send(target, name, data)
  },
  async cancel({ at, runId, reason }) {
    if (at !== undefined) until(at)
    return engine.cancel(runId, reason)
  },
  async recover() {
    return (await engine.recover()).map((h) => h.id)
  },
  async outcome({ runId }) {
    const { status, output } = await engine.handle(runId).outcome()
    return { status, output }
  },
  /** A store call, e.g. `{ method: 'getRun', args: ['r1'] }`. */
  async call({ method, args = [] }) {
    return store[method](...args)
  },
  /** Holds the file's write lock from a plain connection until `unlock`, as another program's long transaction would. */
  lock({ path }) {
    locker = new Database(path)
    locker.exec('BEGIN IMMEDIATE')
  },
  unlock() {
    locker.exec('ROLLBACK')
    locker.close()
    locker = undefined
  },
  async close() {
    await engine?.close()
    store?.close()
    engine = store = undefined
  },
}

process.on('message', async ({ id, op, args }) => {
  try {
    process.send({ id, value: await commands[op](args ?? {}) })
  } catch (e) {
    process.send({ id, error: errorOf(e) })
  }
})
process.on('disconnect', () => process.exit(0))
process.send({ ready: process.pid })
