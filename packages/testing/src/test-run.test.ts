import { describe, expect, it } from 'vitest'
import { createEngine, workflow, StepError, StepTimeoutError } from '@stepline/core'
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

  it('records events and a trace with virtual times', async () => {
    const wf = workflow('t').sleep('nap', '1m').step('after', () => 1)
    const run = await testRun(wf)
    expect(run.events.map((e) => e.type)).toEqual(['run:started', 'step:started', 'step:completed', 'step:started', 'step:completed', 'run:completed'])
    expect(run.trace.find((t) => t.step === 'after' && t.type === 'started')?.at).toBe(60_000)
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
