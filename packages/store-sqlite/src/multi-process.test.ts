// What docs/durability.md says about several processes on one SQLite file, checked with real
// processes: children (multi-process.child.mjs) that open the file beside this test's process,
// for `writes: 'inline'` and `writes: 'log'` (with `groupCommit: 'immediate'`, as `stepline serve`).
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createEngine, type Engine } from '@stepline/core'
import { sqliteStore, type SqliteStore, type SqliteStoreOptions } from './sqlite-store'
import { run, step, tempStores } from './test-fixtures'
import { workflows, type Exec } from './multi-process.workflows'

const childFile = fileURLToPath(new URL('./multi-process.child.mjs', import.meta.url))
const tsconfig = fileURLToPath(new URL('../../../tsconfig.json', import.meta.url))

/** A child process on the file: `ask` runs one of its commands; `execs` are the steps it executed. */
interface Agent {
  pid: number
  execs: Exec[]
  /** What it wrote on stderr (e.g. a logged write the tables refused). */
  stderr: () => string
  ask<T = unknown>(op: string, args?: Record<string, unknown>): Promise<T>
  /** SIGKILL, resolved once the process is gone (and reaped). */
  kill(): Promise<void>
}

class ChildError extends Error {
  constructor(readonly code: string | undefined, message: string) {
    super(message)
  }
}

function spawnAgent(): Promise<Agent> {
  // Against the sources, as vitest runs them: tsx maps @stepline/* through the root tsconfig's paths.
  const child: ChildProcess = fork(childFile, [], { execArgv: ['--import', 'tsx'], env: { ...process.env, TSX_TSCONFIG_PATH: tsconfig }, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => (stderr += String(d)))
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>()
  const execs: Exec[] = []
  let next = 0
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  void exited.then(() => {
    for (const p of pending.values()) p.reject(new Error(`child ${child.pid} exited`))
  })
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.on('message', (m: { ready?: number; exec?: Exec; id?: number; value?: unknown; error?: { code?: string; message: string } }) => {
      if (m.ready !== undefined) {
        resolve({
          pid: m.ready,
          execs,
          stderr: () => stderr,
          ask: <T,>(op: string, args?: Record<string, unknown>) =>
            new Promise<T>((res, rej) => {
              const id = next++
              pending.set(id, { resolve: res as (v: unknown) => void, reject: rej })
              child.send({ id, op, args })
            }),
          kill: async () => {
            child.kill('SIGKILL')
            await exited
          },
        })
      } else if (m.exec !== undefined) execs.push(m.exec)
      else if (m.id !== undefined) {
        const p = pending.get(m.id)!
        pending.delete(m.id)
        if (m.error === undefined) p.resolve(m.value)
        else p.reject(new ChildError(m.error.code, m.error.message))
      }
    })
  })
}

const { dir, file, make } = tempStores('stepline-multi-process-')
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const logsOf = (path: string): string[] => readdirSync(dirname(path)).filter((name) => name.startsWith(`${basename(path)}-log-`))
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A query on the file from a connection of its own (what any process sees). */
function query<T>(path: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(path, { readonly: true })
  try {
    return db.prepare(sql).all(...params) as T[]
  } finally {
    db.close()
  }
}

/**
 * Waits until every step execution the agents told before now has arrived: they are told over
 * IPC, and may arrive after the file shows their runs completed; an answer comes after them.
 */
async function heard(agents: Agent[]): Promise<void> {
  await Promise.all(agents.map((agent) => agent.ask('ping')))
}

/** Polls `check` until it holds or `ms` passed; returns whether it held. */
async function eventually(check: () => boolean, ms = 2000): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    if (check()) return true
    if (Date.now() > end) return false
    await pause(10)
  }
}

const MODES: { writes: 'inline' | 'log'; options: SqliteStoreOptions }[] = [
  { writes: 'inline', options: { groupCommit: 'immediate', writes: 'inline' } },
  { writes: 'log', options: { groupCommit: 'immediate', writes: 'log' } },
]

/** Group commits a store makes before it hands them to its journal log (`writes: 'log'`), and a few more. */
const WARM = 110

let b: Agent
let c: Agent
/** Processes to SIGKILL, started ahead: starting one (tsx) takes about a second. */
let spares: Agent[] = []

beforeAll(async () => {
  const agents = await Promise.all(Array.from({ length: 5 }, spawnAgent))
  b = agents[0]!
  c = agents[1]!
  spares = agents.slice(2)
}, 30_000)

afterAll(async () => {
  await Promise.all([b, c, ...spares].map((agent) => agent?.kill()))
})

describe.each(MODES)('several processes on one SQLite file (writes: $writes)', ({ writes, options }) => {
  /** Opens the file in `agents` (registering `register`), each past its warm-up: with `writes: 'log'` each has its log then. */
  async function open(path: string, agents: Agent[], register: string[] = ['quick', 'approval']): Promise<void> {
    for (const agent of agents) {
      await agent.ask('open', { path, options, register })
      await agent.ask('fill', { count: WARM })
    }
    if (writes === 'log') expect(logsOf(path)).toHaveLength(agents.length)
  }

  async function closeAll(agents: Agent[]): Promise<void> {
    for (const agent of agents) {
      await agent.ask('close')
      agent.execs.length = 0
    }
  }

  /** A store of this process on the file, past its warm-up. */
  async function local(path: string, over: SqliteStoreOptions = {}): Promise<SqliteStore> {
    const store = make(path, { ...options, ...over })
    for (let i = 0; i < WARM; i++) await store.createRun(run(`fill-local-${i}`, { workflowId: 'fill', status: 'completed' }))
    return store
  }

  /** Opens a fresh file in `agents` (registering `register`) and here, and starts `count` runs of "approval" here, all waiting for their event. */
  async function waitingRuns(count: number, agents: Agent[] = [b, c], register?: string[]): Promise<{ a: SqliteStore; engine: Engine; execs: Exec[]; ids: string[] }> {
    const path = file()
    await open(path, agents, register)
    const a = await local(path)
    const execs: Exec[] = []
    const engine = createEngine({ store: a, workflows: Object.values(workflows((e) => execs.push(e))) })
    const ids: string[] = []
    for (let i = 0; i < count; i++) ids.push((await engine.start('approval')).id)
    expect(await eventually(() => ids.every((id) => a.getRun(id)?.status === 'waiting'))).toBe(true)
    return { a, engine, execs, ids }
  }

  it('two processes starting runs with the same idempotency keys at the same moment get one run per key, both its id, and it runs once', async () => {
    const path = file()
    await open(path, [b, c])
    try {
      const starts = Array.from({ length: 40 }, (_, i) => ({ idempotencyKey: `k${i}` }))
      const at = Date.now() + 200
      type Started = { id?: string; error?: unknown }[]
      const [fromB, fromC] = await Promise.all([b.ask<Started>('starts', { at, workflow: 'quick', starts }), c.ask<Started>('starts', { at, workflow: 'quick', starts })])
      expect(fromB.every((r) => r.id !== undefined)).toBe(true)
      expect(fromC.map((r) => r.id)).toEqual(fromB.map((r) => r.id))
      const runs = query<{ id: string; idempotency_key: string }>(path, `SELECT id, idempotency_key FROM runs WHERE workflow_id = 'quick'`)
      expect(runs).toHaveLength(40)
      expect(new Set(runs.map((r) => r.id))).toEqual(new Set(fromB.map((r) => r.id)))
      // Each run executes once, in the process that created it.
      const done = await eventually(() => query(path, `SELECT 1 FROM runs WHERE workflow_id = 'quick' AND status = 'completed'`).length === 40)
      expect(done).toBe(true)
      await heard([b, c])
      const execs = [...b.execs, ...c.execs].map((e) => e.runId).sort()
      expect(execs).toEqual(runs.map((r) => r.id).sort())
    } finally {
      await closeAll([b, c])
    }
  })
  it('two processes starting one chosen runId at the same moment: one creates the run, the other gets RUN_EXISTS; with the same key both get the run', async () => {
    const path = file()
    await open(path, [b, c])
    try {
      const at = Date.now() + 200
      const starts = [
        ...Array.from({ length: 30 }, (_, i) => ({ runId: `id-${i}` })),
        ...Array.from({ length: 10 }, (_, i) => ({ runId: `keyed-${i}`, idempotencyKey: `key-${i}` })),
      ]
      type Started = { id?: string; error?: { code: string } }[]
      const [fromB, fromC] = await Promise.all([b.ask<Started>('starts', { at, workflow: 'quick', starts }), c.ask<Started>('starts', { at, workflow: 'quick', starts })])
      for (let i = 0; i < 30; i++) {
        const outcomes = [fromB[i]!, fromC[i]!]
        expect(outcomes.filter((o) => o.id === `id-${i}`)).toHaveLength(1)
        expect(outcomes.filter((o) => o.error?.code === 'RUN_EXISTS')).toHaveLength(1)
      }
      for (let i = 30; i < 40; i++) expect([fromB[i], fromC[i]]).toEqual([{ id: `keyed-${i - 30}` }, { id: `keyed-${i - 30}` }])
      expect(query(path, `SELECT id FROM runs WHERE workflow_id = 'quick'`)).toHaveLength(40)
      expect(await eventually(() => query(path, `SELECT 1 FROM runs WHERE workflow_id = 'quick' AND status = 'completed'`).length === 40)).toBe(true)
      await heard([b, c])
      expect([...b.execs, ...c.execs]).toHaveLength(40)
    } finally {
      await closeAll([b, c])
    }
  })

  it("a process reads another process's committed runs and journals (with the journal log: once its thread applied them, milliseconds later)", async () => {
    const path = file()
    await open(path, [b])
    const a = await local(path)
    try {
      const started = await b.ask<{ id: string; status: string }[]>('runMany', { workflow: 'quick', count: 5 })
      expect(started.map((r) => r.status)).toEqual(Array(5).fill('completed'))
      const ids = started.map((r) => r.id)
      const seen = (): boolean => ids.every((id) => a.getRun(id)?.status === 'completed' && a.getSteps(id).length === 1)
      // Inline: committed when B's run ended, so at once; with B's log: once B's thread applied it.
      if (writes === 'inline') expect(seen()).toBe(true)
      else expect(await eventually(seen, 1000)).toBe(true)
      expect(a.getSteps(ids[0]!)).toMatchObject([{ name: 'a', status: 'completed', output: { n: 0 } }])
      expect(a.listRuns({ workflowId: 'quick', limit: 5 }).map((r) => r.id).sort()).toEqual([...ids].sort())
      // A keyed run is decided on the tables, not left to the log: another process sees it at once.
      const keyed = await b.ask<string>('start', { workflow: 'quick', options: { idempotencyKey: 'seen-at-once' } })
      expect(a.getRun(keyed)).toMatchObject({ idempotencyKey: 'seen-at-once' })
      // The step cache is shared too: written to the tables at once, in either mode.
      await b.ask('call', { method: 'setCache', args: ['quick\u0000a\u0000k', { hit: true }, undefined] })
      expect(a.getCache('quick\u0000a\u0000k', Date.now())).toEqual({ value: { hit: true } })
    } finally {
      await closeAll([b])
    }
  })

  it('engine.send from a process that registered the workflow to a run waiting in another: delivered once, the run resumes in the sender', async () => {
    const { engine, execs, ids } = await waitingRuns(1, [b])
    const id = ids[0]!
    try {
      expect(await b.ask('send', { target: id, name: 'approval', data: { ok: 1 } })).toEqual({ runIds: [id] })
      // The sender claimed and resumed it; this process reads the outcome from the file.
      expect(await b.ask('outcome', { runId: id })).toEqual({ status: 'completed', output: { got: { ok: 1 }, pid: b.pid } })
      expect(await engine.handle(id).outcome()).toMatchObject({ status: 'completed', output: { got: { ok: 1 }, pid: b.pid } })
      expect(execs.map((e) => e.step)).toEqual(['before'])
      expect(b.execs.map((e) => e.step)).toEqual(['after'])
    } finally {
      await engine.close()
      await closeAll([b])
    }
  })

  it('two processes sending one event to a waiting run at the same moment: one delivers it, the other gets EVENT_ALREADY_DELIVERED; the run resumes once', async () => {
    const { a, engine, execs, ids } = await waitingRuns(10)
    try {
      const at = Date.now() + 200
      const sends = (agent: Agent) => Promise.allSettled(ids.map((id, i) => agent.ask('send', { at: at + i * 5, target: id, name: 'approval', data: agent.pid })))
      const [fromB, fromC] = await Promise.all([sends(b), sends(c)])
      for (let i = 0; i < ids.length; i++) {
        const both = [fromB[i]!, fromC[i]!]
        expect(both.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
        // The loser read the run still waiting (the event is taken), or already ended by the winner's resume.
        const lost = both.flatMap((r) => (r.status === 'rejected' ? [r.reason as ChildError] : []))
        expect(lost).toHaveLength(1)
        expect(lost[0]!.code === 'EVENT_ALREADY_DELIVERED' || (lost[0]!.code === 'EVENT_NOT_AWAITED' && / is completed;/.test(lost[0]!.message))).toBe(true)
      }
      expect(await eventually(() => ids.every((id) => a.getRun(id)?.status === 'completed'))).toBe(true)
      await heard([b, c])
      const afters = [...execs, ...b.execs, ...c.execs].filter((e) => e.step === 'after').map((e) => e.runId).sort()
      expect(afters).toEqual([...ids].sort())
      // Each run's output names the process whose send delivered it: the one that resumed it.
      for (let i = 0; i < ids.length; i++) {
        const sender = fromB[i]!.status === 'fulfilled' ? b.pid : c.pid
        expect(a.getRun(ids[i]!)?.output).toEqual({ got: sender, pid: sender })
      }
    } finally {
      await engine.close()
      await closeAll([b, c])
    }
  })

  it("engine.send from a process that has not registered the workflow: the event is stored, the run waits until the executing engine recovers", async () => {
    const { a, engine, execs, ids } = await waitingRuns(1, [b], [])
    const id = ids[0]!
    try {
      expect(await b.ask('send', { target: id, name: 'approval', data: 'late' })).toEqual({ runIds: [id] })
      await pause(200)
      expect(a.getRun(id)?.status).toBe('waiting')
      expect(a.getEvent(id, 'approval')).toMatchObject({ data: 'late' })
      await engine.recover()
      expect(await engine.handle(id).result()).toEqual({ got: 'late', pid: process.pid })
      expect(execs.map((e) => e.step)).toEqual(['before', 'after'])
    } finally {
      await engine.close()
      await closeAll([b])
    }
  })

  it('pruning in one process while another starts and finishes runs: no write is lost or refused, no journal is left without its run, no unfinished run is pruned', async () => {
    const path = file()
    await open(path, [b])
    const a = await local(path)
    try {
      const stderrBefore = b.stderr().length
      let pruned = 0
      let stop = false
      const pruner = (async () => {
        while (!stop) {
          pruned += a.pruneRuns(Date.now() + 60_000)
          await pause(2)
        }
      })()
      const finished: { id: string; status: string }[] = []
      for (let round = 0; round < 5; round++) finished.push(...(await b.ask<{ id: string; status: string }[]>('runMany', { workflow: 'quick', count: 40 })))
      stop = true
      await pruner
      expect(finished.map((r) => r.status)).toEqual(Array(200).fill('completed'))
      expect(b.execs).toHaveLength(200)
      expect(b.stderr().slice(stderrBefore)).toBe('')
      // What B logged is in the tables once applied; then a last prune leaves nothing of B's runs.
      await b.ask('call', { method: 'getRun', args: ['none'] })
      pruned += a.pruneRuns(Date.now() + 60_000)
      expect(pruned).toBeGreaterThanOrEqual(200)
      expect(query(path, `SELECT id FROM runs WHERE workflow_id = 'quick'`)).toEqual([])
      expect(query(path, `SELECT run_id FROM steps WHERE run_id NOT IN (SELECT id FROM runs)`)).toEqual([])
      // Pruning a run frees its key for every process.
      const first = await b.ask<string>('start', { workflow: 'quick', options: { idempotencyKey: 'monthly' } })
      expect(await b.ask('outcome', { runId: first })).toMatchObject({ status: 'completed' })
      expect(await eventually(() => a.getRun(first)?.status === 'completed')).toBe(true)
      expect(a.pruneRuns(Date.now() + 60_000)).toBe(1)
      const second = await b.ask<string>('start', { workflow: 'quick', options: { idempotencyKey: 'monthly' } })
      expect(second).not.toBe(first)
    } finally {
      await closeAll([b])
    }
  })

  it("a call that waits past busyTimeoutMs for another process's lock fails with STORE_UNAVAILABLE, naming the file and what to do, within twice busyTimeoutMs; once the lock is free, nothing acknowledged was lost", async () => {
    const path = file()
    const busy = 300
    await open(path, [c])
    const a = await local(path, { busyTimeoutMs: busy })
    const execs: Exec[] = []
    const engine = createEngine({ store: a, workflows: Object.values(workflows((e) => execs.push(e))) })
    const locked = expect.objectContaining({
      code: 'STORE_UNAVAILABLE',
      message: expect.stringMatching(new RegExp(`^SQLite store ${escape(path)} is locked by another process \\(SQLITE_BUSY\\) after ${busy} ms: .*let it finish, or raise \`busyTimeoutMs\`\\.$`)),
    })
    /** Runs `call`, expecting it to fail as `locked` within twice the busy timeout (the log's thread may have waited first). */
    const failsLocked = async (call: () => unknown): Promise<void> => {
      const t0 = Date.now()
      await expect((async () => call())()).rejects.toEqual(locked)
      expect(Date.now() - t0).toBeGreaterThanOrEqual(busy - 20)
      expect(Date.now() - t0).toBeLessThan(2 * busy + 200)
    }
    await c.ask('lock', { path })
    let unlocked = false
    try {
      let logged: string | undefined
      if (writes === 'inline') {
        await failsLocked(() => engine.start('quick'))
        await failsLocked(() => engine.start('quick', {}, { idempotencyKey: 'k' }))
        // Reads do not wait for the write lock (WAL).
        expect(a.getRun('fill-local-0')).toMatchObject({ status: 'completed' })
      } else {
        // Durable in the log, acknowledged: the run goes on in memory; the tables cannot take it while the lock is held.
        const handle = await engine.start('quick')
        expect(await handle.result()).toEqual({ n: null })
        logged = handle.id
        await failsLocked(() => engine.start('quick', {}, { idempotencyKey: 'k' }))
        // A read first makes the tables show what the log holds: it waits for the lock too.
        await failsLocked(() => engine.getRun(handle.id))
        await failsLocked(() => engine.getRun(handle.id))
      }
      await c.ask('unlock')
      unlocked = true
      if (logged !== undefined) expect(await engine.getRun(logged)).toMatchObject({ status: 'completed' })
      const keyed = await engine.start('quick', {}, { idempotencyKey: 'k' })
      expect(await keyed.result()).toEqual({ n: null })
      expect(await engine.getRun(keyed.id)).toMatchObject({ status: 'completed', idempotencyKey: 'k' })
    } finally {
      if (!unlocked) await c.ask('unlock')
      await engine.close()
      await closeAll([c])
    }
  })

  it('a process SIGKILLed after its writes were acknowledged loses none of them: the next process to open the file has them all (with the journal log: applied from the log the dead process left, which then goes)', async () => {
    const path = file()
    const dying = spares.shift()!
    // Its thread waits for the lock rather than fail: its log holds what it acknowledged, unapplied.
    await dying.ask('open', { path, options: { ...options, busyTimeoutMs: 20_000 }, register: ['quick'] })
    await dying.ask('fill', { count: WARM })
    // With the log, another process holds the lock meanwhile: inline, the writes would wait for it.
    if (writes === 'log') await c.ask('lock', { path })
    let ids: string[]
    try {
      const ran = await dying.ask<{ id: string; status: string }[]>('runMany', { workflow: 'quick', count: 5 })
      expect(ran.map((r) => r.status)).toEqual(Array(5).fill('completed'))
      ids = ran.map((r) => r.id)
      if (writes === 'log') {
        expect(logsOf(path)).toHaveLength(1)
        // Acknowledged, not yet in the tables.
        expect(query(path, `SELECT id FROM runs WHERE workflow_id = 'quick'`)).toEqual([])
      }
      await dying.kill()
    } finally {
      if (writes === 'log') await c.ask('unlock')
    }
    const a = make(path, options)
    for (const id of ids) {
      expect(a.getRun(id)).toMatchObject({ status: 'completed' })
      expect(a.getSteps(id)).toMatchObject([{ name: 'a', status: 'completed' }])
    }
    expect(logsOf(path)).toEqual([])
    expect(query(path, 'SELECT * FROM log_applied')).toEqual([])
  })

  // The journal log's own cases: defined for that mode only.
  if (writes === 'log') it("a process opening the file while another live process's log holds unapplied writes leaves that log to it: not applied, not removed; the live process applies it and goes on", async () => {
    const path = file()
    const stderrBefore = b.stderr().length
    await b.ask('open', { path, options: { ...options, busyTimeoutMs: 20_000 }, register: ['quick'] })
    await b.ask('fill', { count: WARM })
    const [log] = logsOf(path)
    await c.ask('lock', { path })
    let ids: string[]
    try {
      ids = (await b.ask<{ id: string }[]>('runMany', { workflow: 'quick', count: 5 })).map((r) => r.id)
      const size = statSync(join(dir, log!)).size
      // Applying it would wait for the lock and fail; removing it would lose B's acknowledged writes should B die.
      sqliteStore({ path, ...options, busyTimeoutMs: 100 }).close()
      expect(logsOf(path)).toEqual([log])
      expect(statSync(join(dir, log!)).size).toBe(size)
    } finally {
      await c.ask('unlock')
    }
    const a = make(path, options)
    expect(await eventually(() => ids.every((id) => a.getRun(id)?.status === 'completed'))).toBe(true)
    ids.push(...(await b.ask<{ id: string }[]>('runMany', { workflow: 'quick', count: 5 })).map((r) => r.id))
    await closeAll([b])
    expect(logsOf(path)).toEqual([])
    expect(b.stderr().slice(stderrBefore)).toBe('')
    for (const id of ids) expect(a.getSteps(id)).toMatchObject([{ name: 'a', status: 'completed' }])
  })

  // The journal log's own cases: defined for that mode only.
  if (writes === 'log') it("opening the file to apply a dead process's log while another process holds the lock past busyTimeoutMs: STORE_UNAVAILABLE saying the file is locked and what to do; the log stays and is applied by the next try", async () => {
    const path = file()
    const dying = spares.shift()!
    await dying.ask('open', { path, options: { ...options, busyTimeoutMs: 20_000 }, register: ['quick'] })
    await dying.ask('fill', { count: WARM })
    await c.ask('lock', { path })
    let ids: string[]
    try {
      ids = (await dying.ask<{ id: string }[]>('runMany', { workflow: 'quick', count: 3 })).map((r) => r.id)
      await dying.kill()
      expect(() => sqliteStore({ path, ...options, busyTimeoutMs: 200 })).toThrow(
        expect.objectContaining({
          code: 'STORE_UNAVAILABLE',
          message: expect.stringMatching(new RegExp(`${escape(path)} is locked by another process .*after 200 ms.*raise \`busyTimeoutMs\``)),
        }),
      )
      expect(logsOf(path)).toHaveLength(1)
    } finally {
      await c.ask('unlock')
    }
    const a = make(path, options)
    for (const id of ids) expect(a.getRun(id)).toMatchObject({ status: 'completed' })
    expect(logsOf(path)).toEqual([])
  })

  it('two processes cancelling one parked run at the same moment: exactly one gets true; a cancel racing a wake in another process: the run resumes once and completes, or never resumes', async () => {
    const { a, engine, execs, ids } = await waitingRuns(16)
    try {
      const at = Date.now() + 200
      // Runs 0–7: B and C both cancel. Runs 8–15: B sends the event as C cancels.
      const [fromB, fromC] = await Promise.all([
        Promise.allSettled(ids.map((id, i) => (i < 8 ? b.ask('cancel', { at: at + i * 5, runId: id }) : b.ask('send', { at: at + i * 5, target: id, name: 'approval', data: 'go' })))),
        Promise.allSettled(ids.map((id, i) => c.ask('cancel', { at: at + i * 5, runId: id }))),
      ])
      // How each run ended, as B (which resumes the runs its events wake) sees it: live if it runs it, else from the file.
      const ended = await Promise.all(ids.map((id) => b.ask<{ status: string }>('outcome', { runId: id })))
      await heard([b, c])
      const afters = [...b.execs, ...c.execs, ...execs].filter((e) => e.step === 'after').map((e) => e.runId)
      const won = (r: PromiseSettledResult<unknown>): boolean => r.status === 'fulfilled' && r.value === true
      for (let i = 0; i < 16; i++) {
        const { status } = ended[i]!
        expect(await eventually(() => a.getRun(ids[i]!)?.status === status)).toBe(true)
        if (i < 8) {
          expect(status).toBe('cancelled')
          expect([fromB[i]!, fromC[i]!].filter(won)).toHaveLength(1)
        } else {
          // A cancel that lost resolves false, and the run resumed once and completed. One that came
          // first ends it: it never resumes. One that lands after the wake's claim resolves true, and
          // yet the run completes in B: the limit of cancelling a run another process executes.
          expect(['completed', 'cancelled']).toContain(status)
          expect(afters.filter((id) => id === ids[i]).length).toBe(status === 'completed' ? 1 : 0)
          if (!won(fromC[i]!)) expect(status).toBe('completed')
        }
      }
    } finally {
      await engine.close()
      await closeAll([b, c])
    }
  })

  it('a cancel from another process of a run this one executes marks the row cancelled and resolves true, but does not stop the run here: its end overwrites the row (a limit, see durability.md)', async () => {
    const path = file()
    await open(path, [b])
    const a = await local(path)
    const execs: Exec[] = []
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const engine = createEngine({ store: a, workflows: Object.values(workflows((e) => execs.push(e), () => gate)) })
    try {
      const handle = await engine.start('slow')
      // In its first step, its row running in the file (B reads it from there).
      expect(await eventually(() => execs.length === 1 && a.getRun(handle.id)?.status === 'running')).toBe(true)
      expect(await b.ask('cancel', { runId: handle.id, reason: 'stop' })).toBe(true)
      expect(a.getRun(handle.id)?.status).toBe('cancelled')
      release()
      expect((await handle.outcome()).status).toBe('completed')
      expect(execs.map((e) => e.step)).toEqual(['wait', 'then'])
      expect(a.getRun(handle.id)?.status).toBe('completed')
    } finally {
      await engine.close()
      await closeAll([b])
    }
  })

  it('two processes opening a fresh file at the same moment both open it; its schema is made once', async () => {
    // A few files in a row: which process switches the file to WAL first is a race each time.
    for (let round = 0; round < 4; round++) {
      const path = file()
      const at = Date.now() + 100
      await Promise.all([b, c].map((agent) => agent.ask('open', { at, path, options, register: ['quick'] })))
      try {
        expect(query<{ user_version: number }>(path, 'PRAGMA user_version')).toEqual([{ user_version: 2 }])
        expect(query<{ journal_mode: string }>(path, 'PRAGMA journal_mode')).toEqual([{ journal_mode: 'wal' }])
        await Promise.all([b, c].map((agent) => agent.ask('runMany', { workflow: 'quick', count: 2 })))
        expect(await eventually(() => query(path, `SELECT 1 FROM runs WHERE status = 'completed'`).length === 4)).toBe(true)
      } finally {
        await closeAll([b, c])
      }
    }
  })
})

describe('journal logs of processes that are gone, and of live ones', () => {
  it.skipIf(process.platform !== 'linux')("a log whose process was killed but not yet reaped by its parent (a zombie: its pid still answers) is applied as a dead process's", async () => {
    const path = file()
    sqliteStore({ path }).close()
    // `sleep 0` exits at once; its parent, exec'd into `sleep 5`, never reaps it.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] })
    try {
      const zombie = Number(await new Promise<string>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(String(d).trim()))))
      const statOf = (): string[] => {
        const stat = readFileSync(`/proc/${zombie}/stat`, 'utf8')
        return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      }
      expect(await eventually(() => statOf()[0] === 'Z')).toBe(true)
      const log = `${path}-log-${zombie}-${statOf()[19]}-0dead0ff`
      writeFileSync(log, `${JSON.stringify({ stepline: 'journal-log', generation: 'gz' })}\n${JSON.stringify(['S', 0, 'INSERT INTO cache (key, value) VALUES (?, ?)'])}\n${JSON.stringify([0, 'zombie', '1'])}\n`)
      const store = make(path)
      expect(store.getCache('zombie', 0)).toEqual({ value: 1 })
      expect(logsOf(path)).toEqual([])
    } finally {
      parent.kill()
    }
  })

  it("a second copy of the package in one process (its CJS build beside the ESM one, another version) leaves the first copy's live log to it", async () => {
    const path = file()
    const first = make(path, { writes: 'log' })
    for (let i = 0; i < WARM; i++) await first.createRun(run(`r${i}`))
    const [log] = logsOf(path)
    expect(log).toBeDefined()
    vi.resetModules()
    const copy = (await import('./sqlite-store')) as typeof import('./sqlite-store')
    expect(copy.sqliteStore).not.toBe(sqliteStore)
    copy.sqliteStore({ path }).close()
    expect(logsOf(path)).toEqual([log])
    await first.recordStep('r0', step('a'))
    first.close()
    expect(logsOf(path)).toEqual([])
    expect(query(path, `SELECT key FROM steps WHERE run_id = 'r0'`)).toEqual([{ key: 'a' }])
  })
})
