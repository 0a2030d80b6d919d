import { workflow } from '@stepline/core'
import { fail, sequence, testRun } from '@stepline/testing'
import { expect, test } from 'vitest'

declare const payments: { charge(amount: number): Promise<{ id: string }> }

const checkout = workflow<{ orderId: string; amount: number }>('checkout')
  .step('validate', (ctx) => {
    if (ctx.payload.amount <= 0) throw new Error('nothing to charge')
    return { orderId: ctx.payload.orderId, amount: ctx.payload.amount }
  })
  .step('charge', (ctx) => payments.charge(ctx.last.amount), { retry: { attempts: 3, delay: '1s' } })
  .sleep('settle', '1d')
  .step('receipt', (ctx) => `receipt for ${ctx.steps.charge.output.id}`)

test('charges, retries the gateway, waits a day, sends a receipt', async () => {
  const run = await testRun(checkout, { orderId: 'o-1', amount: 42 }, {
    // `charge` never touches the network: it fails once, then answers.
    mocks: { charge: sequence(fail('503 from gateway'), { id: 'ch_1' }) },
  })

  expect(run.status).toBe('completed')
  expect(run.output).toBe('receipt for ch_1')
  expect(run.steps.charge.output.id).toBe('ch_1') // typed like ctx.steps
  run.expectOrder('validate', 'charge', 'settle', 'receipt').expectAttempts('charge', 2)
  expect(run.clock?.elapsed()).toBe(1000 + 86_400_000) // 1 s backoff + 1 day, in virtual time
})
