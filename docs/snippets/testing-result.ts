import { workflow } from '@stepline/core'
import { testRun } from '@stepline/testing'
import { expect, test } from 'vitest'

const order = workflow<{ id: string; total: number }>('order')
  .step('validate', (ctx) => ({ id: ctx.payload.id, total: ctx.payload.total }))
  .parallel('fetch', { user: () => ({ name: 'Ada' }), stock: () => 5 })
  .if('large', (ctx) => ctx.steps.validate.output.total > 1000)
    .step('review', () => 'reviewed')
  .else()
    .step('auto', () => 'auto-approved')
  .endIf()
  .forEach('reserve', () => ['a', 'b', 'c'], (item, flow) => flow.step('reserve-one', () => `reserved ${item}`))
  .step('charge', async () => ({ charged: true }))

test('what a run result holds', async () => {
  const run = await testRun(order, { id: 'o-1', total: 50 })

  expect(run.status).toBe('completed') // 'completed' | 'failed' | 'cancelled'
  expect(run.output).toEqual({ charged: true }) // typed as the workflow's output | undefined
  expect(run.error).toBeUndefined() // the run's error when it failed

  // Top-level nodes by name, typed like ctx.steps.
  const fetch = run.steps.fetch
  expect(fetch.output.user.name).toBe('Ada')
  expect([fetch.status, fetch.attempts, fetch.error]).toEqual(['completed', 1, undefined])
  expect(fetch.durationMs).toBeGreaterThanOrEqual(0) // virtual ms
  expect(run.steps.reserve.output).toEqual(['reserved a', 'reserved b', 'reserved c'])
  expect(run.steps.charge.calls).toBe(1) // calls of the function or mock, every attempt

  // Order, branches and skips.
  expect(run.order).toEqual(['validate', 'fetch', 'fetch[user]', 'fetch[stock]', 'auto', 'reserve', 'reserve-one', 'reserve-one', 'reserve-one', 'charge'])
  expect(run.branch('large')).toBe('else') // the case taken: 'large', 'else', …
  expect(run.branches('large')).toEqual(['else']) // one per evaluation (per forEach item)
  expect(run.skipped).toEqual(['review'])
  expect(run.ran('review')).toBe(false)

  // Steps inside forEach bodies: one journal entry per item.
  expect(run.records('reserve-one').map((r) => r.item)).toEqual([[0], [1], [2]])
  expect(run.calls('reserve-one')).toBe(3)
  expect(run.attempts('charge')).toBe(1)

  // The raw material: journal, events, trace, summary, clock.
  expect(run.journal.find((r) => r.name === 'charge')?.status).toBe('completed')
  expect(run.events.at(-1)?.type).toBe('run:completed')
  expect(run.trace[0]).toMatchObject({ type: 'started', step: 'validate', at: 0 })
  expect(run.summary.criticalPath).toContain('charge')
  expect(run.clock?.elapsed()).toBe(0) // nothing waited for time
})
