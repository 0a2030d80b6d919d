import { describe, expect, it } from 'vitest'
import { createEngine, isSteplineError, PlanError, workflow, type Store } from '@stepline/core'

describe('engine errors say what was wrong and how to fix it', () => {
  it('WORKFLOW_NOT_FOUND: starting an unknown id lists the registered ones', async () => {
    const engine = createEngine({ workflows: [workflow('orders').step('a', () => 1)] })
    await expect(engine.start('order')).rejects.toMatchObject({
      code: 'WORKFLOW_NOT_FOUND',
      message: 'No workflow "order" is registered with this engine (registered: "orders"). Register it with engine.register(workflow) or pass the workflow itself.',
    })
    expect(await engine.listRuns()).toEqual([])
  })

  it('ENGINE_CLOSED: a closed engine starts no run', async () => {
    const engine = createEngine()
    await engine.close()
    await expect(engine.start(workflow('late').step('a', () => 1))).rejects.toMatchObject({
      code: 'ENGINE_CLOSED',
      message: 'This engine is closed; create a new one to start runs.',
    })
  })

  it('OPTIONS_INVALID: bad engine options are refused when the engine is made', () => {
    expect(() => createEngine({ concurrency: 0 })).toThrow('createEngine: expected `concurrency` (steps in flight) as a whole number ≥ 1, got 0.')
    expect(() => createEngine({ store: {} as Store })).toThrow('createEngine: expected `store` to implement the Store interface (createRun, recordStep, …), e.g. memoryStore().')
    expect(() => createEngine({ workers: { min: 4, max: 2 } })).toThrow('createEngine: `workers.min` (4) is larger than `max` (2).')
    expect(() => createEngine({ workers: { idleTimeout: 'soon' as never } })).toThrow("createEngine: `workers.idleTimeout` must be a duration like '30s', got soon.")
    try {
      createEngine({ concurrency: -1 })
    } catch (e) {
      expect(isSteplineError(e, 'OPTIONS_INVALID')).toBe(true)
    }
  })

  it('OPTIONS_INVALID: register() wants a workflow; send() an event name; prune() a duration', async () => {
    const engine = createEngine()
    expect(() => engine.register({ id: 'x' } as never)).toThrow("engine.register: expected a workflow made with workflow('id'), got object.")
    await expect(engine.send('run', '')).rejects.toMatchObject({ code: 'OPTIONS_INVALID', message: 'engine.send: expected an event name as a non-empty string, got .' })
    await expect(engine.prune({ olderThan: 'later' as never })).rejects.toMatchObject({ code: 'OPTIONS_INVALID' })
  })

  it('PLAN_INVALID: two different definitions under one id cannot both be registered', () => {
    const engine = createEngine({ workflows: [workflow('dup').step('a', () => 1)] })
    expect(() => engine.register(workflow('dup').step('b', () => 2))).toThrow(PlanError)
    expect(() => engine.register(workflow('dup').step('b', () => 2))).toThrow(
      'Workflow "dup" is already registered with a different definition. Workflow ids must be unique per engine; rename one of them.',
    )
    // The same definition built again (a module loaded twice) is fine.
    expect(() => engine.register(workflow('dup').step('a', () => 1))).not.toThrow()
  })

  it('BRANCH_ABORTED: a sibling of a failed parallel branch and a race loser see why they were aborted', async () => {
    const reasons: unknown[] = []
    const waitForAbort = (signal: AbortSignal) =>
      new Promise((_, reject) =>
        signal.addEventListener('abort', () => {
          reasons.push(signal.reason)
          reject(signal.reason)
        }),
      )
    const engine = createEngine()
    const parallel = workflow('p').parallel('fan', [
      async () => {
        throw new Error('boom')
      },
      (ctx) => waitForAbort(ctx.signal),
    ])
    await expect(engine.run(parallel)).rejects.toMatchObject({ code: 'PARALLEL_FAILED' })
    const race = workflow('r').race('quote', [async () => 'fast', (ctx) => waitForAbort(ctx.signal)])
    expect(await engine.run(race)).toBe('fast')
    expect(reasons).toMatchObject([
      { code: 'BRANCH_ABORTED', message: 'Parallel "fan": aborted because branch 0 failed' },
      { code: 'BRANCH_ABORTED', message: 'Race "quote": branch 0 won' },
    ])
  })
})
