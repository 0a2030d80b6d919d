import { isSteplineError, workflow } from '@stepline/core'
import { testRun } from '@stepline/testing'
import { expect, test } from 'vitest'

const refund = workflow<{ orderId: string }>('refund')
  .waitForEvent<'approval', { approved: boolean }>('approval', { timeout: '2d' })
  .onError(() => ({ approved: false }))
  .step('pay-out', (ctx) => (ctx.last.approved ? 'refunded' : 'declined'))

test('an answered wait', async () => {
  // Sent when the run parks waiting for "approval".
  const run = await testRun(refund, { orderId: 'o-1' }, { events: { approval: { approved: true } } })
  expect(run.output).toBe('refunded')
})

test('a wait nobody answers runs into its timeout on virtual time', async () => {
  const run = await testRun(refund, { orderId: 'o-1' })
  expect(run.output).toBe('declined')
  expect(run.clock?.elapsed()).toBe(2 * 86_400_000)
})

test('without a timeout, an unanswered wait rejects', async () => {
  const forever = workflow('forever').waitForEvent('approval')
  await testRun(forever, undefined).catch((error: unknown) => {
    expect(isSteplineError(error, 'EVENT_NOT_AWAITED')).toBe(true) // names the event "approval"
  })
})
