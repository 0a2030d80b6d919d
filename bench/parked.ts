/**
 * Parked runs hold no memory: 100,000 runs sleeping in the SQLite journal, heap per parked run
 * measured against the heap of the same engine before the runs (target ≤ 2 KB per parked run).
 * Run: `pnpm bench parked`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createEngine, workflow } from '@stepline/core'
import { sqliteStore } from '@stepline/store-sqlite'
import { fmt, gcNow, heapUsed, type Row } from './util'

export async function parkedBench(): Promise<Row[]> {
  const N = Number(process.env.BENCH_PARKED ?? 100_000)
  const dir = mkdtempSync(join(tmpdir(), 'stepline-parked-'))
  const store = sqliteStore({ path: join(dir, 'parked.db') })
  const napper = workflow<number>('napper').step('before', (ctx) => ctx.payload).sleep('nap', '1h').step('after', (ctx) => ctx.last)
  const engine = createEngine({ store, workflows: [napper], recover: false })
  let parked = 0
  engine.on('run:parked', () => parked++)
  // Warm up the engine (JIT, prepared statements) before the baseline heap.
  await Promise.all(Array.from({ length: 200 }, (_, i) => engine.start(napper, i)))
  while (parked < 200) await new Promise((r) => setTimeout(r, 5))
  gcNow()
  const before = heapUsed()
  const t0 = performance.now()
  const BATCH = 1000
  for (let i = 0; i < N; i += BATCH) {
    await Promise.all(Array.from({ length: Math.min(BATCH, N - i) }, (_, k) => engine.start(napper, i + k)))
  }
  while (parked < N + 200) await new Promise((r) => setTimeout(r, 5))
  const seconds = (performance.now() - t0) / 1000
  gcNow()
  const after = heapUsed()
  const perRun = (after - before) / N
  const sleeping = (await store.listRuns({ status: 'sleeping', limit: N + 200 })).length
  await engine.close()
  rmSync(dir, { recursive: true, force: true })
  console.log(`parked ${fmt(N)} runs in ${fmt(seconds)} s (${fmt(N / seconds)} runs/s parked); ${fmt(sleeping)} rows sleeping`)
  return [
    { name: `${N.toLocaleString('en')} parked runs: heap bytes per parked run`, baseline: 2048, engine: perRun, unit: 'B', note: 'baseline column = the 2 KB target; heap after GC vs before the runs' },
  ]
}
