/**
 * Core engine overhead, each figure beside a plain async baseline doing the same work in the
 * same process. Run: `pnpm bench` (builds first). Figures are medians of several rounds.
 */
import { createEngine, workflow, type AnyWorkflow } from '@stepline/core'
import { median, fmt, gcNow, heapUsed, printRows, type Row } from './util'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15)
const WARMUP = Number(process.env.BENCH_WARMUP ?? 10)

/** Median wall ms of `rounds` calls, after `WARMUP` calls that let the JIT settle (steady state). */
async function timeIt(fn: () => Promise<unknown>, rounds = ROUNDS): Promise<number> {
  const times: number[] = []
  for (let w = 0; w < WARMUP; w++) await fn()
  // No forced GC between rounds: it shrinks the young generation and makes the next round pay
  // for regrowing it (measured: a third of the throughput), which no real process does.
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint()
    await fn()
    times.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  return median(times)
}

// (a) one run of a 100-step chain of trivial steps
async function chain100(): Promise<Row[]> {
  const STEPS = 100
  const RUNS = 200
  let wf: AnyWorkflow = workflow<number>('chain100')
  for (let i = 0; i < STEPS; i++) wf = wf.step(`s${i}`, (ctx: { last: number }) => ctx.last + 1)
  const engine = createEngine({ workflows: [wf] })
  const fns = Array.from({ length: STEPS }, () => (x: number) => x + 1)
  const baseline = async (): Promise<number> => {
    let v = 0
    for (const f of fns) v = await f(v)
    return v
  }
  const base = await timeIt(async () => {
    for (let r = 0; r < RUNS; r++) await baseline()
  })
  const eng = await timeIt(async () => {
    for (let r = 0; r < RUNS; r++) await engine.run(wf, 0)
  })
  const basePerStep = (base * 1000) / (RUNS * STEPS)
  const engPerStep = (eng * 1000) / (RUNS * STEPS)
  return [
    { name: '(a) 100-step chain: µs per step', baseline: basePerStep, engine: engPerStep, unit: 'µs', note: `overhead ${fmt(engPerStep - basePerStep)} µs/step (target ≤ 2)` },
  ]
}

// (b) 1000 runs of a 3-step workflow
async function threeStep(): Promise<Row[]> {
  const RUNS = 1000
  const wf = workflow<number>('three')
    .step('a', (ctx) => ctx.last + 1)
    .step('b', (ctx) => ctx.last * 2)
    .step('c', (ctx) => ctx.last - 1)
  const engine = createEngine({ workflows: [wf] })
  const a = (x: number): number => x + 1
  const b = (x: number): number => x * 2
  const c = (x: number): number => x - 1
  const baseline = async (x: number): Promise<number> => c(await b(await a(x)))
  const base = await timeIt(() => Promise.all(Array.from({ length: RUNS }, (_, i) => baseline(i))))
  const eng = await timeIt(() => Promise.all(Array.from({ length: RUNS }, (_, i) => engine.run(wf, i))))
  return [{ name: '(b) 1000 runs × 3 steps: runs/s', baseline: (RUNS / base) * 1000, engine: (RUNS / eng) * 1000, unit: 'runs/s', note: 'target ≥ 200,000', higherIsBetter: true }]
}

// (c) 1000 runs of a 10-branch parallel
async function parallel10(): Promise<Row[]> {
  const RUNS = 1000
  const branches = Array.from({ length: 10 }, (_, k) => (ctx: { last: number }) => ctx.last + k)
  const wf = workflow<number>('par10').parallel('fan', branches)
  const engine = createEngine({ workflows: [wf] })
  const plain = Array.from({ length: 10 }, (_, k) => async (x: number) => x + k)
  const baseline = (x: number): Promise<number[]> => Promise.all(plain.map((f) => f(x)))
  const base = await timeIt(() => Promise.all(Array.from({ length: RUNS }, (_, i) => baseline(i))))
  const eng = await timeIt(() => Promise.all(Array.from({ length: RUNS }, (_, i) => engine.run(wf, i))))
  return [{ name: '(c) 1000 runs × 10-branch parallel: runs/s', baseline: (RUNS / base) * 1000, engine: (RUNS / eng) * 1000, unit: 'runs/s', note: 'target ≥ 100,000', higherIsBetter: true }]
}

// (d) forEach over N items, concurrency 100: items/s and peak heap
async function forEachItems(n: number): Promise<Row[]> {
  const items = Array.from({ length: n }, (_, i) => i)
  const wf = workflow<number[]>('each')
    .forEach('square', (ctx) => ctx.payload, (_item, flow) => flow.step('sq', (ctx) => (ctx.item as number) * 2), { concurrency: 100 })
  const engine = createEngine({ workflows: [wf] })
  const baseline = async (): Promise<number[]> => {
    const out = new Array<number>(n)
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < n) {
        const i = next++
        out[i] = await (async (x: number) => x * 2)(items[i]!)
      }
    }
    await Promise.all(Array.from({ length: 100 }, worker))
    return out
  }
  const measure = async (fn: () => Promise<unknown>): Promise<{ ms: number; peak: number }> => {
    gcNow()
    const before = heapUsed()
    let peak = before
    const timer = setInterval(() => (peak = Math.max(peak, heapUsed())), 5)
    const t0 = process.hrtime.bigint()
    await fn()
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    clearInterval(timer)
    peak = Math.max(peak, heapUsed())
    return { ms, peak: peak - before }
  }
  const rounds = 3
  const b: { ms: number; peak: number }[] = []
  const e: { ms: number; peak: number }[] = []
  for (let r = 0; r < rounds; r++) {
    b.push(await measure(baseline))
    e.push(await measure(() => engine.run(wf, items)))
  }
  const bm = median(b.map((x) => x.ms))
  const em = median(e.map((x) => x.ms))
  const bp = median(b.map((x) => x.peak))
  const ep = median(e.map((x) => x.peak))
  return [
    { name: `(d) forEach ${n.toLocaleString('en')} items, conc 100: items/s`, baseline: (n / bm) * 1000, engine: (n / em) * 1000, unit: 'items/s', higherIsBetter: true },
    { name: `(d) forEach ${n.toLocaleString('en')} items: peak heap bytes/item`, baseline: bp / n, engine: ep / n, unit: 'B/item' },
  ]
}

export async function coreBench(): Promise<Row[]> {
  const rows: Row[] = []
  rows.push(...(await chain100()))
  rows.push(...(await threeStep()))
  rows.push(...(await parallel10()))
  rows.push(...(await forEachItems(10_000)))
  rows.push(...(await forEachItems(100_000)))
  return rows
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printRows('core engine vs plain async (same process)', await coreBench())
}
