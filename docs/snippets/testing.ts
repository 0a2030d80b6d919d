import { createEngine, isSteplineError, memoryStore, workflow } from '@stepline/core'
import { describe, expect, test } from 'vitest'

let calls = 0
const charge = workflow<{ amount: number }>('charge')
  .step('charge', () => {
    if (++calls < 3) throw new Error('gateway busy')
    return { ok: true }
  }, { retry: { attempts: 3, delay: 1 } })

describe('charge', () => {
  test('retries until the gateway answers', async () => {
    calls = 0
    const store = memoryStore()
    const engine = createEngine({ store })
    const run = await engine.start(charge, { amount: 10 })
    await expect(run.result()).resolves.toEqual({ ok: true })

    // The journal says what happened, step by step.
    const steps = await engine.getSteps(run.id)
    expect(steps.map((s) => [s.name, s.status, s.attempts])).toEqual([['charge', 'completed', 3]])
  })

  test('fails with a StepError once the attempts are spent', async () => {
    calls = -10
    const engine = createEngine()
    const outcome = await (await engine.start(charge, { amount: 10 })).outcome()
    expect(outcome.status).toBe('failed')
    expect(isSteplineError(outcome.error, 'STEP_FAILED')).toBe(true)
  })
})
