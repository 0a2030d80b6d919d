/**
 * Events into waiting runs: N runs park in a `waitForEvent`, then `engine.send` answers each
 * (64 sends in flight, as a server taking them over HTTP would have), and each resumed run ends.
 * Measured on the SQLite store as `stepline serve` opens it (journal log), with `writes: 'inline'`,
 * and against the memory store as the baseline: what the engine costs without a file. A send
 * reads the run, stores the event and moves the run to running: answers that depend on the file,
 * so with the journal log each waits for the log's thread to catch up.
 * Run: `pnpm bench events` (BENCH_EVENTS runs, default 5000).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createEngine, memoryStore, workflow, type Store } from '@stepline/core'
import { sqliteStore } from '@stepline/store-sqlite'
import { fmt, type Row } from './util'

const N = Number(process.env.BENCH_EVENTS ?? 5000)
const IN_FLIGHT = 64

/** Sends per second into `n` waiting runs on `store`. */
async function sendsPerSecond(store: Store): Promise<number> {
  const approval = workflow<number>('approval').step('ask', (ctx) => ctx.payload).waitForEvent('answer', { timeout: '1h' }).step('act', (ctx) => ctx.last)
  const engine = createEngine({ store, workflows: [approval] })
  let parked = 0
  let completed = 0
  engine.on('run:parked', () => parked++)
  engine.on('run:completed', () => completed++)
  const ids: string[] = []
  for (let i = 0; i < N; i += 500) ids.push(...(await Promise.all(Array.from({ length: Math.min(500, N - i) }, (_, k) => engine.start(approval, i + k)))).map((h) => h.id))
  while (parked < N) await new Promise((r) => setTimeout(r, 5))
  const t0 = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < N) await engine.send(ids[next++]!, 'answer', { yes: true })
  }))
  const seconds = (performance.now() - t0) / 1000
  while (completed < N) await new Promise((r) => setTimeout(r, 5))
  await engine.close()
  return N / seconds
}

export async function eventsBench(): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'stepline-bench-events-'))
  try {
    const memory = await sendsPerSecond(memoryStore())
    const logged = sqliteStore({ path: join(dir, 'log.db'), groupCommit: 'immediate', writes: 'log' })
    const withLog = await sendsPerSecond(logged)
    logged.close()
    const plain = sqliteStore({ path: join(dir, 'inline.db'), groupCommit: 'immediate', writes: 'inline' })
    const inline = await sendsPerSecond(plain)
    plain.close()
    const note = `${N} runs waiting, ${IN_FLIGHT} sends in flight; baseline: the memory store`
    return [
      { name: "engine.send → run resumes, SQLite as stepline serve (writes: 'log')", baseline: memory, engine: withLog, unit: 'sends/s', higherIsBetter: true, note: `${note}; ${fmt(1e6 / withLog)} µs per send` },
      { name: "engine.send → run resumes, SQLite writes: 'inline'", baseline: memory, engine: inline, unit: 'sends/s', higherIsBetter: true, note: `${fmt(1e6 / inline)} µs per send (memory: ${fmt(1e6 / memory)} µs)` },
    ]
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
