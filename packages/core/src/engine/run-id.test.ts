import { describe, expect, it } from 'vitest'
import { createEngine, workflow } from '../index'
import { newRunId } from './run-id'

describe('newRunId', () => {
  it('is 21 lowercase letters and digits, unique, and sorts by creation time', async () => {
    const first = Array.from({ length: 2000 }, newRunId)
    expect(new Set(first).size).toBe(first.length)
    for (const id of first) expect(id).toMatch(/^[0-9a-z]{21}$/)
    await new Promise((r) => setTimeout(r, 5))
    const later = newRunId()
    expect(first.every((id) => id < later)).toBe(true)
    // The prefix is the time: it decodes back to about now.
    expect(Math.abs(parseInt(later.slice(0, 9), 36) - Date.now())).toBeLessThan(1000)
  })

  it('is what the engine names runs by default', async () => {
    const engine = createEngine()
    const before = newRunId()
    const handle = await engine.start(workflow('ids').step('a', () => 1))
    expect(handle.id).toMatch(/^[0-9a-z]{21}$/)
    expect(handle.id.slice(0, 9) >= before.slice(0, 9)).toBe(true)
    await handle.result()
    await engine.close()
  })
})
