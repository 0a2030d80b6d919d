import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { SteplineError, createEngine, memoryStore, workflow, type Engine, type Store, type TriggerSpec } from '@stepline/core'
import { fakeClock, type FakeClock } from '@stepline/testing'
import { sqliteStore } from '@stepline/store-sqlite'
import { startSchedules, type Schedules } from './cron'
import { schedule, webhook } from './triggers'

const MIN = 60_000
const every5 = (extra: Partial<TriggerSpec> = {}): TriggerSpec => ({ kind: 'schedule', cron: '*/5 * * * *', ...extra })
const ticking = (id = 'tick', triggers: TriggerSpec[] = [every5()]) =>
  workflow(id, { triggers }).step('echo', (ctx) => ctx.payload)

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

function engineOn(store: Store, clock: FakeClock): Engine {
  // recover: false — two engines on one SQLite file would otherwise both resume each other's runs.
  const engine = createEngine({ store, clock, recover: false })
  cleanup.push(() => engine.close())
  return engine
}

async function begin(engine: Engine, wfs: ReturnType<typeof ticking>[], clock: FakeClock, catchUp?: number): Promise<Schedules> {
  const s = startSchedules(engine, wfs, { clock, ...(catchUp === undefined ? {} : { catchUp }) })
  cleanup.push(() => s.stop())
  await s.settled()
  return s
}

/** Moves virtual time and waits until every tick it passed has started its run. */
async function advance(clock: FakeClock, ms: number, ...schedules: Schedules[]): Promise<void> {
  // One 5-minute tick at a time, as real timers would fire them.
  for (let left = ms; left > 0; left -= Math.min(left, MIN)) {
    clock.advance(Math.min(left, MIN))
    for (const s of schedules) await s.settled()
  }
}

async function runsOf(engine: Engine, workflowId = 'tick') {
  const runs = await engine.listRuns({ workflowId })
  return runs.sort((a, b) => String(a.idempotencyKey).localeCompare(String(b.idempotencyKey)))
}

describe('startSchedules', () => {
  it('starts exactly one run per tick, with scheduledAt in the payload and a per-tick idempotency key', async () => {
    const clock = fakeClock()
    const engine = engineOn(memoryStore(), clock)
    const s = await begin(engine, [ticking()], clock)
    expect(s.next()).toEqual([{ workflowId: 'tick', index: 0, cron: '*/5 * * * *', at: new Date('2026-01-01T00:05:00.000Z') }])

    await advance(clock, 16 * MIN, s)
    const runs = await runsOf(engine)
    expect(runs.map((r) => r.payload)).toEqual([
      { scheduledAt: '2026-01-01T00:05:00.000Z' },
      { scheduledAt: '2026-01-01T00:10:00.000Z' },
      { scheduledAt: '2026-01-01T00:15:00.000Z' },
    ])
    expect(runs.map((r) => r.idempotencyKey)).toEqual([
      'cron:tick:0:2026-01-01T00:05:00.000Z',
      'cron:tick:0:2026-01-01T00:10:00.000Z',
      'cron:tick:0:2026-01-01T00:15:00.000Z',
    ])
    expect(await engine.handle(runs[0]!.id).result()).toEqual({ scheduledAt: '2026-01-01T00:05:00.000Z' })
    expect(s.next()[0]!.at).toEqual(new Date('2026-01-01T00:20:00.000Z'))
    expect(await engine.store.getCache('cron:last:tick:0', clock.now())).toEqual({ value: '2026-01-01T00:15:00.000Z' })
  })

  it('starts every tick of a clock that jumps past several at once', async () => {
    const clock = fakeClock()
    const engine = engineOn(memoryStore(), clock)
    const s = await begin(engine, [ticking()], clock)
    clock.advance(20 * MIN)
    await s.settled()
    expect((await runsOf(engine)).map((r) => (r.payload as { scheduledAt: string }).scheduledAt.slice(11, 16))).toEqual(['00:05', '00:10', '00:15', '00:20'])
  })

  it('uses the trigger payload when it has one, and keeps the trigger index in the key', async () => {
    const clock = fakeClock()
    const engine = engineOn(memoryStore(), clock)
    const wf = ticking('tick', [webhook({ path: 'x' }), schedule('0 * * * *', { payload: { report: 'hourly' } })])
    const s = await begin(engine, [wf], clock)
    await advance(clock, 60 * MIN, s)
    const runs = await runsOf(engine)
    expect(runs.map((r) => [r.payload, r.idempotencyKey])).toEqual([[{ report: 'hourly' }, 'cron:tick:1:2026-01-01T01:00:00.000Z']])
  })

  it('reads the pattern in the trigger timezone (09:00 New York is 14:00Z in winter)', async () => {
    const clock = fakeClock({ start: Date.UTC(2026, 0, 10) })
    const engine = engineOn(memoryStore(), clock)
    const s = await begin(engine, [ticking('daily', [schedule('0 9 * * *', { timezone: 'America/New_York' })])], clock)
    expect(s.next()[0]!.at.toISOString()).toBe('2026-01-10T14:00:00.000Z')
    await advance(clock, 24 * 60 * MIN, s)
    expect((await runsOf(engine, 'daily')).map((r) => r.payload)).toEqual([{ scheduledAt: '2026-01-10T14:00:00.000Z' }])
    expect(s.next()[0]!.at.toISOString()).toBe('2026-01-11T14:00:00.000Z')
  })

  it('after a restart starts the ticks missed while down, once, oldest first', async () => {
    const clock = fakeClock()
    const store = memoryStore()
    const first = engineOn(store, clock)
    const s1 = await begin(first, [ticking()], clock)
    await advance(clock, 6 * MIN, s1) // 00:05 runs
    s1.stop()
    await first.close()

    clock.advance(15 * MIN) // down across 00:10, 00:15, 00:20 — now 00:21
    const second = engineOn(store, clock)
    const s2 = await begin(second, [ticking()], clock)
    const runs = await runsOf(second)
    expect(runs.map((r) => (r.payload as { scheduledAt: string }).scheduledAt.slice(11, 16))).toEqual(['00:05', '00:10', '00:15', '00:20'])
    const created = runs.slice(1).map((r) => r.createdAt)
    expect(created).toEqual([...created].sort((a, b) => a - b))
    expect(s2.next()[0]!.at.toISOString()).toBe('2026-01-01T00:25:00.000Z')

    // Another restart right away starts nothing new.
    s2.stop()
    const s3 = await begin(second, [ticking()], clock)
    expect(await runsOf(second)).toHaveLength(4)
    s3.stop()
  })

  it('catches up at most `catchUp` missed ticks, the most recent ones', async () => {
    const clock = fakeClock()
    const store = memoryStore()
    const engine = engineOn(store, clock)
    ;(await begin(engine, [ticking()], clock)).stop()
    clock.advance(31 * MIN) // missed 00:05 … 00:30
    await begin(engine, [ticking()], clock, 2)
    expect((await runsOf(engine)).map((r) => (r.payload as { scheduledAt: string }).scheduledAt.slice(11, 16))).toEqual(['00:25', '00:30'])
  })

  it('a schedule seen for the first time catches up nothing', async () => {
    const clock = fakeClock({ start: Date.UTC(2026, 0, 1, 0, 7) })
    const engine = engineOn(memoryStore(), clock)
    await begin(engine, [ticking()], clock)
    expect(await runsOf(engine)).toEqual([])
  })

  it('stop() cancels the timers: no tick starts a run afterwards', async () => {
    const clock = fakeClock()
    const engine = engineOn(memoryStore(), clock)
    const s = await begin(engine, [ticking()], clock)
    await advance(clock, 5 * MIN, s)
    s.stop()
    expect(s.next()).toEqual([])
    expect(clock.pending).toBe(0)
    await advance(clock, 30 * MIN, s)
    expect(await runsOf(engine)).toHaveLength(1)
  })

  it('stops ticking once the engine is closed', async () => {
    const clock = fakeClock()
    const engine = engineOn(memoryStore(), clock)
    const errors: unknown[] = []
    const s = startSchedules(engine, [ticking()], { clock, onError: (e) => errors.push(e) })
    await s.settled()
    expect(clock.pending).toBe(1)
    await engine.close()
    // At once, not at the next tick: a timer left armed would keep the process alive until then.
    expect(s.next()).toEqual([])
    expect(clock.pending).toBe(0)
    await advance(clock, 6 * MIN, s)
    expect(s.next()).toEqual([])
    expect(errors).toEqual([])
    expect(await runsOf(engine)).toEqual([])
  })

  it('a process whose engine closed exits though schedules.stop() was never called (real timers)', async () => {
    const script = `
      import { createEngine, workflow } from '@stepline/core'
      import { schedule, startSchedules } from '@stepline/server'
      const daily = workflow('daily', { triggers: [schedule('0 9 * * *')] }).step('s', () => 1)
      const engine = createEngine()
      startSchedules(engine, [daily])
      setTimeout(() => void engine.close(), 50)
    `
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('.', import.meta.url)), timeout: 10_000, encoding: 'utf8' })
    expect(child.error).toBeUndefined()
    expect(child.status).toBe(0)
  })

  it('refuses to start on a closed engine (ENGINE_CLOSED)', async () => {
    const clock = fakeClock()
    const engine = engineOn(memoryStore(), clock)
    await engine.close()
    expect(() => startSchedules(engine, [ticking()], { clock })).toThrow(expect.objectContaining({ code: 'ENGINE_CLOSED', message: expect.stringContaining('start the schedules on an open engine') }))
    expect(clock.pending).toBe(0)
  })

  it('stop() after the engine closed, or twice, is harmless', async () => {
    const clock = fakeClock()
    const engine = engineOn(memoryStore(), clock)
    const s = await begin(engine, [ticking()], clock)
    s.stop()
    await engine.close()
    s.stop()
    expect(clock.pending).toBe(0)
  })

  it('two engines sharing a memory store start each tick once', async () => {
    const clock = fakeClock()
    const store = memoryStore()
    const a = engineOn(store, clock)
    const b = engineOn(store, clock)
    const sa = await begin(a, [ticking()], clock)
    const sb = await begin(b, [ticking()], clock)
    await advance(clock, 16 * MIN, sa, sb)
    const runs = await runsOf(a)
    expect(runs).toHaveLength(3)
    expect(new Set(runs.map((r) => r.idempotencyKey)).size).toBe(3)
  })

  it('two engines on one SQLite file start each tick once, and a restart catches up once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stepline-cron-'))
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
    const path = join(dir, 'cron.db')
    const clock = fakeClock()
    const storeA = sqliteStore({ path })
    const storeB = sqliteStore({ path })
    cleanup.push(() => storeA.close(), () => storeB.close())
    const a = engineOn(storeA, clock)
    const b = engineOn(storeB, clock)
    const sa = await begin(a, [ticking()], clock)
    const sb = await begin(b, [ticking()], clock)
    await advance(clock, 16 * MIN, sa, sb)
    expect(await runsOf(a)).toHaveLength(3)
    expect(await runsOf(b)).toHaveLength(3)

    // Both go down across two ticks and come back: each missed tick starts once.
    sa.stop()
    sb.stop()
    clock.advance(10 * MIN)
    const [ra, rb] = [startSchedules(a, [ticking()], { clock }), startSchedules(b, [ticking()], { clock })]
    cleanup.push(() => ra.stop(), () => rb.stop())
    await Promise.all([ra.settled(), rb.settled()])
    const runs = await runsOf(a)
    expect(runs.map((r) => (r.payload as { scheduledAt: string }).scheduledAt.slice(11, 16))).toEqual(['00:05', '00:10', '00:15', '00:20', '00:25'])
  })

  it('rejects a bad pattern or timezone with an error naming the workflow and the pattern', () => {
    const engine = engineOn(memoryStore(), fakeClock())
    expect(() => startSchedules(engine, [ticking('nightly', [{ kind: 'schedule', cron: '0 25 * * *' }])])).toThrow(
      /Workflow "nightly": schedule\("0 25 \* \* \*"\) is not a usable schedule: .*Expected 5 fields/,
    )
    expect(() => startSchedules(engine, [ticking('nightly', [{ kind: 'schedule', cron: 'every day' }])])).toThrow(/"nightly".*"every day"/)
    expect(() => startSchedules(engine, [ticking('nightly', [{ kind: 'schedule', cron: '0 9 * * *', timezone: 'Mars/Olympus' }])])).toThrow(
      /Workflow "nightly": schedule\("0 9 \* \* \*", \{ timezone: "Mars\/Olympus" \}\).*Invalid timezone/,
    )
    expect(() => startSchedules(engine, [ticking('leap', [{ kind: 'schedule', cron: '0 0 30 2 *' }])])).toThrow(/"leap".*never matches/)
    expect(() => startSchedules(engine, [ticking()], { catchUp: -1 })).toThrow(/catchUp/)
  })

  it('a tick the store cannot take (STORE_UNAVAILABLE) is reported and started with the next tick', async () => {
    const clock = fakeClock()
    const base = memoryStore()
    let down = false
    const store = new Proxy(base, {
      get: (target, key) => {
        const value = Reflect.get(target, key) as unknown
        if (typeof value !== 'function') return value
        return (...args: unknown[]) => {
          if (down && key === 'createRun') throw new SteplineError('STORE_UNAVAILABLE', 'SQLite store x cannot be written (SQLITE_FULL)')
          return (value as (...a: unknown[]) => unknown).apply(target, args)
        }
      },
    })
    const engine = engineOn(store, clock)
    const errors: string[] = []
    const s = startSchedules(engine, [ticking()], { clock, onError: (e, tick) => errors.push(`${tick.at.toISOString()}: ${(e as { code?: string }).code}`) })
    cleanup.push(() => s.stop())
    await s.settled()
    down = true
    await advance(clock, 5 * MIN, s)
    expect(errors).toEqual(['2026-01-01T00:05:00.000Z: STORE_UNAVAILABLE'])
    expect(await runsOf(engine)).toHaveLength(0)
    down = false
    await advance(clock, 5 * MIN, s)
    expect((await runsOf(engine)).map((r) => r.idempotencyKey)).toEqual(['cron:tick:0:2026-01-01T00:05:00.000Z', 'cron:tick:0:2026-01-01T00:10:00.000Z'])
    expect(errors).toHaveLength(1)
  })

  it('goes on ticking when the store cannot record the last tick either (STORE_UNAVAILABLE)', async () => {
    const clock = fakeClock()
    const base = memoryStore()
    let down = false
    const store = new Proxy(base, {
      get: (target, key) => {
        const value = Reflect.get(target, key) as unknown
        if (typeof value !== 'function') return value
        return (...args: unknown[]) => {
          // A locked or full SQLite file refuses every write, the tick's bookkeeping included.
          if (down && (key === 'createRun' || key === 'setCache')) throw new SteplineError('STORE_UNAVAILABLE', 'SQLite store x is locked (SQLITE_BUSY)')
          return (value as (...a: unknown[]) => unknown).apply(target, args)
        }
      },
    })
    const engine = engineOn(store, clock)
    const errors: string[] = []
    const s = startSchedules(engine, [ticking()], { clock, onError: (e) => errors.push((e as { code?: string }).code ?? String(e)) })
    cleanup.push(() => s.stop())
    await s.settled()
    down = true
    await advance(clock, 5 * MIN, s)
    expect(errors.length).toBeGreaterThan(0)
    expect(errors.every((c) => c === 'STORE_UNAVAILABLE')).toBe(true)
    down = false
    await advance(clock, 5 * MIN, s)
    expect((await runsOf(engine)).map((r) => r.idempotencyKey)).toEqual(['cron:tick:0:2026-01-01T00:05:00.000Z', 'cron:tick:0:2026-01-01T00:10:00.000Z'])
    expect(s.next()[0]!.at.toISOString()).toBe('2026-01-01T00:15:00.000Z')
  })

  it('arms a schedule whose last tick the store could not read at start, without catching up the past', async () => {
    const clock = fakeClock()
    const base = memoryStore()
    let down = true
    const store = new Proxy(base, {
      get: (target, key) => {
        const value = Reflect.get(target, key) as unknown
        if (typeof value !== 'function') return value
        return (...args: unknown[]) => {
          if (down && key === 'getCache') throw new SteplineError('STORE_UNAVAILABLE', 'SQLite store x is locked (SQLITE_BUSY)')
          return (value as (...a: unknown[]) => unknown).apply(target, args)
        }
      },
    })
    const engine = engineOn(store, clock)
    const errors: unknown[] = []
    const s = startSchedules(engine, [ticking()], { clock, onError: (e) => errors.push(e) })
    cleanup.push(() => s.stop())
    await s.settled()
    down = false
    expect(errors).toHaveLength(1)
    expect(s.next()[0]!.at.toISOString()).toBe('2026-01-01T00:05:00.000Z')
    await advance(clock, 6 * MIN, s)
    expect((await runsOf(engine)).map((r) => r.idempotencyKey)).toEqual(['cron:tick:0:2026-01-01T00:05:00.000Z'])
  })

  it('reports a tick whose run cannot start, and goes on ticking', async () => {
    const clock = fakeClock()
    const engine = engineOn(memoryStore(), clock)
    const schema = {
      '~standard': {
        version: 1 as const,
        vendor: 'test',
        validate: (v: unknown) => ((v as { ok?: boolean }).ok ? { value: v } : { issues: [{ message: 'ok must be true' }] }),
      },
    }
    const wf = workflow('strict', { input: schema, triggers: [every5()] }).step('s', () => 1)
    const errors: string[] = []
    const s = startSchedules(engine, [wf], { clock, onError: (e, tick) => errors.push(`${tick.workflowId}@${tick.at.toISOString()}: ${(e as Error).name}`) })
    cleanup.push(() => s.stop())
    await s.settled()
    await advance(clock, 11 * MIN, s)
    expect(errors).toEqual(['strict@2026-01-01T00:05:00.000Z: ValidationError', 'strict@2026-01-01T00:10:00.000Z: ValidationError'])
    expect(s.next()[0]!.at.toISOString()).toBe('2026-01-01T00:15:00.000Z')
  })
})
