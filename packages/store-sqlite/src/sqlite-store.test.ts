import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { createEngine, memoryStore, workflow, type RunHandle, type RunRecord, type Store } from '@stepline/core'
import { MAX_DEPTH } from './json'
import { MIGRATIONS } from './schema'
import { sqliteStore, type SqliteStore, type SqliteStoreOptions } from './sqlite-store'
import { run, step, tempStores } from './test-fixtures'

const { file, make } = tempStores('stepline-sqlite-unit-')

function userVersion(path: string): number {
  const db = new Database(path, { readonly: true })
  try {
    return db.pragma('user_version', { simple: true }) as number
  } finally {
    db.close()
  }
}

describe('migrations', () => {
  it('a fresh file gets the latest schema version; reopening it works and keeps the data', () => {
    const path = file()
    const a = make(path)
    a.createRun(run('r1'))
    a.close()
    expect(userVersion(path)).toBe(MIGRATIONS.length)
    const b = make(path)
    expect(b.getRun('r1')?.payload).toEqual({ n: 1 })
    expect(userVersion(path)).toBe(MIGRATIONS.length)
  })

  it('a file of every earlier version is brought up to date, its data kept', () => {
    for (let version = 1; version < MIGRATIONS.length; version++) {
      const path = file()
      const db = new Database(path)
      for (const sql of MIGRATIONS.slice(0, version)) db.exec(sql)
      db.pragma(`user_version = ${version}`)
      db.prepare('INSERT INTO runs (id, workflow_id, plan_hash, status, attempt, created_at) VALUES (?, ?, ?, ?, ?, ?)').run('old', 'wf', 'h', 'completed', 1, 1)
      db.close()
      const store = make(path)
      expect(store.getRun('old')?.status).toBe('completed')
      expect(userVersion(path)).toBe(MIGRATIONS.length)
    }
  })

  it('a file written by a newer version is refused with a clear error', () => {
    const path = file()
    make(path).close()
    const db = new Database(path)
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`)
    db.close()
    expect(() => sqliteStore({ path })).toThrow(
      expect.objectContaining({ code: 'STORE_UNAVAILABLE', message: expect.stringMatching(new RegExp(`schema version ${MIGRATIONS.length + 1}, newer than this @stepline/store-sqlite knows \\(${MIGRATIONS.length}\\).*Upgrade`)) }),
    )
  })
})

describe('unstorable values', () => {
  const cases: [string, unknown, RegExp][] = [
    ['function', { user: { format: () => 'x' } }, /a function at output\.user\.format/],
    ['BigInt', { total: 10n }, /a BigInt at output\.total/],
    ['symbol', [1, Symbol('s')], /a symbol at output\[1\]/],
    ['cycle', (() => { const o: Record<string, unknown> = { a: {} }; (o.a as Record<string, unknown>).back = o; return o })(), /a cycle at output\.a\.back/],
    ['Map', { m: new Map() }, /a Map at output\.m/],
    ['function under a key that is not an identifier', { ok: 1, 'line-items': [0, { f: () => 1 }] }, /a function at output\["line-items"\]\[1\]\.f\. Return/],
  ]
  for (const [what, output, message] of cases) {
    for (const groupCommit of [true, false]) {
      it(`a ${what} in an output throws UNSTORABLE_OUTPUT naming step and path, and nothing is written (group commit ${groupCommit ? 'on' : 'off'})`, async () => {
        const store = make(file(), { groupCommit })
        store.createRun(run('r1'))
        let thrown: unknown
        try {
          store.recordStep('r1', step('n0', { name: 'charge', output }))
        } catch (e) {
          thrown = e
        }
        expect(thrown).toMatchObject({ code: 'UNSTORABLE_OUTPUT', message: expect.stringMatching(message) })
        expect((thrown as Error).message).toMatch(/^Step "charge" of run r1: its output cannot be stored: .*Return plain JSON data/)
        await new Promise((r) => setImmediate(r))
        expect(store.getSteps('r1')).toEqual([])
      })
    }
  }

  it('a run whose step returns a function fails with UNSTORABLE_OUTPUT', async () => {
    const engine = createEngine({ store: make(file()) })
    const wf = workflow('bad').step('charge', () => ({ receipt: () => 1 }))
    await expect(engine.run(wf)).rejects.toMatchObject({ message: expect.stringContaining('Step "charge" of run') })
  })

  it('an unstorable payload names the payload; no run is created', () => {
    const store = make(file())
    expect(() => store.createRun(run('r1', { payload: { n: 1n } }))).toThrow(/Run r1 of workflow "wf": its payload cannot be stored: a BigInt at payload\.n/)
    expect(store.getRun('r1')).toBeUndefined()
  })

  it('undefined inside objects is dropped; a top-level undefined reads back as undefined; Dates become strings', () => {
    const store = make(file(), { groupCommit: false })
    store.createRun(run('r1', { payload: undefined }))
    store.recordStep('r1', step('a', { output: { x: 1, y: undefined } }))
    store.recordStep('r1', step('b', { output: undefined }))
    store.recordStep('r1', step('c', { output: null }))
    store.recordStep('r1', step('d', { output: new Date(0) }))
    expect(store.getRun('r1')?.payload).toBeUndefined()
    expect(store.getSteps('r1').map((s) => s.output)).toEqual([{ x: 1 }, undefined, null, '1970-01-01T00:00:00.000Z'])
  })

  it('a value too large for JSON throws UNSTORABLE_OUTPUT saying it is too large and what to do; nothing is written', () => {
    const store = make(file())
    store.createRun(run('r1'))
    const chunk = 'x'.repeat(2 ** 27)
    // Five references to one 128 MB string: its JSON text passes V8's longest string (about 512 MB).
    expect(() => store.recordStep('r1', step('n0', { name: 'export', output: [chunk, chunk, chunk, chunk, chunk] }))).toThrow(
      expect.objectContaining({
        code: 'UNSTORABLE_OUTPUT',
        message: 'Step "export" of run r1: its output cannot be stored: its JSON text is longer than a JavaScript string can be (about 512 MB). Keep large data outside the store (a file, object storage) and return a reference to it, such as its path or URL.',
      }),
    )
    expect(store.getSteps('r1')).toEqual([])
  })

  it(`a value nested more than ${MAX_DEPTH} levels deep throws UNSTORABLE_OUTPUT saying so, not a RangeError; ${MAX_DEPTH} levels are stored`, async () => {
    const nest = (levels: number): unknown => {
      let v: unknown = 'leaf'
      for (let i = 0; i < levels; i++) v = i % 2 === 0 ? { a: v } : [v]
      return v
    }
    for (const groupCommit of [true, false]) {
      const store = make(file(), { groupCommit })
      store.createRun(run('r1'))
      // 100,000 levels overflow any recursion; 5,000 pass JSON.parse but not JSON.stringify.
      for (const levels of [MAX_DEPTH + 1, 5000, 100_000]) {
        expect(() => store.recordStep('r1', step('n0', { name: 'tree', output: nest(levels) }))).toThrow(
          expect.objectContaining({
            code: 'UNSTORABLE_OUTPUT',
            message: expect.stringMatching(new RegExp(`^Step "tree" of run r1: its output cannot be stored: objects and arrays nested more than ${MAX_DEPTH} levels deep, at output[.[][^ ]*…[^ ]* \\(flatten it`)),
          }),
        )
      }
      // What a toJSON returns is not walked: JSON.stringify's own overflow is reported the same way.
      expect(() => store.recordStep('r1', step('n0', { name: 'tree', output: { toJSON: () => nest(100_000) } }))).toThrow(
        expect.objectContaining({ code: 'UNSTORABLE_OUTPUT', message: expect.stringContaining('nested too deeply for JSON.stringify') }),
      )
      await store.recordStep('r1', step('n1', { output: nest(MAX_DEPTH) }))
      expect(store.getSteps('r1').map((s) => s.key)).toEqual(['n1'])
      expect(store.getSteps('r1')[0]?.output).toEqual(nest(MAX_DEPTH))
    }
  })

  it('a plain object with its own toJSON is stored as what toJSON returns, as a Date is', () => {
    const store = make(file(), { groupCommit: false })
    store.createRun(run('r1'))
    store.recordStep('r1', step('a', { output: { price: { amount: 5, toJSON: () => '5 EUR' } } }))
    expect(store.getSteps('r1')[0]?.output).toEqual({ price: '5 EUR' })
  })
})

describe('durability', () => {
  it('runs, steps (first-write order), events (exactly once) and cache survive close and reopen', async () => {
    const path = file()
    const a = make(path)
    a.createRun(run('r1', { idempotencyKey: 'k1' }))
    a.createRun(run('r2', { workflowId: 'other' }))
    await a.recordStep('r1', step('n0'))
    await a.recordStep('r1', step('n1', { status: 'failed', output: undefined, error: Object.assign(new Error('boom'), { code: 'STEP_FAILED' }) }))
    await a.recordStep('r1', step('n2', { item: [0, 3], recovered: true }))
    // Rewriting an entry keeps its first-write position.
    await a.recordStep('r1', step('n0', { output: 'again', attempts: 2 }))
    a.updateRun('r1', { status: 'completed', output: { ok: true }, endedAt: 5000 })
    expect(await a.putEvent({ runId: 'r1', name: 'approval', data: { yes: true }, sentAt: 7 })).toBe(true)
    a.setCache('fresh', [1, 2], undefined)
    a.setCache('stale', 'x', 100)
    a.close()

    const b = make(path)
    expect(b.getRun('r1')).toMatchObject({ status: 'completed', output: { ok: true }, endedAt: 5000, idempotencyKey: 'k1', payload: { n: 1 } })
    const steps = b.getSteps('r1')
    expect(steps.map((s) => [s.key, s.output, s.attempts])).toEqual([['n0', 'again', 2], ['n1', undefined, 1], ['n2', 'n2', 1]])
    expect(steps[1]!.error).toBeInstanceOf(Error)
    expect(steps[1]!.error).toMatchObject({ message: 'boom', code: 'STEP_FAILED' })
    expect(steps[2]).toMatchObject({ item: [0, 3], recovered: true })
    expect(await b.putEvent({ runId: 'r1', name: 'approval', data: { yes: false }, sentAt: 8 })).toBe(false)
    expect(b.getEvent('r1', 'approval')).toEqual({ runId: 'r1', name: 'approval', data: { yes: true }, sentAt: 7 })
    expect(b.getCache('fresh', 1000)).toEqual({ value: [1, 2] })
    expect(b.getCache('stale', 99)).toEqual({ value: 'x' })
    expect(b.getCache('stale', 100)).toBeUndefined()
    expect(b.listRuns().map((r) => r.id)).toEqual(['r2', 'r1'])
    expect(b.listRuns({ workflowId: 'wf' }).map((r) => r.id)).toEqual(['r1'])
    expect(b.listRuns({ before: 'r2' }).map((r) => r.id)).toEqual(['r1'])
    expect(b.listRuns({ status: ['running'], limit: 1 }).map((r) => r.id)).toEqual(['r2'])
  })

  it('a group-committed step is durable once its promise settles, and shares one commit with its macrotask', async () => {
    const path = file()
    const a = make(path)
    a.createRun(run('r1'))
    const p1 = a.recordStep('r1', step('n0'))
    const p2 = a.recordStep('r1', step('n1'))
    expect(p1).toBeInstanceOf(Promise)
    expect(p1).toBe(p2)
    const other = make(path)
    expect(other.getSteps('r1')).toEqual([])
    await p1
    expect(other.getSteps('r1').map((s) => s.key)).toEqual(['n0', 'n1'])
  })

  it('a run, its steps and its end written in one turn share one commit, in order', async () => {
    const path = file()
    const a = make(path)
    const other = make(path)
    const created = a.createRun(run('r1'))
    const stepped = a.recordStep('r1', step('n0'))
    const ended = a.updateRun('r1', { status: 'completed', endedAt: 1 })
    expect(other.getRun('r1')).toBeUndefined() // nothing committed yet
    await Promise.all([created, stepped, ended])
    expect(other.getRun('r1')?.status).toBe('completed')
    expect(other.getSteps('r1').map((s) => s.key)).toEqual(['n0'])
  })

  it('a write whose answer depends on the file (a transition) is decided in its turn, after the writes before it', async () => {
    const path = file()
    const a = make(path)
    void a.createRun(run('r1'))
    void a.recordStep('r1', step('n0'))
    expect(await a.transitionRun('r1', ['running'], 'sleeping', { wakeAt: 5 })).toBe(true)
    expect(make(path).getSteps('r1').map((s) => s.key)).toEqual(['n0'])
  })

  it("groupCommit 'immediate' shares one commit among writes of one event-loop turn", async () => {
    const path = file()
    const a = make(path, { groupCommit: 'immediate' })
    const other = make(path)
    const writes = [a.createRun(run('r1'))]
    await Promise.resolve() // a microtask later: still the same turn, still pending
    writes.push(a.createRun(run('r2')))
    expect(other.getRun('r1')).toBeUndefined()
    await Promise.all(writes)
    expect(other.listRuns().map((r) => r.id).sort()).toEqual(['r1', 'r2'])
    expect(() => make(path, { groupCommit: 'sometimes' as never })).toThrow(/groupCommit/)
  })

  it("transitions and events of one turn are decided in its commit, in call order, each with its own answer", async () => {
    const path = file()
    const a = make(path, { groupCommit: 'immediate' })
    const other = make(path)
    await a.createRun(run('r1', { status: 'sleeping', wakeAt: 5 }))
    const answers = [
      a.transitionRun('r1', ['sleeping'], 'running', { wakeAt: undefined }),
      a.putEvent({ runId: 'r1', name: 'ok', data: 1, sentAt: 1 }),
      // After the first in call order: it sees the run running, and the event stored.
      a.transitionRun('r1', ['sleeping'], 'cancelled'),
      a.putEvent({ runId: 'r1', name: 'ok', data: 2, sentAt: 2 }),
    ]
    await Promise.resolve()
    expect(other.getRun('r1')?.status).toBe('sleeping') // not committed before the turn ends
    expect(await Promise.all(answers)).toEqual([true, true, false, false])
    expect(other.getRun('r1')).toMatchObject({ status: 'running' })
    expect(other.getEvent('r1', 'ok')?.data).toBe(1)
  })

  it("groupCommit 'immediate': a run started as the engine registers its workflows runs once (its recovery pass does not resume it)", async () => {
    const store = make(file(), { groupCommit: 'immediate' })
    let calls = 0
    const wf = workflow('once').step('count', () => ++calls)
    const engine = createEngine({ store, workflows: [wf] })
    const handle = await engine.start(wf)
    expect(await handle.result()).toBe(1)
    await engine.close()
    expect(calls).toBe(1)
    expect(store.getRun(handle.id)).toMatchObject({ status: 'completed', attempt: 1 })
  })

  it('without group commit a step is committed when recordStep returns', () => {
    const path = file()
    const a = make(path, { groupCommit: false })
    a.createRun(run('r1'))
    expect(a.recordStep('r1', step('n0'))).toBeUndefined()
    expect(make(path).getSteps('r1')).toHaveLength(1)
  })
})

describe('two stores on one file', () => {
  it('starting one idempotency key from two engines creates one run', async () => {
    const path = file()
    const wf = workflow<number>('pay').step('charge', (ctx) => ctx.payload * 2)
    const e1 = createEngine({ store: make(path), workflows: [wf] })
    const e2 = createEngine({ store: make(path), workflows: [wf] })
    const [h1, h2] = await Promise.all([e1.start(wf, 21, { idempotencyKey: 'order-1' }), e2.start(wf, 21, { idempotencyKey: 'order-1' })])
    expect(h1.id).toBe(h2.id)
    expect(await h1.result()).toBe(42)
    expect(await e2.listRuns({ workflowId: 'pay' })).toHaveLength(1)
    const again = await make(path).createRun(run('r-new', { workflowId: 'pay', idempotencyKey: 'order-1' }))
    expect(again).toMatchObject({ created: false, run: { id: h1.id } })
  })

  for (const options of [{}, { groupCommit: 'immediate', writes: 'log' }] as const) {
    it(`starting one runId from two engines: one run, the other RUN_EXISTS, nothing of it written (${JSON.stringify(options)})`, async () => {
      const path = file()
      const calls: string[] = []
      const wf = workflow<string>('pay').step('charge', (ctx) => (calls.push(ctx.payload), ctx.payload))
      const e1 = createEngine({ store: make(path, options), workflows: [wf] })
      // One engine recovers per file (durability.md, Limits); the other only starts runs.
      const e2 = createEngine({ store: make(path, options), workflows: [wf], recover: false })
      const [a, b] = await Promise.allSettled([e1.start(wf, 'a', { runId: 'order-1' }), e2.start(wf, 'b', { runId: 'order-1' })])
      const won = [a, b].filter((r) => r.status === 'fulfilled')
      const lost = [a, b].filter((r) => r.status === 'rejected')
      expect(won).toHaveLength(1)
      expect(lost).toMatchObject([{ reason: { code: 'RUN_EXISTS', message: expect.stringContaining('a run with id "order-1" already exists') } }])
      const winner = a.status === 'fulfilled' ? 'a' : 'b'
      expect(await (won[0] as PromiseFulfilledResult<RunHandle<string>>).value.result()).toBe(winner)
      expect(calls).toEqual([winner])
      const reader = make(path)
      expect(reader.getRun('order-1')).toMatchObject({ payload: winner, output: winner, status: 'completed' })
      expect(reader.getSteps('order-1')).toMatchObject([{ name: 'charge', output: winner }])
    })
  }

  it('createRun with a key or idChosen: the file decides, for the inserts of one turn together, and an id another store took answers with its run', async () => {
    const path = file()
    const a = make(path)
    const b = make(path)
    // One turn: one transaction decides both; the second meets the first's row.
    const [first, second] = await Promise.all([a.createRun(run('r1', { idempotencyKey: 'k1' }), { idChosen: true }), a.createRun(run('r1', { payload: { n: 3 } }), { idChosen: true })])
    expect(first).toEqual({ run: expect.objectContaining({ id: 'r1' }), created: true })
    expect(second).toMatchObject({ created: false, run: { id: 'r1', payload: { n: 1 }, idempotencyKey: 'k1' } })
    // Committed when the promise settled: another connection sees it.
    expect(await b.createRun(run('r1', { payload: { n: 2 } }), { idChosen: true })).toMatchObject({ created: false, run: { id: 'r1', payload: { n: 1 }, idempotencyKey: 'k1' } })
    expect(await b.createRun(run('r1', { idempotencyKey: 'k2' }), { idChosen: true })).toMatchObject({ created: false, run: { id: 'r1', idempotencyKey: 'k1' } })
    expect(await b.createRun(run('r9', { idempotencyKey: 'k1' }))).toMatchObject({ created: false, run: { id: 'r1' } })
    expect(b.listRuns()).toHaveLength(1)
  })

  it('a checked insert is decided before the writes queued after it in its turn (its first step), and close decides what is pending', async () => {
    const path = file()
    const a = make(path)
    const created = a.createRun(run('r1', { idempotencyKey: 'k1' }))
    const stepped = a.recordStep('r1', step('n0'))
    await Promise.all([created, stepped])
    const c = make(path)
    const late = c.createRun(run('r2', { idempotencyKey: 'k2' }))
    c.close()
    expect(await late).toMatchObject({ created: true })
    expect(make(path).getSteps('r1').map((x) => x.key)).toEqual(['n0'])
    expect(make(path).getRun('r2')).toMatchObject({ idempotencyKey: 'k2' })
  })

  it('transitionRun: of two stores racing to resume one parked run, exactly one wins', async () => {
    const path = file()
    const a = make(path)
    const b = make(path)
    a.createRun(run('r1', { status: 'sleeping', wakeAt: 10 }))
    const wins = await Promise.all([a, b].map((s) => s.transitionRun('r1', ['sleeping', 'waiting'], 'running', { wakeAt: undefined, attempt: 2 })))
    expect(wins.sort()).toEqual([false, true])
    expect(b.getRun('r1')).toMatchObject({ status: 'running', attempt: 2, wakeAt: undefined })
  })
})

describe('parked runs behave like the memory store', () => {
  const parkedScenario = (store: Store): unknown[] => {
    // Runs are parked the way the engine parks them: created running, then moved.
    const park = (id: string, status: 'sleeping' | 'waiting', patch: Partial<RunRecord>): void => {
      store.createRun(run(id))
      expect(store.transitionRun(id, ['running'], status, patch)).toBe(true)
    }
    park('s1', 'sleeping', { wakeAt: 300 })
    park('s2', 'sleeping', { wakeAt: 100 })
    park('w1', 'waiting', { wakeAt: 200, waitFor: { event: 'approval', match: 'o1' } })
    park('w2', 'waiting', { waitFor: { event: 'approval', match: 'o2' } })
    store.createRun(run('done'))
    store.updateRun('done', { status: 'completed', endedAt: 500, wakeAt: 50 })
    store.createRun(run('old', { status: 'running' }))
    store.updateRun('old', { status: 'failed', endedAt: 10, error: { __stepline_error__: true, name: 'Error', message: 'x' } })
    store.recordStep('old', step('n0'))
    store.putEvent({ runId: 'old', name: 'e', data: 1, sentAt: 1 })
    const ids = (rs: unknown): string[] => (rs as RunRecord[]).map((r) => r.id)
    const out: unknown[] = [
      ids(store.dueRuns(200, 10)),
      ids(store.dueRuns(1000, 2)),
      store.nextWakeAt(),
      ids(store.waitingFor('approval', 'o1')),
      ids(store.waitingFor('approval', 'nope')),
    ]
    store.transitionRun('s2', ['sleeping'], 'running', { wakeAt: undefined })
    out.push(store.nextWakeAt(), ids(store.dueRuns(1000, 10)))
    out.push(store.pruneRuns(100), store.getRun('old'), store.getSteps('old'), store.getEvent('old', 'e'), (store.getRun('done') as RunRecord | undefined)?.status)
    return out
  }

  it('dueRuns, nextWakeAt, waitingFor, pruneRuns', () => {
    const expected = parkedScenario(memoryStore())
    expect(expected).toEqual([['s2', 'w1'], ['s2', 'w1'], 100, ['w1'], [], 200, ['w1', 's1'], 1, undefined, [], undefined, 'completed'])
    expect(parkedScenario(make(file(), { groupCommit: false }))).toEqual(expected)
  })
})

describe('unavailable database', () => {
  it('a file that is not a SQLite database', () => {
    const path = file()
    writeFileSync(path, 'this is not a database, just some text that is long enough to have a header '.repeat(20))
    expect(() => sqliteStore({ path })).toThrow(
      expect.objectContaining({ code: 'STORE_UNAVAILABLE', message: expect.stringMatching(new RegExp(`^SQLite store ${path} is not a SQLite database \\(SQLITE_NOTADB\\): .*Move the file away or point \`path\` elsewhere\\.$`)) }),
    )
  })

  it('a path whose directory cannot be created', () => {
    const blocker = file()
    writeFileSync(blocker, 'a file where the directory should be')
    const path = `${blocker}/sub/t.db`
    expect(() => sqliteStore({ path })).toThrow(
      expect.objectContaining({ code: 'STORE_UNAVAILABLE', message: expect.stringMatching(new RegExp(`^SQLite store ${path} cannot be opened for writing \\(ENOTDIR\\): .*Check that its directory exists and is writable`)) }),
    )
  })

  it('a file locked by another process', async () => {
    const path = file()
    const store = make(path, { busyTimeoutMs: 50 })
    await store.createRun(run('r1'))
    const locker = new Database(path)
    locker.pragma('busy_timeout = 0')
    locker.exec('BEGIN EXCLUSIVE')
    try {
      const started = Date.now()
      await expect(store.transitionRun('r1', ['running'], 'completed')).rejects.toMatchObject({
        code: 'STORE_UNAVAILABLE',
        message: expect.stringMatching(/is locked by another process \(SQLITE_BUSY\) after 50 ms: .*raise `busyTimeoutMs`/),
      })
      expect(Date.now() - started).toBeGreaterThanOrEqual(40)
      await expect(store.updateRun('r1', { status: 'completed' })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' })
      // A group commit that cannot get the lock rejects the steps' promise with the same error.
      await expect(store.recordStep('r1', step('n0'))).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' })
    } finally {
      locker.exec('ROLLBACK')
      locker.close()
    }
    await store.updateRun('r1', { status: 'completed' })
    expect(store.getRun('r1')?.status).toBe('completed')
  })

  it('an expired cache entry read while another process holds the lock is a miss at once; it is deleted by a later read', async () => {
    const path = file()
    const store = make(path, { busyTimeoutMs: 2000 })
    store.setCache('k', 'v', 10)
    const locker = new Database(path)
    locker.exec('BEGIN IMMEDIATE')
    try {
      const started = Date.now()
      expect(store.getCache('k', 20)).toBeUndefined()
      expect(Date.now() - started).toBeLessThan(1000)
      // The lock wait is back for writes.
      const writeStarted = Date.now()
      expect(() => store.setCache('k2', 'v', undefined)).toThrow(expect.objectContaining({ code: 'STORE_UNAVAILABLE' }))
      expect(Date.now() - writeStarted).toBeGreaterThanOrEqual(1900)
    } finally {
      locker.exec('ROLLBACK')
    }
    const count = (): number => locker.prepare('SELECT count(*) FROM cache').pluck().get() as number
    expect(count()).toBe(1)
    expect(store.getCache('k', 20)).toBeUndefined()
    expect(count()).toBe(0)
    locker.close()
  })

  for (const groupCommit of [true, false]) {
    it(`a journal entry of a run not in the file fails with RUN_NOT_FOUND naming step and run, not a raw SqliteError (group commit ${groupCommit ? 'on' : 'off'})`, async () => {
      const store = make(file(), { groupCommit })
      await store.createRun(run('r1'))
      const expected = expect.objectContaining({
        name: 'SteplineError',
        code: 'RUN_NOT_FOUND',
        message: expect.stringMatching(/^Step "charge" \(journal key n0\) of run nope cannot be journaled: run nope is not in SQLite store .* \(SQLITE_CONSTRAINT_FOREIGNKEY\); it was pruned or deleted, or never created in this file\./),
      })
      if (!groupCommit) {
        expect(() => store.recordStep('nope', step('n0', { name: 'charge' }))).toThrow(expected)
      } else {
        const ok = store.recordStep('r1', step('n0'))
        const bad = store.recordStep('nope', step('n0', { name: 'charge' }))
        await expect(bad).rejects.toThrow(expected)
        // One transaction per turn: the entry that shared it is not written and fails with it.
        await expect(ok).rejects.toThrow(/Nothing of its commit was written: the writes that shared it fail with this error too\./)
        expect(store.getSteps('r1')).toEqual([])
      }
      await store.recordStep('r1', step('n1'))
      expect(store.getSteps('r1').map((s) => s.key)).toEqual(['n1'])
    })
  }

  it('a closed store reopens on its next use (an engine closes its store; another engine may share it)', async () => {
    const store = make(file())
    store.createRun(run('r1'))
    void store.recordStep('r1', step('n0'))
    store.close()
    expect(store.getSteps('r1').map((s) => s.key)).toEqual(['n0'])
    store.close()
    await store.recordStep('r1', step('n1'))
    expect(store.getSteps('r1').map((s) => s.key)).toEqual(['n0', 'n1'])
    // An update shape prepared before the close is prepared again on the new connection.
    await store.updateRun('r1', { status: 'sleeping', wakeAt: 5 })
    store.close()
    await store.updateRun('r1', { status: 'running', wakeAt: undefined })
    expect(store.getRun('r1')).toMatchObject({ status: 'running', wakeAt: undefined })
  })
})

describe('options', () => {
  it('bad options are refused with OPTIONS_INVALID naming the option and what it takes', () => {
    const bad: Array<[SqliteStoreOptions, RegExp]> = [
      [{ path: '' }, /expected `path` as a file path/],
      [{ busyTimeoutMs: -1 }, /expected `busyTimeoutMs` as a whole number of milliseconds ≥ 0, got -1/],
      [{ synchronous: 'off' as never }, /expected `synchronous` as 'normal' or 'full', got 'off'/],
      [{ groupCommit: 'later' as never }, /expected `groupCommit` as true, false, 'microtask' or 'immediate', got 'later'/],
      [{ checkpoint: 'never' as never }, /expected `checkpoint` as 'background' or 'inline', got 'never'/],
    ]
    for (const [options, message] of bad) {
      expect(() => sqliteStore({ path: file(), ...options })).toThrow(expect.objectContaining({ code: 'OPTIONS_INVALID', message: expect.stringMatching(message) }))
    }
  })
})

describe('background checkpoint', () => {
  const size = (path: string): number => {
    try {
      return statSync(path).size
    } catch {
      return 0
    }
  }
  let next = 0
  const fill = async (store: SqliteStore, runs: number): Promise<void> => {
    for (let i = next; i < next + runs; i++) {
      await store.createRun(run(`r${i}`, { payload: { text: 'x'.repeat(200), i } }))
      await store.recordStep(`r${i}`, step('a'))
    }
    next += runs
  }

  const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

  it('a thread of its own copies the WAL into the file, however little was written', async () => {
    const path = file()
    const store = make(path)
    const before = size(path)
    // 120 commits start the thread; their few hundred pages are far from the 1000 at which a writer would checkpoint.
    await fill(store, 60)
    const deadline = Date.now() + 5000
    while (size(path) <= before && Date.now() < deadline) await settle(20)
    expect(size(path)).toBeGreaterThan(before)
    store.close()
  })

  it('keeps the WAL from growing with the data, and folds it in on close', async () => {
    const path = file()
    const store = make(path)
    // One commit per write, without a pause: ~100 MB of WAL frames, which must not pile up.
    await fill(store, 6000)
    expect(size(`${path}-wal`)).toBeLessThan(48 * 1024 * 1024)
    store.close()
    expect(existsSync(`${path}-wal`)).toBe(false) // the last connection to close folded it in
    const db = new Database(path, { readonly: true })
    expect((db.prepare('SELECT count(*) AS n FROM runs').get() as { n: number }).n).toBe(6000)
    db.close()
  })

  it('when the thread cannot open the file, the writer checkpoints again and writes go on', async () => {
    const path = file()
    const store = make(path)
    await fill(store, 10)
    // Deleted under the open store: its connection still writes; the thread (started at 100 commits) cannot open it.
    rmSync(path)
    await fill(store, 60)
    await settle(200)
    await fill(store, 3000)
    expect(store.listRuns({ limit: 5000 })).toHaveLength(3070)
    expect(store.getSteps(`r${next - 1}`).map((s) => s.key)).toEqual(['a'])
    // ~100 MB of WAL frames went by: only a writer checkpointing again keeps the WAL this small.
    expect(size(`${path}-wal`)).toBeLessThan(8 * 1024 * 1024)
  })

  it("checkpoint: 'inline' leaves it to the writer, at 1000 pages, as SQLite does by default", async () => {
    const path = file()
    const store = make(path, { checkpoint: 'inline' })
    const before = size(path)
    await fill(store, 60)
    await settle(300)
    expect(size(`${path}-wal`)).toBeLessThan(1000 * 4096)
    expect(size(path)).toBe(before) // nobody checkpointed a small WAL
    await fill(store, 3000)
    expect(size(`${path}-wal`)).toBeLessThan(8 * 1024 * 1024)
    store.close()
    expect(existsSync(`${path}-wal`)).toBe(false)
  })
})
