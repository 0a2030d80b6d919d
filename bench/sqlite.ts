/**
 * The SQLite store's cost, each figure beside a baseline measured in the same run: one raw
 * better-sqlite3 INSERT + commit (WAL, synchronous NORMAL) for the per-step cost, the memory
 * store for throughput. With group commit on and off. Run: `pnpm bench sqlite`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { createEngine, memoryStore, workflow, type AnyWorkflow, type Store } from '@stepline/core'
import { sqliteStore } from '@stepline/store-sqlite'
import { fmt, median, printRows, type Row } from './util'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9)
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3)

async function timeIt(fn: () => Promise<unknown>, rounds = ROUNDS): Promise<number> {
  for (let w = 0; w < WARMUP; w++) await fn()
  const times: number[] = []
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint()
    await fn()
    times.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  return median(times)
}

type Variant = { name: string; store: (file: string) => Store }
const VARIANTS: Variant[] = [
  { name: 'group commit on', store: (file) => sqliteStore({ path: file, groupCommit: true }) },
  { name: 'group commit off', store: (file) => sqliteStore({ path: file, groupCommit: false }) },
]

function chainOf(id: string, steps: number): AnyWorkflow {
  let wf: AnyWorkflow = workflow<number>(id)
  for (let i = 0; i < steps; i++) wf = wf.step(`s${i}`, (ctx: { last: number }) => ctx.last + 1)
  return wf
}

/** µs per autocommit INSERT of a journal-sized row: the floor any SQLite journal pays per step. */
function rawInsertUs(file: string, n: number): number {
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.exec('CREATE TABLE IF NOT EXISTS j (seq INTEGER PRIMARY KEY, run_id TEXT, key TEXT, output TEXT, UNIQUE (run_id, key))')
  const ins = db.prepare('INSERT INTO j (run_id, key, output) VALUES (?, ?, ?)')
  const times: number[] = []
  for (let r = 0; r < WARMUP + ROUNDS; r++) {
    const run = `run-${r}`
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < n; i++) ins.run(run, `n${i}`, String(i))
    if (r >= WARMUP) times.push(Number(process.hrtime.bigint() - t0) / 1e3 / n)
  }
  db.close()
  return median(times)
}

// (1) per-step overhead: one run of a 100-step chain at a time
async function perStep(dir: string): Promise<Row[]> {
  const STEPS = 100
  const RUNS = 20
  const wf = chainOf('chain100', STEPS)
  const raw = rawInsertUs(join(dir, 'raw.db'), STEPS * RUNS)
  const us = async (store: Store): Promise<number> => {
    const engine = createEngine({ store, workflows: [wf] })
    const ms = await timeIt(async () => {
      for (let r = 0; r < RUNS; r++) await engine.run(wf, 0)
    })
    await engine.close()
    return (ms * 1000) / (RUNS * STEPS)
  }
  const mem = await us(memoryStore())
  const rows: Row[] = []
  for (const v of VARIANTS) {
    const sql = await us(v.store(join(dir, `chain-${v.name.replaceAll(' ', '-')}.db`)))
    rows.push({
      name: `(1) 100-step chain, µs per journaled step, ${v.name} (baseline: raw INSERT+commit)`,
      baseline: raw, engine: sql, unit: 'µs',
      note: `memory store ${fmt(mem)} µs; target ≤ 30`,
    })
  }
  return rows
}

// (2) 1000 runs × 3 steps, all started together
async function threeStep(dir: string): Promise<Row[]> {
  const RUNS = 1000
  const wf = workflow<number>('three')
    .step('a', (ctx) => ctx.last + 1)
    .step('b', (ctx) => ctx.last * 2)
    .step('c', (ctx) => ctx.last - 1)
  const rate = async (store: Store): Promise<number> => {
    const engine = createEngine({ store, workflows: [wf] })
    const ms = await timeIt(() => Promise.all(Array.from({ length: RUNS }, (_, i) => engine.run(wf, i))))
    await engine.close()
    return (RUNS / ms) * 1000
  }
  const mem = await rate(memoryStore())
  const rows: Row[] = []
  for (const v of VARIANTS) {
    const sql = await rate(v.store(join(dir, `three-${v.name.replaceAll(' ', '-')}.db`)))
    rows.push({ name: `(2) 1000 runs × 3 steps: runs/s, ${v.name} (baseline: memory store)`, baseline: mem, engine: sql, unit: 'runs/s', higherIsBetter: true })
  }
  return rows
}

// (3) 100 runs × 100 steps started together: journaled steps/s
async function concurrent(dir: string): Promise<Row[]> {
  const RUNS = 100
  const STEPS = 100
  const wf = chainOf('conc100', STEPS)
  const rate = async (store: Store): Promise<number> => {
    const engine = createEngine({ store, workflows: [wf] })
    const ms = await timeIt(() => Promise.all(Array.from({ length: RUNS }, (_, i) => engine.run(wf, i))))
    await engine.close()
    return ((RUNS * STEPS) / ms) * 1000
  }
  const mem = await rate(memoryStore())
  const rows: Row[] = []
  for (const v of VARIANTS) {
    const sql = await rate(v.store(join(dir, `conc-${v.name.replaceAll(' ', '-')}.db`)))
    rows.push({ name: `(3) 100 concurrent runs × 100 steps: steps/s, ${v.name} (baseline: memory store)`, baseline: mem, engine: sql, unit: 'steps/s', note: 'target ≥ 50,000', higherIsBetter: true })
  }
  return rows
}

export async function sqliteBench(): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'stepline-bench-'))
  try {
    return [...(await perStep(dir)), ...(await threeStep(dir)), ...(await concurrent(dir))]
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printRows('SQLite store (one file, WAL) vs raw better-sqlite3 and the memory store', await sqliteBench())
}
