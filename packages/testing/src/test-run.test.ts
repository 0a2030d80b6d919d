import { describe, expect, it, vi } from 'vitest'
import { cpu, createEngine, inlineExecutor, workflow, StepError, StepTimeoutError, type Executor, type Store } from '@stepline/core'
import { memoryStore } from '@stepline/core'
import { fail, fakeClock, replayRun, sequence, testRun, value, UnmockedStepError } from '@stepline/testing'

/** The order workflow; replay tests build variants of it with one thing changed. */
function orderWorkflow(change: { largeAbove?: number; scale?: number } = {}) {
  const { largeAbove = 1000, scale = 1 } = change
  return workflow<{ id: string; total: number }>('order')
    .step('validate', (ctx) => ({ id: ctx.payload.id, total: ctx.payload.total * scale }))
    .parallel('fetch', { user: () => ({ name: 'real user' }), stock: () => 5 })
    .if('large', (ctx) => ctx.steps.validate.output.total > largeAbove)
    .step('review', () => 'reviewed')
    .else()
    .step('auto', () => 'auto-approved')
    .endIf()
    .forEach('reserve', () => ['a', 'b', 'c'], (item, flow) => flow.step('reserve-one', () => `real ${item}`), { concurrency: 2 })
    .step('charge', async () => ({ charged: true }), { retry: { attempts: 3, delay: '1s', backoff: 'exponential' } })
}

const order = orderWorkflow()

describe('testRun', () => {
  it('runs the workflow and reports status, output, typed steps and order', async () => {
    const run = await testRun(order, { id: 'o1', total: 50 })
    expect(run.status).toBe('completed')
    expect(run.output).toEqual({ charged: true })
    expect(run.steps.validate.output.total).toBe(50)
    expect(run.steps.fetch.output).toEqual({ user: { name: 'real user' }, stock: 5 })
    expect(run.steps.reserve.output).toEqual(['real a', 'real b', 'real c'])
    run.expectStatus('completed').expectOrder('validate', 'fetch', 'auto', 'reserve', 'charge').expectBranch('large', 'else').expectSkipped('review')
    expect(run.ran('review')).toBe(false)
    expect(run.calls('reserve-one')).toBe(3)
  })

  it('mocks steps by name, inside forEach bodies and parallel branches too', async () => {
    const run = await testRun(order, { id: 'o1', total: 5000 }, {
      mocks: {
        'fetch[user]': { name: 'Mocked' },
        'reserve-one': (ctx) => `mocked ${String(ctx.item)}#${ctx.index}`,
        review: 'mock-reviewed',
      },
    })
    expect(run.steps.fetch.output).toEqual({ user: { name: 'Mocked' }, stock: 5 })
    expect(run.steps.reserve.output).toEqual(['mocked a#0', 'mocked b#1', 'mocked c#2'])
    expect(run.steps.review.output).toBe('mock-reviewed')
    run.expectBranch('large', 'large')
  })

  it('sequence mocks drive retries, with backoff on virtual time', async () => {
    const clock = fakeClock()
    const run = await testRun(order, { id: 'o1', total: 5 }, { clock, mocks: { charge: sequence(fail('503'), fail('503'), { charged: true }) } })
    expect(run.status).toBe('completed')
    run.expectAttempts('charge', 3)
    expect(run.calls('charge')).toBe(3)
    const retries = run.trace.filter((t) => t.type === 'retrying')
    expect(retries.map((t) => t.attempt)).toEqual([1, 2])
    // exponential from 1 s: 1 s then 2 s of virtual time
    expect(clock.elapsed()).toBe(3000)
  })

  it('sequences count per forEach item', async () => {
    const wf = workflow('items').forEach('each', () => [1, 2], (_i, flow) => flow.step('flaky', () => 'real', { retry: { attempts: 2, delay: 10 } }), { concurrency: 2 })
    const run = await testRun(wf, undefined, { mocks: { flaky: sequence(fail('once'), 'ok') } })
    expect(run.output).toEqual(['ok', 'ok'])
    expect(run.records('flaky').map((r) => r.attempts)).toEqual([2, 2])
  })

  it('a failing mock fails the run like a failing step', async () => {
    const run = await testRun(order, { id: 'o1', total: 5 }, { mocks: { charge: fail(new Error('card declined')) } })
    run.expectStatus('failed').expectAttempts('charge', 3)
    expect(run.error).toBeInstanceOf(StepError)
    expect(run.error?.message).toContain('card declined')
    expect(run.steps.charge.status).toBe('failed')
  })

  it('value() returns a function as it is instead of calling it', async () => {
    const fn = (): number => 1
    const wf = workflow('fn').step('make', () => (): number => 2)
    const run = await testRun(wf, undefined, { mocks: { make: value(fn) } })
    expect(run.output).toBe(fn)
  })

  it('strict mode rejects naming the unmocked step', async () => {
    await expect(testRun(order, { id: 'o1', total: 5 }, { strict: true, mocks: { validate: { id: 'o1', total: 5 } } })).rejects.toThrow(
      /step "fetch\[user\]" of workflow "order" has no mock\. Add mocks: \{ 'fetch\[user\]': … \} \(mocked now: "validate"\)/,
    )
    await expect(testRun(order, { id: 'o1', total: 5 }, { strict: true })).rejects.toBeInstanceOf(UnmockedStepError)
  })

  it("a sleep('7d') workflow with exponential retries finishes in well under a second of real time", async () => {
    let tries = 0
    const wf = workflow('slow')
      .sleep('week', '7d')
      .step('poll', () => {
        if (++tries < 5) throw new Error('not yet')
        return 'ready'
      }, { retry: { attempts: 5, delay: '1h', backoff: 'exponential' } })
    const clock = fakeClock()
    const t0 = performance.now()
    const run = await testRun(wf, undefined, { clock })
    expect(performance.now() - t0).toBeLessThan(1000)
    expect(run.output).toBe('ready')
    // 7 days + 1 h + 2 h + 4 h + 8 h of virtual time
    expect(clock.elapsed()).toBe(7 * 86_400_000 + 15 * 3_600_000)
    expect(run.summary.wallMs).toBe(clock.elapsed())
  })

  it('a step timeout fires on virtual time while the step hangs', async () => {
    const wf = workflow('hang').step('stuck', (ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))), { timeout: '30s' })
    const clock = fakeClock({ idleMs: 5 })
    const run = await testRun(wf, undefined, { clock })
    run.expectStatus('failed')
    expect(run.error?.cause).toBeInstanceOf(StepTimeoutError)
    expect(clock.elapsed()).toBe(30_000)
  })

  it('a step timeout fires under vitest fake timers, performance.now faked too', async () => {
    vi.useFakeTimers() // fakes performance as well: the runner captured the real one when loaded
    try {
      const wf = workflow('hang').step('stuck', () => 'real', { timeout: '30s' })
      const clock = fakeClock({ idleMs: 5 })
      const run = await testRun(wf, undefined, {
        clock,
        realTimeoutMs: 2_000,
        mocks: { stuck: (ctx) => new Promise<string>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))) },
      })
      expect(run.error?.cause).toBeInstanceOf(StepTimeoutError)
      expect(clock.elapsed()).toBe(30_000)
    } finally {
      vi.useRealTimers()
    }
  })

  it('records events and a trace with virtual times', async () => {
    const wf = workflow('t').sleep('nap', '1m').step('after', () => 1)
    const run = await testRun(wf)
    expect(run.events.map((e) => e.type)).toEqual(['run:started', 'step:started', 'run:parked', 'run:resumed', 'step:completed', 'step:started', 'step:completed', 'run:completed'])
    expect(run.trace.find((t) => t.step === 'after' && t.type === 'started')?.at).toBe(60_000)
  })

  it('records every event of the run, run:parked and run:resumed too', async () => {
    const wf = workflow('parks').waitForEvent('approval').sleep('nap', '1h').step('ship', () => 'shipped')
    const run = await testRun(wf, undefined, { events: { approval: true } })
    expect(run.events.filter((e) => e.type === 'run:parked' || e.type === 'run:resumed').map((e) => [e.type, e.status, e.event, e.at])).toEqual([
      ['run:parked', 'waiting', 'approval', 0],
      ['run:resumed', undefined, undefined, 0],
      ['run:parked', 'sleeping', undefined, 0],
      ['run:resumed', undefined, undefined, 3_600_000],
    ])
  })

  it('answers waitForEvent from `events`; a wait nobody answers is a clear error', async () => {
    const wf = workflow<{ id: string }>('approve')
      .step('submit', (ctx) => ctx.payload.id)
      .waitForEvent<'approval', { ok: boolean }>('approval', { timeout: '2d' })
      .step('ship', (ctx) => (ctx.last.ok ? 'shipped' : 'held'))
    const run = await testRun(wf, { id: 'o1' }, { events: { approval: { ok: true } } })
    expect(run.output).toBe('shipped')
    expect(run.steps.approval.output).toEqual({ ok: true })
    // Without an answer the 2-day timeout fires on virtual time.
    const clock = fakeClock()
    const timedOut = await testRun(wf, { id: 'o1' }, { clock })
    expect(timedOut.error).toMatchObject({ code: 'WAIT_TIMEOUT' })
    expect(clock.elapsed()).toBe(2 * 86_400_000)
    const noTimeout = workflow('forever').waitForEvent('approval')
    await expect(testRun(noTimeout)).rejects.toThrow(`testRun: the run of workflow "forever" waits for the event "approval", which \`events\` does not answer. Add events: { 'approval': … } to testRun's options.`)
  })

  it('a run that never ends fails the test after realTimeoutMs, saying what is still pending', async () => {
    const wf = workflow('stuck').step('io', () => new Promise(() => undefined))
    await expect(testRun(wf, undefined, { realTimeoutMs: 100 })).rejects.toThrow(
      'testRun: the run of workflow "stuck" did not end within 100 ms of real time (1 step(s) still in flight, 0 timer(s) pending). Mock steps that wait for real I/O, or raise `realTimeoutMs`.',
    )
  })

  it('sequence() needs at least one entry', () => {
    expect(() => sequence()).toThrow('sequence(): give at least one entry, e.g. sequence(fail("x"), 42).')
  })

  it('assertion helpers fail with what actually happened', async () => {
    const run = await testRun(order, { id: 'o1', total: 5 })
    expect(() => run.expectOrder('charge', 'validate')).toThrow(/expected steps to run in the order charge → validate; they ran as validate → /)
    expect(() => run.expectBranch('large', 'large')).toThrow(`expected .if('large') to take "large", but it took "else"`)
    expect(() => run.expectSkipped('auto')).toThrow('expected auto to be skipped; skipped were: review')
    expect(() => run.expectAttempts('charge', 2)).toThrow('expected "charge" to take 2 attempt(s), it took 1')
    expect(() => run.expectStatus('failed')).toThrow('expected the run to be failed, but it is completed')
    expect(() => run.branch('nope')).toThrow(`No .if('nope') in workflow; its branches are named: large`)
  })
})

describe('testRun: mistakes in the test are clear errors', () => {
  it('a mock for a name the workflow does not have rejects, listing the names that can be mocked', async () => {
    let charged = 0
    const wf = workflow('pay').step('charge', () => ++charged).forEach('each', () => [1], (_i, flow) => flow.step('reserve-one', () => 'r'))
    await expect(testRun(wf, undefined, { mocks: { chrage: 1 } })).rejects.toThrow(
      'testRun: mocks: workflow "pay" has no step "chrage". Steps that can be mocked: "charge", "reserve-one".',
    )
    await expect(testRun(wf, undefined, { mocks: { chrage: 1 } })).rejects.toMatchObject({ code: 'OPTIONS_INVALID' })
    expect(charged).toBe(0) // rejected before the run started
  })

  it('a mock for a parallel, race or forEach node rejects, naming its branches or body steps', async () => {
    await expect(testRun(order, { id: 'o1', total: 5 }, { mocks: { fetch: { user: { name: 'x' }, stock: 1 } } })).rejects.toThrow(
      'testRun: mocks: "fetch" of workflow "order" is a parallel and cannot be mocked itself; mock its branches instead: "fetch[user]", "fetch[stock]".',
    )
    await expect(testRun(order, { id: 'o1', total: 5 }, { mocks: { reserve: ['a'] } })).rejects.toThrow(
      'testRun: mocks: "reserve" of workflow "order" is a forEach and cannot be mocked itself; mock the steps of its body instead: "reserve-one".',
    )
    const waits = workflow('waits').waitForEvent('approval', { timeout: '1h' })
    await expect(testRun(waits, undefined, { mocks: { approval: true } })).rejects.toThrow(
      `testRun: mocks: "approval" of workflow "waits" is a waitForEvent and cannot be mocked; answer it with events: { 'approval': … }.`,
    )
  })

  it('an event that no waitForEvent of the workflow waits for rejects, listing the events it waits for', async () => {
    const wf = workflow('approve').waitForEvent('approval', { timeout: '2d' }).onError(() => 'timed out')
    await expect(testRun(wf, undefined, { events: { aproval: true } })).rejects.toThrow(
      'testRun: events: no waitForEvent of workflow "approve" waits for the event "aproval". Events it waits for: "approval".',
    )
  })

  it('bad runner options reject instead of being ignored', async () => {
    const wf = workflow('opts').step('a', () => 1)
    await expect(testRun(wf, undefined, { realTimeoutMs: Number.NaN })).rejects.toThrow(
      'testRun: expected `realTimeoutMs` as a number of milliseconds > 0, got NaN.',
    )
    await expect(testRun(wf, undefined, { concurrency: 0 })).rejects.toMatchObject({ code: 'OPTIONS_INVALID' })
  })

  it('reading run.steps of a node the run never reached says where the run stopped', async () => {
    const run = await testRun(order, { id: 'o1', total: 5 }, { mocks: { validate: fail('bad order') } })
    expect(() => run.steps.charge.status).toThrow(
      'run.steps["charge"]: the run never reached "charge" (it failed: Step "validate" failed after 1 attempt: bad order). ' +
        'Steps with an entry: "validate". Use run.ran(\'charge\') to assert whether a step ran.',
    )
    expect(run.ran('charge')).toBe(false)
    expect('charge' in run.steps).toBe(false)
    expect(Object.keys(run.steps)).toEqual(['validate'])
  })

  it('expectAttempts on a step that never ran says so', async () => {
    const run = await testRun(order, { id: 'o1', total: 5 })
    expect(() => run.expectAttempts('chrage', 1)).toThrow(
      'expected "chrage" to take 1 attempt(s), but it never ran; steps that ran: validate, fetch, fetch[user], fetch[stock], auto, reserve, reserve-one, charge',
    )
  })
})

/**
 * A memory store whose every answer comes a macrotask later, as a durable store's does (SQLite
 * with group commits); `thenable`: as a plain `{ then }` (a query builder, another promise library).
 */
function deferredStore(thenable = false): Store {
  const inner = memoryStore()
  return new Proxy(inner, {
    get(target, key) {
      const v = Reflect.get(target, key, target) as unknown
      if (typeof v !== 'function' || key === 'close') return v
      return (...args: unknown[]) => {
        const out = (v as (...a: unknown[]) => unknown).apply(target, args)
        const later = (resolve: (x: unknown) => unknown, reject: (e: unknown) => unknown): void => void setImmediate(() => Promise.resolve(out).then(resolve, reject))
        return thenable ? { then: later } : new Promise(later)
      }
    },
  })
}

describe('testRun with a store that answers asynchronously', () => {
  it('a wait that timed out earlier is not mistaken for one the run still waits on', async () => {
    const wf = workflow('late').waitForEvent('a', { timeout: '1h' }).onError(() => 'timed out').step('x', () => 1).step('y', () => 2)
    const run = await testRun(wf, undefined, { store: deferredStore() })
    expect(run.output).toBe(2)
  })

  it('virtual time waits for the store, one answering with promises or with other thenables: timers fire in the order the run sets them', async () => {
    const wf = workflow('items')
      .forEach('each', () => [3, 1, 2], (_i, flow) => flow.step('before', (ctx) => ctx.item).sleepUntil('nap', (ctx) => Date.UTC(2026, 0, 1) + (ctx.item as number) * 1000).step('after', (ctx) => ctx.item), { concurrency: 3 })
      .step('retry', () => 'ok', { retry: { attempts: 2, delay: '1m' } })
    const times = async (store?: Store) => {
      const run = await testRun(wf, undefined, { ...(store ? { store } : {}), mocks: { retry: sequence(fail('once'), 'ok') } })
      // Items run concurrently: the order they start in may differ, their virtual times may not.
      return run.trace.filter((t) => t.type === 'started').map((t) => `${t.step}${t.item ? `@${t.item.join('.')}` : ''}:${t.at}`).sort()
    }
    const inMemory = await times()
    expect(inMemory).toContain('after@1:1000')
    expect(await times(deferredStore())).toEqual(inMemory)
    expect(await times(deferredStore(true))).toEqual(inMemory)
  })
})

describe('testRun: cleanup', () => {
  it('a testRun that rejects cancels its run and closes its engine: nothing goes on after the test', async () => {
    let calls = 0
    let closed = 0
    const inner = inlineExecutor()
    const executor: Executor = { name: 'spy', execute: (node, fn, ctx) => inner.execute(node, fn, ctx), close: async () => void closed++ }
    const wf = workflow('bg').step('flaky', () => {
      calls++
      throw new Error('down')
    }, { retry: { attempts: 5, delay: 30 } })
    await expect(testRun(wf, undefined, { clock: 'real', executor, realTimeoutMs: 10 })).rejects.toMatchObject({ code: 'RUN_TIMEOUT' })
    const atReject = calls
    await new Promise((r) => setTimeout(r, 150))
    expect(calls).toBe(atReject) // no retry fired after testRun gave up
    expect(closed).toBe(1)
  })

  it('a run parked on an unanswered event is cancelled when testRun rejects', async () => {
    const store = memoryStore()
    await expect(testRun(workflow('forever').waitForEvent('approval'), undefined, { store })).rejects.toMatchObject({ code: 'EVENT_NOT_AWAITED' })
    expect((await store.listRuns()).map((r) => r.status)).toEqual(['cancelled'])
  })
})

describe('fakeClock', () => {
  it('refuses to move time backwards', () => {
    const clock = fakeClock({ start: 1000 })
    expect(() => clock.advance(-500)).toThrow('fakeClock.advance: expected ms as a finite number ≥ 0, got -500; virtual time only moves forward.')
    expect(() => clock.advance(Number.NaN)).toThrow(RangeError)
    expect(clock.now()).toBe(1000)
  })
})

describe('replayRun', () => {
  const record = async (wf: typeof order, payload: { id: string; total: number }) => {
    const engine = createEngine()
    const handle = await engine.start(wf, payload)
    await handle.outcome()
    return { run: (await engine.getRun(handle.id))!, steps: await engine.getSteps(handle.id) }
  }

  it('a replay of the unchanged workflow matches its recording', async () => {
    const report = await replayRun(order, await record(order, { id: 'o1', total: 5 }))
    expect(report.message).toBe('replay matches the recorded run')
    expect(report.ok).toBe(true)
  })

  it('detects a changed condition: the first differing step is the branch decision', async () => {
    const recorded = await record(order, { id: 'o1', total: 500 })
    const changed = orderWorkflow({ largeAbove: 100 }) // was > 1000
    const report = await replayRun(changed, recorded)
    expect(report.ok).toBe(false)
    expect(report.first?.kind).toBe('decision')
    expect(report.first?.message).toBe('a branch took "large" in the replay but "else" in the recorded run (n2:when)')
  })

  it('detects a changed step output with execute: true, naming the step', async () => {
    const recorded = await record(order, { id: 'o1', total: 5 })
    const changed = orderWorkflow({ scale: 2 }) // validate now doubles the total
    expect((await replayRun(changed, recorded)).ok).toBe(true) // outputs are fed from the recording
    const report = await replayRun(changed, recorded, { execute: true })
    expect(report.first).toMatchObject({ kind: 'output', step: 'validate', expected: { id: 'o1', total: 5 }, actual: { id: 'o1', total: 10 } })
  })

  it('replays a run that waited for an event, answering the wait with the recorded event', async () => {
    const approve = (wait: { timeout?: '1h' }) =>
      workflow('approve')
        .step('submit', () => 'submitted')
        .waitForEvent<'decision', { ok: boolean }>('decision', wait)
        .step('ship', (ctx) => (ctx.last.ok ? 'shipped' : 'held'))
    for (const wf of [approve({ timeout: '1h' }), approve({})]) {
      const engine = createEngine({ clock: fakeClock() })
      const handle = await engine.start(wf)
      await new Promise((r) => setTimeout(r, 10)) // let it park
      await engine.send(handle.id, 'decision', { ok: true })
      expect(await handle.result()).toBe('shipped')
      const report = await replayRun(wf, { run: (await engine.getRun(handle.id))!, steps: await engine.getSteps(handle.id) })
      expect(report.message).toBe('replay matches the recorded run')
      await engine.close()
    }
  })

  it('detects a removed and an added step', async () => {
    const recorded = await record(order, { id: 'o1', total: 5 })
    const changed = workflow<{ id: string; total: number }>('order')
      .step('validate', (ctx) => ({ id: ctx.payload.id, total: ctx.payload.total }))
      .step('audit', () => 'new step')
    const report = await replayRun(changed, recorded)
    expect(report.differences[0]?.kind).toBe('plan')
    expect(report.differences[1]).toMatchObject({ kind: 'missing', step: 'fetch[user]' })
    expect(report.differences).toContainEqual(expect.objectContaining({ kind: 'changed', expected: 'fetch', actual: 'audit', message: 'at n1 the recorded run had "fetch" but the replay has "audit"' }))
    expect(report.differences).toContainEqual(expect.objectContaining({ kind: 'missing', step: 'charge' }))
  })
})

describe('review: virtual time and real time', () => {
  it('a run that keeps retrying on virtual time still rejects after realTimeoutMs', async () => {
    const wf = workflow('poller').step('poll', () => {
      throw new Error('not ready')
    }, { retry: { attempts: 1_000_000_000, delay: '1s' } })
    const t0 = performance.now()
    const attempt = testRun(wf, undefined, { realTimeoutMs: 200 })
    await expect(attempt).rejects.toMatchObject({ code: 'RUN_TIMEOUT' })
    await expect(attempt).rejects.toThrow(/did not end within 200 ms of real time \(0 step\(s\) still in flight, 1 timer\(s\) pending\)/)
    expect(performance.now() - t0).toBeLessThan(3_000)
  }, 5_000)

  it('a step answering with a thenable (a query builder) counts as in flight: its timeout waits for idleMs', async () => {
    // knex and mongoose queries are thenables, not Promises.
    const query = { then: (resolve: (rows: string[]) => void) => void setTimeout(() => resolve(['row']), 20) }
    const wf = workflow('db').step('select', () => query as unknown as Promise<string[]>, { timeout: '1m' })
    const run = await testRun(wf, undefined, { clock: fakeClock({ idleMs: 2_000 }) })
    run.expectStatus('completed')
    expect(run.output).toEqual(['row'])
    expect(run.clock?.elapsed()).toBe(0)
  })
})

describe('review: mocks', () => {
  it('a mock that is a rejected promise fails the step without an unhandled rejection', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (e: unknown): void => void unhandled.push(e)
    process.on('unhandledRejection', onUnhandled)
    try {
      const wf = workflow('rej').sleep('nap', '1m').step('charge', () => 'real', { retry: { attempts: 2, delay: 10 } })
      const run = await testRun(wf, undefined, { mocks: { charge: Promise.reject(new Error('declined')) } })
      const seq = await testRun(wf, undefined, { mocks: { charge: sequence(Promise.reject(new Error('once')), 'ok') } })
      await new Promise((r) => setTimeout(r, 10))
      run.expectStatus('failed').expectAttempts('charge', 2)
      expect(run.error?.message).toContain('declined')
      expect(seq.output).toBe('ok')
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  it('sequence() refuses a nested sequence instead of returning it as the output', () => {
    expect(() => sequence(fail('x'), sequence(fail('y'), 5) as never)).toThrow(
      'sequence(): entry 2 is itself a sequence(); list its entries in the outer sequence instead, e.g. sequence(fail("x"), fail("y"), 5).',
    )
  })
})

describe('review: results of nested nodes', () => {
  it("branch() inside a forEach is the first item's decision, whichever item decided first", async () => {
    const wf = workflow('items')
      .forEach('each', () => [1, 2], (_i, flow) =>
        flow
          .step('load', async (ctx) => ctx.item)
          .if('big', (ctx) => ctx.item === 1)
          .step('big-one', () => 'big')
          .endIf(), { concurrency: 2 })
    // Item 0 loads slowly, so item 1 decides (and is journaled) first.
    const run = await testRun(wf, undefined, {
      mocks: { load: (ctx) => new Promise((r) => setTimeout(() => r(ctx.item), ctx.index === 0 ? 30 : 1)) },
      clock: fakeClock({ idleMs: 1_000 }),
    })
    expect(run.branch('big')).toBe('big')
    expect(run.branches('big')).toEqual(['big', '(none)'])
    run.expectBranch('big', 'big')
  })
})

describe('review: fakeClock options', () => {
  it('bad options throw when the clock is made', () => {
    expect(() => fakeClock({ start: new Date('soon') })).toThrow(
      'fakeClock: expected `start` as a Date or ms since the epoch, got Invalid Date.',
    )
    expect(() => fakeClock({ idleMs: -5 })).toThrow('fakeClock: expected `idleMs` as a number of real milliseconds ≥ 0, got -5.')
    expect(() => fakeClock({ idleMs: -5 })).toThrow(RangeError)
  })
})

describe('review: replayRun with execute: true', () => {
  const recordOf = async (wf: ReturnType<typeof numbers>) => {
    const engine = createEngine()
    const handle = await engine.start(wf)
    await handle.outcome()
    const recorded = { run: (await engine.getRun(handle.id))!, steps: await engine.getSteps(handle.id) }
    await engine.close()
    return recorded
  }
  function numbers(first: () => number | Promise<number>) {
    return workflow('numbers').step('first', first).step('second', (ctx) => ctx.last + 1)
  }

  it('a step that now throws is reported, and the replay continues on the recorded output', async () => {
    const recorded = await recordOf(numbers(() => 1))
    for (const now of [(): number => { throw new Error('now broken') }, async (): Promise<number> => { throw new Error('now broken') }]) {
      const report = await replayRun(numbers(now), recorded, { execute: true })
      expect(report.differences).toEqual([
        expect.objectContaining({ kind: 'output', step: 'first', expected: 1, message: '"first" (n0) now throws "now broken" where it returned 1' }),
      ])
    }
  })
})

describe('review: replayRun from a JSON fixture', () => {
  it('a recorded error saved as { name, message } is thrown again as that error', async () => {
    const pay = workflow('pay')
      .step('charge', (): string => {
        throw new Error('card declined')
      })
      .onError((ctx) => (ctx.error.message === 'card declined' ? 'declined' : `other: ${ctx.error.message}`))
      .if('declined', (ctx) => ctx.last === 'declined')
      .step('notify', () => 'sent')
      .endIf()
    const engine = createEngine()
    const handle = await engine.start(pay)
    await handle.outcome()
    const steps = await engine.getSteps(handle.id)
    const run = (await engine.getRun(handle.id))!
    await engine.close()
    // Saved as the docs say: errors with their name and message, then read back.
    const fixture = JSON.parse(JSON.stringify({ run, steps: steps.map((s) => ({ ...s, error: s.error && { name: s.error.name, message: s.error.message } })) }))
    const report = await replayRun(pay, fixture)
    expect(report.message).toBe('replay matches the recorded run')
  })
})

describe('review: strict mode', () => {
  it('an unmocked step is the error testRun reports, also when the run then waits for an unanswered event', async () => {
    const wf = workflow('gate')
      .step('lookup', () => 'real')
      .onError(() => 'fallback')
      .waitForEvent('approval')
    await expect(testRun(wf, undefined, { strict: true })).rejects.toBeInstanceOf(UnmockedStepError)
  })
})

describe('testRun: known issues', () => {
  it("with clock: 'real', waiting on a real sleep does not burn a CPU core", async () => {
    const wf = workflow('nap').sleep('nap', 300).step('after', () => 'awake')
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const run = await testRun(wf, undefined, { clock: 'real' })
    const wall = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    expect(run.output).toBe('awake')
    expect(wall).toBeGreaterThanOrEqual(290)
    // A behaviour check, not a benchmark: spinning on setImmediate uses ~100% of the wall time.
    expect((cpu.user + cpu.system) / 1000).toBeLessThan(wall * 0.5)
  })

  describe('forwards executeChunk and stats of the wrapped executor', () => {
    const square = cpu<number>(new URL('../../../test/fixtures/cpu/tasks.mjs', import.meta.url), { export: 'square' })
    const wf = workflow<number[]>('chunks').forEach('sq', (ctx) => ctx.payload, square, { concurrency: 2, chunkSize: 4 })
    const items = Array.from({ length: 10 }, (_, i) => i)
    const stats = { threads: 3, utilization: 0.5, queued: 0, completed: 10 }
    const spy = () => {
      const seen = { execute: 0, chunks: [] as number[] }
      const executor: Executor = {
        name: 'spy',
        execute: (_node, _fn, ctx) => {
          seen.execute++
          return (ctx as { item: number }).item ** 2
        },
        executeChunk: async (_node, inputs) => {
          seen.chunks.push(inputs.length)
          return inputs.map((i) => (i.item as number) ** 2)
        },
        stats: () => stats,
      }
      return { executor, seen }
    }

    it('runs a chunked cpu() forEach body a chunk at a time, and reports the pool in the summary', async () => {
      const { executor, seen } = spy()
      const run = await testRun(wf, items, { executor })
      expect(run.output).toEqual(items.map((i) => i * i))
      expect(seen).toEqual({ execute: 0, chunks: [4, 4, 2] })
      expect(run.summary.pool).toMatchObject({ threads: 3, utilization: 0.5 })
      expect(run.calls('sq:task')).toBe(10)
      expect(run.records('sq:task')).toHaveLength(10)
    })

    it('a mocked chunked body never reaches the wrapped executor, chunked or not', async () => {
      const { executor, seen } = spy()
      const run = await testRun(wf, items, { executor, mocks: { 'sq:task': (ctx: { item: unknown }) => -(ctx.item as number) } })
      expect(run.status).toBe('completed')
      expect(seen).toEqual({ execute: 0, chunks: [] })
      expect(run.output).toEqual(items.map((i) => -i))
    })

    it('strict mode still reports an unmocked chunked body', async () => {
      const { executor, seen } = spy()
      await expect(testRun(wf, items, { executor, strict: true })).rejects.toBeInstanceOf(UnmockedStepError)
      expect(seen).toEqual({ execute: 0, chunks: [] })
    })
  })
})
