import { workflow } from '@stepline/core'
import { fail, testRun } from '@stepline/testing'
import { expect, test } from 'vitest'

const refund = workflow<{ amount: number }>('refund')
  .if('large', (ctx) => ctx.payload.amount > 500)
    .step('manager-approval', () => true)
  .else()
    .step('auto-approve', () => true)
  .endIf()
  .step('pay-out', () => 'paid', { retry: { attempts: 3, delay: '10s' } })

test('small refunds skip the manager', async () => {
  const run = await testRun(refund, { amount: 20 })
  // Each helper returns the result, so they chain.
  run
    .expectStatus('completed')
    .expectOrder('auto-approve', 'pay-out') // relative order; others may come between
    .expectBranch('large', 'else') // the .if()/.elseIf() name taken, or 'else'
    .expectSkipped('manager-approval')
    .expectAttempts('pay-out', 1)
})

test('the messages say what happened instead', async () => {
  const run = await testRun(refund, { amount: 20 }, { mocks: { 'pay-out': fail('bank offline') } })
  expect(() => run.expectStatus('completed')).toThrow(
    'expected the run to be completed, but it failed: Step "pay-out" failed after 3 attempts: bank offline',
  )
  expect(() => run.expectOrder('pay-out', 'auto-approve')).toThrow(
    'expected steps to run in the order pay-out → auto-approve; they ran as auto-approve → pay-out',
  )
  expect(() => run.expectBranch('large', 'large')).toThrow(`expected .if('large') to take "large", but it took "else"`)
  expect(() => run.expectSkipped('auto-approve')).toThrow('expected auto-approve to be skipped; skipped were: manager-approval')
  expect(() => run.expectAttempts('pay-out', 1)).toThrow('expected "pay-out" to take 1 attempt(s), it took 3')
  expect(() => run.branch('big')).toThrow(`No .if('big') in workflow; its branches are named: large`)
})
