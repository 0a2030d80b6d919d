import { StepTimeoutError, workflow } from '@stepline/core'
import { fakeClock, testRun } from '@stepline/testing'
import { expect, test } from 'vitest'

declare const warehouse: { pickup(signal: AbortSignal): Promise<string> }

test('a week of sleeping and retrying takes no real time', async () => {
  let polls = 0
  const trial = workflow('trial')
    .sleep('trial-period', '7d')
    .step('poll', () => {
      if (++polls < 3) throw new Error('not ready')
      return 'ready'
    }, { retry: { attempts: 3, delay: '1h', backoff: 'exponential' } })

  const clock = fakeClock({ start: new Date('2026-03-01T00:00:00Z') })
  const run = await testRun(trial, undefined, { clock })
  expect(run.output).toBe('ready')
  expect(clock.elapsed()).toBe(7 * 86_400_000 + 3 * 3_600_000) // 7 d, then 1 h + 2 h of backoff
  expect(new Date(clock.now()).toISOString()).toBe('2026-03-08T03:00:00.000Z')
  expect(run.trace.find((t) => t.step === 'poll')?.at).toBe(7 * 86_400_000) // virtual ms since start
})

test('a step timeout fires on virtual time while the step hangs', async () => {
  // The step is in flight, so the runner waits idleMs (real) without progress, then jumps to 30 s.
  const shipping = workflow('shipping').step('pickup', (ctx) => warehouse.pickup(ctx.signal), { timeout: '30s' })
  const clock = fakeClock({ idleMs: 5 })
  const run = await testRun(shipping, undefined, {
    clock,
    mocks: { pickup: (ctx) => new Promise<string>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))) },
  })
  run.expectStatus('failed')
  expect(run.error?.cause).toBeInstanceOf(StepTimeoutError)
  expect(clock.elapsed()).toBe(30_000)
})

test('driving a clock by hand', () => {
  const clock = fakeClock({ start: 0 })
  const fired: string[] = []
  clock.setTimer(() => fired.push('a'), 1_000)
  clock.setTimer(() => fired.push('b'), 5_000)
  clock.advance(2_000) // fires every timer due within 2 s
  expect([fired, clock.now(), clock.pending, clock.nextAt()]).toEqual([['a'], 2_000, 1, 5_000])
  clock.advanceToNext() // jumps to the next timer and fires it
  expect([fired, clock.elapsed(), clock.advanceToNext()]).toEqual([['a', 'b'], 5_000, false])
})
