import { afterEach, describe, expect, it, vi } from 'vitest'
import { createEngine, workflow } from '../index'
import { systemClock } from './clock'

const DAY = 24 * 60 * 60 * 1000

describe('systemClock', () => {
  afterEach(() => void vi.useRealTimers())

  it('a timer longer than setTimeout keeps (24.8 days) fires when due, not at once', () => {
    vi.useFakeTimers()
    const fired: number[] = []
    const start = Date.now()
    systemClock.setTimer(() => fired.push(Date.now() - start), 30 * DAY)
    vi.advanceTimersByTime(25 * DAY)
    expect(fired).toEqual([])
    vi.advanceTimersByTime(5 * DAY)
    expect(fired).toEqual([30 * DAY])
  })

  it('such a timer can be cancelled in any leg', () => {
    vi.useFakeTimers()
    let fired = 0
    const cancel = systemClock.setTimer(() => fired++, 60 * DAY)
    vi.advanceTimersByTime(26 * DAY)
    cancel()
    vi.advanceTimersByTime(40 * DAY)
    expect(fired).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it("a step and a run with a timeout of 30 days finish normally (before, the timeouts fired at once)", async () => {
    const engine = createEngine()
    const wf = workflow('long-timeouts', { timeout: '30d' }).step('slow', async () => (await new Promise((r) => setTimeout(r, 30)), 'done'), { timeout: '30d' })
    try {
      const run = await engine.start(wf)
      expect(await run.result()).toBe('done')
    } finally {
      await engine.close()
    }
  })
})
