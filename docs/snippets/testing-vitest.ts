import { workflow } from '@stepline/core'
import { fakeClock, testRun } from '@stepline/testing'
import { afterEach, expect, test, vi } from 'vitest'

const reminder = workflow<{ user: string }>('reminder')
  .sleep('wait', '3d')
  .step('remind', (ctx) => `reminded ${ctx.payload.user}`, { timeout: '10s' })

afterEach(() => {
  vi.useRealTimers()
})

test('works with vitest fake timers installed', async () => {
  vi.useFakeTimers() // testRun keeps the real setImmediate/setTimeout it captured when loaded
  const run = await testRun(reminder, { user: 'ada' })
  expect(run.output).toBe('reminded ada')
  expect(run.clock?.elapsed()).toBe(3 * 86_400_000) // the run's own time is the fake clock anyway
})

test('a step timeout fires under fake timers too', async () => {
  vi.useFakeTimers() // performance.now() faked as well: the idle detection kept the real one
  const run = await testRun(reminder, { user: 'ada' }, {
    clock: fakeClock({ idleMs: 5 }),
    mocks: { remind: (ctx) => new Promise<string>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))) },
  })
  run.expectStatus('failed')
})
