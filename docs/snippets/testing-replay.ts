import { createEngine, workflow } from '@stepline/core'
import { replayRun, type RecordedRun } from '@stepline/testing'
import { expect, test } from 'vitest'

const pricing = workflow<{ total: number }>('pricing')
  .step('quote', (ctx) => ({ total: ctx.payload.total, discount: ctx.payload.total > 100 ? 10 : 0 }))
  .if('vip', (ctx) => ctx.last.total > 1000)
    .step('account-manager', () => 'assigned')
  .endIf()
  .step('invoice', (ctx) => ctx.steps.quote.output.total - ctx.steps.quote.output.discount)

// Record a run with any engine and any store (memory, SQLite, your own): the run and its journal.
async function record(payload: { total: number }): Promise<RecordedRun> {
  const engine = createEngine()
  const handle = await engine.start(pricing, payload)
  await handle.outcome()
  return { run: (await engine.getRun(handle.id))!, steps: await engine.getSteps(handle.id) }
}

test('the current code behaves as the recorded run did', async () => {
  const recorded = await record({ total: 500 })
  const report = await replayRun(pricing, recorded)
  expect(report.ok, report.message).toBe(true) // 'replay matches the recorded run'
})

test('a changed condition is reported at the first step that differs', async () => {
  const recorded = await record({ total: 500 })
  const changed = workflow<{ total: number }>('pricing')
    .step('quote', (ctx) => ({ total: ctx.payload.total, discount: ctx.payload.total > 200 ? 20 : 0 }))
    .if('vip', (ctx) => ctx.last.total > 100) // was > 1000
      .step('account-manager', () => 'assigned')
    .endIf()
    .step('invoice', (ctx) => ctx.steps.quote.output.total - ctx.steps.quote.output.discount)

  const report = await replayRun(changed, recorded)
  expect(report.ok).toBe(false)
  expect(report.first?.kind).toBe('decision')
  expect(report.message).toMatch(/^replay differs from the recorded run: a branch took "vip" in the replay but "\(none\)" in the recorded run/)
  expect(report.differences[1]?.message).toBe(
    '"account-manager" (n1.c0.n0) was skipped in the recorded run but completed in the replay',
  )

  // Outputs come from the recording; execute: true runs each step too and compares.
  const executed = await replayRun(changed, recorded, { execute: true })
  expect(executed.differences).toContainEqual(
    expect.objectContaining({ kind: 'output', step: 'quote', expected: { total: 500, discount: 10 }, actual: { total: 500, discount: 20 } }),
  )
})
