/**
 * cpu() steps on the worker pool, each figure beside a baseline measured in the same process:
 * the same CPU work on the main thread, a raw piscina round trip, an inline step.
 * Run: `pnpm bench` (builds first), or `pnpm bench cpu`.
 */
import { pbkdf2Sync } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { Piscina } from 'piscina'
import { cpu, createEngine, workflow, type AnyWorkflow } from '@stepline/core'
import { fmt, median, printRows, type Row } from './util'

const tasks = new URL('./tasks/cpu-tasks.mjs', import.meta.url)
const rawNoop = new URL('./tasks/raw-noop.mjs', import.meta.url)
const now = (): number => performance.now()

/** Iterations of pbkdf2 that take about `ms` on this machine's main thread. */
function calibrate(ms: number): number {
  let iterations = 1000
  for (;;) {
    const t0 = now()
    pbkdf2Sync('password', 'salt', iterations, 32, 'sha256')
    const took = now() - t0
    if (took > 5) return Math.max(1, Math.round((iterations * ms) / took))
    iterations *= 4
  }
}

async function speedup(): Promise<Row[]> {
  const TASKS = 40
  const iterations = calibrate(20)
  const items = Array.from({ length: TASKS }, () => iterations)
  const t0 = now()
  for (const it of items) pbkdf2Sync('password', 'salt', it, 32, 'sha256')
  const mainMs = now() - t0
  const rows: Row[] = []
  const cores = availableParallelism()
  const counts = [1, 2, 4, 8, 16].filter((n) => n <= Math.max(2, cores))
  for (const threads of counts) {
    const engine = createEngine({ workers: { min: threads, max: threads } })
    const wf = workflow<number[]>(`hash-${threads}`).forEach('hash', (ctx) => ctx.payload, cpu(tasks, { export: 'hash' }), { concurrency: threads })
    await engine.run(wf, items.slice(0, threads)) // start and warm the threads
    const times: number[] = []
    for (let r = 0; r < 3; r++) {
      const s = now()
      await engine.run(wf, items)
      times.push(now() - s)
    }
    await engine.close()
    const ms = median(times)
    const x = mainMs / ms
    rows.push({
      name: `40 × ~20 ms CPU tasks, ${threads} thread${threads === 1 ? '' : 's'}: wall ms`,
      baseline: mainMs, engine: ms, unit: 'ms',
      note: `speedup ${fmt(x)}× = ${fmt(x / threads)} × threads (target ≥ 0.9 × threads)${threads > cores ? `; only ${cores} cores here` : ''}`,
    })
  }
  return rows
}

async function overhead(): Promise<Row[]> {
  const CHAIN = 50
  const perCall = async (calls: number, fn: () => Promise<unknown>): Promise<number> => {
    const s = now()
    for (let i = 0; i < calls; i++) await fn()
    return ((now() - s) * 1000) / calls
  }
  // Per step inside a run: a chain of empty cpu steps, so the run's own start and end are spread thin.
  let cpuChain: AnyWorkflow = workflow('empty-cpu')
  let inlineChain: AnyWorkflow = workflow('empty-inline')
  for (let i = 0; i < CHAIN; i++) {
    cpuChain = cpuChain.step(`noop${i}`, cpu(tasks, { export: 'noop' }))
    inlineChain = inlineChain.step(`noop${i}`, () => null)
  }
  // One pool alive at a time: an idle piscina worker of another pool keeps a core busy for a
  // while after its last task (it spins before it sleeps), which on 2 cores doubles the round
  // trip of whichever pool is measured next. So each side gets its own phase, alternated 5 times.
  const rawTimes: number[] = []
  const stepTimes: number[] = []
  const inlineTimes: number[] = []
  for (let round = 0; round < 5; round++) {
    const pool = new Piscina({ filename: rawNoop.href, minThreads: 1, maxThreads: 1 })
    await perCall(2000, () => pool.run(null))
    rawTimes.push(await perCall(5000, () => pool.run(null)))
    await pool.destroy()
    const engine = createEngine({ workers: { min: 1, max: 1 } })
    await perCall(40, () => engine.run(cpuChain))
    stepTimes.push((await perCall(100, () => engine.run(cpuChain))) / CHAIN)
    inlineTimes.push((await perCall(100, () => engine.run(inlineChain))) / CHAIN)
    await engine.close()
  }
  const raw = median(rawTimes)
  const step = median(stepTimes)
  const inline = median(inlineTimes)
  return [
    { name: 'empty cpu step vs raw piscina round trip: µs', baseline: raw, engine: step, unit: 'µs', note: 'target ≤ 1.2×; per step in a 50-step chain; one pool alive at a time' },
    { name: 'empty cpu step vs an empty inline step: µs', baseline: inline, engine: step, unit: 'µs' },
  ]
}

async function chunking(): Promise<Row[]> {
  const N = Number(process.env.BENCH_TINY_ITEMS ?? 100_000)
  const items = Array.from({ length: N }, (_, i) => i)
  const engine = createEngine({ workers: { min: 2, max: 2 } })
  const plain = workflow<number[]>('tiny-plain').forEach('sq', (ctx) => ctx.payload, cpu(tasks, { export: 'square' }), { concurrency: 64 })
  const chunked = workflow<number[]>('tiny-chunked').forEach('sq', (ctx) => ctx.payload, cpu(tasks, { export: 'square' }), { concurrency: 4, chunkSize: 1000 })
  await engine.run(chunked, items.slice(0, 2000))
  let s = now()
  await engine.run(plain, items)
  const plainMs = now() - s
  s = now()
  await engine.run(chunked, items)
  const chunkedMs = now() - s
  await engine.close()
  return [
    {
      name: '100,000 tiny items, unchunked vs chunkSize 1000: items/s',
      baseline: (N / plainMs) * 1000, engine: (N / chunkedMs) * 1000, unit: 'items/s', higherIsBetter: true,
      note: 'baseline column = unchunked',
    },
  ]
}

export async function cpuBench(): Promise<Row[]> {
  return [...(await speedup()), ...(await overhead()), ...(await chunking())]
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printRows('cpu() steps on the worker pool', await cpuBench())
}
